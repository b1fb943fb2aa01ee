"""Row-level security and column grants on `connections` through the real PostgREST
(issue 10, acceptance 2): two real users, A (alice) and B (bob), and anonymous requests.

Every test of what a user may do runs twice: over raw HTTP to `/rest/v1/connections`, and
through supabase-py. Raw SQL (psql, as the superuser) shows what is at rest.
"""

from __future__ import annotations

import json
import subprocess
import uuid

import httpx
import postgrest
import pytest
import supabase
from cryptography.fernet import Fernet

from core.providers.connections import Connection
from core.store.errors import ConnectionChanged
from core.store.keybox import EncryptedConnectionStore, KeyBox, Place
from core.store.supabase import SupabaseConnectionStore
from tests.test_rls import Account, Refused

TABLE = "connections"
BOB_KEY = "sk-bob-secret-key-0123456789"
BOB_HEADER_VALUE = "bob-header-secret-value"


class RawConnections:
    """`/rest/v1/connections` over plain HTTP, as the user whose token it holds (None:
    anonymous). `bodies` keeps every answer's text, to search for what must not leak."""

    def __init__(self, stack, account: Account | None) -> None:
        self.headers = {"apikey": stack.anon_key, "Prefer": "return=representation"}
        if account:
            self.headers["Authorization"] = f"Bearer {account.access_token}"
        self.url = f"{stack.url}/rest/v1/{TABLE}"
        self.bodies: list[str] = []

    def select(self, columns: str = "*", **filters: str) -> list[dict]:
        return self._send("GET", params={"select": columns, **equal_to(filters)})

    def update(self, values: dict, **filters: str) -> list[dict]:
        return self._send("PATCH", params=equal_to(filters), json=values)

    def insert(self, values: dict) -> list[dict]:
        return self._send("POST", json=values)

    def delete(self, **filters: str) -> list[dict]:
        return self._send("DELETE", params=equal_to(filters))

    def _send(self, method: str, **request) -> list[dict]:
        response = httpx.request(method, self.url, headers=self.headers, **request)
        self.bodies.append(response.text)
        if response.status_code >= 400:
            raise Refused(response.json().get("code"))
        return response.json()


class SupabasePyConnections:
    """The same operations through supabase-py, signed in as the account (None: anonymous)."""

    def __init__(self, stack, account: Account | None) -> None:
        self.client = supabase.create_client(stack.url, stack.anon_key)
        if account:
            self.client.auth.sign_in_with_password(
                {"email": account.email, "password": account.password})
        self.bodies: list[str] = []

    def select(self, columns: str = "*", **filters: str) -> list[dict]:
        return self._run(filtered(self.client.table(TABLE).select(columns), filters))

    def update(self, values: dict, **filters: str) -> list[dict]:
        return self._run(filtered(self.client.table(TABLE).update(values), filters))

    def insert(self, values: dict) -> list[dict]:
        return self._run(self.client.table(TABLE).insert(values))

    def delete(self, **filters: str) -> list[dict]:
        return self._run(filtered(self.client.table(TABLE).delete(), filters))

    def _run(self, query) -> list[dict]:
        try:
            data = query.execute().data
        except postgrest.APIError as error:
            raise Refused(error.code) from error
        self.bodies.append(json.dumps(data))
        return data


def equal_to(filters: dict[str, str]) -> dict[str, str]:
    return {column: f"eq.{value}" for column, value in filters.items()}


def filtered(query, filters: dict[str, str]):
    for column, value in filters.items():
        query = query.eq(column, value)
    return query


def app_store(stack, account: Account, box: KeyBox) -> EncryptedConnectionStore:
    """The app's own store for `account`: its supabase-py client, signed in as that user."""
    client = supabase.create_client(stack.url, stack.anon_key)
    client.auth.sign_in_with_password({"email": account.email, "password": account.password})
    return EncryptedConnectionStore(SupabaseConnectionStore(client, account.id), box)


def rows_of(stack, user_id: str) -> list[dict]:
    return stack.sql("select * from public.connections where user_id = %s order by id", user_id)


@pytest.fixture
def box() -> KeyBox:
    return KeyBox([Fernet.generate_key().decode()])


@pytest.fixture
def alices_connection(supabase_stack, alice, box) -> Connection:
    return app_store(supabase_stack, alice, box).add(
        Connection(name="Alice's Ollama", base_url="http://localhost:11434/v1",
                   api_key="sk-alice-key-0123456789", models=("qwen2.5:7b",)))


