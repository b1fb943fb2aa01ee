-- Conversations (SPEC R7): a user's chats and their messages, each readable and writable by
-- its owner alone. A chat's messages form a tree (parent_id), so every version of a reply or
-- of an edited message is kept. Ids are made by the app (core.history.model.new_id).

create table public.chats (
  id uuid not null,
  user_id uuid not null default auth.uid(),
  title text not null default '',
  connection_id text not null default '',
  model text not null default '',
  system_prompt text not null default '',
  temperature real,  -- null: the server's default
  current_id uuid,  -- the leaf message of the branch on screen
  pinned boolean not null default false,
  created_at timestamptz not null default clock_timestamp(),
  updated_at timestamptz not null default clock_timestamp(),
  -- 'simple': no stemming or stop words, so a title in any language is found as written.
  search_vector tsvector generated always as (to_tsvector('simple', title)) stored,
  constraint chats_pkey primary key (id),
  constraint chats_user_id_fkey foreign key (user_id)
    references auth.users (id) on delete cascade,
  constraint chats_title_length check (char_length(title) <= 200),
  constraint chats_connection_id_length check (char_length(connection_id) <= 200),
  constraint chats_model_length check (char_length(model) <= 200),
  constraint chats_system_prompt_length check (char_length(system_prompt) <= 100000),
  constraint chats_temperature_range check (temperature between 0 and 2)
);

comment on table public.chats is
  'One row per conversation: title, connection and model, options, the branch on screen.';

-- The sidebar's list: one user's chats, newest first, paged by the (updated_at, id) cursor.
create index chats_user_updated_idx on public.chats (user_id, updated_at desc, id desc);
create index chats_search_idx on public.chats using gin (search_vector);

create table public.messages (
  id uuid not null,
  chat_id uuid not null,
  user_id uuid not null default auth.uid(),
  parent_id uuid,  -- null for a chat's first message
  role text not null,
  content text not null default '',
  model_label text not null default '',
  status text not null default 'complete',
  error text not null default '',
  reasoning text not null default '',
  usage jsonb,
  -- clock_timestamp(): distinct within a transaction, so siblings keep their order.
  created_at timestamptz not null default clock_timestamp(),
  -- The first 100,000 characters: a tsvector holds at most 1 MB, which a 1,000,000-character
  -- message of short distinct words would pass, and its insert would then fail.
  search_vector tsvector generated always as
    (to_tsvector('simple', left(content, 100000))) stored,
  constraint messages_pkey primary key (id),
  constraint messages_chat_id_fkey foreign key (chat_id)
    references public.chats (id) on delete cascade,
  constraint messages_user_id_fkey foreign key (user_id)
    references auth.users (id) on delete cascade,
  -- A parent in the same chat, enforced by the key itself: (chat_id, parent_id) must name an
  -- existing (chat_id, id), so no role can hang a message under another chat's message.
  constraint messages_chat_id_id_key unique (chat_id, id),
  constraint messages_parent_in_chat foreign key (chat_id, parent_id)
    references public.messages (chat_id, id) on delete cascade,
  constraint messages_role_known check (role in ('user', 'assistant')),
  constraint messages_content_length check (char_length(content) <= 1000000),
  constraint messages_model_label_length check (char_length(model_label) <= 500),
  constraint messages_status_known check (status in ('streaming', 'complete', 'stopped',
                                                     'interrupted', 'incomplete', 'failed')),
  constraint messages_error_length check (char_length(error) <= 10000),
  constraint messages_reasoning_length check (char_length(reasoning) <= 1000000),
  constraint messages_usage_object check (usage is null or jsonb_typeof(usage) = 'object')
);

comment on table public.messages is
  'One row per message of a chat; parent_id links versions into a tree.';

-- Opening a chat: its messages, oldest first.
create index messages_chat_created_idx on public.messages (chat_id, created_at);
create index messages_search_idx on public.messages using gin (search_vector);
create index messages_user_idx on public.messages (user_id);

