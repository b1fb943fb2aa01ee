-- Each user's data is bounded by the database itself, with the app's own limits, whoever
-- writes it (the app, or anyone calling the REST API with a user's token):
--   - a connection's model names: at most 200 characters each (the app's MAX_MODEL_NAME_LENGTH;
--     the list itself was already at most 200 names);
--   - each user's chats and messages: at most 10,000 chats, 200,000 messages and 2 GB of
--     stored text, and at most 2,000 new chats and messages at once, then 200 a second.
-- Only new writes are refused: rows already stored beyond a bound stay as they are, and this
-- migration never fails on them (triggers, not CHECK constraints that would validate them).
-- The refusals carry SQLSTATEs of our own (class SB), which the app says in plain words.

-- ---- a connection's model names ----------------------------------------------------------

-- A trigger rather than a CHECK: a CHECK may not hold a subquery, and a function it calls
-- must be executable by every writer, i.e. callable through the API. A trigger function runs
-- whatever the writer's privileges are, so nobody needs EXECUTE on it.
create function public.check_connection_model_names()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if jsonb_typeof(new.models) = 'array' and exists (
       select 1 from jsonb_array_elements(new.models) as model
       where jsonb_typeof(model) = 'string' and char_length(model #>> '{}') > 200) then
    raise exception 'new row for relation "connections" violates check constraint %',
                    '"connections_model_names_length"'
      using errcode = 'check_violation', schema = 'public', table = 'connections',
            constraint = 'connections_model_names_length',
            detail = 'A model name is at most 200 characters.';
  end if;
  return new;
end;
$$;

create trigger connections_model_names
  before insert or update of models on public.connections
  for each row execute function public.check_connection_model_names();

-- ---- each user's totals ------------------------------------------------------------------

-- One row per user who has chats: what they store, kept by the triggers below, so a bound
-- costs one row's update rather than a count over all of the user's messages. Nobody reads
-- or writes it through the API (row-level security on, no policy, no privilege); the
-- triggers write it as its owner.
create table public.user_totals (
  user_id uuid not null,
  chats integer not null default 0,
  messages integer not null default 0,
  bytes bigint not null default 0,  -- of text, as chat_bytes and message_bytes count it
  allowance double precision not null default 2000,  -- new rows the user may add right now
  allowance_at timestamptz not null default now(),  -- when `allowance` was last worked out
  constraint user_totals_pkey primary key (user_id),
  constraint user_totals_user_id_fkey foreign key (user_id)
    references auth.users (id) on delete cascade
);

comment on table public.user_totals is
  'Per user: chats, messages and bytes of text stored, and new rows allowed right now.';

alter table public.user_totals enable row level security;
revoke all on table public.user_totals from anon, authenticated;

-- The bytes a row's text takes, as the bounds count them (the other columns are short).
create function public.chat_bytes(title text, system_prompt text, model text,
                                  connection_id text)
returns bigint
language sql
immutable
set search_path = ''
as $$
  select octet_length(title)::bigint + octet_length(system_prompt) + octet_length(model)
         + octet_length(connection_id)
$$;

create function public.message_bytes(content text, reasoning text, error text,
                                     model_label text, usage jsonb)
returns bigint
language sql
immutable
set search_path = ''
as $$
  select octet_length(content)::bigint + octet_length(reasoning) + octet_length(error)
         + octet_length(model_label) + coalesce(octet_length(usage::text), 0)
$$;

-- Adds to one user's totals and refuses the write that takes them past a bound. The row's
-- lock makes one user's writes wait for each other here, so two at once cannot both pass.
-- New rows spend an allowance of 2,000 that refills at 200 a second.
create function public.add_to_user_totals(for_user uuid, more_chats integer,
                                          more_messages integer, more_bytes bigint,
                                          new_rows integer)
returns void
language plpgsql
set search_path = ''
as $$
declare
  totals public.user_totals;
begin
  insert into public.user_totals as t (user_id, chats, messages, bytes, allowance, allowance_at)
  values (for_user, more_chats, more_messages, greatest(more_bytes, 0), 2000 - new_rows, now())
  on conflict (user_id) do update set
    chats = t.chats + more_chats,
    messages = t.messages + more_messages,
    bytes = greatest(t.bytes + more_bytes, 0),
    allowance = least(2000, t.allowance
                            + 200 * greatest(extract(epoch from now() - t.allowance_at), 0))
                - new_rows,
    allowance_at = greatest(t.allowance_at, now())
  returning * into totals;
  if more_chats > 0 and totals.chats > 10000 then
    raise exception 'user_totals_chats: at most 10,000 chats per user'
      using errcode = 'SB051', hint = 'Delete chats you no longer need.';
  end if;
  if more_messages > 0 and totals.messages > 200000 then
    raise exception 'user_totals_messages: at most 200,000 messages per user'
      using errcode = 'SB052', hint = 'Delete chats you no longer need.';
  end if;
  if more_bytes > 0 and totals.bytes > 2000000000 then
    raise exception 'user_totals_bytes: at most 2 GB of text per user'
      using errcode = 'SB053', hint = 'Delete chats you no longer need.';
  end if;
  if new_rows > 0 and totals.allowance < 0 then
    raise exception 'user_totals_rate: at most %',
                    '2,000 new chats and messages at once, then 200 a second'
      using errcode = 'SB054', hint = 'Wait a few seconds, then try again.';
  end if;
end;
$$;

-- After the rows are written, so only rows that passed row-level security count: a write
-- naming another user is refused by its policy, never by (or about) that user's totals.
-- Once per statement: a request inserting many rows is counted, and refused, at once.
create function public.count_chats()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  if tg_op = 'INSERT' then
    perform public.add_to_user_totals(
      user_id, count(*)::integer, 0,
      sum(public.chat_bytes(title, system_prompt, model, connection_id))::bigint,
      count(*)::integer)
    from added group by user_id;
  else
    update public.user_totals as t
    set chats = greatest(t.chats - gone.chats, 0), bytes = greatest(t.bytes - gone.bytes, 0)
    from (select user_id, count(*) as chats,
                 sum(public.chat_bytes(title, system_prompt, model, connection_id)) as bytes
          from removed group by user_id) as gone
    where t.user_id = gone.user_id;
  end if;
  return null;
end;
$$;

create function public.count_messages()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  if tg_op = 'INSERT' then
    perform public.add_to_user_totals(
      user_id, 0, count(*)::integer,
      sum(public.message_bytes(content, reasoning, error, model_label, usage))::bigint,
      count(*)::integer)
    from added group by user_id;
  else
    update public.user_totals as t
    set messages = greatest(t.messages - gone.messages, 0),
        bytes = greatest(t.bytes - gone.bytes, 0)
    from (select user_id, count(*) as messages,
                 sum(public.message_bytes(content, reasoning, error, model_label, usage))
                   as bytes
          from removed group by user_id) as gone
    where t.user_id = gone.user_id;
  end if;
  return null;
end;
$$;

-- A change of a row's text (a reply as it streams, a chat's new system prompt) moves the
-- user's bytes by the difference; growing past the bound is refused.
create function public.count_chat_text()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  grown bigint := public.chat_bytes(new.title, new.system_prompt, new.model, new.connection_id)
                  - public.chat_bytes(old.title, old.system_prompt, old.model, old.connection_id);
begin
  if grown <> 0 then
    perform public.add_to_user_totals(new.user_id, 0, 0, grown, 0);
  end if;
  return null;
end;
$$;

create function public.count_message_text()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  grown bigint := public.message_bytes(new.content, new.reasoning, new.error,
                                       new.model_label, new.usage)
                  - public.message_bytes(old.content, old.reasoning, old.error,
                                         old.model_label, old.usage);
begin
  if grown <> 0 then
    perform public.add_to_user_totals(new.user_id, 0, 0, grown, 0);
  end if;
  return null;
end;
$$;

create trigger chats_count_added
  after insert on public.chats
  referencing new table as added
  for each statement execute function public.count_chats();

create trigger chats_count_removed
  after delete on public.chats
  referencing old table as removed
  for each statement execute function public.count_chats();

create trigger chats_count_text
  after update of title, system_prompt, model, connection_id on public.chats
  for each row execute function public.count_chat_text();

create trigger messages_count_added
  after insert on public.messages
  referencing new table as added
  for each statement execute function public.count_messages();

create trigger messages_count_removed
  after delete on public.messages
  referencing old table as removed
  for each statement execute function public.count_messages();

create trigger messages_count_text
  after update of content, reasoning, error, model_label, usage on public.messages
  for each row execute function public.count_message_text();

-- What is stored already counts from the start. `supabase db push` runs a migration as one
-- transaction, and creating the triggers above locked both tables against writes until it
-- commits: every write is in this count or counted by the triggers, never both or neither.
insert into public.user_totals (user_id, chats, messages, bytes)
select user_id, sum(chats), sum(messages), sum(bytes)
from (
  select user_id, 1 as chats, 0 as messages,
         public.chat_bytes(title, system_prompt, model, connection_id) as bytes
  from public.chats
  union all
  select user_id, 0, 1, public.message_bytes(content, reasoning, error, model_label, usage)
  from public.messages
) as stored
group by user_id;

-- None of these is callable through the API: the triggers call them, as their owner.
revoke execute on function public.check_connection_model_names()
  from public, anon, authenticated;
revoke execute on function public.chat_bytes(text, text, text, text)
  from public, anon, authenticated;
revoke execute on function public.message_bytes(text, text, text, text, jsonb)
  from public, anon, authenticated;
revoke execute on function public.add_to_user_totals(uuid, integer, integer, bigint, integer)
  from public, anon, authenticated;
revoke execute on function public.count_chats() from public, anon, authenticated;
revoke execute on function public.count_messages() from public, anon, authenticated;
revoke execute on function public.count_chat_text() from public, anon, authenticated;
revoke execute on function public.count_message_text() from public, anon, authenticated;
