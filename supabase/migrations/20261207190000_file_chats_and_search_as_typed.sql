-- A chat's folder (a name the user typed, '' for none: a folder exists while a chat is filed
-- in it, so each user's folders are bounded by their chats), the indexes that list pinned
-- chats first and one folder's chats, and search as the user types: a page of hits with the
-- matched words marked and the message each snippet is from, and the true count of chats
-- found. The chats table's policies (one per operation, the owner's rows only) cover the
-- new column.

alter table public.chats
  add column folder text not null default ''
    constraint chats_folder_length check (char_length(folder) <= 100);

grant insert (folder) on table public.chats to authenticated;
grant update (folder) on table public.chats to authenticated;

create index chats_user_pinned_idx on public.chats (user_id, pinned, updated_at desc, id desc);
create index chats_user_folder_idx on public.chats (user_id, folder, updated_at desc, id desc);

-- search_chats as before (20261207150000_keep_attachments_and_reply_room.sql), with the
-- folder: its result type cannot change in place, so it is made again, same privileges.
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
  folder text,
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
         f.folder,
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

-- How many of the caller's chats match, in their title or any message. SECURITY INVOKER:
-- row-level security keeps it to the caller's own rows.
create function public.count_found(words text[])
returns bigint
language sql
stable
security invoker
set search_path = ''
as $$
  -- the words typed so far as search_chats_page reads them
  with wanted as (select (select nullif(array_to_string(array_agg(
               p.piece || case when w.n = cardinality(count_found.words) then ':*' else '' end
               order by w.n), ' & '), '')::tsquery
            from unnest(count_found.words) with ordinality as w(word, n),
                 lateral (select plainto_tsquery('simple', w.word)::text as piece) p
            where p.piece <> '') as q)
  select count(*) from (
    select m.chat_id from public.messages m, wanted
    where m.search_vector @@ wanted.q and m.user_id = (select auth.uid())
    union
    select c.id from public.chats c, wanted
    where c.search_vector @@ wanted.q and c.user_id = (select auth.uid())
  ) matched
$$;

-- A page of the caller's chats that match, newest first: each whole, with a snippet of its
-- newest matching message (or its title), the matched words between U+E000 and U+E001, and
-- that message's id (null: the title matched).
create function public.search_chats_page(words text[], max integer default 20,
                                         skip integer default 0)
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
  folder text,
  snippet text,
  message_id uuid
)
language sql
stable
security invoker
set search_path = ''
as $$
  with wanted as (
    -- The words typed so far, each to match, the last one as the start of a word ("lis"
    -- finds "Lisbon"): each word as plainto_tsquery reads it, so punctuation is plain
    -- text; null when no word is left (then nothing matches).
    select (select nullif(array_to_string(array_agg(
               p.piece || case when w.n = cardinality(search_chats_page.words) then ':*' else '' end
               order by w.n), ' & '), '')::tsquery
            from unnest(search_chats_page.words) with ordinality as w(word, n),
                 lateral (select plainto_tsquery('simple', w.word)::text as piece) p
            where p.piece <> '') as q,
           'StartSel="' || chr(57344) || '", StopSel="' || chr(57345)
             || '", MaxWords=20, MinWords=8' as marks
  ),
  matched as (
    select m.chat_id from public.messages m, wanted
    where m.search_vector @@ wanted.q and m.user_id = (select auth.uid())
    union
    select c.id from public.chats c, wanted
    where c.search_vector @@ wanted.q and c.user_id = (select auth.uid())
  ),
  found as (
    select c.* from public.chats c
    where c.id in (select chat_id from matched)
    order by c.updated_at desc, c.id desc
    limit least(greatest(search_chats_page.max, 0), 100)
    offset greatest(search_chats_page.skip, 0)
  )
  select f.id, f.title, f.connection_id, f.model, f.system_prompt, f.temperature,
         f.current_id, f.pinned, f.max_tokens, f.context_window, f.created_at, f.updated_at,
         f.folder,
         coalesce(hit.snippet, ts_headline('simple', f.title, wanted.q, wanted.marks)),
         hit.id
  from found f cross join wanted
  left join lateral (
    select m.id, ts_headline('simple', left(m.content, 10000), wanted.q, wanted.marks) as snippet
    from public.messages m
    where m.chat_id = f.id and m.search_vector @@ wanted.q
    order by m.created_at desc, m.id desc
    limit 1
  ) hit on true
  order by f.updated_at desc, f.id desc
$$;

-- The caller's folders and how many chats each holds, by name.
create function public.chat_folders()
returns table (folder text, chats bigint)
language sql
stable
security invoker
set search_path = ''
as $$
  select c.folder, count(*) from public.chats c
  where c.folder <> '' and c.user_id = (select auth.uid())
  group by c.folder
  order by c.folder
$$;

revoke execute on function public.count_found(text[]) from public, anon, authenticated;
revoke execute on function public.search_chats_page(text[], integer, integer)
  from public, anon, authenticated;
revoke execute on function public.chat_folders() from public, anon, authenticated;
grant execute on function public.count_found(text[]) to authenticated;
grant execute on function public.search_chats_page(text[], integer, integer) to authenticated;
grant execute on function public.chat_folders() to authenticated;
