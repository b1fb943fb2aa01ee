"""The ConnectionStore contract (issue 10, Data): the same tests against both real backends,
an SQLite file and the Supabase stack through PostgREST, each behind the encrypting layer the
app puts in front of it (core.store.keybox.EncryptedConnectionStore)."""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass

import pytest
from cryptography.fernet import Fernet
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.auth import SupabaseAuth
from core.config import Settings
from core.failures import UserFacingError
from core.providers.connections import (
    MAX_COMPLETION_TOKENS,
    MAX_CONNECTIONS,
    MAX_MODELS,
    NO_STREAM_OPTIONS,
    Connection,
)
from core.store.errors import ConnectionChanged
from core.store.keybox import BOUND_PREFIX, EncryptedConnectionStore, KeyBox, Place
from core.store.sqlite import DB_FILENAME, SQLiteConnectionStore
from core.store.supabase import SupabaseConnectionStore
from tests.test_properties import keys, tokens, valid_urls

GROQ = Connection(
    name="Groq",
    kind="openai-compatible",
    base_url="https://api.groq.com/openai/v1",
    api_key="gsk-secret-key-0123456789",
    headers=(("X-Title", "Switchboard"), ("X-Team", "team-secret-value")),
    models=("llama-3.3-70b-versatile", "qwen-qwq-32b"),
    default_model="llama-3.3-70b-versatile",
)
LOCAL = Connection(name="Ollama", base_url="http://localhost:11434/v1", models=("qwen2.5:7b",))
PASSWORD = "correct horse battery"


@dataclass
class Backend:
    """One user's connections on one backend. `store()` is a new browser session (or the app
    restarted); `inner()` the store without encryption; `at_rest(id)` the row as the database
    keeps it; `other_user()` a second user's store on the same backend; `box` the encryption
    secrets the app runs with."""

    box: KeyBox
    store: Callable[..., EncryptedConnectionStore]
    inner: Callable[[], object]
    at_rest: Callable[[str], dict | None]
    other_user: Callable[[], EncryptedConnectionStore]


def sqlite_backend(tmp_path) -> Backend:
    folder = tmp_path / "store"
    default = KeyBox([Fernet.generate_key().decode()])

    def at_rest(connection_id: str) -> dict | None:
        with closing(sqlite3.connect(folder / DB_FILENAME)) as db:
            db.row_factory = sqlite3.Row
            row = db.execute("select * from connections where id = ?", (connection_id,))
            found = row.fetchone()
        return dict(found) if found else None

    return Backend(
        box=default,
        store=lambda box=None: EncryptedConnectionStore(SQLiteConnectionStore(folder),
                                                        box or default),
        inner=lambda: SQLiteConnectionStore(folder),
        at_rest=at_rest,
        other_user=lambda: EncryptedConnectionStore(
            SQLiteConnectionStore(folder, user_id="someone-else"), default),
    )


def supabase_backend(stack) -> Backend:
    settings = Settings(supabase_url=stack.url, supabase_anon_key=stack.anon_key)
    default = KeyBox([Fernet.generate_key().decode()])

    def signed_up() -> str:
        email = f"connections-{uuid.uuid4().hex[:12]}@example.com"
        SupabaseAuth(settings).sign_up(email, PASSWORD)
        return email

    def inner_for(email: str) -> SupabaseConnectionStore:  # a new client, signed in again
        auth = SupabaseAuth(settings)
        user = auth.sign_in(email, PASSWORD)
        return SupabaseConnectionStore(auth.client, user.id)

    email = signed_up()

    def at_rest(connection_id: str) -> dict | None:
        rows = stack.sql("select * from public.connections where id = %s", connection_id)
        return rows[0] if rows else None

    return Backend(
        box=default,
        store=lambda box=None: EncryptedConnectionStore(inner_for(email), box or default),
        inner=lambda: inner_for(email),
        at_rest=at_rest,
        other_user=lambda: EncryptedConnectionStore(inner_for(signed_up()), default),
    )


@pytest.fixture(params=["sqlite", "supabase"])
def backend(request, tmp_path) -> Backend:
    if request.param == "sqlite":
        return sqlite_backend(tmp_path)
    return supabase_backend(request.getfixturevalue("supabase_stack"))


def as_added(connection: Connection, stored: Connection) -> Connection:
    """`connection` as the store gives it back: with the store's id and version."""
    return connection.with_changes(id=stored.id, version=stored.version, origin="user")


# ---- add, list, update, delete -----------------------------------------------------------


def test_a_new_user_has_no_connections(backend):
    assert backend.store().list() == []


