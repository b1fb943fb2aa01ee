"""Every secret at rest is bound to its table, column and row, and the connection rules hold
wherever a connection is used, not only in the form.

The attack: a user saves a connection whose key is a JSON list of header pairs, then copies
that ciphertext into the row's `headers` column (the REST API lets users write their own
rows), hoping the server sends headers the form refuses (Host, Content-Length,
Transfer-Encoding). A loopback server records what really arrives. The same is tried on the
local SQLite store, written with sqlite3 directly, and every header and base-URL rule is tried
on rows written straight through the REST API, sealed with the test's own key.
"""

from __future__ import annotations

import json
import os
import socketserver
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass

import pytest
import supabase
from cryptography.fernet import Fernet

from core.chat.call import Reply, start_reply
from core.chat.client import connection_for
from core.chat.discovery import DiscoveryError, list_models
from core.config import load_settings
from core.failures import UserFacingError
from core.forms import check_connection, draft_target, saved_form
from core.providers.connections import (
    MAX_HEADERS,
    RESERVED_HEADERS,
    Connection,
    connection_problems,
    describe_unreadable_secrets,
    target_for,
    targets,
)
from core.providers.profile import Profile
from core.providers.seed import seed_connections
from core.store.errors import StoreUnavailable
from core.store.keybox import (
    BOUND_PREFIX,
    EncryptedConnectionStore,
    EncryptedProfileStore,
    KeyBox,
    Place,
    describe_unreadable_key,
    keybox_for,
)
from core.store.sqlite import DB_FILENAME, SQLiteConnectionStore, SQLiteProfileStore
from core.store.supabase import SupabaseConnectionStore, SupabaseProfileStore
from tests.test_connections_rls import RawConnections
from tests.test_rls import RawProfiles, Refused, new_account

SMUGGLED = [["Host", "evil.example"], ["Content-Length", "0"], ["Transfer-Encoding", "chunked"]]
KEY_OF_HEADERS = json.dumps(SMUGGLED, separators=(",", ":"))  # a valid key: no spaces, ASCII
OWN_KEY = "sk-own-profile-key-0123456789"
BUG = "Switchboard itself failed"
ROW = "3f6b1c2a-9d8e-4f7a-b6c5-d4e3f2a1b0c9"


# ---- a loopback server that keeps what it receives ---------------------------------------


@dataclass(frozen=True)
class Received:
    request_line: str
    headers: tuple[tuple[str, str], ...]  # as sent, in order
    body: bytes

    def values(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key.lower() == name.lower()]


class _Recorder(socketserver.StreamRequestHandler):
    """Reads one request head as raw lines, keeps it, answers as a tiny OpenAI-compatible
    server would (one model "m"; a one-word streamed reply), and closes."""

    def handle(self) -> None:
        line = self.rfile.readline(65537)
        if not line.strip():
            return
        headers = []
        while (raw := self.rfile.readline(65537)) not in (b"\r\n", b"\n", b""):
            name, _, value = raw.decode("latin-1").partition(":")
            headers.append((name.strip(), value.strip()))
        lengths = [v for n, v in headers if n.lower() == "content-length" and v.isdigit()]
        body = self.rfile.read(int(lengths[0])) if len(lengths) == 1 else b""
        self.server.received.append(Received(line.decode("latin-1").strip(), tuple(headers), body))
        if "/models" in line.decode("latin-1"):
            answer, kind = json.dumps({"object": "list", "data": [{"id": "m"}]}).encode(), \
                "application/json"
        else:
            chunk = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m",
                     "choices": [{"index": 0, "delta": {"content": "hi"},
                                  "finish_reason": "stop"}]}
            answer, kind = f"data: {json.dumps(chunk)}\n\ndata: [DONE]\n\n".encode(), \
                "text/event-stream"
        self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: " + kind.encode()
                         + b"\r\nContent-Length: " + str(len(answer)).encode()
                         + b"\r\nConnection: close\r\n\r\n" + answer)


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Recorder)
        self.received: list[Received] = []


