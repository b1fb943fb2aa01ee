"""supabase/migrations pushed by the real Supabase CLI (issue 3, acceptance 1), and what the
schema then enforces in the database itself: the profile trigger, length limits, ownership,
privileges. Then the local store's SQLite migrations: atomic, recorded, safe to race."""

from __future__ import annotations

import dataclasses
import re
import sqlite3
import threading
import time
import uuid
from contextlib import closing

import psycopg
import pytest

from core.store import sqlite as store_sqlite
from core.errors import UserFacingError
from core.store.sqlite import DB_FILENAME, LOCAL_USER_ID, SQLiteProfileStore
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
        "20261126004831_harden_grants.sql",
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


def test_a_database_with_the_first_migration_gets_the_others(fresh_database):
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

    for name in MIGRATIONS[1:]:
        assert f"Applying migration {name}" in output_of(result)
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


# ---- privileges (supabase/migrations/20261126004831_harden_grants.sql) ------------------------

TRIGGER_FUNCTIONS = ("set_updated_at", "keep_profile_owner", "handle_new_user")


@pytest.mark.parametrize("function", TRIGGER_FUNCTIONS)
@pytest.mark.parametrize("role", ["anon", "authenticated"])
def test_api_roles_cannot_execute_the_trigger_functions(supabase_stack, function, role):
    """Neither directly nor through PUBLIC, which every role is a member of."""
    [row] = supabase_stack.sql(
        f"select has_function_privilege(%s, 'public.{function}()', 'execute') as allowed", role
    )
    assert row["allowed"] is False


def test_functions_added_later_are_not_callable_by_the_api_roles(supabase_stack):
    """A future migration's function starts with no EXECUTE for anon or authenticated."""
    name = "public.sb_probe_later_function"
    supabase_stack.sql(f"create function {name}() returns int language sql as 'select 1'")
    try:
        for role in ("anon", "authenticated"):
            [row] = supabase_stack.sql(
                f"select has_function_privilege(%s, '{name}()', 'execute') as allowed", role
            )
            assert row["allowed"] is False, role
    finally:
        supabase_stack.sql(f"drop function {name}()")


def column_privileges(database, privilege: str) -> set[str]:
    rows = database.sql(
        "select column_name from information_schema.columns"
        " where table_schema = 'public' and table_name = 'profiles'"
        " and has_column_privilege('authenticated', 'public.profiles', column_name, %s)",
        privilege,
    )
    return {row["column_name"] for row in rows}


def test_users_write_only_the_data_columns(supabase_stack):
    for privilege in ("insert", "update"):
        [row] = supabase_stack.sql(
            "select has_table_privilege('authenticated', 'public.profiles', %s) as whole_table",
            privilege,
        )
        assert row["whole_table"] is False
    assert column_privileges(supabase_stack, "update") == set(TEXT_COLUMNS)
    # user_id is given once, when the store creates a missing row (RLS holds it to auth.uid()).
    assert column_privileges(supabase_stack, "insert") == {"user_id", *TEXT_COLUMNS}
    assert column_privileges(supabase_stack, "select") == profile_columns(supabase_stack)


# ---- the local store's SQLite migrations ----------------------------------------------------


def sqlite_rows(path, query: str, *params) -> list[tuple]:
    with closing(sqlite3.connect(path)) as db, db:
        return db.execute(query, params).fetchall()


def sqlite_columns(path) -> list[str]:
    return [row[1] for row in sqlite_rows(path, "pragma table_info(profiles)")]


def sqlite_records(path) -> list[tuple[str, str | None]]:
    return sqlite_rows(path, "select name, applied_at from schema_migrations order by name")


@pytest.fixture
def first_schema_with_a_row(tmp_path, monkeypatch):
    """A data folder as the first release left it: migration 001 only, and the user's row."""
    with monkeypatch.context() as first_release:
        first_release.setattr(store_sqlite, "MIGRATIONS", store_sqlite.MIGRATIONS[:1])
        SQLiteProfileStore(tmp_path)
    sqlite_rows(tmp_path / DB_FILENAME,
                "insert into profiles (user_id, display_name, openai_api_key) values (?, ?, ?)",
                LOCAL_USER_ID, "Ada", "gAAAA-token")
    return tmp_path


