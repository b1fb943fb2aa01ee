"""supabase/migrations pushed by the real Supabase CLI (issue 3, acceptance 1), and what the
schema then enforces in the database itself: the profile trigger, length limits, ownership,
privileges; the connections table (issue 10) and the upgrade of a database holding a user's
saved settings (issue 10, acceptance 3); chats and messages (issue 11). Then the local store's SQLite migrations: atomic,
recorded, safe to race."""

from __future__ import annotations

import dataclasses
import json
import re
import sqlite3
import threading
import time
import uuid
from contextlib import closing

import psycopg
import pytest
from cryptography.fernet import Fernet

from core.auth import SupabaseAuth
from core.config import Settings
from core.failures import OurBug, UserFacingError
from core.history.model import Chat, Comparison, Message, ReplyState
from core.providers.profile import Profile
from core.store.errors import MAX_COMPARISONS_PER_USER
from core.providers.connections import NO_STREAM_OPTIONS, Connection, targets
from core.providers.seed import seed_connections
from core.store import sqlite as store_sqlite
from core.store.keybox import EncryptedConnectionStore, EncryptedProfileStore, KeyBox
from core.store.sqlite import (
    DB_FILENAME,
    LOCAL_USER_ID,
    SQLiteConnectionStore,
    SQLiteProfileStore,
)
from core.store.supabase import (
    SupabaseChatStore,
    SupabaseConnectionStore,
    SupabaseProfileStore,
)
from tests.fixtures.common import REPO

MIGRATIONS = sorted(path.name for path in (REPO / "supabase" / "migrations").glob("*.sql"))
TEXT_COLUMNS = (
    "display_name",
    "openai_api_key",
    "openai_organization_id",
    "openai_compatible_api_key",
    "openai_compatible_base_url",
    "openai_compatible_model_name",
    "openai_compatible_quirks",
    "title_model",
)
COMPATIBLE_COLUMNS = {name for name in TEXT_COLUMNS if name.startswith("openai_compatible_")}
# The columns the second migration added, which its sign-up trigger names.
SECOND_MIGRATION_COLUMNS = COMPATIBLE_COLUMNS - {"openai_compatible_quirks"}
CONNECTIONS_MIGRATION = "20261126033000_create_connections.sql"
LONG_MESSAGES_MIGRATION = "20261207111500_keep_long_messages_and_reply_leases.sql"
ATTACHMENTS_MIGRATION = "20261207150000_keep_attachments_and_reply_room.sql"
COMPARISONS_MIGRATION = "20261207180000_keep_comparisons.sql"
TITLES_MIGRATION = "20261207192000_choose_who_titles_chats.sql"


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
        CONNECTIONS_MIGRATION,
        "20261126050000_create_chats.sql",
        "20261126070000_keep_imported_times.sql",
        "20261207063000_grant_nothing_by_default.sql",
        "20261207063100_bound_each_user.sql",
        "20261207063200_save_profile_in_one_call.sql",
        LONG_MESSAGES_MIGRATION,
        ATTACHMENTS_MIGRATION,
        COMPARISONS_MIGRATION,
        "20261207190000_file_chats_and_search_as_typed.sql",
        "20261207191000_keep_saved_prompts.sql",
        TITLES_MIGRATION,
        "20261207200000_search_as_typed_by_index.sql",
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
    assert all(name in row["definition"] for name in SECOND_MIGRATION_COLUMNS)


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


# ---- connections (supabase/migrations/20261126033000_create_connections.sql) ----------------

CONNECTION_DATA_COLUMNS = {"name", "kind", "base_url", "api_key", "headers", "enabled",
                           "models", "default_model", "quirks"}
CONNECTION_TRIGGER_FUNCTIONS = ("set_connection_updated_at", "keep_connection_owner",
                                "limit_connections")


def add_connection(database, user_id, name: str = "Groq", **values) -> dict:
    columns = {"user_id": user_id, "name": name, "kind": "openai-compatible", **values}
    [row] = database.sql(
        f"insert into public.connections ({', '.join(columns)})"
        f" values ({', '.join(['%s'] * len(columns))}) returning *",
        *columns.values(),
    )
    return row


def connection_row(database, connection_id) -> dict:
    [row] = database.sql("select * from public.connections where id = %s", connection_id)
    return row


def update_connection(database, connection_id, assignments: str, *params) -> dict:
    [row] = database.sql(f"update public.connections set {assignments} where id = %s"
                         " returning *", *params, connection_id)
    return row


def table_column_privileges(database, table: str, privilege: str) -> set[str]:
    rows = database.sql(
        "select column_name from information_schema.columns"
        " where table_schema = 'public' and table_name = %s"
        " and has_column_privilege('authenticated', 'public.' || %s, column_name, %s)",
        table, table, privilege,
    )
    return {row["column_name"] for row in rows}


def test_connections_have_one_policy_per_operation_for_authenticated(supabase_stack):
    [table] = supabase_stack.sql(
        "select relrowsecurity from pg_class where oid = 'public.connections'::regclass")
    policies = supabase_stack.sql(
        "select cmd, roles::text[] as roles, qual, with_check from pg_policies"
        " where schemaname = 'public' and tablename = 'connections' order by cmd")
    assert table["relrowsecurity"]
    assert [(p["cmd"], p["roles"]) for p in policies] == [
        (cmd, ["authenticated"]) for cmd in ("DELETE", "INSERT", "SELECT", "UPDATE")]
    for policy in policies:
        for expression in filter(None, (policy["qual"], policy["with_check"])):
            assert expression == "(( SELECT auth.uid() AS uid) = user_id)"


def test_anon_has_no_privilege_on_connections(supabase_stack):
    [row] = supabase_stack.sql(
        "select bool_or(has_table_privilege('anon', 'public.connections', privilege)) as any"
        " from unnest(array['select', 'insert', 'update', 'delete', 'truncate',"
        " 'references', 'trigger']) as privilege")
    assert row["any"] is False


def test_users_write_only_the_data_columns_of_their_connections(supabase_stack):
    for privilege in ("insert", "update"):
        [row] = supabase_stack.sql(
            "select has_table_privilege('authenticated', 'public.connections', %s) as whole",
            privilege)
        assert row["whole"] is False
    assert table_column_privileges(supabase_stack, "connections", "update") == \
        CONNECTION_DATA_COLUMNS
    assert table_column_privileges(supabase_stack, "connections", "insert") == {
        "user_id", *CONNECTION_DATA_COLUMNS}
    assert table_column_privileges(supabase_stack, "connections", "select") == {
        "id", "user_id", "created_at", "updated_at", *CONNECTION_DATA_COLUMNS}


@pytest.mark.parametrize("function", CONNECTION_TRIGGER_FUNCTIONS)
def test_the_connection_trigger_functions_are_not_callable_and_have_no_search_path(
    supabase_stack, function
):
    [row] = supabase_stack.sql(
        f"select proconfig, prosecdef from pg_proc where oid = 'public.{function}'::regproc")
    assert row["proconfig"] == ['search_path=""']
    assert row["prosecdef"] is False  # runs as the writer: row-level security applies
    for role in ("anon", "authenticated", "public"):
        [allowed] = supabase_stack.sql(
            f"select has_function_privilege(%s, 'public.{function}()', 'execute') as allowed",
            role)
        assert allowed["allowed"] is False, role


