-- Saved prompts: each user's library of named prompt texts with {{variables}}, and the model,
-- system prompt and temperature each may set. A row is readable and writable by its owner
-- alone; names are unique per user whatever their case; at most 500 per user.

create table public.prompts (
  id uuid not null default gen_random_uuid(),
  user_id uuid not null default auth.uid(),
  name text not null,
  text text not null,
  model text not null default '',
  system_prompt text not null default '',
  temperature double precision,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint prompts_pkey primary key (id),
  constraint prompts_user_id_fkey foreign key (user_id)
    references auth.users (id) on delete cascade,
  constraint prompts_name_length check (char_length(name) between 1 and 100),
  constraint prompts_text_length check (char_length(text) between 1 and 100000),
  constraint prompts_model_length check (char_length(model) <= 500),
  constraint prompts_system_prompt_length check (char_length(system_prompt) <= 100000),
  constraint prompts_temperature_range check (temperature between 0 and 2)
);

comment on table public.prompts is
  'One row per saved prompt of a user: its name, its text with {{variables}}, its settings.';

create unique index prompts_user_name_key on public.prompts (user_id, lower(name));

-- Moves updated_at on every update; a prompt belongs to one user for life, even for roles
-- that bypass row-level security.
create function public.keep_prompt()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if new.user_id is distinct from old.user_id then
    raise exception 'a prompt cannot be moved to another user'
      using errcode = 'check_violation';
  end if;
  new.updated_at = greatest(clock_timestamp(), old.updated_at + interval '1 microsecond');
  return new;
end;
$$;

create trigger prompts_keep
  before update on public.prompts
  for each row execute function public.keep_prompt();

-- At most 500 prompts per user. SQLSTATE SB071 is ours: the app says it in plain words.
create function public.limit_prompts()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  -- One user's inserts wait for each other here, so two at once cannot both pass the count.
  perform pg_advisory_xact_lock(hashtextextended('public.prompts ' || new.user_id::text, 0));
  if (select count(*) from public.prompts where user_id = new.user_id) >= 500 then
    raise exception 'at most 500 saved prompts per user'
      using errcode = 'SB071',
            hint = 'Delete a prompt before adding another.';
  end if;
  return new;
end;
$$;

create trigger prompts_limit
  before insert on public.prompts
  for each row execute function public.limit_prompts();

alter table public.prompts enable row level security;

create policy "Users can read their own prompts"
  on public.prompts for select
  to authenticated
  using ((select auth.uid()) = user_id);

create policy "Users can create their own prompts"
  on public.prompts for insert
  to authenticated
  with check ((select auth.uid()) = user_id);

create policy "Users can update their own prompts"
  on public.prompts for update
  to authenticated
  using ((select auth.uid()) = user_id)
  with check ((select auth.uid()) = user_id);

create policy "Users can delete their own prompts"
  on public.prompts for delete
  to authenticated
  using ((select auth.uid()) = user_id);

-- Anon gets nothing; users write the data columns of their own rows, never the id, the owner
-- after creation, or the timestamps.
revoke all on table public.prompts from anon, authenticated;
grant select, delete on table public.prompts to authenticated;
grant insert (user_id, name, text, model, system_prompt, temperature)
  on table public.prompts to authenticated;
grant update (name, text, model, system_prompt, temperature)
  on table public.prompts to authenticated;

revoke execute on function public.keep_prompt() from public, anon, authenticated;
revoke execute on function public.limit_prompts() from public, anon, authenticated;
