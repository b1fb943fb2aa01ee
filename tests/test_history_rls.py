"""Row-level security and column grants on `chats` and `messages` through the real PostgREST
(issue 11, acceptance 4): two real users, A (alice) and B (bob), and anonymous requests.

Every test of what a user may do runs twice: over raw HTTP to `/rest/v1/...`, and through
supabase-py. Raw SQL (as the superuser) shows what is at rest.
"""

from __future__ import annotations

import json
import uuid

import httpx
import postgrest
import psycopg
import pytest
import supabase

from core.failures import UserFacingError
from core.history.model import Chat, Message
from core.store.errors import chat_failure
from core.store.supabase import SupabaseChatStore
from tests.test_rls import Account, Refused

BOB_WORD = "zanzibarian"  # in bob's title and messages only
# The calls of 20261207111500_keep_long_messages_and_reply_leases.sql.
REPLY_CALLS = ("append_reply", "read_reply", "settle_abandoned", "take_pieces",
               "add_message_in_pieces", "update_message_in_pieces")


class RawApi:
    """`/rest/v1/` over plain HTTP, as the user whose token it holds (None: anonymous)."""

    def __init__(self, stack, account: Account | None) -> None:
        self.headers = {"apikey": stack.anon_key, "Prefer": "return=representation"}
        if account:
            self.headers["Authorization"] = f"Bearer {account.access_token}"
        self.url = f"{stack.url}/rest/v1"

    def select(self, table: str, **filters: str) -> list[dict]:
        return self._send("GET", table, params={"select": "*", **equal_to(filters)})

    def update(self, table: str, values: dict, **filters: str) -> list[dict]:
        return self._send("PATCH", table, params=equal_to(filters), json=values)

    def insert(self, table: str, values: dict) -> list[dict]:
        return self._send("POST", table, json=values)

    def delete(self, table: str, **filters: str) -> list[dict]:
        return self._send("DELETE", table, params=equal_to(filters))

    def search(self, query: str) -> list[dict]:
        return self.rpc("search_chats", {"query": query, "max": 50})

    def rpc(self, function: str, arguments: dict) -> list[dict]:
        return self._send("POST", f"rpc/{function}", json=arguments)

    def _send(self, method: str, path: str, **request) -> list[dict]:
        response = httpx.request(method, f"{self.url}/{path}", headers=self.headers, **request)
        if response.status_code >= 400:
            raise Refused(response.json().get("code"))
        return response.json()


class SupabasePyApi:
    """The same operations through supabase-py, signed in as the account (None: anonymous)."""

    def __init__(self, stack, account: Account | None) -> None:
        self.client = supabase.create_client(stack.url, stack.anon_key)
        if account:
            self.client.auth.sign_in_with_password(
                {"email": account.email, "password": account.password})

    def select(self, table: str, **filters: str) -> list[dict]:
        return self._run(filtered(self.client.table(table).select("*"), filters))

    def update(self, table: str, values: dict, **filters: str) -> list[dict]:
        return self._run(filtered(self.client.table(table).update(values), filters))

    def insert(self, table: str, values: dict) -> list[dict]:
        return self._run(self.client.table(table).insert(values))

    def delete(self, table: str, **filters: str) -> list[dict]:
        return self._run(filtered(self.client.table(table).delete(), filters))

    def search(self, query: str) -> list[dict]:
        return self.rpc("search_chats", {"query": query, "max": 50})

    def rpc(self, function: str, arguments: dict) -> list[dict]:
        return self._run(self.client.rpc(function, arguments))

    def _run(self, query) -> list[dict]:
        try:
            return query.execute().data
        except postgrest.APIError as error:
            raise Refused(error.code) from error


def equal_to(filters: dict[str, str]) -> dict[str, str]:
    return {column: f"eq.{value}" for column, value in filters.items()}


def filtered(query, filters: dict[str, str]):
    for column, value in filters.items():
        query = query.eq(column, value)
    return query


