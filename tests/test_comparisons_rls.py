"""Row-level security, grants, CHECKs and bounds of `comparisons` and of the call that saves
one, through the real PostgREST with two real users, A (alice) and B (bob), and anonymous
requests; every attempt over raw HTTP and through supabase-py. Raw SQL (as the superuser)
shows what is at rest; a total near its bound is set directly."""

from __future__ import annotations

import uuid

import pytest

from core.failures import UserFacingError
from core.history.model import Comparison, Message
from core.store.errors import MAX_COMPARISONS_PER_USER
from tests.test_history_rls import api_as, app_store, new_chat  # noqa: F401 (api_as: a fixture)
from tests.test_rls import Refused

ROW_SECURITY = NO_PRIVILEGE = "42501"
CHECK, FOREIGN_KEY = "23514", "23503"
COMPARISONS_BOUND = "SB058"


def compared(stack, account, title: str, blind: bool = True) -> Comparison:
    """A chat of `account` whose question went to two models, and its comparison, stored."""
    chat, [question] = new_chat(stack, account, title, "which is best?")
    store = app_store(stack, account)
    replies = [store.add_message(Message(chat_id=chat.id, role="assistant", content=text,
                                         parent_id=question.id, model_label=label))
               for text, label in (("one", "a · s"), ("two", "b · s"))]
    return store.save_comparison(Comparison(
        chat_id=chat.id, message_id=question.id, reply_ids=tuple(r.id for r in replies),
        labels=("a · s", "b · s"), blind=blind))


def comparisons_of(stack, user_id: str) -> list[dict]:
    return stack.sql("select * from public.comparisons where user_id = %s order by id", user_id)


def a_row(comparison: Comparison, **changes) -> dict:
    """A comparison row as the REST API takes it: `comparison`'s, with a new id."""
    return {"id": str(uuid.uuid4()), "chat_id": comparison.chat_id,
            "message_id": comparison.message_id, "reply_ids": list(comparison.reply_ids),
            "labels": list(comparison.labels), "blind": comparison.blind, **changes}


@pytest.fixture
def bobs(supabase_stack, bob):
    return compared(supabase_stack, bob, "Bob's comparison")


@pytest.fixture
def alices(supabase_stack, alice):
    return compared(supabase_stack, alice, "Alice's comparison")


def test_a_user_reads_none_of_another_users_comparisons(api_as, supabase_stack, alice, bob,
                                                        bobs, alices):
    as_alice = api_as(alice)

    assert [row["id"] for row in as_alice.select("comparisons")] == [alices.id]
    assert as_alice.select("comparisons", id=bobs.id) == []
    assert as_alice.select("comparisons", chat_id=bobs.chat_id) == []
    assert as_alice.select("comparisons", user_id=bob.id) == []
    assert app_store(supabase_stack, alice).comparisons(bobs.chat_id) == []
    assert [row["id"] for row in api_as(bob).select("comparisons")] == [bobs.id]
    with pytest.raises(Refused) as refused:
        api_as(None).select("comparisons")
    assert refused.value.code == NO_PRIVILEGE


@pytest.mark.parametrize("owner", ["alice", "bob"])
def test_a_user_cannot_put_a_comparison_in_another_users_chat(api_as, supabase_stack, alice,
                                                              bob, bobs, owner):
    before = comparisons_of(supabase_stack, bob.id)
    as_alice = api_as(alice)
    user_id = {"alice": alice.id, "bob": bob.id}[owner]  # her own id, or his forged

    with pytest.raises(Refused) as refused:
        as_alice.insert("comparisons", a_row(bobs, user_id=user_id))
    assert refused.value.code == ROW_SECURITY
    with pytest.raises(Refused) as refused:  # through the call the app saves with
        as_alice.rpc("save_comparison", {"comparison": a_row(bobs, user_id=user_id)})
    assert refused.value.code == ROW_SECURITY
    with pytest.raises(Refused) as refused:  # a chat nobody has
        as_alice.insert("comparisons", a_row(bobs, chat_id=str(uuid.uuid4())))
    assert refused.value.code in (ROW_SECURITY, FOREIGN_KEY)

    assert comparisons_of(supabase_stack, bob.id) == before
    assert comparisons_of(supabase_stack, alice.id) == []


def test_a_user_cannot_give_or_change_another_users_verdict(api_as, supabase_stack, alice, bob,
                                                            bobs):
    as_alice = api_as(alice)
    picked = bobs.reply_ids[0]

    assert as_alice.update("comparisons", {"picked_id": picked}, id=bobs.id) == []
    assert as_alice.update("comparisons", {"tie": True}, chat_id=bobs.chat_id) == []
    with pytest.raises(Refused) as refused:  # his id through the call: the update's policy
        as_alice.rpc("save_comparison", {"comparison": a_row(bobs, id=bobs.id,
                                                             picked_id=picked)})
    assert refused.value.code == ROW_SECURITY
    with pytest.raises(UserFacingError, match="no longer exists"):
        app_store(supabase_stack, alice).save_comparison(bobs.with_changes(picked_id=picked))

    [row] = comparisons_of(supabase_stack, bob.id)
    assert (row["picked_id"], row["tie"], row["decided_at"]) == (None, False, None)