def test_updated_at_moves_on_every_edit_but_not_when_only_quirks_change(supabase_stack):
    row = add_connection(supabase_stack, add_user(supabase_stack))

    learned = update_connection(supabase_stack, row["id"], "quirks = %s::jsonb",
                                '["no_stream_options"]')
    edited = update_connection(supabase_stack, row["id"], "name = 'Groq 2'")
    both = update_connection(supabase_stack, row["id"], "name = 'Groq 3', quirks = '[]'")
    again = update_connection(supabase_stack, row["id"], "name = 'Groq 3'")  # no change at all

    assert learned["quirks"] == ["no_stream_options"]
    assert learned["updated_at"] == row["updated_at"]
    assert row["updated_at"] < edited["updated_at"] < both["updated_at"] < again["updated_at"]
    assert again["created_at"] == row["created_at"]


def test_two_updates_in_one_transaction_still_get_different_versions(supabase_stack):
    """now() is the same all through a transaction: the trigger must not use it alone."""
    row = add_connection(supabase_stack, add_user(supabase_stack))
    with psycopg.connect(supabase_stack.db_dsn) as conn:  # one transaction
        first = conn.execute("update public.connections set name = 'a' where id = %s"
                             " returning updated_at", (row["id"],)).fetchone()[0]
        second = conn.execute("update public.connections set name = 'b' where id = %s"
                              " returning updated_at", (row["id"],)).fetchone()[0]
    assert row["updated_at"] < first < second


def test_a_connection_cannot_be_moved_to_another_user_even_by_the_superuser(supabase_stack):
    owner, other = add_user(supabase_stack), add_user(supabase_stack)
    row = add_connection(supabase_stack, owner)

    with pytest.raises(psycopg.errors.CheckViolation):
        update_connection(supabase_stack, row["id"], "user_id = %s", other)
    assert connection_row(supabase_stack, row["id"])["user_id"] == owner


def test_at_most_50_connections_per_user_with_a_code_of_its_own(supabase_stack):
    owner = add_user(supabase_stack)
    for number in range(50):
        add_connection(supabase_stack, owner, f"server {number}")

    with pytest.raises(psycopg.Error) as refused:
        add_connection(supabase_stack, owner, "one too many")

    assert refused.value.sqlstate == "SB050"
    assert "at most 50 connections" in str(refused.value)
    add_connection(supabase_stack, add_user(supabase_stack), "one too many")  # per user


def test_names_are_unique_per_user_whatever_their_case(supabase_stack):
    owner = add_user(supabase_stack)
    add_connection(supabase_stack, owner, "Ärger")

    with pytest.raises(psycopg.errors.UniqueViolation) as refused:
        add_connection(supabase_stack, owner, "äRGER")

    assert refused.value.diag.constraint_name == "connections_user_name_key"
    add_connection(supabase_stack, add_user(supabase_stack), "Ärger")  # another user's


@pytest.mark.parametrize("column, value, constraint", [
    ("name", "n" * 101, "connections_name_length"),
    ("name", "", "connections_name_length"),
    ("kind", "anthropic", "connections_kind_known"),
    ("base_url", "u" * 1001, "connections_base_url_length"),
    ("api_key", "k" * 1001, "connections_api_key_length"),
    ("headers", "h" * 40001, "connections_headers_length"),
    ("default_model", "d" * 201, "connections_default_model_length"),
    ("models", json.dumps([f"m{n}" for n in range(201)]), "connections_models_list"),
    ("models", '{"a": 1}', "connections_models_list"),
    ("models", "[1, 2]", "connections_models_list"),
    ("quirks", '"no_stream_options"', "connections_quirks_list"),
    ("quirks", "[null]", "connections_quirks_list"),
])
def test_values_that_do_not_fit_are_refused(supabase_stack, column, value, constraint):
    row = add_connection(supabase_stack, add_user(supabase_stack))
    cast = "::jsonb" if column in ("models", "quirks") else ""

    with pytest.raises(psycopg.errors.CheckViolation) as refused:
        update_connection(supabase_stack, row["id"], f"{column} = %s{cast}", value)

    assert refused.value.diag.constraint_name == constraint
    assert connection_row(supabase_stack, row["id"]) == row


def test_the_largest_values_allowed_fit(supabase_stack):
    row = add_connection(supabase_stack, add_user(supabase_stack), "é" * 100,
                         base_url="u" * 1000, api_key="k" * 1000, headers="h" * 40000,
                         default_model="d" * 200,
                         models=json.dumps([f"m{n}" for n in range(200)]))
    assert len(row["models"]) == 200


def test_deleting_a_user_deletes_their_connections(supabase_stack):
    owner = add_user(supabase_stack)
    row = add_connection(supabase_stack, owner)
    supabase_stack.sql("delete from auth.users where id = %s", owner)
    assert supabase_stack.sql("select 1 from public.connections where id = %s", row["id"]) == []


# ---- acceptance 3: `supabase db push` upgrades a database holding a user's settings ---------

PASSWORD = "correct horse battery"
SAVED_BEFORE = Profile(  # what a user had saved with the earlier release
    display_name="Ada",
    openai_compatible_api_key="sk-compatible-0123456789",
    openai_compatible_base_url="http://127.0.0.1:8080/v1",
    openai_compatible_model_name="qwen2.5-7b-instruct",
)


def save_as_the_earlier_release(client, user_id: str, secret: str) -> None:
    """The earlier release's save: its own columns, the key encrypted as a Fernet token (it
    knew no quirks, nor who writes titles)."""
    values = {name: value for name, value in SAVED_BEFORE.as_dict().items()
              if name not in ("openai_compatible_quirks", "title_model")}
    key = values["openai_compatible_api_key"]
    values["openai_compatible_api_key"] = Fernet(secret.encode()).encrypt(key.encode()).decode()
    client.table("profiles").update(values).eq("user_id", user_id).execute()


def whole_tables(database) -> dict[str, list[dict]]:
    return {table: database.sql(f"select * from public.{table} order by id")
            for table in ("profiles", "connections")}


