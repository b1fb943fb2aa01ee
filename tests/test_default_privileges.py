"""Nothing a later migration creates in schema public is granted to the API roles by default
(supabase/migrations/20261207063000_grant_nothing_by_default.sql): Supabase's default
privileges give anon and authenticated everything on each table, sequence and function the
migrating role creates there, so one migration forgetting its REVOKE would expose its table
through the REST API. Here a table, a sequence and a function are created as the role that
pushed the migrations, after all of them, and the API roles hold nothing on them, and
PostgREST serves nothing of the table.
"""

from __future__ import annotations

import httpx
import pytest

from tests.test_rls import new_account

TABLE_PRIVILEGES = ("select", "insert", "update", "delete", "truncate", "references", "trigger")
API_ROLES = ("anon", "authenticated")


@pytest.fixture
def after_every_migration(database_behind_api):
    """A database with every migration pushed, then a table, a sequence and a function created
    as the role that pushed them, as a later migration would; its API started."""
    behind, database = database_behind_api, database_behind_api.database
    database.push_migrations()
    [pusher] = database.sql(
        "select pg_get_userbyid(relowner) as owner, current_user as me from pg_class"
        " where oid = 'public.profiles'::regclass")
    assert pusher["owner"] == pusher["me"] == "postgres"  # `supabase db push` ran as postgres
    database.sql("create table public.later_notes (id bigserial primary key, note text)")
    database.sql("insert into public.later_notes (note) values ('kept from the API')")
    database.sql("create function public.later_function() returns int"
                 " language sql as 'select 1'")
    behind.start_api()
    return behind


def test_a_later_table_sequence_and_function_grant_the_api_roles_nothing(
        after_every_migration):
    database = after_every_migration.database
    for role in API_ROLES:
        [row] = database.sql(
            "select bool_or(has_table_privilege(%s, 'public.later_notes', privilege)) as table,"
            " bool_or(has_sequence_privilege(%s, 'public.later_notes_id_seq', privilege))"
            "   filter (where privilege in ('select', 'update')) as sequence,"
            " bool_or(has_sequence_privilege(%s, 'public.later_notes_id_seq', 'usage'))"
            "   as sequence_usage,"
            " has_function_privilege(%s, 'public.later_function()', 'execute') as function"
            " from unnest(%s::text[]) as privilege",
            role, role, role, role, list(TABLE_PRIVILEGES))
        assert row == {"table": False, "sequence": False, "sequence_usage": False,
                       "function": False}, role
    [acl] = database.sql("select relacl::text[] as acl from pg_class"
                         " where oid = 'public.later_notes'::regclass")
    assert not any(entry.startswith(API_ROLES) for entry in acl["acl"] or [])


@pytest.mark.parametrize("caller", ["signed in", "anonymous"])
def test_postgrest_serves_nothing_of_a_later_table(after_every_migration, caller):
    behind = after_every_migration
    headers = {"apikey": behind.anon_key}
    if caller == "signed in":
        headers["Authorization"] = f"Bearer {new_account(behind).access_token}"
    url = f"{behind.url}/rest/v1/later_notes"

    for response in (httpx.get(url, headers=headers),
                     httpx.post(url, headers=headers, json={"note": "planted"}),
                     httpx.patch(url, headers=headers, params={"id": "eq.1"},
                                 json={"note": "changed"}),
                     httpx.delete(url, headers=headers, params={"id": "eq.1"}),
                     httpx.post(f"{behind.url}/rest/v1/rpc/later_function", headers=headers,
                                json={})):
        assert response.status_code in (401, 403, 404), response.text
        assert response.json()["code"] in ("42501", "PGRST202", "PGRST205"), response.text
    assert behind.database.sql("select note from public.later_notes") == [
        {"note": "kept from the API"}]