@pytest.fixture
def server() -> Iterator[_Server]:
    listening = _Server()
    thread = threading.Thread(target=listening.serve_forever, daemon=True)
    thread.start()
    try:
        yield listening
    finally:
        listening.shutdown()
        listening.server_close()


def base_url(server: _Server) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}/v1"


def assert_only_what_the_app_sets(server: _Server, key: str) -> None:
    """Every request that arrived carries the app's own headers only, once each: the real
    Host, the body's true length, the connection's key, and nothing smuggled."""
    assert server.received, "nothing was sent"
    host = f"127.0.0.1:{server.server_address[1]}"
    for request in server.received:
        names = [name.lower() for name, _ in request.headers]
        assert len(names) == len(set(names)), request.headers
        assert request.values("Host") == [host]
        assert request.values("Transfer-Encoding") == []
        if request.request_line.startswith("POST"):
            assert request.values("Content-Length") == [str(len(request.body))]
            assert request.body
        assert request.values("Authorization") == [f"Bearer {key}"]
        others = [pair for pair in request.headers if pair[0].lower() != "authorization"]
        assert "evil" not in json.dumps(others)


# ---- how the app uses a connection -------------------------------------------------------


def chat(settings, target) -> Reply:
    reply = Reply()
    list(start_reply(settings, target, [{"role": "user", "content": "hello"}], reply))
    return reply


def used_everywhere(settings, connection: Connection) -> list[str]:
    """Use `connection` as the app does (Chat with what it offers, Settings' Fetch models and
    Test connection on the saved form) and, past them, as any other path could (a request
    built from the connection directly). What the user was told, one text per use."""
    limits, http = connection_for(settings)
    said = []
    for target in targets([connection]):  # Chat's model list
        reply = chat(settings, target)
        said.append(reply.error or "")
    checked = draft_target(connection, saved_form(connection))
    direct = target_for(connection, connection.default_model or "m")
    for target in (t for t in (checked, direct) if t is not None):
        said.append(check_connection(target, limits, http).summary)
        try:
            list_models(target, limits, http)
        except DiscoveryError as exc:
            said.append(str(exc))
    said.append(chat(settings, direct).error or "")
    return said


def settings_now():
    return load_settings(environ=os.environ, dotenv_path=None)


# ---- the keybox itself -------------------------------------------------------------------


def _box(*secrets: str) -> KeyBox:
    return KeyBox(list(secrets))


def test_a_sealed_secret_opens_only_in_its_own_table_column_and_row():
    box = _box(Fernet.generate_key().decode())
    here = Place("connections", "api_key", ROW)
    token = box.encrypt(KEY_OF_HEADERS, here)

    assert token.startswith(BOUND_PREFIX) and "Host" not in token
    assert box.decrypt(token, here) == KEY_OF_HEADERS
    assert box.decrypt(token, Place("connections", "headers", ROW)) is None
    assert box.decrypt(token, Place("connections", "api_key", ROW[::-1])) is None
    assert box.decrypt(token, Place("profiles", "api_key", ROW)) is None
    assert box.encrypt(KEY_OF_HEADERS, here) != token  # a fresh nonce each time
    with pytest.raises(ValueError):
        box.encrypt("x", Place("connections", "api_key", ""))  # never bound to no row


def test_a_damaged_token_reads_as_unreadable():
    box = _box(Fernet.generate_key().decode())
    here = Place("profiles", "openai_api_key", ROW)
    token = box.encrypt(OWN_KEY, here)
    flipped = token[:-3] + ("A" if token[-3] != "A" else "B") + token[-2:]
    for damaged in (flipped, token[:20], BOUND_PREFIX, BOUND_PREFIX + "!!!", "gAAAAAnot-fernet",
                    "é" * 10):
        assert box.decrypt(damaged, here) is None