def test_push_upgrades_a_database_holding_saved_settings_and_they_still_work(
    database_behind_api,
):
    behind, database = database_behind_api, database_behind_api.database
    earlier = MIGRATIONS.index(CONNECTIONS_MIGRATION)
    database.push_migrations(only=earlier)
    behind.start_api()
    settings = Settings(supabase_url=behind.url, supabase_anon_key=behind.anon_key)
    secret = Fernet.generate_key().decode()
    box = KeyBox([secret])
    email = f"upgrade-{uuid.uuid4().hex[:12]}@example.com"
    before_auth = SupabaseAuth(settings)
    user = before_auth.sign_up(email, PASSWORD)
    save_as_the_earlier_release(before_auth.client, user.id, secret)
    [before] = profiles_of(database, user.id)

    result = database.push_migrations()
    behind.restart_api()  # PostgREST reads the new schema

    assert [line for line in output_of(result).splitlines() if "Applying migration" in line] \
        == [f"Applying migration {name}..." for name in MIGRATIONS[earlier:]]
    assert recorded_migrations(database) == records_for(MIGRATIONS)
    [after] = profiles_of(database, user.id)
    assert {name: after[name] for name in before} == before  # nothing lost, not even a date
    auth = SupabaseAuth(settings)  # the app after the upgrade: a new session
    assert auth.sign_in(email, PASSWORD).id == user.id
    profiles = EncryptedProfileStore(SupabaseProfileStore(auth.client, user.id), box)
    profile = profiles.load()
    assert profile == SAVED_BEFORE
    [target] = targets(seed_connections(profile, {}))  # what the chat offers and sends
    assert (target.base_url, target.model, target.api_key) == (
        "http://127.0.0.1:8080/v1", "qwen2.5-7b-instruct", "sk-compatible-0123456789")
    # What the upgrade brought works for this user: a learned quirk, a connection.
    learned = profiles.save(profile.with_changes(openai_compatible_quirks=NO_STREAM_OPTIONS))
    assert learned.openai_compatible_quirks == NO_STREAM_OPTIONS
    connections = EncryptedConnectionStore(SupabaseConnectionStore(auth.client, user.id), box)
    connections.add(Connection(name="Groq", base_url="https://api.groq.com/openai/v1",
                               api_key="gsk-0123456789", models=("llama-3.3-70b",)))
    assert [c.name for c in connections.list()] == ["Groq"]

    schema, records, data = (database.dump_schema(), recorded_migrations(database),
                             whole_tables(database))
    second = database.push_migrations()

    assert "Remote database is up to date" in output_of(second)
    assert "Applying migration" not in output_of(second)
    assert database.dump_schema() == schema
    assert recorded_migrations(database) == records
    assert whole_tables(database) == data
    assert profiles.load() == learned


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
    names = [name for name, _ in sqlite_records(path)]
    assert names == [m.name for m in store_sqlite.MIGRATIONS]
    assert names[:3] == ["001_create_profiles", "002_add_openai_compatible",
                         "003_create_connections"]
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
    [(first, unknown), *later] = sqlite_records(path)
    assert (first, unknown) == ("001_create_profiles", None)
    assert [name for name, _ in later] == [m.name for m in store_sqlite.MIGRATIONS[1:]]
    assert all(applied_at is not None for _, applied_at in later)


def test_a_migration_interrupted_halfway_leaves_the_file_as_before_and_the_next_start_completes(
    first_schema_with_a_row, monkeypatch
):
    path = first_schema_with_a_row / DB_FILENAME
    columns, records = sqlite_columns(path), sqlite_records(path)

    def adds_one_column_then_fails(db):
        db.execute("alter table profiles add column openai_compatible_api_key text")
        raise RuntimeError("interrupted")  # e.g. the process killed between two statements

    first, second, *later = store_sqlite.MIGRATIONS
    with monkeypatch.context() as interrupted:
        interrupted.setattr(store_sqlite, "MIGRATIONS",
                            [first, dataclasses.replace(second, apply=adds_one_column_then_fails),
                             *later])
        with pytest.raises(OurBug) as raised:  # neither SQLite's nor the disk's failure
            SQLiteProfileStore(first_schema_with_a_row)
        assert isinstance(raised.value.__cause__, RuntimeError)

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
            # Widens the window between a step and its record; all the steps together stay
            # within the second session's wait for the lock (real steps take milliseconds).
            time.sleep(1.0 / len(store_sqlite.MIGRATIONS))
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
    assert sorted(applied) == [m.name for m in store_sqlite.MIGRATIONS]
    assert [name for name, _ in sqlite_records(tmp_path / DB_FILENAME)] == sorted(applied)


@pytest.fixture
def second_release_file_with_settings(tmp_path, monkeypatch):
    """A data folder as the release before connections left it (migrations 001 and 002), with
    the user's saved compatible settings."""
    with monkeypatch.context() as earlier_release:
        earlier_release.setattr(store_sqlite, "MIGRATIONS", store_sqlite.MIGRATIONS[:2])
        SQLiteProfileStore(tmp_path)
    sqlite_rows(tmp_path / DB_FILENAME,
                "insert into profiles (user_id, display_name, openai_compatible_api_key,"
                " openai_compatible_base_url, openai_compatible_model_name)"
                " values (?, 'Ada', 'gAAAA-token', 'http://127.0.0.1:8080/v1', 'qwen')",
                LOCAL_USER_ID)
    return tmp_path


def test_an_upgrade_from_the_release_before_connections_keeps_the_settings(
    second_release_file_with_settings,
):
    folder = second_release_file_with_settings
    path = folder / DB_FILENAME
    before = sqlite_rows(path, "select * from profiles")

    profile = SQLiteProfileStore(folder).load()

    assert profile == Profile(display_name="Ada", openai_compatible_api_key="gAAAA-token",
                              openai_compatible_base_url="http://127.0.0.1:8080/v1",
                              openai_compatible_model_name="qwen")
    assert [row[:len(before[0])] for row in sqlite_rows(path, "select * from profiles")] \
        == before
    assert [name for name, _ in sqlite_records(path)][2:] == ["003_create_connections",
                                                             "004_create_chats",
                                                             "005_bound_each_user",
                                                             "006_keep_long_messages_and_"
                                                             "reply_leases",
                                                             "007_keep_attachments_and_"
                                                             "reply_room",
                                                             "008_keep_comparisons",
                                                             "009_file_chats_in_folders",
                                                             "010_keep_saved_prompts",
                                                             "011_choose_who_titles_chats",
                                                             "012_search_as_typed_by_prefix"]
    connections = SQLiteConnectionStore(folder)
    assert connections.list() == []
    assert connections.add(Connection(name="Groq", base_url="http://h/v1")).name == "Groq"
    learned = SQLiteProfileStore(folder).update({"openai_compatible_quirks": NO_STREAM_OPTIONS},
                                                None)
    assert learned.openai_compatible_quirks == NO_STREAM_OPTIONS
    assert SQLiteProfileStore(folder).load() == learned  # a second start changes nothing


def test_the_sqlite_connections_table_enforces_its_limits_by_itself(tmp_path):
    """Below the store: the CHECKs, the unique (user, lower(name)) index, the 50 per user."""
    SQLiteConnectionStore(tmp_path)
    path = tmp_path / DB_FILENAME

    def insert(user: str, **values) -> None:
        columns = {"id": uuid.uuid4().hex, "user_id": user, "name": "checked",
                   "kind": "openai-compatible", **values}
        sqlite_rows(path, f"insert into connections ({', '.join(columns)})"
                          f" values ({', '.join('?' * len(columns))})", *columns.values())

    for number in range(50):
        insert("a", name=f"server {number}")
    with pytest.raises(sqlite3.IntegrityError, match="at most 50"):
        insert("a", name="one too many")
    insert("b", name="x")
    with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
        insert("b", name="X")
    for column, value in [("name", "n" * 101), ("models", json.dumps(list(range(201)))),
                          ("models", "{}"), ("quirks", "not json"), ("kind", "anthropic"),
                          ("headers", "h" * 40001), ("default_model", "d" * 201)]:
        with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
            insert("c", **{column: value})
    with pytest.raises(sqlite3.IntegrityError, match="another user"):
        sqlite_rows(path, "update connections set user_id = 'b' where user_id = 'a'")


# ---- chats and messages (supabase/migrations/20261126050000_create_chats.sql) ---------------

