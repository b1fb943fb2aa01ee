-- Nothing a later migration creates in schema public is reachable through the REST API until
-- that migration grants it. Supabase's default privileges give anon and authenticated every
-- privilege on each table, sequence and function the `postgres` role creates in public, and
-- `postgres` is the role `supabase db push` runs migrations as: a migration that forgot its
-- own REVOKE would expose its table to everyone holding the project's anon key. From here on,
-- a new object starts with no privilege for either role; each migration grants what it needs
-- (as the earlier ones already do for their own tables). service_role keeps its defaults.
-- Objects that exist already keep the privileges their migrations gave them.

alter default privileges for role postgres in schema public
  revoke all on tables from anon, authenticated;

alter default privileges for role postgres in schema public
  revoke all on sequences from anon, authenticated;

alter default privileges for role postgres in schema public
  revoke all on functions from anon, authenticated;
