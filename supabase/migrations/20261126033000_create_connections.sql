-- Connections (SPEC R6): any number of named servers per user, each a row readable and
-- writable by its owner alone; and the profile's column for what the seed's compatible
-- server turned out not to support. Keys and header values arrive encrypted by the app.

create table public.connections (
  id uuid not null default gen_random_uuid(),
  user_id uuid not null default auth.uid(),
  name text not null,
  kind text not null,
  base_url text not null default '',
  api_key text not null default '',  -- ciphertext
  headers text not null default '',  -- ciphertext of a JSON list of [name, value] pairs
  enabled boolean not null default true,
  models jsonb not null default '[]',
  default_model text not null default '',
  quirks jsonb not null default '[]',
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint connections_pkey primary key (id),
  constraint connections_user_id_fkey foreign key (user_id)
    references auth.users (id) on delete cascade,
  constraint connections_name_length
    check (char_length(name) between 1 and 100),
  constraint connections_kind_known
    check (kind in ('openai', 'openai-compatible')),
  constraint connections_base_url_length
    check (char_length(base_url) <= 1000),
  constraint connections_api_key_length
    check (char_length(api_key) <= 1000),
  constraint connections_headers_length
    check (char_length(headers) <= 40000),
  constraint connections_models_list
    check (case jsonb_typeof(models)
             when 'array' then jsonb_array_length(models) <= 200
               and not jsonb_path_exists(models, '$[*] ? (@.type() != "string")')
             else false
           end),
  constraint connections_default_model_length
    check (char_length(default_model) <= 200),
  constraint connections_quirks_list
    check (case jsonb_typeof(quirks)
             when 'array' then jsonb_array_length(quirks) <= 20
               and not jsonb_path_exists(quirks, '$[*] ? (@.type() != "string")')
             else false
           end)
);

comment on table public.connections is
  'One row per server a user chats with: kind, base URL, encrypted key and headers, models.';

-- Names are unique per user whatever their case ("Groq" and "groq" are one name).
create unique index connections_user_name_key
  on public.connections (user_id, lower(name));

-- Moves updated_at (the version a Settings form compares before it saves) on every update,
-- always forward, except when only the learned quirks changed: a chat learning what the
-- server does not support must not make an open form's save fail.
create function public.set_connection_updated_at()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if new.quirks is distinct from old.quirks
     and (to_jsonb(new) - 'quirks' - 'updated_at')
         = (to_jsonb(old) - 'quirks' - 'updated_at') then
    new.updated_at = old.updated_at;
  else
    new.updated_at = greatest(clock_timestamp(), old.updated_at + interval '1 microsecond');
  end if;
  return new;
end;
$$;

create trigger connections_set_updated_at
  before update on public.connections
  for each row execute function public.set_connection_updated_at();

-- A connection belongs to one user for life, even for roles that bypass row-level security.
create function public.keep_connection_owner()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if new.user_id is distinct from old.user_id then
    raise exception 'a connection cannot be moved to another user'
      using errcode = 'check_violation';
  end if;
  return new;
end;
$$;

create trigger connections_keep_owner
  before update of user_id on public.connections
  for each row execute function public.keep_connection_owner();

-- At most 50 connections per user. SQLSTATE SB050 is ours: the app says it in plain words.
create function public.limit_connections()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  -- One user's inserts wait for each other here, so two at once cannot both pass the count.
  perform pg_advisory_xact_lock(hashtextextended('public.connections ' || new.user_id::text, 0));
  if (select count(*) from public.connections where user_id = new.user_id) >= 50 then
    raise exception 'at most 50 connections per user'
      using errcode = 'SB050',
            hint = 'Delete a connection before adding another.';
  end if;
  return new;
end;
$$;

create trigger connections_limit
  before insert on public.connections
  for each row execute function public.limit_connections();

alter table public.connections enable row level security;

create policy "Users can read their own connections"
  on public.connections for select
  to authenticated
  using ((select auth.uid()) = user_id);

create policy "Users can create their own connections"
  on public.connections for insert
  to authenticated
  with check ((select auth.uid()) = user_id);

create policy "Users can update their own connections"
  on public.connections for update
  to authenticated
  using ((select auth.uid()) = user_id)
  with check ((select auth.uid()) = user_id);

create policy "Users can delete their own connections"
  on public.connections for delete
  to authenticated
  using ((select auth.uid()) = user_id);

-- As 20261126004831_harden_grants.sql does for profiles: anon gets nothing; users write the
-- data columns of their own rows, never the id, the owner after creation, or the timestamps.
revoke all on table public.connections from anon, authenticated;
grant select, delete on table public.connections to authenticated;

grant insert (
  user_id,
  name,
  kind,
  base_url,
  api_key,
  headers,
  enabled,
  models,
  default_model,
  quirks
) on table public.connections to authenticated;

grant update (
  name,
  kind,
  base_url,
  api_key,
  headers,
  enabled,
  models,
  default_model,
  quirks
) on table public.connections to authenticated;

-- Trigger functions run as triggers, never as calls through the API.
revoke execute on function public.set_connection_updated_at() from public, anon, authenticated;
revoke execute on function public.keep_connection_owner() from public, anon, authenticated;
revoke execute on function public.limit_connections() from public, anon, authenticated;

-- What the seed's compatible server turned out not to support (comma-separated quirk names),
-- learned once and kept with the profile.
alter table public.profiles
  add column openai_compatible_quirks text not null default '',
  add constraint profiles_openai_compatible_quirks_length
    check (char_length(openai_compatible_quirks) <= 1000);

grant insert (openai_compatible_quirks), update (openai_compatible_quirks)
  on table public.profiles to authenticated;