CHAT_DATA_COLUMNS = {"title", "connection_id", "model", "system_prompt", "temperature",
                     "current_id", "pinned", "max_tokens", "context_window"}
CHAT_DATA_COLUMNS |= {"folder"}  # 20261207190000_file_chats_and_search_as_typed
MESSAGE_DATA_COLUMNS = {"content", "model_label", "status", "error", "reasoning", "usage"}
CHAT_FUNCTIONS = ("set_chat_updated_at()", "keep_chat_owner()", "keep_message_place()",
                  "touch_chat_of_message()", "search_chats(text, integer)")
OWN_ROW = "(( SELECT auth.uid() AS uid) = user_id)"
OWN_CHAT = ("((( SELECT auth.uid() AS uid) = user_id) AND (EXISTS ( SELECT 1\n"
            "   FROM chats c\n  WHERE ((c.id = messages.chat_id) AND"
            " (c.user_id = ( SELECT auth.uid() AS uid))))))")


def policies_of(database, table: str) -> list[dict]:
    return database.sql(
        "select cmd, roles::text[] as roles, qual, with_check from pg_policies"
        " where schemaname = 'public' and tablename = %s order by cmd", table)


def test_chats_and_messages_have_one_policy_per_operation_for_authenticated(supabase_stack):
    chats, messages = policies_of(supabase_stack, "chats"), policies_of(supabase_stack,
                                                                       "messages")
    for policies in (chats, messages):
        assert [(p["cmd"], p["roles"]) for p in policies] == [
            (cmd, ["authenticated"]) for cmd in ("DELETE", "INSERT", "SELECT", "UPDATE")]
    assert {(p["qual"], p["with_check"]) for p in chats} == {
        (OWN_ROW, None), (None, OWN_ROW), (OWN_ROW, OWN_ROW)}
    # A message's chat must be the writer's, on insert and on update.
    assert [(p["qual"], p["with_check"]) for p in messages] == [
        (OWN_ROW, None), (None, OWN_CHAT), (OWN_ROW, None), (OWN_ROW, OWN_CHAT)]


@pytest.mark.parametrize("table, data_columns, insert_only, update_only", [
    # An import gives its own times when it creates a row (20261126070000_keep_imported_times).
    ("chats", CHAT_DATA_COLUMNS, {"id", "user_id", "created_at", "updated_at"}, set()),
    # A reply is asked to stop once it exists; its heartbeat is the database's alone.
    ("messages", MESSAGE_DATA_COLUMNS, {"id", "user_id", "chat_id", "parent_id", "role",
                                        "created_at"}, {"stop_requested"}),
    ("message_pieces", {"content", "reasoning"}, {"upload_id", "seq"}, set()),
    # Attachments are never changed: written once, with their message.
    ("attachments", {"kind", "name", "mime", "data", "text", "size", "width", "height"},
     {"id", "user_id", "message_id", "chat_id", "position"}, set()),
])
def test_users_write_only_the_data_columns_of_chats_and_messages(
        supabase_stack, table, data_columns, insert_only, update_only):
    [row] = supabase_stack.sql(
        "select bool_or(has_table_privilege('anon', 'public.' || %s, privilege)) as anon,"
        " bool_or(has_table_privilege('authenticated', 'public.' || %s, privilege)) as whole"
        " from unnest(array['insert', 'update', 'truncate', 'references', 'trigger'])"
        " as privilege", table, table)
    assert (row["anon"], row["whole"]) == (False, False)
    never_changed = table in ("message_pieces", "attachments")
    updated = set() if never_changed else data_columns
    assert table_column_privileges(supabase_stack, table, "update") == updated | update_only
    assert table_column_privileges(supabase_stack, table, "insert") == \
        data_columns | insert_only


@pytest.mark.parametrize("function", CHAT_FUNCTIONS)
def test_only_search_is_callable_and_only_by_signed_in_users(supabase_stack, function):
    [row] = supabase_stack.sql(
        f"select proconfig, prosecdef from pg_proc where oid = 'public.{function}'::regprocedure")
    assert row["proconfig"] == ['search_path=""']
    assert row["prosecdef"] is False  # runs as the writer: row-level security applies
    for role in ("anon", "authenticated", "public"):
        [allowed] = supabase_stack.sql(
            f"select has_function_privilege(%s, 'public.{function}', 'execute') as allowed",
            role)
        assert allowed["allowed"] is (role == "authenticated" and "search" in function), role


def test_the_list_open_and_search_have_their_indexes(supabase_stack):
    rows = supabase_stack.sql("select indexname, indexdef from pg_indexes"
                              " where tablename in ('chats', 'messages')")
    indexes = {row["indexname"]: row["indexdef"] for row in rows}
    assert "(user_id, updated_at DESC, id DESC)" in indexes["chats_user_updated_idx"]
    assert "(chat_id, created_at)" in indexes["messages_chat_created_idx"]
    assert "gin (search_vector)" in indexes["messages_search_idx"]
    assert "gin (search_vector)" in indexes["chats_search_idx"]


def test_a_message_moves_its_chat_and_deleting_a_user_deletes_their_chats(supabase_stack):
    user_id = add_user(supabase_stack)
    chat_id, message_id = uuid.uuid4(), uuid.uuid4()
    [chat] = supabase_stack.sql("insert into public.chats (id, user_id) values (%s, %s)"
                                " returning updated_at", chat_id, user_id)
    supabase_stack.sql("insert into public.messages (id, chat_id, user_id, role)"
                       " values (%s, %s, %s, 'user')", message_id, chat_id, user_id)
    [moved] = supabase_stack.sql("select updated_at from public.chats where id = %s", chat_id)
    assert moved["updated_at"] > chat["updated_at"]

    supabase_stack.sql("delete from auth.users where id = %s", user_id)

    assert supabase_stack.sql("select id from public.chats where id = %s", chat_id) == []
    assert supabase_stack.sql("select id from public.messages where id = %s", message_id) == []


def test_the_sqlite_chats_tables_enforce_their_rules_by_themselves(tmp_path):
    """Below the store (m004): the CHECKs, a message's chat owned by its writer, its parent in
    the same chat, nobody moves a chat or message, a chat's messages go with it."""
    store_sqlite.SQLiteChatStore(tmp_path)
    path = tmp_path / DB_FILENAME
    now = "2026-11-26T05:00:00.000000Z"

    def insert(table: str, **values) -> None:
        sqlite_rows(path, f"insert into {table} ({', '.join(values)})"
                          f" values ({', '.join('?' * len(values))})", *values.values())

    def message(**values) -> None:
        insert("messages", **{"id": uuid.uuid4().hex, "chat_id": "c1", "user_id": "a",
                              "role": "user", "created_at": now, **values})

    insert("chats", id="c1", user_id="a", created_at=now, updated_at=now)
    insert("chats", id="c2", user_id="a", created_at=now, updated_at=now)
    message(id="m1")
    for values in [{"role": "system"}, {"status": "lost"}, {"content": "x" * 32_000_001},
                   {"reasoning": "é" * 32_000_001}, {"usage": "[1]"}, {"stop_requested": 2}]:
        with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
            message(**values)
    for column, value in [("title", "t" * 201), ("temperature", 2.01),
                          ("system_prompt", "p" * 100_001)]:
        with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
            insert("chats", id=uuid.uuid4().hex, user_id="a", created_at=now, updated_at=now,
                   **{column: value})
    with pytest.raises(sqlite3.IntegrityError, match="messages_chat"):
        message(user_id="b")  # c1 is a's
    with pytest.raises(sqlite3.IntegrityError, match="messages_parent_in_chat"):
        message(chat_id="c2", parent_id="m1")
    for statement in ("update chats set user_id = 'b'", "update messages set chat_id = 'c2'",
                      "update messages set user_id = 'b'"):
        with pytest.raises(sqlite3.IntegrityError, match="cannot be moved"):
            sqlite_rows(path, statement)
    sqlite_rows(path, "delete from chats where id = 'c1'")
    assert sqlite_rows(path, "select count(*) from messages") == [(0,)]
    for fts in ("messages_fts", "chats_fts"):  # the index holds exactly what the rows hold
        sqlite_rows(path, f"insert into {fts} ({fts}) values ('integrity-check')")


