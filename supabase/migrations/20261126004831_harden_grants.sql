-- Database roles get only what they need (SPEC, Security).

-- Trigger functions run as triggers, never as calls: nobody using the API may execute them.
-- (A trigger fires whatever the privileges of the role whose write fired it.)
revoke execute on function public.set_updated_at() from public, anon, authenticated;
revoke execute on function public.keep_profile_owner() from public, anon, authenticated;
revoke execute on function public.handle_new_user() from public, anon, authenticated;

-- Users write the data columns of their own row, and never its id, owner or timestamps:
-- id and created_at are set once by their defaults, updated_at by its trigger, and user_id
-- is given only when the row is created (row-level security holds it to auth.uid()).
revoke insert, update on table public.profiles from authenticated;

grant insert (
  user_id,
  display_name,
  openai_api_key,
  openai_organization_id,
  openai_compatible_api_key,
  openai_compatible_base_url,
  openai_compatible_model_name
) on table public.profiles to authenticated;

grant update (
  display_name,
  openai_api_key,
  openai_organization_id,
  openai_compatible_api_key,
  openai_compatible_base_url,
  openai_compatible_model_name
) on table public.profiles to authenticated;

-- Functions that later migrations create are not callable through the API by default either:
-- PostgreSQL grants EXECUTE to PUBLIC everywhere (revoked globally), and Supabase's defaults
-- grant it to anon and authenticated in this schema. A migration grants what it means to.
alter default privileges revoke execute on functions from public;
alter default privileges in schema public revoke execute on functions from anon, authenticated;