@pytest.fixture
def bobs_connection(supabase_stack, bob, box) -> Connection:
    return app_store(supabase_stack, bob, box).add(
        Connection(name="Bob's Groq", base_url="https://api.groq.com/openai/v1", api_key=BOB_KEY,
                   headers=(("X-Team", BOB_HEADER_VALUE),), models=("llama-3.3-70b",)))


@pytest.fixture
def bobs_ciphertext(supabase_stack, bobs_connection) -> list[str]:
    [row] = supabase_stack.sql("select api_key, headers from public.connections where id = %s",
                               bobs_connection.id)
    return [row["api_key"], row["headers"]]


@pytest.fixture(params=["raw HTTP", "supabase-py"])
def connections_as(request, supabase_stack):
    """Open the connections table as an account (or None for anonymous) over one transport."""
    if request.param == "raw HTTP":
        return lambda account: RawConnections(supabase_stack, account)
    return lambda account: SupabasePyConnections(supabase_stack, account)


# ---- reading and listing ----------------------------------------------------------------------


def test_a_user_lists_their_own_connections_and_none_of_another_users(
    connections_as, alice, bob, alices_connection, bobs_connection
):
    as_alice = connections_as(alice)

    assert [row["id"] for row in as_alice.select()] == [alices_connection.id]
    assert as_alice.select(id=bobs_connection.id) == []
    assert as_alice.select(user_id=bob.id) == []


def test_a_user_cannot_see_another_users_key_or_header_ciphertext(
    connections_as, alice, bob, alices_connection, bobs_connection, bobs_ciphertext
):
    as_alice = connections_as(alice)

    assert as_alice.select("api_key,headers", user_id=bob.id) == []
    assert as_alice.select("api_key,headers", id=bobs_connection.id) == []
    as_alice.select()
    seen = "".join(as_alice.bodies)
    assert alices_connection.id in seen  # the answers were read, and held her own row
    for secret in (*bobs_ciphertext, BOB_KEY, BOB_HEADER_VALUE, bobs_connection.id):
        assert secret not in seen


def test_the_apps_store_lists_only_the_signed_in_users_connections(
    supabase_stack, alice, box, alices_connection, bobs_connection
):
    assert [c.id for c in app_store(supabase_stack, alice, box).list()] == [alices_connection.id]


# ---- writing another user's rows -------------------------------------------------------------


def test_a_user_cannot_update_another_users_connection(
    connections_as, supabase_stack, alice, bob, bobs_connection
):
    before = rows_of(supabase_stack, bob.id)

    assert connections_as(alice).update({"base_url": "http://attacker.example/v1",
                                         "api_key": "planted"}, id=bobs_connection.id) == []
    assert connections_as(alice).update({"enabled": False}, user_id=bob.id) == []

    assert rows_of(supabase_stack, bob.id) == before


def test_the_apps_store_cannot_update_or_delete_another_users_connection(
    supabase_stack, alice, bob, box, bobs_connection
):
    as_alice = app_store(supabase_stack, alice, box)
    before = rows_of(supabase_stack, bob.id)

    with pytest.raises(ConnectionChanged) as refused:
        as_alice.update(bobs_connection.id, {"name": "mine now"}, None)
    as_alice.delete(bobs_connection.id)
    as_alice.learn(bobs_connection.id, "no_stream_options")

    assert refused.value.gone  # to alice, bob's connection does not exist
    assert rows_of(supabase_stack, bob.id) == before


def test_a_user_cannot_delete_another_users_connection(
    connections_as, supabase_stack, alice, bob, bobs_connection
):
    assert connections_as(alice).delete(id=bobs_connection.id) == []
    assert connections_as(alice).delete(user_id=bob.id) == []
    assert [row["id"] for row in rows_of(supabase_stack, bob.id)] == [
        uuid.UUID(bobs_connection.id)]


def test_a_user_cannot_insert_a_connection_for_another_user(
    connections_as, supabase_stack, alice, bob, bobs_connection
):
    before = rows_of(supabase_stack, bob.id)

    with pytest.raises(Refused) as refused:
        connections_as(alice).insert({"user_id": bob.id, "name": "planted",
                                      "kind": "openai-compatible",
                                      "base_url": "http://attacker.example/v1"})

    assert refused.value.code == "42501"  # new row violates row-level security policy
    assert rows_of(supabase_stack, bob.id) == before


def test_a_connection_created_without_an_owner_belongs_to_its_creator(
    connections_as, supabase_stack, alice
):
    [row] = connections_as(alice).insert({"name": "mine", "kind": "openai-compatible"})

    assert row["user_id"] == alice.id
    assert len(rows_of(supabase_stack, alice.id)) == 1


