-- Profiles: one row per user, created when the user signs up, and readable and writable by
-- that user alone (row-level security on auth.uid()).

create table public.profiles (
  id uuid not null default gen_random_uuid(),
  user_id uuid not null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  display_name text not null default '',
  openai_api_key text not null default '',
  openai_organization_id text not null default '',
  constraint profiles_pkey primary key (id),
  constraint profiles_user_id_key unique (user_id),
  constraint profiles_user_id_fkey foreign key (user_id)
    references auth.users (id) on delete cascade,
  constraint profiles_display_name_length
    check (char_length(display_name) <= 1000),
  constraint profiles_openai_api_key_length
    check (char_length(openai_api_key) <= 1000),
  constraint profiles_openai_organization_id_length
    check (char_length(openai_organization_id) <= 1000)
);

comment on table public.profiles is 'One row per user: display name and provider settings.';

-- Keeps updated_at true whoever writes the row.
create function public.set_updated_at()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  new.updated_at = now();
  return new;
end;
$$;

create trigger profiles_set_updated_at
  before update on public.profiles
  for each row execute function public.set_updated_at();

-- A profile belongs to one user for life, even for roles that bypass row-level security.
create function public.keep_profile_owner()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if new.user_id is distinct from old.user_id then
    raise exception 'a profile cannot be moved to another user'
      using errcode = 'check_violation';
  end if;
  return new;
end;
$$;

create trigger profiles_keep_owner
  before update of user_id on public.profiles
  for each row execute function public.keep_profile_owner();

-- Runs as its owner: the auth server that inserts users has no rights on public.profiles.
create function public.handle_new_user()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  insert into public.profiles (user_id) values (new.id);
  return new;
end;
$$;

create trigger on_auth_user_created
  after insert on auth.users
  for each row execute function public.handle_new_user();

alter table public.profiles enable row level security;

create policy "Users can read their own profile"
  on public.profiles for select
  to authenticated
  using ((select auth.uid()) = user_id);

create policy "Users can create their own profile"
  on public.profiles for insert
  to authenticated
  with check ((select auth.uid()) = user_id);

create policy "Users can update their own profile"
  on public.profiles for update
  to authenticated
  using ((select auth.uid()) = user_id)
  with check ((select auth.uid()) = user_id);

create policy "Users can delete their own profile"
  on public.profiles for delete
  to authenticated
  using ((select auth.uid()) = user_id);

-- Supabase's default privileges give every new table to anon as well: take that back.
revoke all on table public.profiles from anon, authenticated;
grant select, insert, update, delete on table public.profiles to authenticated;
