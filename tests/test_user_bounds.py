"""Each user's bounds, enforced by the database itself with the app's own limits, the same in
both stores: a connection's model names at most MAX_MODEL_NAME_LENGTH characters; at most
MAX_CHATS_PER_USER chats, MAX_MESSAGES_PER_USER messages and MAX_BYTES_PER_USER bytes of text
per user; and (Supabase) at most NEW_ROWS_AT_ONCE new chats and messages at once, refilled at
NEW_ROWS_PER_SECOND.

Through the real PostgREST with two real users, A (alice) and B (bob), over raw HTTP and
through supabase-py: a bound refuses its own user's write and says which bound; it never
refuses, or says anything about, another user's. Then the app's stores (SQLite and Supabase)
say the same words, and a database already holding more than a bound allows is upgraded
without failing, its rows kept. Totals near a bound are set directly (as the superuser) where
writing that many rows through the API would take the test minutes.
"""

from __future__ import annotations

import sqlite3
import uuid
from contextlib import closing

import httpx
import psycopg
import pytest
import supabase

from core.failures import UserFacingError
from core.history.model import Chat, Message
from core.providers.connections import MAX_MODEL_NAME_LENGTH, MAX_MODELS, Connection
from core.store.errors import (
    MAX_BYTES_PER_USER,
    MAX_CHATS_PER_USER,
    MAX_MESSAGES_PER_USER,
)
from core.store import sqlite as store_sqlite
from core.store.sqlite import DB_FILENAME, SQLiteChatStore, SQLiteConnectionStore
from core.store.supabase import SupabaseConnectionStore
from tests.fixtures.common import REPO
from tests.test_history_rls import RawApi, SupabasePyApi, app_store
from tests.test_rls import Account, Refused, new_account

BOUNDS_MIGRATION = "20261207063100_bound_each_user.sql"
MIGRATIONS = sorted(path.name for path in (REPO / "supabase" / "migrations").glob("*.sql"))
CHECK, ROW_SECURITY = "23514", "42501"
CHATS_BOUND, MESSAGES_BOUND, BYTES_BOUND, RATE_BOUND = "SB051", "SB052", "SB053", "SB054"
# New chats and messages at once, then a second (the migration's rate bound; Supabase only:
# the local file's one user crowds out nobody).
NEW_ROWS_AT_ONCE, NEW_ROWS_PER_SECOND = 2_000, 200


@pytest.fixture(params=["raw HTTP", "supabase-py"])
def api_as(request, supabase_stack):
    """The REST API as an account (None: anonymous) over one transport."""
    if request.param == "raw HTTP":
        return lambda account: RawApi(supabase_stack, account)
    return lambda account: SupabasePyApi(supabase_stack, account)


def totals_of(database, user_id) -> dict | None:
    rows = database.sql("select chats, messages, bytes from public.user_totals"
                        " where user_id = %s", user_id)
    return rows[0] if rows else None


def set_totals(database, user_id, **values) -> None:
    """Stand-in for a user who already stores that much (as the superuser)."""
    assignments = ", ".join(f"{column} = %s" for column in values)
    database.sql(f"update public.user_totals set {assignments} where user_id = %s",
                 *values.values(), user_id)


def recount(database, user_id) -> dict:
    """The user's totals counted afresh from the rows themselves."""
    [row] = database.sql(
        "select (select count(*) from public.chats where user_id = %s) as chats,"
        " (select count(*) from public.messages where user_id = %s) as messages,"
        " coalesce((select sum(octet_length(title) + octet_length(system_prompt)"
        "   + octet_length(model) + octet_length(connection_id))"
        "   from public.chats where user_id = %s), 0)"
        " + coalesce((select sum(octet_length(content) + octet_length(reasoning)"
        "   + octet_length(error) + octet_length(model_label)"
        "   + coalesce(octet_length(usage::text), 0))"
        "   from public.messages where user_id = %s), 0) as bytes",
        *[user_id] * 4)
    return {name: int(value) for name, value in row.items()}


def a_chat(account: Account, **values) -> dict:
    return {"id": str(uuid.uuid4()), "user_id": account.id, **values}


def a_message(account: Account, chat_id: str, content: str = "hello", **values) -> dict:
    return {"id": str(uuid.uuid4()), "chat_id": chat_id, "user_id": account.id,
            "role": "user", "content": content, **values}


