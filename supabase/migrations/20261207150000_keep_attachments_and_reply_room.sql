-- A message's attachments (the files sent with it: images downscaled, documents read to text),
-- kept with the message and deleted with it; each user's count and bytes of them bounded; the
-- replies' token usage summed per model; and two options of a chat: the room kept for each
-- reply (max_tokens) and the context window the user typed when the server does not say it,
-- which search now gives with each chat it finds.

-- ---- a chat's reply room and context window ----------------------------------------------

alter table public.chats
  add column max_tokens integer  -- null: the server's default
    constraint chats_max_tokens_range check (max_tokens between 1 and 10000000),
  add column context_window integer  -- null: as the server says, or unknown
    constraint chats_context_window_range check (context_window between 1 and 100000000);

grant insert (max_tokens, context_window) on table public.chats to authenticated;
grant update (max_tokens, context_window) on table public.chats to authenticated;

-- Search gives each chat whole, these options too: search_chats as before
-- (20261126050000_create_chats.sql), with the two columns. A function's result type cannot
-- be changed in place, so it is made again, with the same privileges.
drop function public.search_chats(text, integer);

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
  max_tokens integer,
  context_window integer,
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
         f.current_id, f.pinned, f.max_tokens, f.context_window, f.created_at, f.updated_at,
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

revoke execute on function public.search_chats(text, integer) from public, anon, authenticated;
grant execute on function public.search_chats(text, integer) to authenticated;

-- ---- attachments -------------------------------------------------------------------------