def app_store(stack, account: Account) -> SupabaseChatStore:
    """The app's own store for `account`: its supabase-py client, signed in as that user."""
    client = supabase.create_client(stack.url, stack.anon_key)
    client.auth.sign_in_with_password({"email": account.email, "password": account.password})
    return SupabaseChatStore(client, account.id)


def everything_of(stack, user_id: str) -> tuple[list[dict], list[dict]]:
    """The user's chats and messages as the database keeps them."""
    return (stack.sql("select * from public.chats where user_id = %s order by id", user_id),
            stack.sql("select * from public.messages where user_id = %s order by id", user_id))


def new_chat(stack, account: Account, title: str, *texts: str) -> tuple[Chat, list[Message]]:
    store = app_store(stack, account)
    chat = store.save_chat(Chat(title=title))
    messages, parent = [], None
    for number, text in enumerate(texts):
        messages.append(store.add_message(Message(chat_id=chat.id, parent_id=parent,
                                                  role=("user", "assistant")[number % 2],
                                                  content=text)))
        parent = messages[-1].id
    return store.save_chat(chat.with_changes(current_id=parent)), messages


@pytest.fixture
def alices(supabase_stack, alice):
    return new_chat(supabase_stack, alice, "Alice's plans", "a question", "an answer")


@pytest.fixture
def bobs(supabase_stack, bob):
    return new_chat(supabase_stack, bob, f"Bob's {BOB_WORD} trip", f"{BOB_WORD} question",
                    f"{BOB_WORD} answer")


@pytest.fixture(params=["raw HTTP", "supabase-py"])
def api_as(request, supabase_stack):
    """The REST API as an account (or None for anonymous) over one transport."""
    if request.param == "raw HTTP":
        return lambda account: RawApi(supabase_stack, account)
    return lambda account: SupabasePyApi(supabase_stack, account)


# ---- reading, listing, searching, exporting ---------------------------------------------------


def test_a_user_reads_and_lists_only_their_own_chats_and_messages(api_as, alice, bob, alices,
                                                                  bobs):
    as_alice = api_as(alice)
    (her_chat, her_messages), (his_chat, his_messages) = alices, bobs

    assert [row["id"] for row in as_alice.select("chats")] == [her_chat.id]
    assert sorted(row["id"] for row in as_alice.select("messages")) == sorted(
        m.id for m in her_messages)
    assert as_alice.select("chats", id=his_chat.id) == []
    assert as_alice.select("chats", user_id=bob.id) == []
    assert as_alice.select("messages", chat_id=his_chat.id) == []
    assert as_alice.select("messages", id=his_messages[0].id) == []


def test_a_user_cannot_search_another_users_chats(api_as, alice, bob, alices, bobs):
    assert api_as(alice).search(BOB_WORD) == []
    assert [row["id"] for row in api_as(bob).search(BOB_WORD)] == [bobs[0].id]


def test_the_apps_store_shows_and_exports_nothing_of_another_user(supabase_stack, alice,
                                                                  alices, bobs):
    """What an export reads (list_chats, get_chat, messages) and search, as alice."""
    as_alice = app_store(supabase_stack, alice)
    his_chat, _ = bobs

    assert [c.id for c in as_alice.list_chats()] == [alices[0].id]
    assert as_alice.get_chat(his_chat.id) is None
    assert as_alice.messages(his_chat.id) == []
    assert as_alice.search(BOB_WORD) == []


# ---- writing another user's rows ------------------------------------------------------------


def test_a_user_cannot_update_another_users_chat_or_messages(api_as, supabase_stack, alice,
                                                             bob, bobs):
    his_chat, his_messages = bobs
    before = everything_of(supabase_stack, bob.id)
    as_alice = api_as(alice)

    assert as_alice.update("chats", {"title": "mine now"}, id=his_chat.id) == []
    assert as_alice.update("chats", {"system_prompt": "leak"}, user_id=bob.id) == []
    assert as_alice.update("messages", {"content": "changed"}, id=his_messages[0].id) == []
    assert as_alice.update("messages", {"status": "failed"}, chat_id=his_chat.id) == []

    assert everything_of(supabase_stack, bob.id) == before