def test_a_connection_added_is_listed_as_given_in_a_new_session(backend):
    added = backend.store().add(GROQ)

    assert added.id and added.version
    assert added == as_added(GROQ, added)
    assert backend.store().list() == [added]


def test_loaded_connections_carry_their_origin_kind_rule_and_types(backend):
    backend.store().add(GROQ.with_changes(kind="openai", quirks=frozenset({NO_STREAM_OPTIONS})))
    backend.store().add(LOCAL.with_changes(enabled=False))

    groq, local = backend.store().list()

    assert (groq.origin, groq.needs_key) == ("user", True)
    assert (local.origin, local.needs_key, local.enabled) == ("user", False, False)
    assert isinstance(groq.models, tuple) and isinstance(groq.quirks, frozenset)
    assert groq.quirks == {NO_STREAM_OPTIONS}
    assert groq.headers == GROQ.headers and isinstance(groq.headers, tuple)


def test_connections_are_listed_oldest_first(backend):
    names = ["first", "second", "third"]
    for name in names:
        backend.store().add(LOCAL.with_changes(name=name))

    assert [c.name for c in backend.store().list()] == names


def test_an_update_writes_the_changes_and_moves_the_version(backend):
    added = backend.store().add(GROQ)

    updated = backend.store().update(added.id, {"name": "Groq (work)", "enabled": False,
                                                "models": ("qwen-qwq-32b",)}, added.version)

    assert updated.version != added.version
    assert updated == added.with_changes(name="Groq (work)", enabled=False,
                                         models=("qwen-qwq-32b",), version=updated.version)
    assert backend.store().list() == [updated]


def test_an_update_from_an_old_version_is_refused_and_writes_nothing(backend):
    added = backend.store().add(GROQ)
    first = backend.store().update(added.id, {"default_model": "qwen-qwq-32b"}, added.version)

    with pytest.raises(ConnectionChanged) as refused:
        backend.store().update(added.id, {"name": "stale"}, added.version)

    assert not refused.value.gone
    assert "changed in another tab or session" in str(refused.value)
    assert backend.store().list() == [first]


def test_two_updates_in_quick_succession_get_different_versions(backend):
    """Two saves within one clock second (or millisecond) must not share a version, or a
    form read between them would overwrite the second."""
    added = backend.store().add(LOCAL)
    store = backend.store()
    one = store.update(added.id, {"default_model": "a"}, added.version)
    two = store.update(added.id, {"default_model": "b"}, one.version)

    assert len({added.version, one.version, two.version}) == 3
    with pytest.raises(ConnectionChanged):
        store.update(added.id, {"default_model": "c"}, one.version)


def test_an_update_without_a_version_writes_whatever_is_stored(backend):
    added = backend.store().add(LOCAL)
    backend.store().update(added.id, {"name": "moved on"}, added.version)

    updated = backend.store().update(added.id, {"default_model": "x"}, None)

    assert (updated.name, updated.default_model) == ("moved on", "x")


def test_an_update_of_a_deleted_connection_says_it_is_gone(backend):
    added = backend.store().add(LOCAL)
    backend.store().delete(added.id)

    with pytest.raises(ConnectionChanged) as refused:
        backend.store().update(added.id, {"name": "back"}, added.version)

    assert refused.value.gone
    assert backend.store().list() == []


def test_delete_removes_only_that_connection_and_again_is_not_an_error(backend):
    groq, local = backend.store().add(GROQ), backend.store().add(LOCAL)

    backend.store().delete(groq.id)
    backend.store().delete(groq.id)

    assert backend.store().list() == [local]
    assert backend.at_rest(groq.id) is None


# ---- learned quirks -----------------------------------------------------------------------


def test_learning_a_quirk_keeps_the_version_so_an_open_form_still_saves(backend):
    added = backend.store().add(GROQ)

    backend.store().learn(added.id, NO_STREAM_OPTIONS)
    backend.store().learn(added.id, MAX_COMPLETION_TOKENS)
    backend.store().learn(added.id, NO_STREAM_OPTIONS)  # known already: nothing to write

    [learned] = backend.store().list()
    assert learned.quirks == {NO_STREAM_OPTIONS, MAX_COMPLETION_TOKENS}
    assert learned.version == added.version
    saved = backend.store().update(added.id, {"name": "Groq 2"}, added.version)  # the open form
    assert (saved.name, saved.quirks) == ("Groq 2", learned.quirks)


def test_learning_for_a_deleted_connection_is_ignored(backend):
    added = backend.store().add(LOCAL)
    backend.store().delete(added.id)

    backend.store().learn(added.id, NO_STREAM_OPTIONS)

    assert backend.store().list() == []