def test_a_token_of_an_earlier_release_is_still_read_wherever_it_is():
    """Fernet tokens bound to nothing, as earlier releases wrote them, keep working (they stay
    movable until their row is saved again: see the store tests below)."""
    secret = Fernet.generate_key().decode()
    legacy = Fernet(secret.encode()).encrypt(OWN_KEY.encode()).decode()
    box = _box(secret)

    assert KeyBox.is_legacy(legacy) and not KeyBox.is_legacy(box.encrypt("k", Place("t", "c", "r")))
    assert box.decrypt(legacy, Place("profiles", "openai_api_key", ROW)) == OWN_KEY
    assert box.decrypt(legacy, Place("connections", "headers", ROW)) == OWN_KEY
    assert _box(Fernet.generate_key().decode()).decrypt(legacy, Place("t", "c", "r")) is None


def test_rotation_seals_with_the_first_secret_and_opens_with_any():
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    here = Place("connections", "headers", ROW)
    sealed_before = _box(old).encrypt(OWN_KEY, here)
    legacy_before = Fernet(old.encode()).encrypt(OWN_KEY.encode()).decode()
    rotating = _box(new, old)

    assert rotating.decrypt(sealed_before, here) == OWN_KEY
    assert rotating.decrypt(legacy_before, here) == OWN_KEY
    sealed_now = rotating.encrypt(OWN_KEY, here)
    assert _box(new).decrypt(sealed_now, here) == OWN_KEY
    assert _box(old).decrypt(sealed_now, here) is None
    for token in (sealed_before, legacy_before):
        rotated = rotating.encrypt(rotating.decrypt(token, here), here)
        assert rotated.startswith(BOUND_PREFIX) and _box(new).decrypt(rotated, here) == OWN_KEY
    assert _box(new).decrypt(sealed_before, here) is None  # once the old secret is gone


# ---- the local store -----------------------------------------------------------------------


def _local(settings):
    box = keybox_for(settings)
    return (EncryptedProfileStore(SQLiteProfileStore(settings.data_dir), box),
            EncryptedConnectionStore(SQLiteConnectionStore(settings.data_dir), box))


def _sql(settings, statement: str, *values) -> list[tuple]:
    with closing(sqlite3.connect(settings.data_dir / DB_FILENAME)) as db, db:
        return db.execute(statement, values).fetchall()


def _moved_headers_are_never_sent(settings, server, listed) -> None:
    """Gateway's and Other's headers hold a key sealed for another column: read as unreadable,
    said so, and each use sends only what the app sets (its own key), never our-bug words."""
    for name, key in (("Gateway", KEY_OF_HEADERS), ("Other", OWN_KEY)):
        connection = listed[name]
        assert connection.unreadable == {"headers"} and connection.headers == ()
        assert "saved headers" in describe_unreadable_secrets(connection)
        server.received.clear()
        said = used_everywhere(settings, connection)
        assert_only_what_the_app_sets(server, key)
        assert not any(BUG in text for text in said), said


def test_local_a_key_copied_into_the_headers_column_is_never_sent_as_headers(server):
    settings = settings_now()
    _, connections = _local(settings)
    gateway = connections.add(Connection(name="Gateway", base_url=base_url(server),
                                         api_key=KEY_OF_HEADERS, models=("m",)))
    other = connections.add(Connection(name="Other", base_url=base_url(server),
                                       api_key=OWN_KEY, models=("m",)))
    [(sealed_key,)] = _sql(settings, "select api_key from connections where id = ?", gateway.id)
    for row in (gateway.id, other.id):  # its own row's headers, and another row's
        _sql(settings, "update connections set headers = ? where id = ?", sealed_key, row)

    listed = {c.name: c for c in connections.list()}
    _moved_headers_are_never_sent(settings, server, listed)


