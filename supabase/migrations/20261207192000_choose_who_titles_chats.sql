-- Who writes a new chat's title: '' the chat's own model, 'none' nobody (its first words stay),
-- else the label of a model ("model · connection") the user picked for titles in Settings.
alter table public.profiles
  add column title_model text not null default '',
  add constraint profiles_title_model_length check (char_length(title_model) <= 1000);

grant insert (title_model), update (title_model) on table public.profiles to authenticated;