def refused_code(write) -> str | None:
    with pytest.raises(Refused) as refused:
        write()
    return refused.value.code


# ---- a connection's model names ----------------------------------------------------------


def a_connection(account: Account, models: list[str], name: str = "Groq") -> dict:
    return {"user_id": account.id, "name": name, "kind": "openai-compatible",
            "base_url": "https://api.groq.com/openai/v1", "models": models}


def test_a_model_name_longer_than_the_apps_limit_is_refused_through_the_api(
        api_as, supabase_stack, alice):
    as_alice = api_as(alice)
    longest = "é" * MAX_MODEL_NAME_LENGTH  # characters, not bytes

    [kept] = as_alice.insert("connections", a_connection(alice, [longest] * MAX_MODELS))
    for models in (["llama"] + ["m" * (MAX_MODEL_NAME_LENGTH + 1)], ["x" * 100_000]):
        assert refused_code(lambda: as_alice.insert(
            "connections", a_connection(alice, models, name="Another"))) == CHECK
        assert refused_code(lambda: as_alice.update(
            "connections", {"models": models}, id=kept["id"])) == CHECK

    [row] = supabase_stack.sql("select models from public.connections where user_id = %s",
                               alice.id)
    assert row["models"] == [longest] * MAX_MODELS


def test_a_model_name_refusal_names_its_constraint(supabase_stack, alice):
    with pytest.raises(psycopg.errors.CheckViolation) as refused:
        supabase_stack.sql("insert into public.connections (user_id, name, kind, models)"
                           " values (%s, 'Groq', 'openai', %s::jsonb)",
                           alice.id, '["' + "m" * (MAX_MODEL_NAME_LENGTH + 1) + '"]')
    assert refused.value.diag.constraint_name == "connections_model_names_length"


def test_another_users_connection_cannot_be_probed_with_a_long_model_name(
        api_as, supabase_stack, alice, bob):
    [alices] = api_as(alice).insert("connections", a_connection(alice, ["qwen"]))

    assert api_as(bob).update("connections", {"models": ["m" * 1000]}, id=alices["id"]) == []

    [row] = supabase_stack.sql("select models from public.connections where id = %s",
                               alices["id"])
    assert row["models"] == ["qwen"]


# ---- chats, messages and bytes per user, through the API ----------------------------------


@pytest.fixture
def alices_chat(api_as, alice) -> dict:
    [chat] = api_as(alice).insert("chats", a_chat(alice, title="Alice's"))
    return chat


def test_a_user_at_the_chat_bound_is_refused_and_another_user_is_not(
        api_as, supabase_stack, alice, bob, alices_chat):
    set_totals(supabase_stack, alice.id, chats=MAX_CHATS_PER_USER - 1)
    api_as(alice).insert("chats", a_chat(alice))  # the last one allowed

    assert refused_code(lambda: api_as(alice).insert("chats", a_chat(alice))) == CHATS_BOUND
    api_as(bob).insert("chats", a_chat(bob))
    # Naming alice as the owner is refused by row-level security, not by (nor about) her bound.
    assert refused_code(lambda: api_as(bob).insert("chats", a_chat(alice))) == ROW_SECURITY

    assert totals_of(supabase_stack, alice.id)["chats"] == MAX_CHATS_PER_USER
    assert totals_of(supabase_stack, bob.id)["chats"] == 1
    api_as(alice).delete("chats", id=alices_chat["id"])
    api_as(alice).insert("chats", a_chat(alice))  # room again once one is deleted


def test_a_user_at_the_message_bound_is_refused_and_another_user_is_not(
        api_as, supabase_stack, alice, bob, alices_chat):
    api_as(alice).insert("messages", a_message(alice, alices_chat["id"]))
    set_totals(supabase_stack, alice.id, messages=MAX_MESSAGES_PER_USER - 1)
    api_as(alice).insert("messages", a_message(alice, alices_chat["id"]))

    assert refused_code(lambda: api_as(alice).insert(
        "messages", a_message(alice, alices_chat["id"]))) == MESSAGES_BOUND
    [bobs_chat] = api_as(bob).insert("chats", a_chat(bob))
    api_as(bob).insert("messages", a_message(bob, bobs_chat["id"]))
    for planted in (a_message(bob, alices_chat["id"]), a_message(alice, alices_chat["id"])):
        assert refused_code(lambda: api_as(bob).insert("messages", planted)) == ROW_SECURITY

    assert totals_of(supabase_stack, alice.id)["messages"] == MAX_MESSAGES_PER_USER
    assert totals_of(supabase_stack, bob.id)["messages"] == 1