def test_local_a_key_copied_into_another_column_or_table_is_never_sent(server):
    settings = settings_now()
    profiles, connections = _local(settings)
    profiles.save(Profile(openai_api_key=OWN_KEY, openai_compatible_base_url=base_url(server)))
    gateway = connections.add(Connection(name="Gateway", base_url=base_url(server),
                                         api_key=KEY_OF_HEADERS, models=("m",)))
    [(connection_key,)] = _sql(settings, "select api_key from connections where id = ?",
                               gateway.id)
    [(profile_key,)] = _sql(settings, "select openai_api_key from profiles")
    _sql(settings, "update profiles set openai_compatible_api_key = ?", connection_key)
    _sql(settings, "update connections set api_key = ? where id = ?", profile_key, gateway.id)

    profile = profiles.load()
    assert profiles.unreadable_keys == ("openai_compatible_api_key",)
    assert profile.openai_compatible_api_key == "" and profile.openai_api_key == OWN_KEY
    assert "cannot be read" in describe_unreadable_key("openai_compatible_api_key", settings)
    offered = targets(seed_connections(profile, {}, profiles.unreadable_keys))
    assert [t.provider_id for t in offered if t.provider_id == "openai-compatible"] == []
    [gateway] = connections.list()
    assert gateway.unreadable == {"api_key"} and targets([gateway]) == []
    assert server.received == []


def test_local_secrets_of_an_earlier_release_are_read_then_bound_when_their_row_is_saved():
    settings = settings_now()
    profiles, connections = _local(settings)
    legacy = Fernet(settings_secret(settings).encode())
    profiles.save(Profile(display_name="Ada"))
    _sql(settings, "update profiles set openai_api_key = ?",
         legacy.encrypt(OWN_KEY.encode()).decode())
    gateway = connections.add(Connection(name="Gateway", base_url="http://127.0.0.1:9/v1",
                                         models=("m",)))
    headers = json.dumps([["X-Team", "blue"]])
    _sql(settings, "update connections set api_key = ?, headers = ? where id = ?",
         legacy.encrypt(OWN_KEY.encode()).decode(), legacy.encrypt(headers.encode()).decode(),
         gateway.id)

    assert profiles.load().openai_api_key == OWN_KEY  # read as before
    [gateway] = connections.list()
    assert (gateway.api_key, gateway.headers) == (OWN_KEY, (("X-Team", "blue"),))
    profiles.save(profiles.load())  # nothing changed: nothing written
    assert not _sql(settings, "select openai_api_key from profiles")[0][0].startswith(BOUND_PREFIX)

    profiles.save(profiles.load().with_changes(display_name="Ada L."))
    connections.update(gateway.id, {"name": "Gateway 2"}, gateway.version)

    [(profile_key,)] = _sql(settings, "select openai_api_key from profiles")
    [(key, sealed_headers)] = _sql(settings, "select api_key, headers from connections")
    assert all(t.startswith(BOUND_PREFIX) for t in (profile_key, key, sealed_headers))
    assert profiles.load().openai_api_key == OWN_KEY
    [gateway] = connections.list()
    assert (gateway.api_key, gateway.headers) == (OWN_KEY, (("X-Team", "blue"),))


def settings_secret(settings) -> str:
    return (settings.data_dir / "encryption.key").read_text().strip()


def test_local_a_refused_header_of_an_earlier_release_is_never_sent(server):
    """A token bound to nothing is still read where it was put: the rules where the request
    is built keep what they refuse from being sent, and say which setting to fix."""
    settings = settings_now()
    _, connections = _local(settings)
    gateway = connections.add(Connection(name="Gateway", base_url=base_url(server),
                                         models=("m",)))
    legacy = Fernet(settings_secret(settings).encode()).encrypt(KEY_OF_HEADERS.encode())
    _sql(settings, "update connections set headers = ? where id = ?", legacy.decode(),
         gateway.id)

    [gateway] = connections.list()
    assert gateway.header_names == ("Host", "Content-Length", "Transfer-Encoding")
    said = used_everywhere(settings, gateway)
    assert server.received == []
    assert said and all("custom headers" in text and BUG not in text for text in said), said


class _FailingUpdates(SQLiteConnectionStore):
    def update(self, *args, **kwargs):
        raise StoreUnavailable("The store went away.", "busy")


def test_a_connection_whose_secrets_cannot_be_written_is_not_left_behind():
    settings = settings_now()
    store = EncryptedConnectionStore(_FailingUpdates(settings.data_dir), keybox_for(settings))
    with pytest.raises(UserFacingError, match="went away"):
        store.add(Connection(name="Gateway", base_url="http://127.0.0.1:9/v1", api_key=OWN_KEY))
    assert store.list() == []