def test_a_user_cannot_delete_another_users_chat_or_messages(api_as, supabase_stack, alice,
                                                             bob, bobs):
    his_chat, his_messages = bobs
    before = everything_of(supabase_stack, bob.id)
    as_alice = api_as(alice)

    assert as_alice.delete("messages", id=his_messages[0].id) == []
    assert as_alice.delete("messages", chat_id=his_chat.id) == []
    assert as_alice.delete("chats", id=his_chat.id) == []
    assert as_alice.delete("chats", user_id=bob.id) == []

    assert everything_of(supabase_stack, bob.id) == before


def test_the_apps_store_cannot_change_another_users_chat(supabase_stack, alice, bob, bobs):
    as_alice = app_store(supabase_stack, alice)
    his_chat, his_messages = bobs
    before = everything_of(supabase_stack, bob.id)

    for attempt in (
        lambda: as_alice.save_chat(his_chat.with_changes(title="mine now")),
        lambda: as_alice.add_message(Message(chat_id=his_chat.id, role="user",
                                             content="planted")),
        lambda: as_alice.add_message(his_messages[0].with_changes(content="planted")),
        lambda: as_alice.update_message(his_messages[0].id, {"content": "changed"}),
    ):
        with pytest.raises(UserFacingError):
            attempt()
    as_alice.delete_chat(his_chat.id)
    assert as_alice.delete_all() == 0

    assert everything_of(supabase_stack, bob.id) == before


def test_a_user_cannot_create_a_chat_for_another_user(api_as, supabase_stack, alice, bob):
    with pytest.raises(Refused) as refused:
        api_as(alice).insert("chats", {"id": str(uuid.uuid4()), "user_id": bob.id,
                                       "title": "planted"})

    assert refused.value.code == "42501"  # new row violates row-level security policy
    assert everything_of(supabase_stack, bob.id) == ([], [])


@pytest.mark.parametrize("owner", ["alice", "bob"])
def test_a_user_cannot_add_a_message_to_another_users_chat_by_its_id(
    api_as, supabase_stack, alice, bob, bobs, owner
):
    his_chat, his_messages = bobs
    before = everything_of(supabase_stack, bob.id)

    with pytest.raises(Refused) as refused:
        api_as(alice).insert("messages", {
            "id": str(uuid.uuid4()), "chat_id": his_chat.id, "role": "user",
            "content": "planted", "parent_id": his_messages[-1].id,
            "user_id": {"alice": alice.id, "bob": bob.id}[owner]})

    assert refused.value.code == "42501"
    assert everything_of(supabase_stack, bob.id) == before
    assert everything_of(supabase_stack, alice.id) == ([], [])


def test_a_message_written_without_an_owner_belongs_to_its_writer(api_as, supabase_stack,
                                                                  alice, alices):
    her_chat, _ = alices

    [row] = api_as(alice).insert("messages", {"id": str(uuid.uuid4()), "chat_id": her_chat.id,
                                              "role": "user", "content": "no owner given"})

    assert row["user_id"] == alice.id


@pytest.mark.parametrize("parent_of", ["bob's chat", "alice's other chat"])
def test_a_user_cannot_set_a_parent_from_another_chat(api_as, supabase_stack, alice, alices,
                                                      bobs, parent_of):
    her_chat, _ = alices
    other = bobs[1][0].id if parent_of == "bob's chat" else new_chat(
        supabase_stack, alice, "other", "elsewhere")[1][0].id
    before = everything_of(supabase_stack, alice.id)

    with pytest.raises(Refused) as refused:
        api_as(alice).insert("messages", {"id": str(uuid.uuid4()), "chat_id": her_chat.id,
                                          "parent_id": other, "role": "assistant",
                                          "content": "grafted"})

    assert refused.value.code == "23503"  # messages_parent_in_chat: (chat, parent) unknown
    assert everything_of(supabase_stack, alice.id) == before