def test_a_user_at_the_byte_bound_is_refused_new_and_longer_text(
        api_as, supabase_stack, alice, bob, alices_chat):
    [message] = api_as(alice).insert("messages", a_message(alice, alices_chat["id"], "ab"))
    set_totals(supabase_stack, alice.id, bytes=MAX_BYTES_PER_USER - 3)

    api_as(alice).insert("messages", a_message(alice, alices_chat["id"], "é!"))  # 3 bytes
    assert totals_of(supabase_stack, alice.id)["bytes"] == MAX_BYTES_PER_USER
    for write in (
        lambda: api_as(alice).insert("messages", a_message(alice, alices_chat["id"], "x")),
        lambda: api_as(alice).update("messages", {"content": "abc"}, id=message["id"]),
        lambda: api_as(alice).update("chats", {"system_prompt": "be brief"},
                                     id=alices_chat["id"]),
    ):
        assert refused_code(write) == BYTES_BOUND
    [shorter] = api_as(alice).update("messages", {"content": "a"}, id=message["id"])
    assert shorter["content"] == "a"
    assert totals_of(supabase_stack, alice.id)["bytes"] == MAX_BYTES_PER_USER - 1
    api_as(alice).insert("messages", a_message(alice, alices_chat["id"], ""))  # no text: kept

    # Bob's writes to alice's rows touch nothing, so they neither fail on her bound nor move it.
    assert api_as(bob).update("messages", {"content": "x" * 1000}, id=message["id"]) == []
    [bobs_chat] = api_as(bob).insert("chats", a_chat(bob))
    api_as(bob).insert("messages", a_message(bob, bobs_chat["id"], "x" * 1000))
    assert totals_of(supabase_stack, alice.id)["bytes"] == MAX_BYTES_PER_USER - 1


def test_many_rows_at_once_are_refused_whole_and_the_allowance_refills(
        api_as, supabase_stack, alice, bob):
    as_alice = api_as(alice)

    too_many = [a_chat(alice) for _ in range(NEW_ROWS_AT_ONCE + 1)]
    assert refused_code(lambda: as_alice.insert("chats", too_many)) == RATE_BOUND
    assert supabase_stack.sql("select count(*) as n from public.chats where user_id = %s",
                              alice.id) == [{"n": 0}]

    as_alice.insert("chats", [a_chat(alice) for _ in range(NEW_ROWS_AT_ONCE)])
    more = [a_chat(alice) for _ in range(NEW_ROWS_PER_SECOND * 5)]  # five seconds' worth
    assert refused_code(lambda: as_alice.insert("chats", more)) == RATE_BOUND
    # Bob's allowance is his own: alice's spent one does not hold him back.
    api_as(bob).insert("chats", [a_chat(bob) for _ in range(NEW_ROWS_AT_ONCE)])

    supabase_stack.sql("update public.user_totals set allowance_at = allowance_at"
                       " - interval '10 seconds' where user_id = %s", alice.id)  # time passes
    as_alice.insert("chats", more)
    assert totals_of(supabase_stack, alice.id)["chats"] == NEW_ROWS_AT_ONCE + len(more)
    assert totals_of(supabase_stack, bob.id)["chats"] == NEW_ROWS_AT_ONCE


def test_the_totals_are_neither_readable_nor_writable_through_the_api(
        api_as, supabase_stack, alice, alices_chat):
    before = totals_of(supabase_stack, alice.id)

    for account in (alice, None):
        api = api_as(account)
        for write in (lambda: api.select("user_totals"),
                      lambda: api.select("user_totals", user_id=alice.id),
                      lambda: api.insert("user_totals", {"user_id": alice.id}),
                      lambda: api.update("user_totals", {"chats": 0}, user_id=alice.id),
                      lambda: api.delete("user_totals", user_id=alice.id)):
            assert refused_code(write) == ROW_SECURITY
    assert totals_of(supabase_stack, alice.id) == before


