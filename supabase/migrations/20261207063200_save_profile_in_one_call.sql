-- Saving the profile compares and sets inside the database, in one call whose arguments travel
-- in the request body (POST /rest/v1/rpc/update_own_profile). A save used to filter the
-- update on each changed column's old value, in the request's URL: the key columns hold
-- ciphertext, which then sat in the app's log and would sit in PostgREST's, proxies' and the
-- hosted API's logs. Nothing of a value is ever part of a URL now.
--
-- `changes` maps columns to their new values; `expected` maps columns to the values they
-- must still hold (what the page read), else nothing is written and no row comes back.
-- Each changed column is compared on its own, so two tabs saving different fields keep both.
-- SECURITY INVOKER: the caller's row-level security and column privileges apply, so a user
-- updates only the data columns of their own row, exactly as through the table itself.
create function public.update_own_profile(changes jsonb, expected jsonb)
returns setof public.profiles
language plpgsql
security invoker
set search_path = ''
as $$
declare
  assignments text;
  unchanged text;
begin
  if jsonb_typeof(changes) is distinct from 'object'
     or jsonb_typeof(expected) is distinct from 'object' then
    raise exception 'changes and expected must be JSON objects'
      using errcode = 'invalid_parameter_value';
  end if;
  -- Column names are quoted as identifiers; values are passed as parameters, never spliced.
  select string_agg(format('%I = $1 ->> %L', name, name), ', ')
    into assignments from jsonb_object_keys(changes) as name;
  select string_agg(format('%I = $2 ->> %L', name, name), ' and ')
    into unchanged from jsonb_object_keys(expected) as name;
  if assignments is null then
    return query select * from public.profiles where user_id = (select auth.uid());
    return;
  end if;
  return query execute format(
    'update public.profiles set %s where user_id = (select auth.uid()) and %s returning *',
    assignments, coalesce(unchanged, 'true'))
  using changes, expected;
end;
$$;

revoke execute on function public.update_own_profile(jsonb, jsonb) from public, anon, authenticated;
grant execute on function public.update_own_profile(jsonb, jsonb) to authenticated;
