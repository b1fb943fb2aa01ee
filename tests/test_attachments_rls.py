"""Row-level security, grants and bounds of `attachments` and of the calls that write them and
sum usage, through the real PostgREST with two real users, A (alice) and B (bob), and
anonymous requests; every attempt over raw HTTP and through supabase-py. Raw SQL (as the
superuser) shows what is at rest; totals near a bound are set directly."""

from __future__ import annotations

import base64
import uuid

import pytest

from core.failures import UserFacingError
from core.history.model import Attachment, Message
from core.store.contracts import UsageTotal
from core.store.errors import MAX_ATTACHMENT_BYTES_PER_USER, MAX_ATTACHMENTS_PER_USER
from tests.test_history_rls import api_as, app_store, new_chat  # noqa: F401 (api_as: a fixture)
from tests.test_rls import Refused

ROW_SECURITY, NO_PRIVILEGE, CHECK = "42501", "42501", "23514"
ATTACHMENTS_BOUND, ATTACHMENT_BYTES_BOUND = "SB056", "SB057"


IMAGE, TEXT = b"\x89PNG secret", "secret text"


def files() -> tuple[Attachment, ...]:
    """An image and a document, with new ids."""
    return (Attachment(name="his.png", kind="image", mime="image/png", data=IMAGE),
            Attachment(name="his.txt", kind="document", mime="text/plain", text=TEXT))


def attachments_of(stack, user_id: str) -> list[dict]:
    return stack.sql("select * from public.attachments where user_id = %s order by id", user_id)


def with_files(stack, account, title: str):
    """A chat of `account` whose question carries an image and a document, and a reply."""
    chat = new_chat(stack, account, title)[0]
    store = app_store(stack, account)
    question = store.add_message(Message(chat_id=chat.id, role="user", content="look",
                                         attachments=files()))
    reply = store.add_message(Message(chat_id=chat.id, role="assistant", content="seen",
                                      parent_id=question.id, model_label="m · c",
                                      usage={"prompt_tokens": 40, "completion_tokens": 2}))
    return chat, question, reply


@pytest.fixture
def bobs_files(supabase_stack, bob):
    return with_files(supabase_stack, bob, "Bob's files")


@pytest.fixture
def alices_chat(supabase_stack, alice):
    chat, _ = new_chat(supabase_stack, alice, "Alice's chat", "her question")
    return chat, app_store(supabase_stack, alice).messages(chat.id)[0]


def a_row(chat_id: str, message_id: str, **changes) -> dict:
    return {"id": str(uuid.uuid4()), "message_id": message_id, "chat_id": chat_id,
            "position": 0, "kind": "document", "name": "planted.txt", "mime": "text/plain",
            "text": "planted", **changes}


def test_a_user_reads_none_of_another_users_attachments(api_as, supabase_stack, alice, bob,
                                                        bobs_files):
    chat, question, _ = bobs_files
    as_alice = api_as(alice)

    assert as_alice.select("attachments") == []
    assert as_alice.select("attachments", message_id=question.id) == []
    assert as_alice.select("attachments", chat_id=chat.id) == []
    assert app_store(supabase_stack, alice).messages(chat.id) == []
    assert len(api_as(bob).select("attachments", chat_id=chat.id)) == 2
    with pytest.raises(Refused):
        api_as(None).select("attachments")


@pytest.mark.parametrize("owner", ["alice", "bob"])
def test_a_user_cannot_attach_a_file_to_another_users_message(api_as, supabase_stack, alice,
                                                              bob, bobs_files, alices_chat,
                                                              owner):
    chat, question, _ = bobs_files
    before = attachments_of(supabase_stack, bob.id)
    as_alice = api_as(alice)
    user_id = {"alice": alice.id, "bob": bob.id}[owner]

    for row in (a_row(chat.id, question.id, user_id=user_id, position=5),
                # her own chat named, his message: the key and the policy both refuse
                a_row(alices_chat[0].id, question.id, user_id=user_id, position=5)):
        with pytest.raises(Refused) as refused:
            as_alice.insert("attachments", row)
        assert refused.value.code in (ROW_SECURITY, "23503")
    with pytest.raises(Refused):  # through the call that writes a message with its files
        as_alice.rpc("add_message_with_attachments", {
            "message": {"id": str(uuid.uuid4()), "chat_id": chat.id, "role": "user",
                        "content": "planted", "parent_id": question.id},
            "files": [a_row(chat.id, question.id)]})

    assert attachments_of(supabase_stack, bob.id) == before
    assert attachments_of(supabase_stack, alice.id) == []


def test_a_user_cannot_delete_another_users_attachments(api_as, supabase_stack, alice, bob,
                                                        bobs_files):
    chat, question, _ = bobs_files
    before = attachments_of(supabase_stack, bob.id)
    as_alice = api_as(alice)

    assert as_alice.delete("attachments", message_id=question.id) == []
    assert as_alice.delete("attachments", chat_id=chat.id) == []
    assert as_alice.delete("attachments", user_id=bob.id) == []
    app_store(supabase_stack, alice).delete_chat(chat.id)

    assert attachments_of(supabase_stack, bob.id) == before


