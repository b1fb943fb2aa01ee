"""supabase/migrations pushed by the real Supabase CLI (issue 3, acceptance 1), and what the
schema then enforces in the database itself: the profile trigger, length limits, ownership."""

from __future__ import annotations

import re
import uuid

import psycopg
import pytest

from tests.fixtures.common import REPO

MIGRATIONS = sorted(path.name for path in (REPO / "supabase" / "migrations").glob("*.sql"))
TEXT_COLUMNS = (
    "display_name",
    "openai_api_key",
    "openai_organization_id",
    "openai_compatible_api_key",
    "openai_compatible_base_url",
    "openai_compatible_model_name",
)
COMPATIBLE_COLUMNS = {name for name in TEXT_COLUMNS if name.startswith("openai_compatible_")}


def records_for(names: list[str]) -> list[tuple[str, str]]:
    """What schema_migrations should hold for these files: (version, name)."""
    return [tuple(name.removesuffix(".sql").split("_", 1)) for name in names]


def recorded_migrations(database) -> list[tuple[str, str]]:
    rows = database.sql(
        "select version, name from supabase_migrations.schema_migrations order by version"
    )
    return [(row["version"], row["name"]) for row in rows]


def output_of(result) -> str:
    return result.stdout + result.stderr


def profile_columns(database) -> set[str]:
    rows = database.sql(
        "select column_name from information_schema.columns"
        " where table_schema = 'public' and table_name = 'profiles'"
    )
    return {row["column_name"] for row in rows}


def add_user(database) -> uuid.UUID:
    """A user as the auth server inserts one; the project's trigger does the rest."""
    rows = database.sql(
        "insert into auth.users (id, email) values (gen_random_uuid(), %s) returning id",
        f"{uuid.uuid4().hex}@example.com",
    )
    return rows[0]["id"]


def profiles_of(database, user_id) -> list[dict]:
    return database.sql("select * from public.profiles where user_id = %s", user_id)


def test_migration_files_are_named_as_the_cli_expects():
    assert MIGRATIONS == [
        "20261101120000_create_profiles.sql",
        "20261115120000_add_openai_compatible.sql",
    ]
    assert all(re.fullmatch(r"\d{14}_[a-z0-9_]+\.sql", name) for name in MIGRATIONS)


def test_push_applies_every_migration_to_a_fresh_database(fresh_database):
    result = fresh_database.push_migrations()

    for name in MIGRATIONS:
        assert f"Applying migration {name}" in output_of(result)
    assert recorded_migrations(fresh_database) == records_for(MIGRATIONS)
    assert COMPATIBLE_COLUMNS <= profile_columns(fresh_database)


def test_a_second_push_changes_nothing(fresh_database):
    fresh_database.push_migrations()
    schema, records = fresh_database.dump_schema(), recorded_migrations(fresh_database)

    result = fresh_database.push_migrations()

    assert "Remote database is up to date" in output_of(result)
    assert "Applying migration" not in output_of(result)
    assert fresh_database.dump_schema() == schema
    assert recorded_migrations(fresh_database) == records


def test_a_database_with_the_first_migration_gets_the_second(fresh_database):
    fresh_database.push_migrations(only=1)
    assert recorded_migrations(fresh_database) == records_for(MIGRATIONS[:1])
    assert not COMPATIBLE_COLUMNS & profile_columns(fresh_database)
    user_id = add_user(fresh_database)
    fresh_database.sql(
        "update public.profiles set display_name = 'Ada', openai_api_key = 'sk-old'"
        " where user_id = %s", user_id,
    )
    [before] = profiles_of(fresh_database, user_id)

    result = fresh_database.push_migrations()

    assert f"Applying migration {MIGRATIONS[1]}" in output_of(result)
    assert f"Applying migration {MIGRATIONS[0]}" not in output_of(result)
    assert recorded_migrations(fresh_database) == records_for(MIGRATIONS)
    [after] = profiles_of(fresh_database, user_id)
    assert {name: after[name] for name in before} == before
    assert {name: after[name] for name in COMPATIBLE_COLUMNS} == dict.fromkeys(
        COMPATIBLE_COLUMNS, ""
    )