def test_an_upgrade_from_the_first_schema_keeps_the_row_and_records_each_step(
    first_schema_with_a_row,
):
    before = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(time.time() - 1))

    profile = SQLiteProfileStore(first_schema_with_a_row).load()

    assert (profile.display_name, profile.openai_api_key) == ("Ada", "gAAAA-token")
    assert profile.openai_compatible_base_url == ""
    path = first_schema_with_a_row / DB_FILENAME
    assert [name for name, _ in sqlite_records(path)] == [
        m.name for m in store_sqlite.MIGRATIONS
    ] == ["001_create_profiles", "002_add_openai_compatible"]
    assert all(applied_at >= before for _, applied_at in sqlite_records(path))


def test_a_file_from_before_the_migration_times_is_upgraded_in_place(tmp_path):
    """Files written by the earlier store record names only; they keep working."""
    path = tmp_path / DB_FILENAME
    with closing(sqlite3.connect(path)) as db, db:
        db.execute("create table schema_migrations (name text primary key)")
        store_sqlite.MIGRATIONS[0].apply(db)
        db.execute("insert into schema_migrations (name) values ('001_create_profiles')")
        db.execute("insert into profiles (user_id, display_name) values (?, 'Ada')",
                   (LOCAL_USER_ID,))

    assert SQLiteProfileStore(tmp_path).load().display_name == "Ada"
    [(first, unknown), (second, applied_at)] = sqlite_records(path)
    assert (first, unknown, second) == ("001_create_profiles", None, "002_add_openai_compatible")
    assert applied_at is not None


def test_a_migration_interrupted_halfway_leaves_the_file_as_before_and_the_next_start_completes(
    first_schema_with_a_row, monkeypatch
):
    path = first_schema_with_a_row / DB_FILENAME
    columns, records = sqlite_columns(path), sqlite_records(path)

    def adds_one_column_then_fails(db):
        db.execute("alter table profiles add column openai_compatible_api_key text")
        raise RuntimeError("interrupted")  # e.g. the process killed between two statements

    first, second = store_sqlite.MIGRATIONS
    with monkeypatch.context() as interrupted:
        interrupted.setattr(store_sqlite, "MIGRATIONS",
                            [first, dataclasses.replace(second, apply=adds_one_column_then_fails)])
        with pytest.raises(RuntimeError):
            SQLiteProfileStore(first_schema_with_a_row)

    assert sqlite_columns(path) == columns  # the first ALTER was rolled back with the rest
    assert sqlite_records(path) == records
    profile = SQLiteProfileStore(first_schema_with_a_row).load()  # the next start
    assert profile.display_name == "Ada"
    assert [name for name, _ in sqlite_records(path)] == [m.name for m in store_sqlite.MIGRATIONS]


def test_two_sessions_starting_at_once_on_a_fresh_file_apply_each_migration_once(
    tmp_path, monkeypatch
):
    applied: list[str] = []
    ready = threading.Barrier(2)

    def slowly(step):
        def apply(db):
            step.apply(db)
            applied.append(step.name)
            time.sleep(0.2)  # widens the window between a step and its record
        return dataclasses.replace(step, apply=apply)

    monkeypatch.setattr(store_sqlite, "MIGRATIONS", [slowly(m) for m in store_sqlite.MIGRATIONS])
    outcomes: list[object] = []

    def start():
        ready.wait()
        try:
            outcomes.append(SQLiteProfileStore(tmp_path).load())
        except (UserFacingError, sqlite3.Error) as exc:
            outcomes.append(exc)

    sessions = [threading.Thread(target=start) for _ in range(2)]
    for session in sessions:
        session.start()
    for session in sessions:
        session.join(timeout=60)

    assert [type(outcome).__name__ for outcome in outcomes] == ["Profile", "Profile"]
    assert sorted(applied) == ["001_create_profiles", "002_add_openai_compatible"]
    assert [name for name, _ in sqlite_records(tmp_path / DB_FILENAME)] == sorted(applied)