def test_nobody_updates_an_attachment_not_even_its_owner(api_as, supabase_stack, alice, bob,
                                                         bobs_files):
    chat, question, _ = bobs_files
    before = attachments_of(supabase_stack, bob.id)

    for account in (bob, alice):
        for values in ({"text": "changed"}, {"name": "renamed.txt"},
                       {"message_id": str(uuid.uuid4())}):
            with pytest.raises(Refused) as refused:
                api_as(account).update("attachments", values, chat_id=chat.id)
            assert refused.value.code == NO_PRIVILEGE

    assert attachments_of(supabase_stack, bob.id) == before


def test_an_owner_may_delete_their_attachment_and_their_chat_takes_the_rest(
        api_as, supabase_stack, bob, bobs_files):
    chat, question, _ = bobs_files
    [first, _] = sorted(attachments_of(supabase_stack, bob.id), key=lambda r: r["position"])

    assert [row["id"] for row in api_as(bob).delete("attachments", id=str(first["id"]))] == [
        str(first["id"])]
    api_as(bob).delete("chats", id=chat.id)

    assert attachments_of(supabase_stack, bob.id) == []


def test_the_database_refuses_an_attachment_out_of_its_bounds(api_as, alice, alices_chat):
    chat, question = alices_chat
    as_alice = api_as(alice)
    too_big = base64.b64encode(b"x" * 2_000_001).decode()
    for row in (a_row(chat.id, question.id, kind="image", text="", data="not base64!"),
                a_row(chat.id, question.id, kind="image", text="", data=too_big),
                a_row(chat.id, question.id, kind="image"),  # an image holding text
                a_row(chat.id, question.id, text="t" * 8_000_001),
                a_row(chat.id, question.id, position=10),
                a_row(chat.id, question.id, name=""),
                a_row(chat.id, question.id, kind="video")):
        with pytest.raises(Refused) as refused:
            as_alice.insert("attachments", row)
        assert refused.value.code == CHECK
    assert as_alice.select("attachments") == []
    exactly = base64.b64encode(b"x" * 2_000_000).decode()
    assert len(as_alice.insert("attachments", a_row(chat.id, question.id, kind="image",
                                                     text="", data=exactly))) == 1


@pytest.mark.parametrize("column, near, code", [
    ("attachments", MAX_ATTACHMENTS_PER_USER, ATTACHMENTS_BOUND),
    ("attachment_bytes", MAX_ATTACHMENT_BYTES_PER_USER - 5, ATTACHMENT_BYTES_BOUND),
])
def test_each_users_attachments_are_bounded_and_only_their_own(
        api_as, supabase_stack, alice, bob, alices_chat, bobs_files, column, near, code):
    chat, question = alices_chat
    supabase_stack.sql(f"update public.user_totals set {column} = %s where user_id = %s",
                       near, alice.id)

    with pytest.raises(Refused) as refused:
        api_as(alice).insert("attachments", a_row(chat.id, question.id, text="0123456789"))
    assert refused.value.code == code
    with pytest.raises(UserFacingError, match="Delete chats you no longer need to attach more"):
        app_store(supabase_stack, alice).add_message(Message(
            chat_id=chat.id, role="user", content="more", attachments=(
                Attachment(name="n.txt", kind="document", mime="text/plain",
                           text="0123456789"),)))
    assert attachments_of(supabase_stack, alice.id) == []
    assert len(app_store(supabase_stack, alice).messages(chat.id)) == 1  # no message left
    with_files(supabase_stack, bob, "Bob writes on")  # his own totals: nothing refused


def test_the_attachment_totals_follow_what_is_stored(supabase_stack, bob, bobs_files):
    chat, _, _ = bobs_files
    [totals] = supabase_stack.sql("select attachments, attachment_bytes from public.user_totals"
                                  " where user_id = %s", bob.id)
    # An image counts three bytes for each four characters of its base64.
    assert totals == {"attachments": 2, "attachment_bytes": len(
        base64.b64encode(IMAGE)) // 4 * 3 + len(TEXT)}

    app_store(supabase_stack, bob).delete_chat(chat.id)

    [totals] = supabase_stack.sql("select attachments, attachment_bytes from public.user_totals"
                                  " where user_id = %s", bob.id)
    assert totals == {"attachments": 0, "attachment_bytes": 0}


def test_usage_totals_are_each_users_own(api_as, supabase_stack, alice, bob, bobs_files):
    with_files(supabase_stack, alice, "Alice's files")
    with_files(supabase_stack, alice, "Alice's files again")

    assert api_as(alice).rpc("usage_totals", {}) == [{
        "model_label": "m · c", "replies": 2, "prompt_tokens": 80, "completion_tokens": 4}]
    assert app_store(supabase_stack, bob).usage_totals() == [UsageTotal("m · c", 1, 40, 2)]
    with pytest.raises(Refused) as refused:
        api_as(None).rpc("usage_totals", {})
    assert refused.value.code == NO_PRIVILEGE