def test_the_second_migration_replaces_the_profile_trigger_function(fresh_database):
    fresh_database.push_migrations()
    [row] = fresh_database.sql(
        "select pg_get_functiondef('public.handle_new_user'::regproc) as definition"
    )
    assert all(name in row["definition"] for name in COMPATIBLE_COLUMNS)


def test_a_new_user_gets_exactly_one_profile_with_the_compatible_columns(supabase_stack):
    user_id = add_user(supabase_stack)

    [profile] = profiles_of(supabase_stack, user_id)
    assert {name: profile[name] for name in TEXT_COLUMNS} == dict.fromkeys(TEXT_COLUMNS, "")


def test_deleting_a_user_deletes_their_profile(supabase_stack):
    user_id = add_user(supabase_stack)
    supabase_stack.sql("delete from auth.users where id = %s", user_id)
    assert profiles_of(supabase_stack, user_id) == []


@pytest.mark.parametrize("column", TEXT_COLUMNS)
def test_values_over_1000_characters_are_refused(supabase_stack, column):
    user_id = add_user(supabase_stack)
    update = f"update public.profiles set {column} = %s where user_id = %s"
    supabase_stack.sql(update, "é" * 1000, user_id)  # the limit counts characters, not bytes

    with pytest.raises(psycopg.errors.CheckViolation) as refused:
        supabase_stack.sql(update, "x" * 1001, user_id)

    assert refused.value.diag.constraint_name == f"profiles_{column}_length"
    [profile] = profiles_of(supabase_stack, user_id)
    assert profile[column] == "é" * 1000


def test_a_profile_cannot_be_moved_to_another_user_even_by_the_superuser(supabase_stack):
    owner, other = add_user(supabase_stack), add_user(supabase_stack)
    supabase_stack.sql("delete from public.profiles where user_id = %s", other)

    with pytest.raises(psycopg.errors.CheckViolation):
        supabase_stack.sql(
            "update public.profiles set user_id = %s where user_id = %s", other, owner
        )
    assert len(profiles_of(supabase_stack, owner)) == 1


def test_updated_at_moves_on_every_update(supabase_stack):
    user_id = add_user(supabase_stack)
    [before] = profiles_of(supabase_stack, user_id)
    [after] = supabase_stack.sql(
        "update public.profiles set display_name = 'Ada' where user_id = %s returning *",
        user_id,
    )
    assert after["updated_at"] > before["updated_at"]
    assert after["created_at"] == before["created_at"]


def test_row_level_security_has_one_policy_per_operation_for_authenticated(supabase_stack):
    [table] = supabase_stack.sql(
        "select relrowsecurity from pg_class where oid = 'public.profiles'::regclass"
    )
    policies = supabase_stack.sql(
        "select cmd, roles::text[] as roles from pg_policies"
        " where schemaname = 'public' and tablename = 'profiles' order by cmd"
    )
    assert table["relrowsecurity"]
    assert [(p["cmd"], p["roles"]) for p in policies] == [
        (cmd, ["authenticated"]) for cmd in ("DELETE", "INSERT", "SELECT", "UPDATE")
    ]


def test_anon_has_no_privilege_on_profiles(supabase_stack):
    [row] = supabase_stack.sql(
        "select bool_or(has_table_privilege('anon', 'public.profiles', privilege)) as any"
        " from unnest(array['select', 'insert', 'update', 'delete', 'truncate',"
        " 'references', 'trigger']) as privilege"
    )
    assert row["any"] is False


def test_the_profile_trigger_runs_as_owner_with_an_empty_search_path(supabase_stack):
    [function] = supabase_stack.sql(
        "select prosecdef, proconfig from pg_proc where oid = 'public.handle_new_user'::regproc"
    )
    assert function["prosecdef"] is True
    assert function["proconfig"] == ['search_path=""']
