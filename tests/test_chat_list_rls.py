"""Row-level security, grants and bounds of pins and folders, and of the calls that search as
the user types, through the real PostgREST with two real users, A (alice) and B (bob), and
anonymous requests; every attempt over raw HTTP and through supabase-py. Raw SQL (as the
superuser) shows what is at rest."""

from __future__ import annotations

import uuid

import pytest

from core.failures import UserFacingError
from core.history.model import MAX_FOLDER_LENGTH, SNIPPET_MARKS, Chat
from tests.test_history_rls import BOB_WORD, api_as, app_store, new_chat  # noqa: F401
from tests.test_rls import Refused

ROW_SECURITY = NO_PRIVILEGE = "42501"
CHECK = "23514"
CALLS = (("count_found", {"words": [BOB_WORD]}),
         ("search_chats_page", {"words": [BOB_WORD], "max": 50, "skip": 0}),
         ("chat_folders", {}))


def chat_row(stack, chat_id: str) -> dict:
    [row] = stack.sql("select pinned, folder, title, user_id from public.chats where id = %s",
                      chat_id)
    return row


@pytest.fixture
def bobs(supabase_stack, bob):
    """Bob's chat, pinned and filed in his folder "Private"."""
    chat, _ = new_chat(supabase_stack, bob, f"Bob's {BOB_WORD} trip", f"{BOB_WORD} question")
    return app_store(supabase_stack, bob).save_chat(chat.with_changes(pinned=True,
                                                                      folder="Private"))


@pytest.fixture
def alices(supabase_stack, alice):
    chat, _ = new_chat(supabase_stack, alice, "Alice's plans", "a question")
    return chat


def test_a_user_reads_none_of_another_users_pins_folders_or_hits(api_as, alice, bob, bobs,
                                                                 alices):
    as_alice = api_as(alice)
    assert as_alice.select("chats", folder="Private") == []
    assert as_alice.select("chats", pinned="true") == []
    assert as_alice.rpc("chat_folders", {}) == []
    assert as_alice.rpc("count_found", {"words": [BOB_WORD]}) == 0
    assert as_alice.rpc("search_chats_page", {"words": [BOB_WORD], "max": 50, "skip": 0}) == []
    as_bob = api_as(bob)
    assert as_bob.rpc("chat_folders", {}) == [{"folder": "Private", "chats": 1}]
    assert as_bob.rpc("count_found", {"words": [BOB_WORD[:4]]}) == 1
    [hit] = as_bob.rpc("search_chats_page", {"words": [BOB_WORD], "max": 50, "skip": 0})
    assert hit["id"] == bobs.id and hit["folder"] == "Private" and hit["pinned"] is True
    assert SNIPPET_MARKS[0] + BOB_WORD + SNIPPET_MARKS[1] in hit["snippet"]


@pytest.mark.parametrize("function, arguments", CALLS)
def test_anonymous_requests_call_nothing(api_as, bobs, function, arguments):
    with pytest.raises(Refused) as refused:
        api_as(None).rpc(function, arguments)
    assert refused.value.code == NO_PRIVILEGE


def test_a_user_cannot_pin_file_or_refile_another_users_chat(api_as, supabase_stack, alice,
                                                              bob, bobs):
    before = chat_row(supabase_stack, bobs.id)
    as_alice = api_as(alice)
    assert as_alice.update("chats", {"pinned": False}, id=bobs.id) == []
    assert as_alice.update("chats", {"folder": "Mine now"}, id=bobs.id) == []
    assert as_alice.update("chats", {"folder": ""}, folder="Private") == []
    assert as_alice.update("chats", {"folder": "x"}, user_id=bob.id) == []
    assert app_store(supabase_stack, alice).move_folder("Private", "Taken") == 0
    with pytest.raises(UserFacingError):  # his id through the app's save: refused
        app_store(supabase_stack, alice).save_chat(bobs.with_changes(folder="Taken"))
    assert chat_row(supabase_stack, bobs.id) == before


@pytest.mark.parametrize("owner", ["alice", "bob"])
def test_a_user_cannot_create_a_filed_chat_for_another_user(api_as, supabase_stack, alice, bob,
                                                            owner):
    user_id = {"alice": alice.id, "bob": bob.id}[owner]  # her own id, or his forged
    row = {"id": str(uuid.uuid4()), "title": "planted", "pinned": True, "folder": "Private",
           "user_id": user_id}
    if owner == "bob":
        with pytest.raises(Refused) as refused:
            api_as(alice).insert("chats", row)
        assert refused.value.code == ROW_SECURITY
        assert supabase_stack.sql("select id from public.chats where id = %s", row["id"]) == []
    else:  # her own: allowed, and hers alone
        [stored] = api_as(alice).insert("chats", row)
        assert (stored["folder"], stored["pinned"]) == ("Private", True)
        assert app_store(supabase_stack, bob).folders() == []