@pytest.mark.parametrize("table, column, value", [
    ("chats", "user_id", "bob"),
    ("chats", "user_id", "alice"),  # even unchanged: the owner is not a data column
    ("chats", "id", "new"),
    ("chats", "created_at", "2000-01-01T00:00:00+00:00"),
    ("chats", "updated_at", "2000-01-01T00:00:00+00:00"),
    ("messages", "user_id", "bob"),
    ("messages", "chat_id", "bob's chat"),
    ("messages", "chat_id", "new"),
    ("messages", "parent_id", "bob's message"),
    ("messages", "id", "new"),
    ("messages", "role", "user"),
    ("messages", "created_at", "2000-01-01T00:00:00+00:00"),
    ("messages", "heartbeat_at", "2000-01-01T00:00:00+00:00"),  # the database's clock only
])
def test_a_user_cannot_move_a_chat_or_message_or_rewrite_its_bookkeeping(
    api_as, supabase_stack, alice, bob, alices, bobs, table, column, value
):
    (her_chat, her_messages), (his_chat, his_messages) = alices, bobs
    value = {"bob": bob.id, "alice": alice.id, "new": str(uuid.uuid4()),
             "bob's chat": his_chat.id, "bob's message": his_messages[0].id}.get(value, value)
    row_id = her_chat.id if table == "chats" else her_messages[-1].id
    data_column = "title" if table == "chats" else "content"
    before = everything_of(supabase_stack, alice.id), everything_of(supabase_stack, bob.id)

    with pytest.raises(Refused) as refused:
        api_as(alice).update(table, {data_column: "changed", column: value}, id=row_id)

    assert refused.value.code == "42501"  # permission denied for the column
    assert (everything_of(supabase_stack, alice.id),
            everything_of(supabase_stack, bob.id)) == before


@pytest.mark.parametrize("table, column", [("chats", "search_vector"),
                                           ("messages", "search_vector"),
                                           ("messages", "heartbeat_at"),
                                           ("messages", "stop_requested")])
def test_a_user_cannot_choose_the_bookkeeping_columns_of_a_new_row(api_as, supabase_stack,
                                                                   alice, alices, table,
                                                                   column):
    value = {"heartbeat_at": "2099-01-01T00:00:00+00:00", "stop_requested": True}.get(
        column, "'planted'")
    row = ({"id": str(uuid.uuid4()), "title": "new"} if table == "chats" else
           {"id": str(uuid.uuid4()), "chat_id": alices[0].id, "role": "user", "content": "x"})
    before = everything_of(supabase_stack, alice.id)

    with pytest.raises(Refused) as refused:
        api_as(alice).insert(table, {**row, column: value})

    assert refused.value.code in ("42501", "428C9")  # denied, or a generated column
    assert everything_of(supabase_stack, alice.id) == before


@pytest.mark.parametrize("table", ["chats", "messages"])
def test_a_new_row_may_carry_its_own_times_and_only_the_writers(api_as, supabase_stack, alice,
                                                                 bob, alices, table):
    """An import gives the times a chat and its messages had (20261126070000); the row is
    still the writer's own, and nobody else's data changes."""
    when = "2000-01-01T00:00:00+00:00"
    row = ({"id": str(uuid.uuid4()), "title": "imported", "created_at": when,
            "updated_at": when} if table == "chats" else
           {"id": str(uuid.uuid4()), "chat_id": alices[0].id, "role": "user",
            "content": "imported", "created_at": when})
    bobs_before = everything_of(supabase_stack, bob.id)
    (stored,) = api_as(alice).insert(table, row)
    assert stored["created_at"].startswith("2000-01-01") and stored["user_id"] == alice.id
    assert everything_of(supabase_stack, bob.id) == bobs_before
    with pytest.raises(Refused):
        api_as(alice).insert(table, {**row, "id": str(uuid.uuid4()), "user_id": bob.id})


