-- A chat's comparisons: one user message sent to 2-4 models at once. Each column's reply is an
-- ordinary message; a comparison names them in column order with the model label each column
-- asked, whether the names were hidden (blind), and the user's verdict: the reply picked, or a
-- tie. The first verdict is kept. Comparisons go with their chat; each user's count of them
-- is bounded.

create table public.comparisons (
  id uuid not null,  -- made by the app (core.history.model.new_id)
  user_id uuid not null default auth.uid(),
  chat_id uuid not null,
  message_id uuid not null,  -- the user message every model was asked (it may be stored later)
  reply_ids uuid[] not null,  -- the replies, in column order (they may be stored later)
  labels text[] not null,  -- the model each column asked, as the selector labels it
  blind boolean not null default false,
  picked_id uuid,
  tie boolean not null default false,
  created_at timestamptz not null default clock_timestamp(),
  decided_at timestamptz,  -- set by the database when the verdict is first stored
  constraint comparisons_pkey primary key (id),
  constraint comparisons_user_id_fkey foreign key (user_id)
    references auth.users (id) on delete cascade,
  constraint comparisons_chat_id_fkey foreign key (chat_id)
    references public.chats (id) on delete cascade,
  constraint comparisons_replies_count check (
    array_ndims(reply_ids) = 1 and cardinality(reply_ids) between 2 and 4
    and array_position(reply_ids, null) is null),
  constraint comparisons_labels_count check (
    array_ndims(labels) = 1 and cardinality(labels) = cardinality(reply_ids)
    and array_position(labels, null) is null),
  constraint comparisons_picked_among_replies check (
    picked_id is null or picked_id = any (reply_ids)),
  constraint comparisons_picked_or_tie check (not (tie and picked_id is not null))
);

comment on table public.comparisons is
  'One row per message sent to several models at once: its replies, their labels, the verdict.';

-- A chat's comparisons, read when it opens; a user's blind verdicts, read for the tally.
create index comparisons_chat_idx on public.comparisons (chat_id, created_at);
create index comparisons_user_idx on public.comparisons (user_id, blind);

-- What a CHECK cannot say without calling a function (each label's length, each reply named
-- once), and what only the database can keep: a verdict, once given, and when it was given.
-- A trigger function runs whatever the writer's privileges are, so nobody needs EXECUTE on it.
create function public.keep_comparison()
returns trigger
language plpgsql
set search_path = ''
as $$
declare
  refused text;
begin
  if tg_op = 'INSERT' then
    if exists (select 1 from unnest(new.labels) as label where char_length(label) > 500) then
      refused := 'comparisons_labels_length';
    elsif (select count(distinct reply) from unnest(new.reply_ids) as reply)
          <> cardinality(new.reply_ids) then
      refused := 'comparisons_ids';
    end if;
    new.decided_at := case when new.picked_id is not null or new.tie
                           then coalesce(new.decided_at, clock_timestamp()) end;
  elsif old.picked_id is not null or old.tie then
    if new.picked_id is distinct from old.picked_id or new.tie <> old.tie
       or new.decided_at is distinct from old.decided_at then
      refused := 'comparisons_verdict_kept';
    end if;
  elsif new.picked_id is not null or new.tie then
    new.decided_at := clock_timestamp();
  else
    new.decided_at := null;
  end if;
  if refused is not null then
    raise exception 'new row for relation "comparisons" violates check constraint "%"', refused
      using errcode = 'check_violation', schema = 'public', table = 'comparisons',
            constraint = refused;
  end if;
  return new;
end;
$$;

create trigger comparisons_keep
  before insert or update on public.comparisons
  for each row execute function public.keep_comparison();

alter table public.comparisons enable row level security;

create policy "Users can read their own comparisons"
  on public.comparisons for select
  to authenticated
  using ((select auth.uid()) = user_id);

create policy "Users can compare in their own chats"
  on public.comparisons for insert
  to authenticated
  with check (
    (select auth.uid()) = user_id
    and exists (select 1 from public.chats c
                where c.id = comparisons.chat_id and c.user_id = (select auth.uid()))
  );

