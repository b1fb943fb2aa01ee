-- Long messages, and replies written by a worker that pages of any replica tail.
--
--   - A message's content and reasoning hold up to 32,000,000 characters each (a 20 MB reply
--     or pasted file), stored with lz4 where the server has it (several times faster than
--     pglz on a long text, which each append to a reply writes again).
--   - A message longer than one request carries (about 1 MB) is sent in pieces, staged in
--     message_pieces, then written whole by one call: nothing is half-written.
--   - A streaming reply has a heartbeat, set by the database's clock on each write while it
--     streams, and a stop request its owner may set. append_reply, read_reply and
--     settle_abandoned are the calls a reply's writer and its readers make.
--   - The search vector is kept by a trigger, recomputed only when the searched prefix
--     changes: as a generated column it was recomputed on every update of the row, a
--     heartbeat included.

-- ---- sizes ---------------------------------------------------------------------------------

-- octet_length first: it reads the stored length without reading a long text; a text of at
-- most 32,000,000 bytes has at most that many characters, so char_length, which reads the
-- whole text, runs only for text beyond that many bytes.
alter table public.messages
  drop constraint messages_content_length,
  add constraint messages_content_length
    check (octet_length(content) <= 32000000 or char_length(content) <= 32000000),
  drop constraint messages_reasoning_length,
  add constraint messages_reasoning_length
    check (octet_length(reasoning) <= 32000000 or char_length(reasoning) <= 32000000);

do $$
begin
  if exists (select 1 from pg_settings
             where name = 'default_toast_compression' and 'lz4' = any (enumvals)) then
    alter table public.messages
      alter column content set compression lz4,
      alter column reasoning set compression lz4;
  end if;
end;
$$;

-- ---- search: the first 100,000 characters, indexed when they change ----------------------

alter table public.messages alter column search_vector drop expression;

create function public.index_message_text()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if tg_op = 'INSERT' or new.search_vector is distinct from old.search_vector
     or left(new.content, 100000) is distinct from left(old.content, 100000) then
    new.search_vector := to_tsvector('simple', left(new.content, 100000));
  end if;
  return new;
end;
$$;

create trigger messages_index_text
  before insert or update of content, search_vector on public.messages
  for each row execute function public.index_message_text();

-- ---- a streaming reply's heartbeat and stop request --------------------------------------

alter table public.messages
  add column heartbeat_at timestamptz,  -- null: written before heartbeats (created_at counts)
  add column stop_requested boolean not null default false;

comment on column public.messages.heartbeat_at is
  'The database''s time of the last write while the message was streaming; set by a trigger.';
comment on column public.messages.stop_requested is
  'Set by the owner to ask the reply''s writer to stop.';

-- On insert, and on every write while the message is streaming; never what a writer gave.
-- Not on a change of stop_requested alone: asking to stop is not the writer being there.
create function public.move_heartbeat()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if tg_op = 'INSERT' or new.status = 'streaming' then
    new.heartbeat_at := clock_timestamp();
  else
    new.heartbeat_at := old.heartbeat_at;
  end if;
  return new;
end;
$$;

create trigger messages_move_heartbeat
  before insert or update of content, reasoning, status, error, model_label, usage,
                             heartbeat_at
  on public.messages
  for each row execute function public.move_heartbeat();

-- Users may ask their own replies to stop; the heartbeat stays the database's.
grant update (stop_requested) on table public.messages to authenticated;

-- ---- pieces of a long message, staged until the call that writes it ----------------------

create table public.message_pieces (
  user_id uuid not null default auth.uid(),
  upload_id uuid not null,  -- made by the app, one per write
  seq integer not null,  -- from 0, in the order the text is joined
  content text not null default '',
  reasoning text not null default '',
  created_at timestamptz not null default clock_timestamp(),
  constraint message_pieces_pkey primary key (user_id, upload_id, seq),
  constraint message_pieces_user_id_fkey foreign key (user_id)
    references auth.users (id) on delete cascade,
  constraint message_pieces_seq_range check (seq >= 0),
  constraint message_pieces_length check (octet_length(content) + octet_length(reasoning)
                                          <= 1048576)
);

comment on table public.message_pieces is
  'Pieces of a message too long for one request, until the call that writes it takes them.';

alter table public.message_pieces enable row level security;

create policy "Users can read their own message pieces"
  on public.message_pieces for select
  to authenticated
  using ((select auth.uid()) = user_id);

create policy "Users can add their own message pieces"
  on public.message_pieces for insert
  to authenticated
  with check ((select auth.uid()) = user_id);

create policy "Users can delete their own message pieces"
  on public.message_pieces for delete
  to authenticated
  using ((select auth.uid()) = user_id);

revoke all on table public.message_pieces from anon, authenticated;
grant select, delete on table public.message_pieces to authenticated;
grant insert (upload_id, seq, content, reasoning) on table public.message_pieces
  to authenticated;