BOUND_FUNCTIONS = ["check_connection_model_names", "chat_bytes", "message_bytes",
                   "add_to_user_totals", "count_chats", "count_messages", "count_chat_text",
                   "count_message_text"]


@pytest.mark.parametrize("function", BOUND_FUNCTIONS)
@pytest.mark.parametrize("caller", ["alice", "anonymous"])
def test_the_bound_functions_cannot_be_called_through_the_api(supabase_stack, alice,
                                                              function, caller):
    headers = {"apikey": supabase_stack.anon_key}
    if caller == "alice":
        headers["Authorization"] = f"Bearer {alice.access_token}"
    url = f"{supabase_stack.url}/rest/v1/rpc/{function}"
    arguments = {"for_user": alice.id, "more_chats": -1, "more_messages": -1,
                 "more_bytes": -1, "new_rows": -1} if function == "add_to_user_totals" else {}

    for response in (httpx.post(url, headers=headers, json=arguments),
                     httpx.get(url, headers=headers)):
        assert response.status_code in (401, 403, 404), response.text
        assert response.json()["code"] in (ROW_SECURITY, "PGRST202")
    for role in ("anon", "authenticated", "public"):
        [row] = supabase_stack.sql(
            "select bool_or(has_function_privilege(%s, p.oid, 'execute')) as allowed"
            " from pg_proc p where p.pronamespace = 'public'::regnamespace"
            " and p.proname = %s", role, function)
        assert row["allowed"] is False, role


def test_the_totals_follow_every_write_exactly_and_each_user_has_their_own(
        api_as, supabase_stack, alice, bob):
    as_alice = api_as(alice)
    # Many rows in one request (their keys alike, as PostgREST wants them).
    [first, second] = as_alice.insert("chats", [
        a_chat(alice, title="Naïve", system_prompt=""),
        a_chat(alice, title="", system_prompt="Be brief.")])
    [question, answer, extra] = as_alice.insert("messages", [
        a_message(alice, first["id"], "¿Qué?", role="user", usage=None),
        a_message(alice, first["id"], "", role="assistant", usage={"total_tokens": 12}),
        a_message(alice, second["id"], "x" * 5000, role="user", usage=None)])
    as_alice.update("messages", {"content": "Una respuesta.", "model_label": "qwen · local"},
                    id=answer["id"])
    as_alice.update("messages", {"status": "stopped"}, id=question["id"])
    as_alice.update("chats", {"title": "Naïve question", "pinned": True}, id=first["id"])
    as_alice.delete("messages", id=extra["id"])
    [bobs_chat] = api_as(bob).insert("chats", a_chat(bob, title="Bob's"))
    api_as(bob).insert("messages", a_message(bob, bobs_chat["id"], "hi"))

    assert totals_of(supabase_stack, alice.id) == recount(supabase_stack, alice.id) == {
        "chats": 2, "messages": 2,
        "bytes": len("Naïve question".encode()) + len("Be brief.") + len("¿Qué?".encode())
        + len("Una respuesta.") + len("qwen · local".encode())
        + len('{"total_tokens": 12}')}
    assert totals_of(supabase_stack, bob.id) == recount(supabase_stack, bob.id) == {
        "chats": 1, "messages": 1, "bytes": len("Bob's") + len("hi")}

    as_alice.delete("chats", id=first["id"])  # its messages go with it
    assert totals_of(supabase_stack, alice.id) == recount(supabase_stack, alice.id) == {
        "chats": 1, "messages": 0, "bytes": len("Be brief.")}

    supabase_stack.sql("delete from auth.users where id = %s", alice.id)
    assert totals_of(supabase_stack, alice.id) is None
    assert totals_of(supabase_stack, bob.id) == recount(supabase_stack, bob.id)


# ---- pieces of a long message, staged until written (20261207111500) ---------------------


def staged(database, user_id) -> list[dict]:
    return database.sql("select upload_id, seq from public.message_pieces where user_id = %s",
                        user_id)


def pieces(upload: str, *texts: tuple[str, str]) -> list[dict]:
    return [{"upload_id": upload, "seq": seq, "content": content, "reasoning": reasoning}
            for seq, (content, reasoning) in enumerate(texts)]