# ---- through the REST API ----------------------------------------------------------------


def _signed_in(stack, account):
    client = supabase.create_client(stack.url, stack.anon_key)
    client.auth.sign_in_with_password({"email": account.email, "password": account.password})
    return client


def _hosted(stack, account, box):
    client = _signed_in(stack, account)
    return (EncryptedProfileStore(SupabaseProfileStore(client, account.id), box),
            EncryptedConnectionStore(SupabaseConnectionStore(client, account.id), box))


@pytest.fixture
def loopback_allowed(supabase_mode, monkeypatch):
    """Supabase mode, the operator allowing the loopback server (as SWITCHBOARD_ALLOWED_HOSTS
    would for a gateway on the same machine)."""
    monkeypatch.setenv("SWITCHBOARD_ALLOWED_HOSTS", "127.0.0.1")
    return supabase_mode


def test_supabase_a_key_copied_through_the_api_into_headers_is_never_sent_as_headers(
        loopback_allowed, server):
    stack, settings = loopback_allowed, settings_now()
    alice = new_account(stack)
    profiles, connections = _hosted(stack, alice, keybox_for(settings))
    gateway = connections.add(Connection(name="Gateway", base_url=base_url(server),
                                         api_key=KEY_OF_HEADERS, models=("m",)))
    other = connections.add(Connection(name="Other", base_url=base_url(server),
                                       api_key=OWN_KEY, models=("m",)))
    profiles.save(Profile(openai_api_key=OWN_KEY, openai_compatible_base_url=base_url(server)))
    as_alice = RawConnections(stack, alice)
    [row] = as_alice.select("api_key", id=gateway.id)
    [profile_row] = RawProfiles(stack, alice.access_token).select(alice.id)

    as_alice.update({"headers": row["api_key"]}, id=gateway.id)  # its own row's headers
    as_alice.update({"headers": row["api_key"]}, id=other.id)  # another row's
    RawProfiles(stack, alice.access_token).update(  # another table's key column
        alice.id, {"openai_compatible_api_key": row["api_key"]})
    third = connections.add(Connection(name="Third", base_url=base_url(server),
                                       api_key="sk-third-0123456789", models=("m",)))
    as_alice.update({"api_key": profile_row["openai_api_key"]}, id=third.id)  # and back

    listed = {c.name: c for c in connections.list()}
    _moved_headers_are_never_sent(settings, server, listed)

    assert listed["Third"].unreadable == {"api_key"} and targets([listed["Third"]]) == []
    profile = profiles.load()
    assert profiles.unreadable_keys == ("openai_compatible_api_key",)
    assert profile.openai_api_key == OWN_KEY
    server.received.clear()
    offered = targets(seed_connections(profile, {}, profiles.unreadable_keys))
    assert all(t.provider_id != "openai-compatible" for t in offered)
    assert server.received == []


# Every header rule of the form, each as the only custom header of a row written straight
# through the REST API, sealed for its place with the deployment's own secret.
HEADER_CASES = {
    "empty name": [["", "v"]],
    "not a token": [["Bad Name", "v"]],
    "name too long": [["X" * 101, "v"]],
    **{f"reserved {name}": [[name.title(), "1"]] for name in sorted(RESERVED_HEADERS)},
    "proxy-": [["Proxy-Route", "internal"]],
    "sec-": [["Sec-Fetch-Site", "same-origin"]],
    "carriage return": [["X-A", "a\rInjected: 1"]],
    "line feed": [["X-A", "a\nInjected: 1"]],
    "value too long": [["X-A", "v" * 1001]],
    "not ASCII": [["X-A", "café"]],
    "control character": [["X-A", "a\x01b"]],
    "given twice": [["X-A", "1"], ["x-a", "2"]],
    "too many": [[f"X-H{i}", "v"] for i in range(MAX_HEADERS + 1)],
}