-- Staged text counts in the user's bytes, and each piece as a new row for the rate bound,
-- as stored text does (20261207063100_bound_each_user.sql).
create function public.count_message_pieces()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  if tg_op = 'INSERT' then
    perform public.add_to_user_totals(
      user_id, 0, 0, sum(octet_length(content) + octet_length(reasoning))::bigint,
      count(*)::integer)
    from added group by user_id;
  else
    update public.user_totals as t
    set bytes = greatest(t.bytes - gone.bytes, 0)
    from (select user_id, sum(octet_length(content) + octet_length(reasoning)) as bytes
          from removed group by user_id) as gone
    where t.user_id = gone.user_id;
  end if;
  return null;
end;
$$;

create trigger message_pieces_count_added
  after insert on public.message_pieces
  referencing new table as added
  for each statement execute function public.count_message_pieces();

create trigger message_pieces_count_removed
  after delete on public.message_pieces
  referencing old table as removed
  for each statement execute function public.count_message_pieces();

-- The caller's staged text of one upload, joined in order, and its pieces removed (with any
-- of the caller's pieces left a day ago by a write that never finished). Every piece from 0
-- to `pieces` - 1 must be there, else nothing is written. SECURITY INVOKER, as the calls
-- below that use it: row-level security gives each user their own pieces only.
create function public.take_pieces(upload uuid, pieces integer,
                                   out content text, out reasoning text)
language plpgsql
security invoker
set search_path = ''
as $$
declare
  found_pieces integer;
  last_seq integer;
begin
  select coalesce(string_agg(p.content, '' order by p.seq), ''),
         coalesce(string_agg(p.reasoning, '' order by p.seq), ''), count(*), max(p.seq)
    into content, reasoning, found_pieces, last_seq
    from public.message_pieces p
    where p.upload_id = take_pieces.upload;
  if found_pieces <> take_pieces.pieces or last_seq is distinct from take_pieces.pieces - 1 then
    raise exception 'message_pieces_missing: % of % pieces arrived',
                    found_pieces, take_pieces.pieces
      using errcode = 'SB055';
  end if;
  delete from public.message_pieces p
    where p.upload_id = take_pieces.upload or p.created_at < now() - interval '1 day';
end;
$$;

-- A new message whose content and reasoning were staged (`message` carries the rest, as a
-- row of public.messages in JSON). As the table's own insert: the caller's privileges and
-- row-level security apply.
create function public.add_message_in_pieces(message jsonb, upload uuid, pieces integer)
returns setof public.messages
language plpgsql
security invoker
set search_path = ''
as $$
declare
  given public.messages := jsonb_populate_record(null::public.messages, message);
  staged record;
begin
  select * into staged from public.take_pieces(upload, pieces);
  return query
  insert into public.messages as m (id, chat_id, user_id, parent_id, role, content,
                                    model_label, status, error, reasoning, usage, created_at)
  values (given.id, given.chat_id, coalesce(given.user_id, auth.uid()), given.parent_id,
          given.role, staged.content || coalesce(given.content, ''),
          coalesce(given.model_label, ''), coalesce(given.status, 'complete'),
          coalesce(given.error, ''), staged.reasoning || coalesce(given.reasoning, ''),
          given.usage, coalesce(given.created_at, clock_timestamp()))
  returning m.*;
end;
$$;