def test_staged_pieces_count_in_the_bytes_until_the_message_takes_them(
        api_as, supabase_stack, alice, alices_chat):
    before = totals_of(supabase_stack, alice.id)
    upload = str(uuid.uuid4())

    api_as(alice).insert("message_pieces", pieces(upload, ("é" * 1000, ""), ("", "x" * 10)))
    assert totals_of(supabase_stack, alice.id) == {**before,
                                                   "bytes": before["bytes"] + 2010}
    [message] = api_as(alice).rpc("add_message_in_pieces", {
        "message": a_message(alice, alices_chat["id"], "!"), "upload": upload, "pieces": 2})

    assert (message["content"], message["reasoning"]) == ("é" * 1000 + "!", "x" * 10)
    assert staged(supabase_stack, alice.id) == []
    assert totals_of(supabase_stack, alice.id) == recount(supabase_stack, alice.id) == {
        **before, "messages": before["messages"] + 1, "bytes": before["bytes"] + 2011}


def test_pieces_past_a_bound_are_refused_and_nothing_is_staged(api_as, supabase_stack, alice,
                                                               alices_chat):
    as_alice = api_as(alice)
    too_many = pieces(str(uuid.uuid4()), *[("x", "")] * (NEW_ROWS_AT_ONCE + 1))
    assert refused_code(lambda: as_alice.insert("message_pieces", too_many)) == RATE_BOUND
    set_totals(supabase_stack, alice.id, bytes=MAX_BYTES_PER_USER - 3)
    for texts in (("abcd", ""), ("", "abcd"), ("ab", "cd")):
        assert refused_code(lambda: as_alice.insert(
            "message_pieces", pieces(str(uuid.uuid4()), texts))) == BYTES_BOUND
    assert staged(supabase_stack, alice.id) == []
    as_alice.insert("message_pieces", pieces(str(uuid.uuid4()), ("abc", "")))  # just fits


def test_long_messages_through_the_app_store_leave_no_piece_and_exact_totals(
        supabase_stack, alice, bob):
    store = app_store(supabase_stack, alice)
    chat = store.save_chat(Chat(title="Long ones"))
    text = "Straße 😀 " * 300_000  # 3,000,000 characters, 3,900,000 bytes: four pieces or more
    message = store.add_message(Message(chat_id=chat.id, role="user", content=text))
    store.update_message(message.id, {"content": text[::-1], "reasoning": text})
    reply = store.add_message(Message(chat_id=chat.id, parent_id=message.id, role="assistant",
                                      content="", status="streaming"))
    store.append_reply(reply.id, 0, text, 0, "")
    bobs_chat = app_store(supabase_stack, bob).save_chat(Chat(title="Bob's"))
    for refused in (  # each after its pieces were sent: they are removed again
            lambda: store.add_message(Message(chat_id=bobs_chat.id, role="user", content=text)),
            lambda: store.update_message(str(uuid.uuid4()), {"content": text})):
        with pytest.raises(UserFacingError):
            refused()
    assert store.append_reply(reply.id, 0, text, 0, "").content_length == len(text)  # stale

    assert staged(supabase_stack, alice.id) == []
    assert totals_of(supabase_stack, alice.id) == recount(supabase_stack, alice.id)
    assert totals_of(supabase_stack, alice.id)["bytes"] == len("Long ones") + 3 * len(
        text.encode())


# ---- the same bounds, said the same way, through the app's stores (both backends) -------


def sqlite_totals(folder, **values) -> None:
    with closing(sqlite3.connect(folder / DB_FILENAME)) as db, db:
        db.execute(f"update user_totals set {', '.join(f'{c} = ?' for c in values)}",
                   tuple(values.values()))


def sqlite_totals_of(folder) -> dict[str, tuple[int, int, int]]:
    with closing(sqlite3.connect(folder / DB_FILENAME)) as db:
        rows = db.execute("select user_id, chats, messages, bytes from user_totals")
        return {row[0]: tuple(row[1:]) for row in rows}


@pytest.fixture(params=["sqlite", "supabase"])
def stores(request, tmp_path):
    """(the user's chat store, a function setting that user's totals) on one backend."""
    if request.param == "sqlite":
        folder = tmp_path / "store"
        return SQLiteChatStore(folder), lambda **values: sqlite_totals(folder, **values)
    stack = request.getfixturevalue("supabase_stack")
    account = new_account(stack)
    return app_store(stack, account), lambda **values: set_totals(stack, account.id, **values)