def test_an_unknown_quirk_is_not_learned(backend):
    added = backend.store().add(LOCAL)
    with pytest.raises(ValueError):
        backend.store().learn(added.id, "no_such_quirk")
    assert backend.store().list()[0].quirks == frozenset()


# ---- limits -------------------------------------------------------------------------------


@pytest.mark.parametrize("saved, taken", [
    ("Groq", "Groq"), ("Groq", "GROQ"), ("Groq", "groq"), ("Ärger", "äRGER"),
])
def test_names_are_unique_per_user_whatever_their_case(backend, saved, taken):
    backend.store().add(GROQ.with_changes(name=saved))

    with pytest.raises(UserFacingError) as refused:
        backend.store().add(LOCAL.with_changes(name=taken))

    assert str(refused.value).startswith(f"You already have a connection named {taken}")
    assert [c.name for c in backend.store().list()] == [saved]


def test_a_rename_onto_another_connections_name_is_refused(backend):
    backend.store().add(GROQ)
    local = backend.store().add(LOCAL)

    with pytest.raises(UserFacingError) as refused:
        backend.store().update(local.id, {"name": "gROQ"}, local.version)

    assert "You already have a connection named gROQ" in str(refused.value)
    assert [c.name for c in backend.store().list()] == ["Groq", "Ollama"]
    renamed = backend.store().update(local.id, {"name": "OLLAMA"}, local.version)  # its own
    assert renamed.name == "OLLAMA"


def test_the_database_itself_refuses_a_second_name_in_another_case(backend):
    """Below the store's own check: the unique index on (user, lower(name))."""
    inner = backend.inner()
    inner.add(Connection(name="Groq", base_url="http://localhost/v1"))
    with pytest.raises(UserFacingError) as refused:
        inner.add(Connection(name="GROQ", base_url="http://localhost/v1"))
    assert "You already have a connection" in str(refused.value)


def test_another_user_may_use_the_same_name(backend):
    backend.store().add(GROQ)

    theirs = backend.other_user().add(GROQ)

    assert theirs.name == "Groq"
    assert [c.name for c in backend.store().list()] == ["Groq"]


def test_at_most_50_connections_per_user(backend):
    store = backend.store()
    for number in range(MAX_CONNECTIONS):
        store.add(LOCAL.with_changes(name=f"server {number}"))

    with pytest.raises(UserFacingError) as refused:
        store.add(LOCAL.with_changes(name="one too many"))

    assert str(refused.value) == (
        "You have the most connections Switchboard keeps: at most 50. Delete one you no "
        "longer use to add another; nothing was saved."
    )
    assert len(backend.store().list()) == MAX_CONNECTIONS
    assert backend.other_user().add(LOCAL).name == "Ollama"  # the limit is per user
    store.delete(store.list()[0].id)
    assert store.add(LOCAL.with_changes(name="room again")).name == "room again"


def test_200_models_are_kept_and_201_refused(backend):
    many = tuple(f"model-{n}" for n in range(MAX_MODELS))
    added = backend.store().add(LOCAL.with_changes(models=many))
    assert backend.store().list()[0].models == many

    with pytest.raises(UserFacingError) as refused:
        backend.store().update(added.id, {"models": (*many, "one-more")}, added.version)

    assert "at most 200 per connection" in str(refused.value)
    assert backend.store().list() == [added]


@pytest.mark.parametrize("changes, said", [
    ({"models": tuple(f"m{n}" for n in range(MAX_MODELS + 1))}, "at most 200 per connection"),
    ({"name": "n" * 101}, "name must be 1 to 100 characters"),
    ({"name": ""}, "name must be 1 to 100 characters"),
    ({"default_model": "d" * 201}, "default model's name is too long"),
    ({"base_url": "http://localhost/" + "p" * 1000}, "base URL is too long"),
    ({"api_key": "k" * 1001}, "API key is too long"),
    ({"headers": "h" * 40001}, "custom headers are too long"),
    ({"kind": "anthropic"}, "Unknown kind of connection"),
])
def test_the_database_refuses_what_does_not_fit_and_says_which(backend, changes, said):
    """The stores' own limits, below validation (the stored form: ciphertext for secrets)."""
    inner = backend.inner()
    added = inner.add(Connection(name="ok", base_url="http://localhost/v1"))

    for attempt in (lambda: inner.add(Connection(name="new", base_url="http://localhost/v1")
                                      .with_changes(**changes)),
                    lambda: inner.update(added.id, changes, added.version)):
        with pytest.raises(UserFacingError) as refused:
            attempt()
        assert said in str(refused.value) and "Nothing was saved" in str(refused.value)
    assert inner.list() == [added]