def test_not_even_the_superuser_can_move_a_chat_or_message(supabase_stack, alice, bob, alices,
                                                           bobs):
    (her_chat, her_messages), (his_chat, _) = alices, bobs
    for statement, params in [
        ("update public.chats set user_id = %s where id = %s", (bob.id, her_chat.id)),
        ("update public.messages set user_id = %s where id = %s", (bob.id, her_messages[0].id)),
        ("update public.messages set chat_id = %s where id = %s",
         (his_chat.id, her_messages[0].id)),
    ]:
        with pytest.raises(Exception, match="cannot be moved"):
            supabase_stack.sql(statement, *params)
    assert [row["chat_id"] for row in everything_of(supabase_stack, alice.id)[1]] == [
        uuid.UUID(her_chat.id)] * 2


# ---- anonymous requests -------------------------------------------------------------------------


def test_anonymous_requests_see_and_change_nothing(api_as, supabase_stack, bob, bobs):
    anonymous = api_as(None)
    his_chat, his_messages = bobs
    before = everything_of(supabase_stack, bob.id)

    attempts = [
        lambda: anonymous.select("chats"),
        lambda: anonymous.select("messages", chat_id=his_chat.id),
        lambda: anonymous.search(BOB_WORD),
        lambda: anonymous.update("chats", {"title": "anonymous"}, id=his_chat.id),
        lambda: anonymous.update("messages", {"content": "x"}, id=his_messages[0].id),
        lambda: anonymous.insert("chats", {"id": str(uuid.uuid4()), "user_id": bob.id}),
        lambda: anonymous.insert("messages", {"id": str(uuid.uuid4()), "chat_id": his_chat.id,
                                              "user_id": bob.id, "role": "user"}),
        lambda: anonymous.delete("messages", chat_id=his_chat.id),
        lambda: anonymous.delete("chats", id=his_chat.id),
    ]
    for attempt in attempts:
        with pytest.raises(Refused) as refused:
            attempt()
        assert refused.value.code == "42501"  # anon holds no privilege on chats or messages
    assert everything_of(supabase_stack, bob.id) == before


# ---- functions ------------------------------------------------------------------------------


@pytest.mark.parametrize("function", ["set_chat_updated_at", "keep_chat_owner",
                                      "keep_message_place", "touch_chat_of_message",
                                      "move_heartbeat", "index_message_text",
                                      "count_message_pieces"])
@pytest.mark.parametrize("caller", ["alice", "anonymous"])
def test_the_chat_trigger_functions_cannot_be_called_through_the_api(supabase_stack, alice,
                                                                     function, caller):
    headers = {"apikey": supabase_stack.anon_key}
    if caller == "alice":
        headers["Authorization"] = f"Bearer {alice.access_token}"
    url = f"{supabase_stack.url}/rest/v1/rpc/{function}"

    for response in (httpx.post(url, headers=headers, json={}), httpx.get(url, headers=headers)):
        assert response.status_code in (401, 403, 404), response.text
        assert response.json()["code"] in ("42501", "PGRST202")


@pytest.mark.parametrize("function", ["search_chats", *REPLY_CALLS])
def test_the_calls_run_as_their_caller_so_row_level_security_applies(supabase_stack, function):
    [row] = supabase_stack.sql(
        "select prosecdef, proconfig from pg_proc where proname = %s", function)
    assert row["prosecdef"] is False and row["proconfig"] == ["search_path=\"\""]


# ---- a reply as it streams, and long messages in pieces (20261207111500) ---------------------

def make_stale(stack, message_id: str) -> None:
    """As if the reply's writer had gone an hour ago (triggers off for this one write: the
    heartbeat is otherwise the database's own)."""
    with psycopg.connect(stack.db_dsn, autocommit=True) as conn:
        conn.execute("set session_replication_role = replica")
        conn.execute("update public.messages set heartbeat_at = now() - interval '1 hour'"
                     " where id = %s", (message_id,))


@pytest.fixture
def alices_reply(supabase_stack, alice) -> Message:
    """Alice's streaming reply, its writer gone an hour ago."""
    store = app_store(supabase_stack, alice)
    chat = store.save_chat(Chat(title="Alice's reply"))
    reply = store.add_message(Message(chat_id=chat.id, role="assistant", content="mine",
                                      reasoning="hm", status="streaming"))
    make_stale(supabase_stack, reply.id)
    return reply