# Every base-URL rule, each pointing at the loopback server where the URL can.
URL_CASES = {
    "empty": "",
    "space": "http://127.0.0.1:{port}/v 1",
    "control character": "http://127.0.0.1:{port}/v1\x07",
    "invisible character": "http://127.0.0.1:{port}/\u200bv1",
    "unparseable": "http://[127.0.0.1:{port}/v1",
    "port out of range": "http://127.0.0.1:99999/v1",
    "port zero": "http://127.0.0.1:0/v1",
    "not http": "ftp://127.0.0.1:{port}/v1",
    "credentials inside": "http://user:secret@127.0.0.1:{port}/v1",
    "no host": "http:///v1",
    "not a host name": "http://bad!host:{port}/v1",
    "not an IP address": "http://0177.0.0.1:{port}/v1",
    "query string": "http://127.0.0.1:{port}/v1?debug=1",
    "empty query": "http://127.0.0.1:{port}/v1?",
    "fragment": "http://127.0.0.1:{port}/v1#top",
}


@pytest.fixture(scope="module")
def owner(supabase_stack):
    return new_account(supabase_stack)


def _written_through_the_api(stack, account, values: dict, headers=None) -> str:
    """A row inserted as `account` through PostgREST, its headers sealed for that row with
    the deployment's secret; its id."""
    as_owner = RawConnections(stack, account)
    [row] = as_owner.insert({"kind": "openai-compatible", "models": ["m"], **values})
    if headers is not None:
        box = KeyBox(os.environ["SWITCHBOARD_ENCRYPTION_KEYS"].split(","))
        sealed = box.encrypt(json.dumps(headers), Place("connections", "headers", row["id"]))
        as_owner.update({"headers": sealed}, id=row["id"])
    return row["id"]


def _the_apps_view(stack, account, settings, row_id: str) -> Connection:
    _, connections = _hosted(stack, account, keybox_for(settings))
    return next(c for c in connections.list() if c.id == row_id)


@pytest.mark.parametrize("headers", list(HEADER_CASES.values()), ids=list(HEADER_CASES))
def test_supabase_every_header_rule_holds_wherever_the_connection_is_used(
        loopback_allowed, owner, server, headers):
    stack, settings = loopback_allowed, settings_now()
    row_id = _written_through_the_api(
        stack, owner, {"name": f"headers {os.urandom(4).hex()}", "base_url": base_url(server),
                       "api_key": ""}, headers)
    try:
        connection = _the_apps_view(stack, owner, settings, row_id)
        assert connection.headers == tuple(map(tuple, headers)) and not connection.unreadable
        assert connection_problems(connection)  # the form refuses it

        said = used_everywhere(settings, connection)

        assert server.received == []
        assert said and all("custom headers" in text and BUG not in text for text in said), said
    finally:
        RawConnections(stack, owner).delete(id=row_id)


@pytest.mark.parametrize("url", list(URL_CASES.values()), ids=list(URL_CASES))
def test_supabase_every_base_url_rule_holds_wherever_the_connection_is_used(
        loopback_allowed, owner, server, url):
    stack, settings = loopback_allowed, settings_now()
    url = url.format(port=server.server_address[1])
    row_id = _written_through_the_api(
        stack, owner, {"name": f"url {os.urandom(4).hex()}", "base_url": url,
                       "api_key": "", "default_model": "m"})
    try:
        connection = _the_apps_view(stack, owner, settings, row_id)
        assert connection.base_url == url
        problems = connection_problems(connection)
        assert any(p.startswith(("Base URL", "The base URL")) for p in problems)

        said = used_everywhere(settings, connection)

        assert server.received == []  # no request at all
        assert said and all("base URL" in text and BUG not in text for text in said), said
    finally:
        RawConnections(stack, owner).delete(id=row_id)


def test_supabase_a_base_url_past_the_rules_length_is_refused_by_the_database(
        supabase_mode, owner):
    with pytest.raises(Refused):
        _written_through_the_api(supabase_mode, owner, {
            "name": "too long", "base_url": "http://127.0.0.1/" + "v" * 1000, "api_key": ""})