def test_a_user_cannot_delete_another_users_filed_chat(api_as, supabase_stack, alice, bobs):
    assert api_as(alice).delete("chats", folder="Private") == []
    assert api_as(alice).delete("chats", id=bobs.id) == []
    assert chat_row(supabase_stack, bobs.id)["folder"] == "Private"


def test_a_folder_name_is_bounded_in_the_database(api_as, supabase_stack, alice, alices):
    as_alice = api_as(alice)
    with pytest.raises(Refused) as refused:
        as_alice.update("chats", {"folder": "f" * (MAX_FOLDER_LENGTH + 1)}, id=alices.id)
    assert refused.value.code == CHECK
    [row] = as_alice.update("chats", {"folder": "f" * MAX_FOLDER_LENGTH}, id=alices.id)
    assert row["folder"] == "f" * MAX_FOLDER_LENGTH
    with pytest.raises(UserFacingError, match="folder"):
        app_store(supabase_stack, alice).save_chat(
            Chat(id=alices.id, title=alices.title, folder="g" * (MAX_FOLDER_LENGTH + 1)))


def test_the_owner_and_times_stay_out_of_reach_with_the_new_column(api_as, supabase_stack,
                                                                    alice, bob, alices):
    """The folder grant adds one column: the owner and timestamps stay unwritable."""
    as_alice = api_as(alice)
    for values in ({"user_id": bob.id, "folder": "x"}, {"created_at": "2000-01-01T00:00:00Z"}):
        with pytest.raises(Refused) as refused:
            as_alice.update("chats", values, id=alices.id)
        assert refused.value.code == NO_PRIVILEGE
    assert str(chat_row(supabase_stack, alices.id)["user_id"]) == alice.id


SEARCH_CALLS = ("count_found(text[])", "search_chats_page(text[], integer, integer)")


def test_the_search_calls_run_as_their_owner_and_keep_to_the_callers_chats(
        api_as, supabase_stack, alice, bob, bobs, alices):
    """count_found and search_chats_page run as their owner (under row-level security
    PostgreSQL cannot use the full-text indexes: `@@` is not leakproof), so they keep to the
    caller's chats themselves: a word start in both users' messages finds the caller's only,
    and the words in only the other user's chats find nothing."""
    for function in SEARCH_CALLS:
        [row] = supabase_stack.sql("select prosecdef, proconfig from pg_proc"
                                   " where oid = %s::regprocedure", f"public.{function}")
        assert row["prosecdef"] is True and row["proconfig"] == ['search_path=""']
    as_alice, as_bob = api_as(alice), api_as(bob)
    for typed in (["q"], ["que"], ["question"], ["a", "qu"]):  # "question": in both chats
        assert as_alice.rpc("count_found", {"words": typed}) == 1, typed
        assert [hit["id"] for hit in as_alice.rpc(
            "search_chats_page", {"words": typed, "max": 100, "skip": 0})] == [alices.id]
    assert as_bob.rpc("count_found", {"words": ["question"]}) == 1
    for typed in (["trip"], ["t"], [BOB_WORD], ["Bob"]):  # his title and message only
        assert as_alice.rpc("count_found", {"words": typed}) == 0, typed
        assert as_alice.rpc("search_chats_page",
                            {"words": typed, "max": 100, "skip": 0}) == [], typed


@pytest.mark.parametrize("caller", ["anonymous", "alice"])
def test_the_search_calls_query_builder_is_nobodys_to_call(api_as, supabase_stack, alice,
                                                           caller):
    """typed_query serves the two calls above only."""
    for role in ("anon", "authenticated", "public"):
        [row] = supabase_stack.sql(
            "select has_function_privilege(%s, 'public.typed_query(text[])', 'execute')"
            " as allowed", role)
        assert row["allowed"] is False, role
    with pytest.raises(Refused) as refused:
        api_as(alice if caller == "alice" else None).rpc("typed_query", {"words": ["q"]})
    assert refused.value.code in (NO_PRIVILEGE, "PGRST202")  # refused, or not even listed