def test_a_user_cannot_append_to_read_stop_or_settle_another_users_reply(
        api_as, supabase_stack, alice, bob, alices_reply):
    reply = alices_reply
    before = everything_of(supabase_stack, alice.id)
    as_bob = api_as(bob)

    assert as_bob.rpc("append_reply", {"message_id": reply.id, "content_at": 4,
                                       "content": " and bob's", "reasoning_at": 2,
                                       "reasoning": ""}) == []
    assert as_bob.rpc("read_reply", {"message_id": reply.id}) == []
    assert as_bob.update("messages", {"stop_requested": True}, id=reply.id) == []
    assert as_bob.rpc("settle_abandoned", {"chat_id": reply.chat_id, "lease_seconds": 0}) == []

    assert everything_of(supabase_stack, alice.id) == before
    # Alice herself: the same calls reach her reply.
    as_alice = api_as(alice)
    [read] = as_alice.rpc("read_reply", {"message_id": reply.id, "content_at": 2})
    assert (read["content"], read["content_length"], read["quiet_seconds"] > 3000) == (
        "ne", 4, True)
    assert as_alice.update("messages", {"stop_requested": True}, id=reply.id)[0][
        "stop_requested"] is True
    assert as_alice.rpc("settle_abandoned", {"chat_id": reply.chat_id,
                                             "lease_seconds": 15}) == [{"id": reply.id}]


def test_a_stop_request_leaves_the_heartbeat_and_every_other_column_as_it_was(
        api_as, supabase_stack, alice, alices_reply):
    [before] = supabase_stack.sql("select * from public.messages where id = %s",
                                  alices_reply.id)

    api_as(alice).update("messages", {"stop_requested": True}, id=alices_reply.id)

    [after] = supabase_stack.sql("select * from public.messages where id = %s",
                                 alices_reply.id)
    assert after == {**before, "stop_requested": True}


def test_the_heartbeat_is_the_databases_whatever_a_writer_gives(supabase_stack, alice,
                                                                 alices_reply):
    """Even the superuser's own value is replaced, on insert and on each streaming write."""
    future = "2099-01-01T00:00:00+00:00"
    supabase_stack.sql("update public.messages set heartbeat_at = %s, content = 'x'"
                       " where id = %s", future, alices_reply.id)
    [row] = supabase_stack.sql("select heartbeat_at < now() + interval '1 minute' as now_ish,"
                               " heartbeat_at > now() - interval '1 minute' as recent"
                               " from public.messages where id = %s", alices_reply.id)
    assert row == {"now_ish": True, "recent": True}


@pytest.mark.parametrize("call, arguments", [
    ("append_reply", {"message_id": "{reply}", "content_at": 4, "content": "x",
                      "reasoning_at": 2, "reasoning": ""}),
    ("read_reply", {"message_id": "{reply}"}),
    ("settle_abandoned", {"chat_id": "{chat}", "lease_seconds": 0}),
    ("take_pieces", {"upload": "{upload}", "pieces": 1}),
    ("add_message_in_pieces", {"message": {"id": "{new}", "chat_id": "{chat}", "role": "user"},
                               "upload": "{upload}", "pieces": 1}),
    ("update_message_in_pieces", {"message_id": "{reply}", "changes": {"content": ""},
                                  "upload": "{upload}", "pieces": 1}),
])
def test_anonymous_requests_cannot_call_the_reply_and_piece_functions(
        supabase_stack, alice, alices_reply, call, arguments):
    names = {"{reply}": alices_reply.id, "{chat}": alices_reply.chat_id,
             "{upload}": str(uuid.uuid4()), "{new}": str(uuid.uuid4())}
    arguments = json.loads(json.dumps(arguments), object_hook=lambda d: {
        k: names.get(v, v) if isinstance(v, str) else v for k, v in d.items()})
    before = everything_of(supabase_stack, alice.id)

    for anonymous in (RawApi(supabase_stack, None), SupabasePyApi(supabase_stack, None)):
        with pytest.raises(Refused) as refused:
            anonymous.rpc(call, arguments)
        assert refused.value.code == "42501"

    assert everything_of(supabase_stack, alice.id) == before