def test_nobody_deletes_a_comparison_but_its_chat_takes_it(api_as, supabase_stack, alice, bob,
                                                           bobs):
    for account in (alice, bob):
        with pytest.raises(Refused) as refused:
            api_as(account).delete("comparisons", id=bobs.id)
        assert refused.value.code == NO_PRIVILEGE
    assert len(comparisons_of(supabase_stack, bob.id)) == 1

    api_as(alice).delete("chats", id=bobs.chat_id)  # hers to delete: no row
    assert len(comparisons_of(supabase_stack, bob.id)) == 1
    api_as(bob).delete("chats", id=bobs.chat_id)
    assert comparisons_of(supabase_stack, bob.id) == []
    [totals] = supabase_stack.sql("select comparisons from public.user_totals"
                                  " where user_id = %s", bob.id)
    assert totals == {"comparisons": 0}


def test_the_owner_changes_only_the_verdict_and_only_the_first_time(api_as, supabase_stack,
                                                                    bob, bobs):
    as_bob = api_as(bob)
    for values in ({"blind": False}, {"labels": ["x", "y"]}, {"chat_id": str(uuid.uuid4())},
                   {"user_id": str(uuid.uuid4())}, {"decided_at": "2020-01-01T00:00:00Z"},
                   {"reply_ids": [str(uuid.uuid4()), str(uuid.uuid4())]}):
        with pytest.raises(Refused) as refused:
            as_bob.update("comparisons", values, id=bobs.id)
        assert refused.value.code == NO_PRIVILEGE
    with pytest.raises(Refused) as refused:  # not one of its replies
        as_bob.update("comparisons", {"picked_id": str(uuid.uuid4())}, id=bobs.id)
    assert refused.value.code == CHECK

    [decided] = as_bob.update("comparisons", {"picked_id": bobs.reply_ids[1]}, id=bobs.id)
    assert decided["decided_at"]
    for values in ({"picked_id": bobs.reply_ids[0]}, {"picked_id": None}, {"tie": True},
                   {"picked_id": None, "tie": True}):
        with pytest.raises(Refused) as refused:
            as_bob.update("comparisons", values, id=bobs.id)
        assert refused.value.code == CHECK
    assert as_bob.rpc("save_comparison", {"comparison": a_row(
        bobs, id=bobs.id, picked_id=bobs.reply_ids[0])}) == [decided]  # the call: no change
    assert comparisons_of(supabase_stack, bob.id)[0]["picked_id"] == uuid.UUID(
        bobs.reply_ids[1])


def test_the_database_refuses_a_comparison_out_of_its_bounds(api_as, supabase_stack, alice,
                                                             alices):
    as_alice = api_as(alice)
    one, two = alices.reply_ids
    for row in (a_row(alices, reply_ids=[one], labels=["a"]),
                a_row(alices, reply_ids=[str(uuid.uuid4()) for _ in range(5)],
                      labels=list("abcde")),
                a_row(alices, labels=["a"]),
                a_row(alices, labels=["a", "x" * 501]),
                a_row(alices, reply_ids=[one, one]),
                a_row(alices, picked_id=str(uuid.uuid4())),
                a_row(alices, picked_id=one, tie=True)):
        with pytest.raises(Refused) as refused:
            as_alice.insert("comparisons", row)
        assert refused.value.code == CHECK
    with pytest.raises(Refused):  # an id that is no uuid
        as_alice.insert("comparisons", a_row(alices, reply_ids=["m1", two]))
    assert [row["id"] for row in as_alice.select("comparisons")] == [alices.id]
    longest = a_row(alices, labels=["a", "x" * 500], picked_id=two)
    [stored] = as_alice.insert("comparisons", longest)
    assert stored["decided_at"]  # the database's time, as decided on arrival


def test_each_users_comparisons_are_bounded_and_only_their_own(api_as, supabase_stack, alice,
                                                               bob, alices):
    supabase_stack.sql("update public.user_totals set comparisons = %s where user_id = %s",
                       MAX_COMPARISONS_PER_USER, alice.id)

    with pytest.raises(Refused) as refused:
        api_as(alice).insert("comparisons", a_row(alices))
    assert refused.value.code == COMPARISONS_BOUND
    with pytest.raises(UserFacingError, match="Delete chats you no longer need to compare"):
        app_store(supabase_stack, alice).save_comparison(
            alices.with_changes(id=str(uuid.uuid4())))
    assert len(comparisons_of(supabase_stack, alice.id)) == 1
    compared(supabase_stack, bob, "Bob compares on")  # his own totals: nothing refused
    [totals] = supabase_stack.sql("select comparisons from public.user_totals"
                                  " where user_id = %s", bob.id)
    assert totals == {"comparisons": 1}


def test_anonymous_requests_get_nothing(api_as, supabase_stack, alices):
    as_nobody = api_as(None)
    for attempt in (lambda: as_nobody.insert("comparisons", a_row(alices)),
                    lambda: as_nobody.update("comparisons", {"tie": True}, id=alices.id),
                    lambda: as_nobody.delete("comparisons", id=alices.id),
                    lambda: as_nobody.rpc("save_comparison", {"comparison": a_row(alices)})):
        with pytest.raises(Refused) as refused:
            attempt()
        assert refused.value.code == NO_PRIVILEGE
    assert len(supabase_stack.sql("select * from public.comparisons where chat_id = %s",
                                  alices.chat_id)) == 1