-- A change of a message whose new content or reasoning (a key of `changes`, its value the
-- text's last part) was staged; the other keys of `changes` are written as given.
create function public.update_message_in_pieces(message_id uuid, changes jsonb, upload uuid,
                                                pieces integer)
returns setof public.messages
language plpgsql
security invoker
set search_path = ''
as $$
declare
  staged record;
begin
  select * into staged from public.take_pieces(upload, pieces);
  return query
  update public.messages as m set
    content = case when changes ? 'content'
                   then staged.content || (changes ->> 'content') else m.content end,
    reasoning = case when changes ? 'reasoning'
                     then staged.reasoning || (changes ->> 'reasoning') else m.reasoning end,
    model_label = coalesce(changes ->> 'model_label', m.model_label),
    status = coalesce(changes ->> 'status', m.status),
    error = coalesce(changes ->> 'error', m.error),
    usage = case when changes ? 'usage'
                 then nullif(changes -> 'usage', 'null'::jsonb) else m.usage end
  where m.id = update_message_in_pieces.message_id
  returning m.*;
end;
$$;

-- ---- a reply as it streams -----------------------------------------------------------------

-- Appends to a streaming reply that holds exactly content_at / reasoning_at characters (else
-- writes nothing), moving its heartbeat even when both pieces are empty; `upload` names
-- staged text that goes before the pieces. Returns the reply's state after, and the seconds
-- since its heartbeat by the database's clock; no row for a message that is not the caller's.
create function public.append_reply(message_id uuid, content_at integer, content text,
                                    reasoning_at integer, reasoning text,
                                    upload uuid default null, pieces integer default 0)
returns table (status text, content_length integer, reasoning_length integer,
               stop_requested boolean, quiet_seconds double precision)
language plpgsql
security invoker
set search_path = ''
as $$
declare
  more_content text := append_reply.content;
  more_reasoning text := append_reply.reasoning;
  stored_status text;
  content_chars integer;
  reasoning_chars integer;
begin
  if append_reply.upload is not null then  -- taken whatever happens next: nothing is left
    select p.content || more_content, p.reasoning || more_reasoning
      into more_content, more_reasoning
      from public.take_pieces(append_reply.upload, append_reply.pieces) as p;
  end if;
  select m.status, char_length(m.content), char_length(m.reasoning)
    into stored_status, content_chars, reasoning_chars
    from public.messages as m
    where m.id = append_reply.message_id
    for update;
  if not found then
    return;
  end if;
  if stored_status = 'streaming' and content_chars = append_reply.content_at
     and reasoning_chars = append_reply.reasoning_at then
    -- An empty piece leaves its column's stored value as it is (not written again).
    update public.messages as m set
      content = case when more_content = '' then m.content else m.content || more_content end,
      reasoning = case when more_reasoning = '' then m.reasoning
                       else m.reasoning || more_reasoning end
    where m.id = append_reply.message_id;
    content_chars := content_chars + char_length(more_content);
    reasoning_chars := reasoning_chars + char_length(more_reasoning);
  end if;
  return query
  select m.status, content_chars, reasoning_chars, m.stop_requested,
         extract(epoch from clock_timestamp() - coalesce(m.heartbeat_at, m.created_at))::float8
  from public.messages as m
  where m.id = append_reply.message_id;
end;
$$;

-- The message with only its content and reasoning after those offsets, its state, and the
-- seconds since its heartbeat by the database's clock.
create function public.read_reply(message_id uuid, content_at integer default 0,
                                  reasoning_at integer default 0)
returns table (id uuid, chat_id uuid, parent_id uuid, role text, content text,
               model_label text, status text, error text, reasoning text, usage jsonb,
               created_at timestamptz, content_length integer, reasoning_length integer,
               stop_requested boolean, quiet_seconds double precision)
language sql
stable
security invoker
set search_path = ''
as $$
  select m.id, m.chat_id, m.parent_id, m.role,
         substr(m.content, greatest(read_reply.content_at, 0) + 1), m.model_label, m.status,
         m.error, substr(m.reasoning, greatest(read_reply.reasoning_at, 0) + 1), m.usage,
         m.created_at, char_length(m.content), char_length(m.reasoning), m.stop_requested,
         extract(epoch from clock_timestamp() - coalesce(m.heartbeat_at, m.created_at))::float8
  from public.messages as m
  where m.id = read_reply.message_id
$$;

-- Marks 'interrupted' the chat's streaming messages whose heartbeat (or creation, for one
-- written before heartbeats) is older than the lease. Two callers at once: the second waits
-- for the first's row locks, then finds those rows no longer streaming, so each id is
-- returned once.
create function public.settle_abandoned(chat_id uuid, lease_seconds double precision)
returns table (id uuid)
language sql
volatile
security invoker
set search_path = ''
as $$
  update public.messages as m set status = 'interrupted'
  where m.chat_id = settle_abandoned.chat_id and m.status = 'streaming'
    and coalesce(m.heartbeat_at, m.created_at)
        < clock_timestamp() - make_interval(secs => greatest(settle_abandoned.lease_seconds, 0))
  returning m.id
$$;

-- Trigger functions run as triggers, never as calls through the API; the calls above are for
-- signed-in users (take_pieces too: the others run it as their caller).
revoke execute on function public.index_message_text() from public, anon, authenticated;
revoke execute on function public.move_heartbeat() from public, anon, authenticated;
revoke execute on function public.count_message_pieces() from public, anon, authenticated;
revoke execute on function public.take_pieces(uuid, integer) from public, anon, authenticated;
revoke execute on function public.add_message_in_pieces(jsonb, uuid, integer)
  from public, anon, authenticated;
revoke execute on function public.update_message_in_pieces(uuid, jsonb, uuid, integer)
  from public, anon, authenticated;
revoke execute on function public.append_reply(uuid, integer, text, integer, text, uuid, integer)
  from public, anon, authenticated;
revoke execute on function public.read_reply(uuid, integer, integer)
  from public, anon, authenticated;
revoke execute on function public.settle_abandoned(uuid, double precision)
  from public, anon, authenticated;
grant execute on function public.take_pieces(uuid, integer) to authenticated;
grant execute on function public.add_message_in_pieces(jsonb, uuid, integer) to authenticated;
grant execute on function public.update_message_in_pieces(uuid, jsonb, uuid, integer)
  to authenticated;
grant execute on function public.append_reply(uuid, integer, text, integer, text, uuid, integer)
  to authenticated;
grant execute on function public.read_reply(uuid, integer, integer) to authenticated;
grant execute on function public.settle_abandoned(uuid, double precision) to authenticated;