create policy "Users can give the verdict of their own comparisons"
  on public.comparisons for update
  to authenticated
  using ((select auth.uid()) = user_id)
  with check ((select auth.uid()) = user_id);

-- No delete policy nor privilege: a comparison goes with its chat (the foreign key's cascade,
-- which row-level security does not stop). Only the verdict is ever updated; its time is the
-- database's.
revoke all on table public.comparisons from anon, authenticated;
grant select on table public.comparisons to authenticated;
grant insert (id, user_id, chat_id, message_id, reply_ids, labels, blind, picked_id, tie,
              created_at, decided_at)
  on table public.comparisons to authenticated;
grant update (picked_id, tie) on table public.comparisons to authenticated;

-- ---- each user's comparisons bounded: 100,000 --------------------------------------------

alter table public.user_totals
  add column comparisons integer not null default 0;

-- As add_to_attachment_totals (20261207150000_keep_attachments_and_reply_room.sql).
create function public.add_to_comparison_totals(for_user uuid, more integer)
returns void
language plpgsql
set search_path = ''
as $$
declare
  totals public.user_totals;
begin
  update public.user_totals as t
  set comparisons = greatest(t.comparisons + more, 0)
  where t.user_id = for_user
  returning * into totals;
  if more > 0 and totals.comparisons > 100000 then
    raise exception 'user_totals_comparisons: at most 100,000 comparisons per user'
      using errcode = 'SB058', hint = 'Delete chats you no longer need.';
  end if;
end;
$$;

-- After the rows are written, once per statement, as count_attachments: new comparisons
-- spend the user's allowance of new rows too.
create function public.count_comparisons()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  if tg_op = 'INSERT' then
    perform public.add_to_user_totals(user_id, 0, 0, 0, count(*)::integer)
    from added group by user_id;
    perform public.add_to_comparison_totals(user_id, count(*)::integer)
    from added group by user_id;
  else
    perform public.add_to_comparison_totals(user_id, -count(*)::integer)
    from removed group by user_id;
  end if;
  return null;
end;
$$;

create trigger comparisons_count_added
  after insert on public.comparisons
  referencing new table as added
  for each statement execute function public.count_comparisons();

create trigger comparisons_count_removed
  after delete on public.comparisons
  referencing old table as removed
  for each statement execute function public.count_comparisons();

-- ---- a comparison, or its verdict, saved in one call -------------------------------------

-- A new comparison (`comparison`: a row of public.comparisons in JSON), or, for one stored
-- already, its verdict while it has none; returns the row as stored (nothing: not the
-- caller's). SECURITY INVOKER: the caller's privileges and row-level security apply.
create function public.save_comparison(comparison jsonb)
returns setof public.comparisons
language plpgsql
security invoker
set search_path = ''
as $$
declare
  given public.comparisons := jsonb_populate_record(null::public.comparisons, comparison);
begin
  insert into public.comparisons as c (id, user_id, chat_id, message_id, reply_ids, labels,
                                       blind, picked_id, tie, created_at, decided_at)
  values (given.id, coalesce(given.user_id, auth.uid()), given.chat_id, given.message_id,
          given.reply_ids, given.labels, coalesce(given.blind, false), given.picked_id,
          coalesce(given.tie, false), coalesce(given.created_at, clock_timestamp()),
          given.decided_at)
  on conflict (id) do update set picked_id = excluded.picked_id, tie = excluded.tie
    where c.picked_id is null and not c.tie and (excluded.picked_id is not null or excluded.tie);
  return query select * from public.comparisons c where c.id = given.id;
end;
$$;

-- The bounds' and the trigger's functions run from triggers; the call is for users only.
revoke execute on function public.keep_comparison() from public, anon, authenticated;
revoke execute on function public.add_to_comparison_totals(uuid, integer)
  from public, anon, authenticated;
revoke execute on function public.count_comparisons() from public, anon, authenticated;
revoke execute on function public.save_comparison(jsonb) from public, anon, authenticated;
grant execute on function public.save_comparison(jsonb) to authenticated;