# ---- long messages and a reply's lease (20261207111500_keep_long_messages_and_...) ----------

LEASE_CALLS = ("append_reply(uuid, integer, text, integer, text, uuid, integer)",
               "read_reply(uuid, integer, integer)",
               "settle_abandoned(uuid, double precision)",
               "take_pieces(uuid, integer)",
               "add_message_in_pieces(jsonb, uuid, integer)",
               "update_message_in_pieces(uuid, jsonb, uuid, integer)")
LEASE_TRIGGER_FUNCTIONS = ("move_heartbeat()", "index_message_text()",
                           "count_message_pieces()")


def a_chat_row(database) -> tuple[uuid.UUID, uuid.UUID]:
    user_id, chat_id = add_user(database), uuid.uuid4()
    database.sql("insert into public.chats (id, user_id) values (%s, %s)", chat_id, user_id)
    return user_id, chat_id


def test_a_message_holds_32_000_000_characters_of_content_and_of_reasoning_and_no_more(
        supabase_stack):
    """Characters, not bytes (the text is made by the server: nothing that long is sent)."""
    user_id, chat_id = a_chat_row(supabase_stack)

    def insert(content: str, reasoning: str) -> None:
        supabase_stack.sql("insert into public.messages (id, chat_id, user_id, role, content,"
                           f" reasoning) values (%s, %s, %s, 'user', {content}, {reasoning})",
                           uuid.uuid4(), chat_id, user_id)

    insert("repeat('é', 32000000)", "repeat('x', 32000000)")
    for content, reasoning, constraint in [
            ("repeat('é', 32000001)", "''", "messages_content_length"),
            ("''", "repeat('x', 32000001)", "messages_reasoning_length")]:
        with pytest.raises(psycopg.errors.CheckViolation, match=constraint):
            insert(content, reasoning)
    [kept] = supabase_stack.sql(
        "select char_length(content) as content, octet_length(content) as bytes,"
        " char_length(reasoning) as reasoning, pg_column_compression(content) as compression"
        " from public.messages where chat_id = %s", chat_id)
    assert kept == {"content": 32_000_000, "bytes": 64_000_000, "reasoning": 32_000_000,
                    "compression": "lz4"}  # the server here has lz4


def test_the_search_vector_holds_the_first_100_000_characters_and_follows_them(supabase_stack):
    user_id, chat_id = a_chat_row(supabase_stack)
    message_id = uuid.uuid4()
    supabase_stack.sql("insert into public.messages (id, chat_id, user_id, role, content)"
                       " values (%s, %s, %s, 'user', 'alpha ' || repeat('x', 100000) || ' omega')",
                       message_id, chat_id, user_id)

    def vector() -> str:
        [row] = supabase_stack.sql("select search_vector::text as v from public.messages"
                                   " where id = %s", message_id)
        return row["v"]

    indexed = vector()
    assert "'alpha'" in indexed and "omega" not in indexed
    supabase_stack.sql("update public.messages set content = content || ' zulu' where id = %s",
                       message_id)
    assert vector() == indexed  # beyond the prefix: the same vector, not computed again
    supabase_stack.sql("update public.messages set search_vector = 'planted' where id = %s",
                       message_id)
    assert vector() == indexed  # what a writer gives is replaced
    supabase_stack.sql("update public.messages set content = 'beta ' || content where id = %s",
                       message_id)
    assert "'beta'" in vector() and "'alpha'" in vector()


def test_the_heartbeat_moves_on_insert_and_on_each_write_while_streaming_only(supabase_stack):
    user_id, chat_id = a_chat_row(supabase_stack)
    message_id = uuid.uuid4()

    def write(statement: str) -> dict:
        supabase_stack.sql(f"update public.messages set {statement} where id = %s", message_id)
        [row] = supabase_stack.sql("select heartbeat_at from public.messages where id = %s",
                                   message_id)
        return row["heartbeat_at"]

    supabase_stack.sql("insert into public.messages (id, chat_id, user_id, role, status)"
                       " values (%s, %s, %s, 'assistant', 'streaming')",
                       message_id, chat_id, user_id)
    beats = [write("status = status"), write("content = 'a'"), write("reasoning = 'b'")]
    assert beats == sorted(set(beats))  # each write moved it
    assert write("stop_requested = true") == beats[-1]
    ended = write("status = 'complete'")
    assert ended == beats[-1]
    assert write("content = 'after'") == ended  # no longer streaming


@pytest.mark.parametrize("function", LEASE_CALLS + LEASE_TRIGGER_FUNCTIONS)
def test_the_calls_are_for_signed_in_users_and_the_trigger_functions_for_nobody(
        supabase_stack, function):
    [row] = supabase_stack.sql(
        f"select proconfig, prosecdef from pg_proc where oid = 'public.{function}'::regprocedure")
    assert row["proconfig"] == ['search_path=""']
    # Only the bounds' counting runs as its owner (it writes user_totals): the rest as the
    # caller, so row-level security and column privileges apply.
    assert row["prosecdef"] is (function == "count_message_pieces()")
    for role in ("anon", "authenticated", "public"):
        [allowed] = supabase_stack.sql(
            f"select has_function_privilege(%s, 'public.{function}', 'execute') as allowed",
            role)
        assert allowed["allowed"] is (role == "authenticated" and function in LEASE_CALLS)


def test_message_pieces_have_one_policy_per_operation_and_none_for_update(supabase_stack):
    policies = policies_of(supabase_stack, "message_pieces")
    assert [(p["cmd"], p["roles"], p["qual"], p["with_check"]) for p in policies] == [
        ("DELETE", ["authenticated"], OWN_ROW, None),
        ("INSERT", ["authenticated"], None, OWN_ROW),
        ("SELECT", ["authenticated"], OWN_ROW, None)]