-- An image's bytes are kept as base64 text, not bytea: PostgREST reads and writes bytea as
-- hex-escaped text ("\x89504e47..."), twice the bytes in every request and answer and a form
-- no JSON client decodes by itself, while base64 is a third larger and is what the app sends
-- to models anyway. The CHECK below holds it to well-formed base64 of at most 2,000,000 bytes.
create table public.attachments (
  id uuid not null,  -- made by the app (core.history.model.new_id)
  user_id uuid not null default auth.uid(),
  message_id uuid not null,
  chat_id uuid not null,
  position smallint not null,  -- from 0, in the order the files were attached
  kind text not null,
  name text not null,
  mime text not null default '',
  data text not null default '',  -- an image's bytes, base64
  text text not null default '',  -- a document's text
  size bigint not null default 0,  -- bytes of the file as the user attached it
  width integer not null default 0,
  height integer not null default 0,
  created_at timestamptz not null default clock_timestamp(),
  constraint attachments_pkey primary key (id),
  constraint attachments_user_id_fkey foreign key (user_id)
    references auth.users (id) on delete cascade,
  -- The message, in the chat named: deleting either (a chat's messages go with it) deletes
  -- its attachments.
  constraint attachments_message_fkey foreign key (chat_id, message_id)
    references public.messages (chat_id, id) on delete cascade,
  constraint attachments_position_range check (position between 0 and 9),
  constraint attachments_position_taken unique (message_id, position),
  constraint attachments_kind_known check (kind in ('image', 'document')),
  constraint attachments_name_length check (char_length(name) between 1 and 255),
  constraint attachments_mime_length check (char_length(mime) <= 255),
  constraint attachments_data_size check (
    data ~ '^[A-Za-z0-9+/]*={0,2}$' and char_length(data) % 4 = 0
    and char_length(data) / 4 * 3 - (char_length(data) - char_length(rtrim(data, '=')))
        <= 2000000
    and (kind = 'image' or data = '')),
  constraint attachments_text_length check (
    char_length(text) <= 8000000 and (kind = 'document' or text = '')),
  constraint attachments_size_range check (size between 0 and 10000000000),
  constraint attachments_width_range check (width between 0 and 100000),
  constraint attachments_height_range check (height between 0 and 100000)
);

comment on table public.attachments is
  'One row per file sent with a message; never changed once written.';

-- Opening a chat reads its attachments in one request.
create index attachments_chat_idx on public.attachments (chat_id, message_id, position);
create index attachments_user_idx on public.attachments (user_id);

alter table public.attachments enable row level security;

-- A row's owner never changes (no update) and its message was the owner's when it was
-- written (the insert policy; a message never moves to another user), so reading and deleting
-- by owner is reading and deleting what hangs on one's own messages.
create policy "Users can read their own attachments"
  on public.attachments for select
  to authenticated
  using ((select auth.uid()) = user_id);

create policy "Users can attach files to their own messages"
  on public.attachments for insert
  to authenticated
  with check (
    (select auth.uid()) = user_id
    and exists (select 1 from public.messages m
                where m.id = attachments.message_id and m.chat_id = attachments.chat_id
                  and m.user_id = (select auth.uid()))
  );

create policy "Users can delete their own attachments"
  on public.attachments for delete
  to authenticated
  using ((select auth.uid()) = user_id);

-- Attachments are immutable: what was sent with a message stays as it was sent. No update
-- privilege and no update policy, so every update through the API is refused.
revoke all on table public.attachments from anon, authenticated;
grant select, delete on table public.attachments to authenticated;
grant insert (id, user_id, message_id, chat_id, position, kind, name, mime, data, text, size,
              width, height)
  on table public.attachments to authenticated;

-- ---- each user's attachments bounded: 10,000 and 2 GB ------------------------------------

alter table public.user_totals
  add column attachments integer not null default 0,
  add column attachment_bytes bigint not null default 0;  -- as attachment_bytes counts them

-- The bytes an attachment takes: an image's bytes (three for four base64 characters), a
-- document's text.
create function public.attachment_bytes(data text, text text)
returns bigint
language sql
immutable
set search_path = ''
as $$
  select (octet_length(data) / 4 * 3)::bigint + octet_length(text)
$$;

-- As add_to_user_totals (20261207063100_bound_each_user.sql): the row's lock makes one user's
-- writes wait for each other, so two at once cannot both pass.
create function public.add_to_attachment_totals(for_user uuid, more integer, more_bytes bigint)
returns void
language plpgsql
set search_path = ''
as $$
declare
  totals public.user_totals;
begin
  update public.user_totals as t
  set attachments = greatest(t.attachments + more, 0),
      attachment_bytes = greatest(t.attachment_bytes + more_bytes, 0)
  where t.user_id = for_user
  returning * into totals;
  if more > 0 and totals.attachments > 10000 then
    raise exception 'user_totals_attachments: at most 10,000 attachments per user'
      using errcode = 'SB056', hint = 'Delete chats you no longer need.';
  end if;
  if more_bytes > 0 and totals.attachment_bytes > 2000000000 then
    raise exception 'user_totals_attachment_bytes: at most 2 GB of attachments per user'
      using errcode = 'SB057', hint = 'Delete chats you no longer need.';
  end if;
end;
$$;

-- After the rows are written, once per statement, as count_messages: new attachments spend
-- the user's allowance of new rows too.
create function public.count_attachments()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  if tg_op = 'INSERT' then
    perform public.add_to_user_totals(user_id, 0, 0, 0, count(*)::integer)
    from added group by user_id;
    perform public.add_to_attachment_totals(
      user_id, count(*)::integer, sum(public.attachment_bytes(data, text))::bigint)
    from added group by user_id;
  else
    perform public.add_to_attachment_totals(
      user_id, -count(*)::integer, -sum(public.attachment_bytes(data, text))::bigint)
    from removed group by user_id;
  end if;
  return null;
end;
$$;

create trigger attachments_count_added
  after insert on public.attachments
  referencing new table as added
  for each statement execute function public.count_attachments();

create trigger attachments_count_removed
  after delete on public.attachments
  referencing old table as removed
  for each statement execute function public.count_attachments();

-- ---- a message and its attachments, written in one call ----------------------------------

-- The message (`message`: a row of public.messages in JSON) and its attachments (`files`: a
-- list of rows of public.attachments in JSON), all or nothing: a refused attachment leaves no
-- message behind. A text too long for one request was staged in public.message_pieces: the
-- message's content and reasoning under `upload` (`pieces` of them), an attachment's data or
-- text under the "upload" and "pieces" keys of its row. SECURITY INVOKER: the caller's
-- privileges and row-level security apply, as for the tables' own inserts.
create function public.add_message_with_attachments(message jsonb, files jsonb,
                                                    upload uuid default null,
                                                    pieces integer default 0)
returns setof public.messages
language plpgsql
security invoker
set search_path = ''
as $$
declare
  given public.messages := jsonb_populate_record(null::public.messages, message);
  stored public.messages;
  file jsonb;
  attached public.attachments;
  staged_content text := '';
  staged_reasoning text := '';
  staged_file text;
begin
  if pieces > 0 then
    select t.content, t.reasoning into staged_content, staged_reasoning
      from public.take_pieces(upload, pieces) t;
  end if;
  insert into public.messages as m (id, chat_id, user_id, parent_id, role, content,
                                    model_label, status, error, reasoning, usage, created_at)
  values (given.id, given.chat_id, coalesce(given.user_id, auth.uid()), given.parent_id,
          given.role, staged_content || coalesce(given.content, ''),
          coalesce(given.model_label, ''), coalesce(given.status, 'complete'),
          coalesce(given.error, ''), staged_reasoning || coalesce(given.reasoning, ''),
          given.usage, coalesce(given.created_at, clock_timestamp()))
  returning m.* into stored;
  for file in select value from jsonb_array_elements(coalesce(files, '[]'::jsonb)) loop
    attached := jsonb_populate_record(null::public.attachments, file);
    staged_file := '';
    if coalesce((file ->> 'pieces')::integer, 0) > 0 then
      select t.content into staged_file
        from public.take_pieces((file ->> 'upload')::uuid, (file ->> 'pieces')::integer) t;
    end if;
    insert into public.attachments (id, user_id, message_id, chat_id, position, kind, name,
                                    mime, data, text, size, width, height)
    values (attached.id, coalesce(attached.user_id, auth.uid()), stored.id, stored.chat_id,
            attached.position, attached.kind, attached.name, coalesce(attached.mime, ''),
            case when attached.kind = 'image' then staged_file else '' end
              || coalesce(attached.data, ''),
            case when attached.kind = 'image' then '' else staged_file end
              || coalesce(attached.text, ''),
            coalesce(attached.size, 0), coalesce(attached.width, 0),
            coalesce(attached.height, 0));
  end loop;
  return next stored;
end;
$$;

-- ---- the replies' token usage, per model -------------------------------------------------

-- The caller's replies per model label, and the prompt and completion tokens their usage
-- says (a value that is not a number counts 0). SECURITY INVOKER: row-level security keeps
-- it to the caller's own messages.
create function public.usage_totals()
returns table (model_label text, replies bigint, prompt_tokens bigint,
               completion_tokens bigint)
language sql
stable
security invoker
set search_path = ''
as $$
  select m.model_label, count(*),
         coalesce(sum(case when jsonb_typeof(m.usage -> 'prompt_tokens') = 'number'
                           then (m.usage ->> 'prompt_tokens')::numeric end), 0)::bigint,
         coalesce(sum(case when jsonb_typeof(m.usage -> 'completion_tokens') = 'number'
                           then (m.usage ->> 'completion_tokens')::numeric end), 0)::bigint
  from public.messages m
  where m.role = 'assistant' and m.user_id = (select auth.uid())
  group by m.model_label
  order by m.model_label
$$;

-- The bounds' functions run from triggers, as their owner; the calls are for users only.
revoke execute on function public.attachment_bytes(text, text)
  from public, anon, authenticated;
revoke execute on function public.add_to_attachment_totals(uuid, integer, bigint)
  from public, anon, authenticated;
revoke execute on function public.count_attachments() from public, anon, authenticated;
revoke execute on function public.add_message_with_attachments(jsonb, jsonb, uuid, integer)
  from public, anon, authenticated;
revoke execute on function public.usage_totals() from public, anon, authenticated;
grant execute on function public.add_message_with_attachments(jsonb, jsonb, uuid, integer)
  to authenticated;
grant execute on function public.usage_totals() to authenticated;