@pytest.mark.parametrize("changes", [
    {"name": "n" * 101},
    {"base_url": "ftp://example.com"},
    {"api_key": "key with spaces"},
    {"headers": (("Authorization", "Bearer x"),)},
    {"headers": (("X-Ok", "line\r\nbreak"),)},
    {"quirks": frozenset({"made_up"})},
])
def test_invalid_values_are_refused_before_the_store_and_nothing_is_lost(backend, changes):
    added = backend.store().add(GROQ)

    with pytest.raises(UserFacingError) as refused:
        backend.store().update(added.id, changes, added.version)
    with pytest.raises(UserFacingError):
        backend.store().add(GROQ.with_changes(**{"name": "new", **changes}))

    assert str(refused.value)
    assert backend.store().list() == [added]


# ---- secrets at rest ---------------------------------------------------------------------


def test_the_key_and_header_values_are_ciphertext_at_rest(backend):
    added = backend.store().add(GROQ)

    row = backend.at_rest(added.id)

    for plain in (GROQ.api_key, "team-secret-value", "Switchboard", "X-Team"):
        assert plain not in json.dumps(row, default=str)
    assert row["api_key"].startswith(BOUND_PREFIX) and row["headers"].startswith(BOUND_PREFIX)
    assert row["base_url"] == GROQ.base_url  # only the declared secret fields


def test_a_secret_no_current_key_opens_reads_empty_and_is_kept(backend):
    added = backend.store().add(GROQ)
    stranger = backend.store(KeyBox([Fernet.generate_key().decode()]))

    [shown] = stranger.list()
    assert (shown.api_key, shown.headers) == ("", ())
    assert shown.unreadable == {"api_key", "headers"}
    stranger.update(shown.id, {"name": "Groq 2", "api_key": "", "headers": ()}, shown.version)

    [again] = backend.store().list()  # the secret it was saved with opens them again
    assert (again.name, again.api_key, again.headers) == ("Groq 2", GROQ.api_key, GROQ.headers)
    assert again.unreadable == frozenset()


def test_an_unreadable_secret_is_replaced_or_removed_when_the_caller_says_so(backend):
    added = backend.store().add(GROQ)
    stranger = backend.store(KeyBox([Fernet.generate_key().decode()]))
    [shown] = stranger.list()

    replaced = stranger.update(shown.id, {"api_key": "sk-typed-again-0123"}, shown.version,
                               remove_secrets=("headers",))

    assert (replaced.api_key, replaced.headers, replaced.unreadable) == (
        "sk-typed-again-0123", (), frozenset())
    assert backend.at_rest(added.id)["headers"] == ""


def test_a_rotated_secret_still_opens_what_the_old_one_sealed(backend):
    old = Fernet.generate_key().decode()
    backend.store(KeyBox([old])).add(GROQ)

    [shown] = backend.store(KeyBox([Fernet.generate_key().decode(), old])).list()

    assert (shown.api_key, shown.headers, shown.unreadable) == (
        GROQ.api_key, GROQ.headers, frozenset())


header_values = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40)
header_names = st.from_regex(r"X-[A-Za-z0-9-]{1,20}", fullmatch=True)
connection_names = st.text(st.characters(blacklist_categories=("C", "Zs", "Zl", "Zp", "Mn",
                                                              "Me", "Cf")),
                           min_size=1, max_size=100)


@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=connection_names, key=keys, url=valid_urls, model=tokens, enabled=st.booleans(),
       headers=st.lists(st.tuples(header_names, header_values), max_size=4,
                        unique_by=lambda pair: pair[0].lower()).map(tuple))
def test_every_valid_connection_reads_back_as_saved(backend, name, key, url, model, enabled,
                                                     headers):
    """Property, the round trip in both backends: for any valid name, key, URL, model and headers, a
    connection added reads back equal in a new session, its secrets encrypted at rest."""
    connection = Connection(name=name, base_url=url, api_key=key, headers=headers,
                            enabled=enabled, models=(model,), default_model=model)
    store = backend.store()
    added = store.add(connection)
    try:
        assert added == as_added(connection, added)
        assert backend.store().list() == [added]
        sealed = backend.at_rest(added.id)["api_key"]
        assert sealed != key
        assert backend.box.decrypt(sealed, Place("connections", "api_key", added.id)) == key
    finally:
        store.delete(added.id)