def test_push_upgrades_a_database_holding_a_streaming_reply_which_then_settles(
        database_behind_api):
    """A reply of a release before heartbeats, still 'streaming': after the upgrade it is read,
    searched, and settled by its creation time."""
    behind, database = database_behind_api, database_behind_api.database
    earlier = MIGRATIONS.index(LONG_MESSAGES_MIGRATION)
    database.push_migrations(only=earlier)
    behind.start_api()
    settings = Settings(supabase_url=behind.url, supabase_anon_key=behind.anon_key)
    email = f"upgrade-{uuid.uuid4().hex[:12]}@example.com"
    user_id = SupabaseAuth(settings).sign_up(email, PASSWORD).id

    def store() -> SupabaseChatStore:
        auth = SupabaseAuth(settings)
        return SupabaseChatStore(auth.client, auth.sign_in(email, PASSWORD).id)

    # Written as that release's store wrote them (this release's store writes newer columns).
    chat_id, asked_id, reply_id = (str(uuid.uuid4()) for _ in range(3))
    database.sql("insert into public.chats (id, user_id, title)"
                 " values (%s, %s, 'Before the upgrade')", chat_id, user_id)
    database.sql("insert into public.messages (id, chat_id, user_id, role, content)"
                 " values (%s, %s, %s, 'user', 'quetzal question')", asked_id, chat_id, user_id)
    database.sql("insert into public.messages (id, chat_id, user_id, parent_id, role, content,"
                 " status) values (%s, %s, %s, %s, 'assistant', 'half a rep', 'streaming')",
                 reply_id, chat_id, user_id, asked_id)
    rows_before = database.sql("select * from public.messages order by created_at")

    database.push_migrations()
    behind.restart_api()

    rows_after = database.sql("select * from public.messages order by created_at")
    assert rows_after == [{**row, "heartbeat_at": None, "stop_requested": False}
                          for row in rows_before]
    after = store()
    asked, reply = after.messages(chat_id)
    assert [(m.id, m.content, m.status) for m in (asked, reply)] == [
        (asked_id, "quetzal question", "complete"), (reply_id, "half a rep", "streaming")]
    chat = after.get_chat(chat_id)
    assert [f.chat.id for f in after.search("quetzal")] == [chat.id]
    assert after.read_reply(reply.id, 5) == (
        reply.with_changes(content="a rep"),
        ReplyState(status="streaming", content_length=10, reasoning_length=0,
                   stop_requested=False, alive=True))
    time.sleep(1.5)
    assert after.settle_abandoned(chat.id, 1.0) == [reply.id]
    assert after.messages(chat.id) == [asked, reply.with_changes(status="interrupted")]


# ---- the SQLite file of the release before long messages (migrations 001 to 005) ---------------

OLD_TIME = "2026-01-02T03:04:05.000000Z"


@pytest.fixture
def file_before_long_messages(tmp_path, monkeypatch):
    """A data folder as the release before 006 left it: a chat with a user message, a reply
    still 'streaming' (its page closed mid-reply) and a long answer, written as that release
    wrote them."""
    with monkeypatch.context() as earlier_release:
        earlier_release.setattr(store_sqlite, "MIGRATIONS", store_sqlite.MIGRATIONS[:5])
        store_sqlite.SQLiteChatStore(tmp_path)
    path = tmp_path / DB_FILENAME
    sqlite_rows(path, "insert into chats (id, user_id, title, created_at, updated_at)"
                      " values ('c1', 'local', 'Before', ?, ?)", OLD_TIME, OLD_TIME)
    for message_id, parent, role, content, status in [
            ("m1", None, "user", "quetzal question", "complete"),
            ("m2", "m1", "assistant", "half a rep", "streaming"),
            ("m3", "m1", "assistant", "long " * 199_000 + "zebraword", "complete")]:
        sqlite_rows(path, "insert into messages (id, chat_id, user_id, parent_id, role,"
                          " content, status, reasoning, usage, created_at)"
                          " values (?, 'c1', 'local', ?, ?, ?, ?, 'why', '{\"t\": 1}', ?)",
                    message_id, parent, role, content, status, OLD_TIME)
    return tmp_path


def schema_names(path) -> set[tuple[str, str]]:
    return set(sqlite_rows(path, "select type, name from sqlite_master"))


def test_an_upgrade_to_long_messages_keeps_every_row_index_trigger_and_the_search(
        file_before_long_messages):
    path = file_before_long_messages / DB_FILENAME
    rows_before = sqlite_rows(path, "select * from messages order by seq")
    names_before, totals_before = schema_names(path), sqlite_rows(path, "select * from user_totals")

    store = store_sqlite.SQLiteChatStore(file_before_long_messages)

    assert "006_keep_long_messages_and_reply_leases" in [name for name, _
                                                         in sqlite_records(path)]
    assert sqlite_rows(path, "select * from messages order by seq") == [
        (*row, None, 0) for row in rows_before]  # no heartbeat yet, no stop asked
    names_after = schema_names(path)
    assert names_before <= names_after
    assert {(kind, name) for kind, name in names_after - names_before
            if "attachments" not in name and "comparisons" not in name
            and "prompts" not in name
            and name not in ("chats_user_pinned_idx", "chats_user_folder_idx")} == {
        ("view", "messages_searched")}  # and what the later migrations add
    assert [row[:len(totals_before[0])] for row in sqlite_rows(
        path, "select * from user_totals")] == totals_before
    sqlite_rows(path, "insert into messages_fts (messages_fts) values ('integrity-check')")
    assert [f.snippet for f in store.search("quetzal")] == ["quetzal question"]
    assert store.search("zebraword") == []  # beyond the first 100,000 characters
    # What the release before left streaming is settled by its time of creation.
    assert store.read_reply("m2", 5)[0].content == "a rep"
    assert store.settle_abandoned("c1", 60) == ["m2"]
    # The triggers kept work: a longer message than before is counted, moves its chat, goes
    # with its chat; a message still cannot move.
    longer = store.add_message(Message(chat_id="c1", parent_id="m1", role="assistant",
                                       content="é" * 2_000_000))
    assert store.get_chat("c1").updated_at == longer.created_at
    [(messages, total_bytes)] = sqlite_rows(path, "select messages, bytes from user_totals")
    assert (messages, total_bytes) == (4, totals_before[0][3] + 4_000_000)
    with pytest.raises(sqlite3.IntegrityError, match="cannot be moved"):
        sqlite_rows(path, "update messages set chat_id = 'c2'")
    store.delete_chat("c1")
    assert sqlite_rows(path, "select count(*) from messages") == [(0,)]
    assert sqlite_rows(path, "select chats, messages, bytes from user_totals") == [(0, 0, 0)]
    sqlite_rows(path, "insert into messages_fts (messages_fts) values ('integrity-check')")


def test_an_upgrade_to_long_messages_interrupted_leaves_the_file_as_before(
        file_before_long_messages, monkeypatch):
    path = file_before_long_messages / DB_FILENAME
    rows, names = sqlite_rows(path, "select * from messages"), schema_names(path)
    *earlier, rebuild = store_sqlite.MIGRATIONS[:6]  # up to 006, which makes messages again

    def rebuilds_then_fails(db):
        rebuild.apply(db)
        raise RuntimeError("interrupted")  # e.g. the process killed before the commit

    with monkeypatch.context() as interrupted:
        interrupted.setattr(store_sqlite, "MIGRATIONS",
                            [*earlier, dataclasses.replace(rebuild, apply=rebuilds_then_fails)])
        with pytest.raises(OurBug):
            store_sqlite.SQLiteChatStore(file_before_long_messages)

    assert (sqlite_rows(path, "select * from messages"), schema_names(path)) == (rows, names)
    assert store_sqlite.SQLiteChatStore(file_before_long_messages).search("quetzal")