def alices_piece(supabase_stack, alice, upload: str) -> list[dict]:
    RawApi(supabase_stack, alice).insert("message_pieces", {"upload_id": upload, "seq": 0,
                                                            "content": "alice's text"})
    return supabase_stack.sql("select * from public.message_pieces where upload_id = %s",
                              upload)


def test_a_user_can_neither_read_nor_take_another_users_pieces(api_as, supabase_stack, alice,
                                                               bob, bobs):
    upload = str(uuid.uuid4())
    hers = alices_piece(supabase_stack, alice, upload)
    as_bob = api_as(bob)
    his_chat, _ = bobs
    bobs_before = everything_of(supabase_stack, bob.id)

    assert as_bob.select("message_pieces") == []
    assert as_bob.select("message_pieces", upload_id=upload) == []
    assert as_bob.delete("message_pieces", upload_id=upload) == []
    for taking in (
        lambda: as_bob.rpc("take_pieces", {"upload": upload, "pieces": 1}),
        lambda: as_bob.rpc("add_message_in_pieces", {
            "message": {"id": str(uuid.uuid4()), "chat_id": his_chat.id, "role": "user"},
            "upload": upload, "pieces": 1}),
    ):
        with pytest.raises(Refused) as refused:
            taking()
        assert refused.value.code == "SB055"  # none of his pieces has that upload id

    assert supabase_stack.sql("select * from public.message_pieces where upload_id = %s",
                              upload) == hers
    assert everything_of(supabase_stack, bob.id) == bobs_before


def test_a_user_cannot_stage_a_piece_as_another_user(api_as, supabase_stack, alice, bob):
    upload = str(uuid.uuid4())
    hers = alices_piece(supabase_stack, alice, upload)

    with pytest.raises(Refused) as refused:
        api_as(bob).insert("message_pieces", {"user_id": alice.id, "upload_id": upload,
                                              "seq": 1, "content": "planted"})
    assert refused.value.code == "42501"
    # His own piece under the same upload id is his alone: hers are untouched.
    api_as(bob).insert("message_pieces", {"upload_id": upload, "seq": 0, "content": "his"})
    assert supabase_stack.sql("select * from public.message_pieces where upload_id = %s"
                              " and user_id = %s", upload, alice.id) == hers


def test_anonymous_requests_cannot_reach_the_pieces(supabase_stack, alice):
    upload = str(uuid.uuid4())
    hers = alices_piece(supabase_stack, alice, upload)
    for anonymous in (RawApi(supabase_stack, None), SupabasePyApi(supabase_stack, None)):
        for attempt in (lambda: anonymous.select("message_pieces"),
                        lambda: anonymous.insert("message_pieces", {
                            "upload_id": upload, "seq": 1, "content": "x"}),
                        lambda: anonymous.delete("message_pieces", upload_id=upload)):
            with pytest.raises(Refused) as refused:
                attempt()
            assert refused.value.code == "42501"
    assert supabase_stack.sql("select * from public.message_pieces where upload_id = %s",
                              upload) == hers


def test_a_piece_gone_missing_is_said_for_the_user_and_nothing_is_written(supabase_stack,
                                                                          alice, alices_reply):
    """Two pieces announced, one staged (a session of the same user removed the other, or a
    day passed): the call writes nothing, and the app says so in plain words."""
    upload = str(uuid.uuid4())
    alices_piece(supabase_stack, alice, upload)
    before = everything_of(supabase_stack, alice.id)
    client = app_store(supabase_stack, alice).client

    with pytest.raises(postgrest.APIError) as raised:
        client.rpc("update_message_in_pieces", {
            "message_id": alices_reply.id, "changes": {"content": ""}, "upload": upload,
            "pieces": 2}).execute()

    assert str(chat_failure(raised.value)) == (
        "A long message is sent to the database in pieces, and a piece of this one did not "
        "arrive. Try again. Nothing was saved.")
    assert everything_of(supabase_stack, alice.id) == before