def test_each_bound_is_said_the_same_way_by_both_stores(stores):
    store, set_to = stores
    chat = store.save_chat(Chat(title="first"))
    message = store.add_message(Message(chat_id=chat.id, role="user", content="hello"))

    set_to(chats=MAX_CHATS_PER_USER)
    with pytest.raises(UserFacingError) as chats:
        store.save_chat(Chat(title="one too many"))
    set_to(messages=MAX_MESSAGES_PER_USER)
    with pytest.raises(UserFacingError) as messages:
        store.add_message(Message(chat_id=chat.id, role="user", content="one too many"))
    set_to(messages=1, bytes=MAX_BYTES_PER_USER)
    with pytest.raises(UserFacingError) as grown:
        store.update_message(message.id, {"content": "hello, longer"})
    with pytest.raises(UserFacingError) as added:
        store.add_message(Message(chat_id=chat.id, role="user", content="more"))

    assert str(chats.value) == ("You have the most chats Switchboard keeps: 10,000. Delete "
                                "chats you no longer need to start new ones. Nothing was "
                                "saved.")
    assert str(messages.value) == ("Your chats hold the most messages Switchboard keeps: "
                                   "200,000 in all. Delete chats you no longer need to add "
                                   "more. Nothing was saved.")
    for refused in (grown, added):
        assert str(refused.value) == (
            "Your chats hold the most text Switchboard keeps: 2 GB in all. Delete chats you "
            "no longer need (long ones free the most) to add more. Nothing was saved.")
    assert [m.content for m in store.messages(chat.id)] == ["hello"]
    assert [c.title for c in store.list_chats()] == ["first"]


def test_a_refused_rate_is_said_for_the_user(supabase_stack):
    account = new_account(supabase_stack)
    store = app_store(supabase_stack, account)
    store.save_chat(Chat(title="first"))
    supabase_stack.sql("update public.user_totals set allowance = 0,"
                       " allowance_at = now() + interval '1 hour' where user_id = %s",
                       account.id)  # spent, and nothing refills for a while

    with pytest.raises(UserFacingError) as refused:
        store.save_chat(Chat(title="second"))

    assert str(refused.value) == ("Too many chats and messages were saved in a short time. "
                                  "Wait a few seconds, then try again. Nothing was saved.")


@pytest.mark.parametrize("backend", ["sqlite", "supabase"])
def test_a_long_model_name_is_said_the_same_way_by_both_stores(backend, tmp_path, request):
    if backend == "sqlite":
        store = SQLiteConnectionStore(tmp_path / "store")
    else:
        stack = request.getfixturevalue("supabase_stack")
        account = new_account(stack)
        client = supabase.create_client(stack.url, stack.anon_key)
        client.auth.sign_in_with_password({"email": account.email,
                                           "password": account.password})
        store = SupabaseConnectionStore(client, account.id)
    kept = store.add(Connection(name="Groq", models=("llama",)))

    for write in (lambda: store.add(Connection(name="Other", models=("m" * 201,))),
                  lambda: store.update(kept.id, {"models": ("m" * 201,)}, None)):
        with pytest.raises(UserFacingError) as refused:
            write()
        assert str(refused.value) == ("A model's name is too long: at most 200 characters. "
                                      "Nothing was saved.")
    assert [c.models for c in store.list()] == [("llama",)]


def test_the_sqlite_totals_follow_every_write_exactly(tmp_path):
    folder = tmp_path / "store"
    store, other = SQLiteChatStore(folder), SQLiteChatStore(folder, user_id="someone-else")
    first = store.save_chat(Chat(title="Naïve"))
    second = store.save_chat(Chat(system_prompt="Be brief."))
    store.add_message(Message(chat_id=first.id, role="user", content="¿Qué?"))
    answer = store.add_message(Message(chat_id=first.id, role="assistant", content="",
                                       usage={"total_tokens": 12}))
    store.add_message(Message(chat_id=second.id, role="user", content="x" * 5000))
    store.update_message(answer.id, {"content": "Una respuesta.", "model_label": "qwen · local"})
    store.save_chat(first.with_changes(title="Naïve question", pinned=True))
    other.save_chat(Chat(title="Theirs"))
    store.delete_chat(second.id)  # its message goes with it

    assert sqlite_totals_of(folder) == {
        "local": (1, 2, len("Naïve question".encode()) + len("¿Qué?".encode())
                  + len("Una respuesta.") + len("qwen · local".encode())
                  + len('{"total_tokens": 12}')),
        "someone-else": (1, 0, len("Theirs")),
    }
    store.delete_all()
    assert sqlite_totals_of(folder)["local"] == (0, 0, 0)