# ---- attachments and a chat's reply room (20261207150000_keep_attachments_and_reply_room) ---

ATTACHMENT_CALLS = ("add_message_with_attachments(jsonb, jsonb, uuid, integer)",
                    "usage_totals()")
ATTACHMENT_INNER_FUNCTIONS = ("attachment_bytes(text, text)",
                              "add_to_attachment_totals(uuid, integer, bigint)",
                              "count_attachments()")
OWN_MESSAGE = ("((( SELECT auth.uid() AS uid) = user_id) AND (EXISTS ( SELECT 1\n"
               "   FROM messages m\n  WHERE ((m.id = attachments.message_id) AND"
               " (m.chat_id = attachments.chat_id) AND (m.user_id = ( SELECT auth.uid() AS uid))"
               "))))")


def test_attachments_have_one_policy_per_operation_and_none_for_update(supabase_stack):
    policies = policies_of(supabase_stack, "attachments")
    assert [(p["cmd"], p["roles"], p["qual"], p["with_check"]) for p in policies] == [
        ("DELETE", ["authenticated"], OWN_ROW, None),
        ("INSERT", ["authenticated"], None, OWN_MESSAGE),
        ("SELECT", ["authenticated"], OWN_ROW, None)]
    [table] = supabase_stack.sql(
        "select relrowsecurity from pg_class where oid = 'public.attachments'::regclass")
    assert table["relrowsecurity"] is True


@pytest.mark.parametrize("function", ATTACHMENT_CALLS + ATTACHMENT_INNER_FUNCTIONS)
def test_the_attachment_calls_are_for_signed_in_users_and_the_rest_for_nobody(
        supabase_stack, function):
    [row] = supabase_stack.sql(
        f"select proconfig, prosecdef from pg_proc where oid = 'public.{function}'::regprocedure")
    assert row["proconfig"] == ['search_path=""']
    # Only the counting runs as its owner (it writes user_totals): the calls run as the caller.
    assert row["prosecdef"] is (function == "count_attachments()")
    for role in ("anon", "authenticated", "public"):
        [allowed] = supabase_stack.sql(
            f"select has_function_privilege(%s, 'public.{function}', 'execute') as allowed",
            role)
        assert allowed["allowed"] is (role == "authenticated" and function in ATTACHMENT_CALLS)


def test_the_sqlite_attachments_table_enforces_its_rules_by_itself(tmp_path):
    """Below the store (m007): the CHECKs, the message owned by the writer and in the chat
    named, no update, a message's attachments going with it and with its chat."""
    store_sqlite.SQLiteChatStore(tmp_path)
    path = tmp_path / DB_FILENAME
    now = "2026-12-07T15:00:00.000000Z"

    def insert(table: str, **values) -> None:
        sqlite_rows(path, f"insert into {table} ({', '.join(values)})"
                          f" values ({', '.join('?' * len(values))})", *values.values())

    def attachment(**values) -> None:
        insert("attachments", **{"id": uuid.uuid4().hex, "message_id": "m1", "chat_id": "c1",
                                 "user_id": "a", "position": 0, "kind": "document",
                                 "name": "n.txt", "text": "t", **values})

    insert("chats", id="c1", user_id="a", created_at=now, updated_at=now)
    insert("chats", id="c2", user_id="a", created_at=now, updated_at=now)
    insert("messages", id="m1", chat_id="c1", user_id="a", role="user", created_at=now)
    attachment(position=0)
    attachment(position=1, kind="image", text="", data=b"x" * 2_000_000)
    for values in [{"position": 10}, {"kind": "video"}, {"name": ""}, {"name": "n" * 256},
                   {"text": "t" * 8_000_001}, {"kind": "image", "text": "t"},
                   {"kind": "image", "text": "", "data": b"x" * 2_000_001},
                   {"data": b"x"}, {"kind": "image", "text": "", "data": "text, not bytes"},
                   {"width": -1}, {"size": -1}, {"mime": "m" * 256}]:
        with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
            attachment(**{"position": 2, **values})
    with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
        attachment(position=1)
    for values in [{"user_id": "b"}, {"chat_id": "c2"}, {"message_id": "gone"}]:
        with pytest.raises(sqlite3.IntegrityError, match="attachments_message"):
            attachment(position=3, **values)
    with pytest.raises(sqlite3.IntegrityError, match="attachments_immutable"):
        sqlite_rows(path, "update attachments set text = 'changed'")
    assert sqlite_rows(path, "select attachments, attachment_bytes from user_totals") == [
        (2, 2_000_001)]
    sqlite_rows(path, "delete from messages where id = 'm1'")
    assert sqlite_rows(path, "select count(*) from attachments") == [(0,)]
    insert("messages", id="m2", chat_id="c1", user_id="a", role="user", created_at=now)
    attachment(message_id="m2")
    sqlite_rows(path, "delete from chats where id = 'c1'")
    assert sqlite_rows(path, "select count(*) from attachments") == [(0,)]
    assert sqlite_rows(path, "select attachments, attachment_bytes from user_totals") == [(0, 0)]
    for column, value in [("max_tokens", 0), ("context_window", 100_000_001)]:
        with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
            insert("chats", id=uuid.uuid4().hex, user_id="a", created_at=now, updated_at=now,
                   **{column: value})


def test_an_sqlite_file_of_the_release_before_attachments_is_upgraded_keeping_its_chats(
        tmp_path, monkeypatch):
    with monkeypatch.context() as earlier_release:
        earlier_release.setattr(store_sqlite, "MIGRATIONS", store_sqlite.MIGRATIONS[:6])
        store_sqlite.SQLiteChatStore(tmp_path)
    path = tmp_path / DB_FILENAME
    sqlite_rows(path, "insert into chats (id, user_id, title, created_at, updated_at)"
                      " values ('c1', 'local', 'Old', 'then', 'then')")

    store = store_sqlite.SQLiteChatStore(tmp_path)

    assert [m[0] for m in sqlite_rows(path, "select name from schema_migrations")] == [
        m.name for m in store_sqlite.MIGRATIONS]  # 007 and every later one
    chat = store.get_chat("c1")
    assert (chat.title, chat.max_tokens, chat.context_window) == ("Old", None, None)
    saved = store.save_chat(chat.with_changes(max_tokens=256))
    assert store.get_chat("c1").max_tokens == saved.max_tokens == 256


# ---- comparisons (20261207180000_keep_comparisons, m008) ---------------------------------

COMPARISON_CALLS = ("save_comparison(jsonb)",)
COMPARISON_INNER_FUNCTIONS = ("keep_comparison()", "add_to_comparison_totals(uuid, integer)",
                              "count_comparisons()")
OWN_CHAT_OF_COMPARISON = OWN_CHAT.replace("messages.chat_id", "comparisons.chat_id")