-- Moves updated_at on every change of a chat, always forward (the list's order and cursor).
create function public.set_chat_updated_at()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  new.updated_at = greatest(clock_timestamp(), old.updated_at + interval '1 microsecond');
  return new;
end;
$$;

create trigger chats_set_updated_at
  before update on public.chats
  for each row execute function public.set_chat_updated_at();

-- A chat belongs to one user for life, even for roles that bypass row-level security.
create function public.keep_chat_owner()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if new.user_id is distinct from old.user_id then
    raise exception 'a chat cannot be moved to another user'
      using errcode = 'check_violation';
  end if;
  return new;
end;
$$;

create trigger chats_keep_owner
  before update of user_id on public.chats
  for each row execute function public.keep_chat_owner();

-- A message stays in its chat and with its owner for life.
create function public.keep_message_place()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if new.user_id is distinct from old.user_id or new.chat_id is distinct from old.chat_id then
    raise exception 'a message cannot be moved to another chat or user'
      using errcode = 'check_violation';
  end if;
  return new;
end;
$$;

create trigger messages_keep_place
  before update of user_id, chat_id on public.messages
  for each row execute function public.keep_message_place();

-- A new message moves its chat up the list. The update runs as the writer (row-level
-- security and its policies apply) and touches no column: chats_set_updated_at moves the time.
create function public.touch_chat_of_message()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  update public.chats set pinned = pinned where id = new.chat_id;
  return null;
end;
$$;

create trigger messages_touch_chat
  after insert on public.messages
  for each row execute function public.touch_chat_of_message();

alter table public.chats enable row level security;
alter table public.messages enable row level security;

create policy "Users can read their own chats"
  on public.chats for select
  to authenticated
  using ((select auth.uid()) = user_id);

create policy "Users can create their own chats"
  on public.chats for insert
  to authenticated
  with check ((select auth.uid()) = user_id);

create policy "Users can update their own chats"
  on public.chats for update
  to authenticated
  using ((select auth.uid()) = user_id)
  with check ((select auth.uid()) = user_id);

create policy "Users can delete their own chats"
  on public.chats for delete
  to authenticated
  using ((select auth.uid()) = user_id);

create policy "Users can read their own messages"
  on public.messages for select
  to authenticated
  using ((select auth.uid()) = user_id);

create policy "Users can add messages to their own chats"
  on public.messages for insert
  to authenticated
  with check (
    (select auth.uid()) = user_id
    and exists (select 1 from public.chats c
                where c.id = chat_id and c.user_id = (select auth.uid()))
  );

create policy "Users can update their own messages in their own chats"
  on public.messages for update
  to authenticated
  using ((select auth.uid()) = user_id)
  with check (
    (select auth.uid()) = user_id
    and exists (select 1 from public.chats c
                where c.id = chat_id and c.user_id = (select auth.uid()))
  );

create policy "Users can delete their own messages"
  on public.messages for delete
  to authenticated
  using ((select auth.uid()) = user_id);

-- anon gets nothing; users write the data columns of their own rows, never the owner after
-- creation, the chat a message is in, or the timestamps. Ids are given once, on insert.
revoke all on table public.chats from anon, authenticated;
revoke all on table public.messages from anon, authenticated;
grant select, delete on table public.chats to authenticated;
grant select, delete on table public.messages to authenticated;

grant insert (
  id,
  user_id,
  title,
  connection_id,
  model,
  system_prompt,
  temperature,
  current_id,
  pinned
) on table public.chats to authenticated;

grant update (
  title,
  connection_id,
  model,
  system_prompt,
  temperature,
  current_id,
  pinned
) on table public.chats to authenticated;

grant insert (
  id,
  chat_id,
  user_id,
  parent_id,
  role,
  content,
  model_label,
  status,
  error,
  reasoning,
  usage
) on table public.messages to authenticated;

grant update (
  content,
  model_label,
  status,
  error,
  reasoning,
  usage
) on table public.messages to authenticated;

-- Search through one call: chats whose title, or one of whose messages, holds every word of
-- `query` (plainto_tsquery: punctuation is plain text, no operators), newest first, with a
-- piece of the matching text. SECURITY INVOKER: the caller's row-level security applies, so
-- it searches only the caller's own rows.
create function public.search_chats(query text, max integer default 20)
returns table (
  id uuid,
  title text,
  connection_id text,
  model text,
  system_prompt text,
  temperature real,
  current_id uuid,
  pinned boolean,
  created_at timestamptz,
  updated_at timestamptz,
  snippet text
)
language sql
stable
security invoker
set search_path = ''
as $$
  with wanted as (
    select plainto_tsquery('simple', search_chats.query) as words
  ),
  matched as (
    select m.chat_id from public.messages m, wanted where m.search_vector @@ wanted.words
    union
    select c.id from public.chats c, wanted where c.search_vector @@ wanted.words
  ),
  found as (
    select c.* from public.chats c
    where c.id in (select chat_id from matched)
    order by c.updated_at desc, c.id desc
    limit least(greatest(search_chats.max, 0), 100)
  )
  select f.id, f.title, f.connection_id, f.model, f.system_prompt, f.temperature,
         f.current_id, f.pinned, f.created_at, f.updated_at,
         coalesce(
           (select ts_headline('simple', left(m.content, 10000), wanted.words,
                               'StartSel="", StopSel="", MaxWords=20, MinWords=8')
            from public.messages m
            where m.chat_id = f.id and m.search_vector @@ wanted.words
            order by m.created_at desc
            limit 1),
           f.title)
  from found f, wanted
  order by f.updated_at desc, f.id desc
$$;

-- Trigger functions run as triggers, never as calls through the API; search is for users.
revoke execute on function public.set_chat_updated_at() from public, anon, authenticated;
revoke execute on function public.keep_chat_owner() from public, anon, authenticated;
revoke execute on function public.keep_message_place() from public, anon, authenticated;
revoke execute on function public.touch_chat_of_message() from public, anon, authenticated;
revoke execute on function public.search_chats(text, integer) from public, anon, authenticated;
grant execute on function public.search_chats(text, integer) to authenticated;
