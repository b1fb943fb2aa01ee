"""Row-level security and column grants on `chats` and `messages` through the real PostgREST
(issue 11, acceptance 4): two real users, A (alice) and B (bob), and anonymous requests.

Every test of what a user may do runs twice: over raw HTTP to `/rest/v1/...`, and through
supabase-py. Raw SQL (as the superuser) shows what is at rest.
"""

from __future__ import annotations

import uuid

import httpx
import postgrest
import pytest
import supabase

from core.failures import UserFacingError
from core.history.model import Chat, Message
from core.store.supabase import SupabaseChatStore
from tests.test_rls import Account, Refused

BOB_WORD = "zanzibarian"  # in bob's title and messages only


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
        return self._send("POST", "rpc/search_chats", json={"query": query, "max": 50})

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
        return self._run(self.client.rpc("search_chats", {"query": query, "max": 50}))

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
                                           ("messages", "search_vector")])
def test_a_user_cannot_choose_the_bookkeeping_columns_of_a_new_row(api_as, supabase_stack,
                                                                   alice, alices, table,
                                                                   column):
    value = "2000-01-01T00:00:00+00:00" if column.endswith("_at") else "'planted'"
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
                                      "keep_message_place", "touch_chat_of_message"])
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


def test_search_runs_as_its_caller_so_row_level_security_applies(supabase_stack):
    [row] = supabase_stack.sql(
        "select prosecdef, proconfig from pg_proc where proname = 'search_chats'")
    assert row["prosecdef"] is False and row["proconfig"] == ["search_path=\"\""]