@pytest.mark.parametrize("column, value", [
    ("user_id", "bob"),
    ("user_id", "alice"),  # even unchanged: the owner is not a data column
    ("id", "new"),
    ("created_at", "2000-01-01T00:00:00+00:00"),
    ("updated_at", "2000-01-01T00:00:00+00:00"),
])
def test_a_user_cannot_move_their_connection_or_rewrite_its_bookkeeping(
    connections_as, supabase_stack, alice, bob, alices_connection, bobs_connection, column,
    value
):
    value = {"bob": bob.id, "alice": alice.id, "new": str(uuid.uuid4())}.get(value, value)
    before = rows_of(supabase_stack, alice.id), rows_of(supabase_stack, bob.id)

    with pytest.raises(Refused) as refused:
        connections_as(alice).update({"name": "renamed", column: value},
                                     id=alices_connection.id)

    assert refused.value.code == "42501"  # permission denied for table connections
    assert (rows_of(supabase_stack, alice.id), rows_of(supabase_stack, bob.id)) == before


@pytest.mark.parametrize("column", ["id", "created_at", "updated_at"])
def test_a_user_cannot_choose_the_bookkeeping_columns_of_a_connection_they_create(
    connections_as, supabase_stack, alice, column
):
    value = str(uuid.uuid4()) if column == "id" else "2000-01-01T00:00:00+00:00"

    with pytest.raises(Refused) as refused:
        connections_as(alice).insert({"name": "mine", "kind": "openai", column: value})

    assert refused.value.code == "42501"
    assert rows_of(supabase_stack, alice.id) == []


# ---- anonymous requests -----------------------------------------------------------------------


def test_anonymous_requests_see_and_change_nothing(
    connections_as, supabase_stack, bob, bobs_connection
):
    anonymous = connections_as(None)
    before = rows_of(supabase_stack, bob.id)

    attempts = [
        anonymous.select,
        lambda: anonymous.select(id=bobs_connection.id),
        lambda: anonymous.select("api_key,headers", user_id=bob.id),
        lambda: anonymous.update({"name": "anonymous"}, id=bobs_connection.id),
        lambda: anonymous.insert({"user_id": bob.id, "name": "planted", "kind": "openai"}),
        lambda: anonymous.delete(id=bobs_connection.id),
    ]
    for attempt in attempts:
        with pytest.raises(Refused) as refused:
            attempt()
        assert refused.value.code == "42501"  # anon holds no privilege on connections
    assert rows_of(supabase_stack, bob.id) == before


# ---- at rest ------------------------------------------------------------------------------


def test_raw_sql_shows_the_key_and_header_values_only_as_ciphertext(
    supabase_stack, bobs_connection, box
):
    """What a database administrator or a leaked backup sees: psql, as the superuser."""
    psql = supabase_stack.tools.pg_bin / "psql"
    query = ("select api_key, headers from public.connections"
             f" where id = '{bobs_connection.id}'")
    shown = subprocess.run(
        [str(psql), supabase_stack.db_dsn, "--no-psqlrc", "--tuples-only", "--no-align",
         "--field-separator=\t", "--command", query],
        check=True, capture_output=True, text=True, timeout=60,
    ).stdout.strip()

    api_key, headers = shown.split("\t")
    for plain in (BOB_KEY, BOB_HEADER_VALUE, "X-Team"):
        assert plain not in shown
    row = bobs_connection.id  # each sealed for its own column of this row
    assert box.decrypt(api_key, Place("connections", "api_key", row)) == BOB_KEY
    assert json.loads(box.decrypt(headers, Place("connections", "headers", row))) == [
        ["X-Team", BOB_HEADER_VALUE]]


# ---- the trigger functions ------------------------------------------------------------------


@pytest.mark.parametrize("function", ["set_connection_updated_at", "keep_connection_owner",
                                      "limit_connections"])
@pytest.mark.parametrize("caller", ["alice", "anonymous"])
def test_the_connection_trigger_functions_cannot_be_called_through_the_api(
    supabase_stack, alice, function, caller
):
    headers = {"apikey": supabase_stack.anon_key}
    if caller == "alice":
        headers["Authorization"] = f"Bearer {alice.access_token}"
    url = f"{supabase_stack.url}/rest/v1/rpc/{function}"

    for response in (httpx.post(url, headers=headers, json={}), httpx.get(url, headers=headers)):
        assert response.status_code in (401, 403, 404), response.text
        assert response.json()["code"] in ("42501", "PGRST202")  # denied, or not exposed at all