# ---- data already beyond a bound: the upgrade does not fail, the rows stay --------------


def test_push_upgrades_a_database_already_beyond_the_bounds(fresh_database):
    database = fresh_database
    database.push_migrations(only=MIGRATIONS.index(BOUNDS_MIGRATION))
    [user] = database.sql("insert into auth.users (id, email) values (gen_random_uuid(), %s)"
                          " returning id", f"{uuid.uuid4().hex}@example.com")
    owner = user["id"]
    [legacy] = database.sql(
        "insert into public.connections (user_id, name, kind, models)"
        " values (%s, 'Legacy', 'openai-compatible', %s::jsonb) returning id",
        owner, '["' + "m" * 5000 + '"]')
    database.sql("insert into public.chats (id, user_id, title)"
                 " select gen_random_uuid(), %s, 'chat ' || n"
                 " from generate_series(1, %s) as n", owner, MAX_CHATS_PER_USER + 1)

    result = database.push_migrations()

    assert f"Applying migration {BOUNDS_MIGRATION}" in result.stdout + result.stderr
    assert totals_of(database, owner) == recount(database, owner)
    assert totals_of(database, owner)["chats"] == MAX_CHATS_PER_USER + 1
    with pytest.raises(psycopg.Error) as refused:  # beyond the bound: no new chat
        database.sql("insert into public.chats (id, user_id) values (gen_random_uuid(), %s)",
                     owner)
    assert refused.value.sqlstate == CHATS_BOUND
    database.sql("delete from public.chats where id in (select id from public.chats"
                 " where user_id = %s limit 2)", owner)
    database.sql("insert into public.chats (id, user_id) values (gen_random_uuid(), %s)",
                 owner)  # back under it: room again
    # The stored connection stays as it is, and keeps learning; its models change only to
    # names that fit.
    database.sql("update public.connections set quirks = '[\"no_stream_options\"]'"
                 " where id = %s", legacy["id"])
    with pytest.raises(psycopg.Error) as refused:
        database.sql("update public.connections set models = models || '[\"qwen\"]'"
                     " where id = %s", legacy["id"])
    assert refused.value.sqlstate == CHECK
    database.sql("update public.connections set models = '[\"qwen\"]' where id = %s",
                 legacy["id"])


def test_an_sqlite_file_beyond_the_model_name_bound_is_upgraded_and_keeps_its_row(
        tmp_path, monkeypatch):
    folder = tmp_path / "store"
    # The steps up to 006 but the bounds (007 needs them); chats written as that release did.
    before = [m for m in store_sqlite.MIGRATIONS[:6] if m.name != "005_bound_each_user"]
    with monkeypatch.context() as earlier_release:
        earlier_release.setattr(store_sqlite, "MIGRATIONS", before)
        legacy = SQLiteConnectionStore(folder).add(Connection(name="Legacy",
                                                              models=("m" * 5000,)))
    with closing(sqlite3.connect(folder / DB_FILENAME)) as db, db:
        db.execute("insert into chats (id, user_id, title, created_at, updated_at)"
                   " values ('c1', 'local', 'kept', '2026-01-01', '2026-01-01')")
        db.execute("insert into messages (id, chat_id, user_id, role, content, created_at)"
                   " values ('m1', 'c1', 'local', 'user', ?, '2026-01-01')", ("é" * 10,))

    store = SQLiteConnectionStore(folder)  # today's release: the migration runs

    assert [c.models for c in store.list()] == [("m" * 5000,)]
    store.learn(legacy.id, "no_stream_options")
    with pytest.raises(UserFacingError):
        store.update(legacy.id, {"models": ("m" * 5000, "qwen")}, None)
    assert store.update(legacy.id, {"models": ("qwen",)}, None).models == ("qwen",)
    assert sqlite_totals_of(folder) == {"local": (1, 1, len("kept") + len(("é" * 10).encode()))}
