-- The OpenAI-compatible provider: one key, base URL and model name per profile.

alter table public.profiles
  add column openai_compatible_api_key text not null default '',
  add column openai_compatible_base_url text not null default '',
  add column openai_compatible_model_name text not null default '',
  add constraint profiles_openai_compatible_api_key_length
    check (char_length(openai_compatible_api_key) <= 1000),
  add constraint profiles_openai_compatible_base_url_length
    check (char_length(openai_compatible_base_url) <= 1000),
  add constraint profiles_openai_compatible_model_name_length
    check (char_length(openai_compatible_model_name) <= 1000);

-- Same function as before, now naming the new columns for the profiles it creates.
create or replace function public.handle_new_user()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  insert into public.profiles (
    user_id,
    openai_compatible_api_key,
    openai_compatible_base_url,
    openai_compatible_model_name
  )
  values (new.id, '', '', '');
  return new;
end;
$$;
