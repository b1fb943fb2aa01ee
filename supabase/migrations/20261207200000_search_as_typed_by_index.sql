-- Search as the user types, within 200 ms at 2,000 chats and 100,000 messages: count_found
-- and search_chats_page (20261207190000_file_chats_and_search_as_typed.sql) made again,
-- same arguments and results, so that PostgreSQL uses the full-text indexes.
--
-- Why they changed:
-- - Row-level security kept the GIN indexes out: `@@` is not leakproof, so under a policy
--   PostgreSQL tests it only on rows the policy has let through (every message of the user,
--   70-120 ms whatever was typed). These functions therefore run as their owner (SECURITY
--   DEFINER) and keep to the caller's own rows themselves: the chats they read are filtered
--   by `user_id = auth.uid()` (no caller, no row), and the messages they read are those of
--   these chats (a message is only ever added to its owner's own chat, by the policies of
--   20261126050000_create_chats.sql). Only signed-in users may call them.
-- - The query was known only as the statement ran, so its plan could not fit it: a word start
--   as wide as "q" matches most messages (then asking chat by chat, newest first, is fast),
--   a whole word a few (then the index is). Each statement is now planned with the words it
--   searches for (EXECUTE), and PostgreSQL picks.

-- The words typed so far as a query: each word as plainto_tsquery reads it (punctuation is
-- plain text), all to match, the last one as the start of a word ("lis" finds "Lisbon");
-- null when no word is left. For the two functions below only.
create function public.typed_query(words text[])
returns tsquery
language sql
immutable
set search_path = ''
as $$
  select nullif(array_to_string(array_agg(
           p.piece || case when w.n = cardinality(typed_query.words) then ':*' else '' end
           order by w.n), ' & '), '')::tsquery
  from unnest(typed_query.words) with ordinality as w(word, n),
       lateral (select plainto_tsquery('simple', w.word)::text as piece) p
  where p.piece <> ''
$$;

revoke execute on function public.typed_query(text[]) from public, anon, authenticated;

-- How many of the caller's chats match, in their title or any message.
create or replace function public.count_found(words text[])
returns bigint
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  wanted tsquery := public.typed_query(count_found.words);
  found bigint;
begin
  if wanted is null then
    return 0;
  end if;
  execute $found$
    select count(*) from public.chats c
    where c.user_id = $2
      and (c.search_vector @@ $1
           or exists (select 1 from public.messages m
                      where m.chat_id = c.id and m.search_vector @@ $1))
  $found$ into found using wanted, (select auth.uid());
  return found;
end
$$;

-- A page of the caller's chats that match, newest first: each whole, with a snippet of its
-- newest matching message (or its title), the matched words between U+E000 and U+E001, and
-- that message's id (null: the title matched).
create or replace function public.search_chats_page(words text[], max integer default 20,
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
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  wanted tsquery := public.typed_query(search_chats_page.words);
begin
  if wanted is null then
    return;
  end if;
  return query execute $page$
    with found as (
      select c.* from public.chats c
      where c.user_id = $2
        and (c.search_vector @@ $1
             or exists (select 1 from public.messages m
                        where m.chat_id = c.id and m.search_vector @@ $1))
      order by c.updated_at desc, c.id desc
      limit $3 offset $4
    )
    select f.id, f.title, f.connection_id, f.model, f.system_prompt, f.temperature,
           f.current_id, f.pinned, f.max_tokens, f.context_window, f.created_at,
           f.updated_at, f.folder,
           coalesce(hit.snippet, ts_headline('simple', f.title, $1, $5)), hit.id
    from found f
    left join lateral (
      select m.id, ts_headline('simple', left(m.content, 10000), $1, $5) as snippet
      from public.messages m
      where m.chat_id = f.id and m.search_vector @@ $1
      order by m.created_at desc, m.id desc
      limit 1
    ) hit on true
    order by f.updated_at desc, f.id desc
  $page$
  using wanted, (select auth.uid()), least(greatest(search_chats_page.max, 0), 100),
        greatest(search_chats_page.skip, 0),
        'StartSel="' || chr(57344) || '", StopSel="' || chr(57345)
          || '", MaxWords=20, MinWords=8';
end
$$;

-- As before: signed-in users only.
revoke execute on function public.count_found(text[]) from public, anon, authenticated;
revoke execute on function public.search_chats_page(text[], integer, integer)
  from public, anon, authenticated;
grant execute on function public.count_found(text[]) to authenticated;
grant execute on function public.search_chats_page(text[], integer, integer) to authenticated;