def test_comparisons_have_one_policy_per_operation_and_none_for_delete(supabase_stack):
    policies = policies_of(supabase_stack, "comparisons")
    assert [(p["cmd"], p["roles"], p["qual"], p["with_check"]) for p in policies] == [
        ("INSERT", ["authenticated"], None, OWN_CHAT_OF_COMPARISON),
        ("SELECT", ["authenticated"], OWN_ROW, None),
        ("UPDATE", ["authenticated"], OWN_ROW, OWN_ROW)]
    [table] = supabase_stack.sql(
        "select relrowsecurity from pg_class where oid = 'public.comparisons'::regclass")
    assert table["relrowsecurity"] is True
    granted = supabase_stack.sql(
        "select grantee, privilege_type from information_schema.role_table_grants"
        " where table_schema = 'public' and table_name = 'comparisons'"
        " and grantee in ('anon', 'authenticated') order by grantee, privilege_type")
    assert granted == [{"grantee": "authenticated", "privilege_type": "SELECT"}]
    columns = supabase_stack.sql(
        "select privilege_type, column_name from information_schema.column_privileges"
        " where table_schema = 'public' and table_name = 'comparisons'"
        " and grantee = 'authenticated' and privilege_type = 'UPDATE' order by column_name")
    assert [row["column_name"] for row in columns] == ["picked_id", "tie"]


@pytest.mark.parametrize("function", COMPARISON_CALLS + COMPARISON_INNER_FUNCTIONS)
def test_the_comparison_call_is_for_signed_in_users_and_the_rest_for_nobody(supabase_stack,
                                                                          function):
    [row] = supabase_stack.sql(
        f"select proconfig, prosecdef from pg_proc where oid = 'public.{function}'::regprocedure")
    assert row["proconfig"] == ['search_path=""']
    assert row["prosecdef"] is (function == "count_comparisons()")
    for role in ("anon", "authenticated", "public"):
        [allowed] = supabase_stack.sql(
            f"select has_function_privilege(%s, 'public.{function}', 'execute') as allowed",
            role)
        assert allowed["allowed"] is (role == "authenticated" and function in COMPARISON_CALLS)


def test_the_sqlite_comparisons_table_enforces_its_rules_by_itself(tmp_path):
    """Below the store (m008): the CHECKs and triggers, the chat owned by the writer, the first
    verdict kept, the count of each user's, and a comparison going with its chat."""
    store_sqlite.SQLiteChatStore(tmp_path)
    path = tmp_path / DB_FILENAME
    now = "2026-12-07T18:00:00.000000Z"
    one, two, three = (str(uuid.uuid4()) for _ in range(3))

    def insert(table: str, **values) -> None:
        sqlite_rows(path, f"insert into {table} ({', '.join(values)})"
                          f" values ({', '.join('?' * len(values))})", *values.values())

    def comparison(**values) -> str:
        row = {"id": str(uuid.uuid4()), "chat_id": "c1", "user_id": "a",
               "message_id": str(uuid.uuid4()), "reply_ids": json.dumps([one, two]),
               "labels": json.dumps(["x", "y"]), "created_at": now, **values}
        insert("comparisons", **row)
        return row["id"]

    insert("chats", id="c1", user_id="a", created_at=now, updated_at=now)
    kept = comparison()
    comparison(reply_ids=json.dumps([one, two, three, str(uuid.uuid4())]),
               labels=json.dumps(["a", "b", "c", "d" * 500]), picked_id=three)
    for values, refusal in [
            ({"reply_ids": json.dumps([one])}, "CHECK"),
            ({"reply_ids": json.dumps([str(uuid.uuid4()) for _ in range(5)]),
              "labels": json.dumps(list("abcde"))}, "CHECK"),
            ({"labels": json.dumps(["x"])}, "CHECK"),
            ({"picked_id": three}, "CHECK"),
            ({"picked_id": one, "tie": 1}, "CHECK"),
            ({"labels": json.dumps(["x", "y" * 501])}, "comparisons_labels_length"),
            ({"reply_ids": json.dumps([one, one])}, "comparisons_ids"),
            ({"reply_ids": json.dumps([one, "m2"])}, "comparisons_ids"),
            ({"message_id": "m1"}, "comparisons_ids"),
            ({"user_id": "b"}, "comparisons_chat"),
            ({"chat_id": "gone"}, "comparisons_chat")]:
        with pytest.raises(sqlite3.IntegrityError, match=refusal):
            comparison(**values)
    with pytest.raises(sqlite3.IntegrityError, match="comparisons_keep_place"):
        sqlite_rows(path, "update comparisons set blind = 1 where id = ?", kept)
    sqlite_rows(path, "update comparisons set picked_id = ?, decided_at = ? where id = ?",
                two, now, kept)
    for change in ("picked_id = null", f"picked_id = '{one}'", "tie = 1",
                   "decided_at = 'later'"):
        with pytest.raises(sqlite3.IntegrityError, match="comparisons_verdict_kept"):
            sqlite_rows(path, f"update comparisons set {change} where id = ?", kept)
    assert sqlite_rows(path, "select comparisons from user_totals") == [(2,)]
    sqlite_rows(path, "delete from chats where id = 'c1'")
    assert sqlite_rows(path, "select count(*) from comparisons") == [(0,)]
    assert sqlite_rows(path, "select comparisons from user_totals") == [(0,)]


def test_each_sqlite_users_comparisons_are_bounded(tmp_path):
    store = store_sqlite.SQLiteChatStore(tmp_path)
    path = tmp_path / DB_FILENAME
    chat = store.save_chat(Chat(title="Compared"))
    sqlite_rows(path, "update user_totals set comparisons = ?", MAX_COMPARISONS_PER_USER)
    with pytest.raises(UserFacingError, match="Delete chats you no longer need to compare"):
        store.save_comparison(Comparison(
            chat_id=chat.id, message_id=str(uuid.uuid4()),
            reply_ids=(str(uuid.uuid4()), str(uuid.uuid4())), labels=("x", "y")))
    assert store.comparisons(chat.id) == []


def test_an_sqlite_file_of_the_release_before_comparisons_is_upgraded_keeping_its_chats(
        tmp_path, monkeypatch):
    with monkeypatch.context() as earlier_release:
        earlier_release.setattr(store_sqlite, "MIGRATIONS", store_sqlite.MIGRATIONS[:7])
        store_sqlite.SQLiteChatStore(tmp_path)
    path = tmp_path / DB_FILENAME
    # Its rows as that release wrote them (today's store writes columns it lacked).
    chat, question = Chat(title="Old"), Message(chat_id="", role="user", content="q")
    question = question.with_changes(chat_id=chat.id)
    sqlite_rows(path, "insert into chats (id, user_id, title, created_at, updated_at)"
                      " values (?, ?, 'Old', ?, ?)", chat.id, LOCAL_USER_ID, OLD_TIME, OLD_TIME)
    sqlite_rows(path, "insert into messages (id, chat_id, user_id, role, content, created_at)"
                      " values (?, ?, ?, 'user', 'q', ?)", question.id, chat.id, LOCAL_USER_ID,
                OLD_TIME)

    store = store_sqlite.SQLiteChatStore(tmp_path)

    assert "008_keep_comparisons" in [m[0] for m in sqlite_rows(
        path, "select name from schema_migrations")]
    assert store.get_chat(chat.id).title == "Old" and store.comparisons(chat.id) == []
    replies = (str(uuid.uuid4()), str(uuid.uuid4()))
    saved = store.save_comparison(Comparison(chat_id=chat.id, message_id=question.id,
                                             reply_ids=replies, labels=("x", "y"), tie=True,
                                             blind=True))
    assert store.blind_verdicts() == [saved]
