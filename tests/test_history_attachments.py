"""A message's attachments and a chat's reply room and context window, in both stores (an
SQLite file and the Supabase stack through PostgREST, as the app's own stores): kept exactly
and in order, written with their message or not at all, deleted with their chat; and the
replies' token usage summed per model."""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import replace

import httpx
import pytest
import supabase
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from supabase.lib.client_options import SyncClientOptions

from core.auth import SupabaseAuth
from core.config import Settings
from core.failures import UserFacingError
from core.history.transfer import every_chat, import_chats, to_json
from core.history.model import (
    MAX_ATTACHMENT_NAME_LENGTH,
    MAX_ATTACHMENTS,
    MAX_IMAGE_BYTES,
    Attachment,
    Chat,
    Message,
)
from core.store.contracts import UsageTotal
from core.store.errors import MAX_CONTEXT_WINDOW, MAX_REPLY_TOKENS
from core.store.supabase import MAX_REQUEST_BYTES, SupabaseChatStore
from tests.test_history_store import PASSWORD, Backend, backend  # noqa: F401 (the fixture)


def an_image(name: str = "photo.jpg", data: bytes = b"\xff\xd8\x00jpeg\x00\xff") -> Attachment:
    return Attachment(name=name, kind="image", mime="image/jpeg", data=data, size=123_456,
                      width=1568, height=1045)


def a_document(name: str = "notes.md", text: str = "# Notes\n\nfirst line") -> Attachment:
    return Attachment(name=name, kind="document", mime="text/markdown", text=text,
                      size=len(text.encode()))


def a_question(chat: Chat, *attachments: Attachment, content: str = "What is this?",
               parent_id: str | None = None) -> Message:
    return Message(chat_id=chat.id, role="user", content=content, parent_id=parent_id,
                   attachments=attachments)


def test_attachments_round_trip_exactly_and_in_order_in_a_new_session(backend: Backend):
    store = backend.store()
    chat = store.save_chat(Chat(title="Files"))
    every_byte = bytes(range(256)) * 3
    files = (an_image("b.png", every_byte), a_document("a.txt", "é 😀 ``` fenced"),
             an_image("c.jpg", os.urandom(5000)), a_document("empty.txt", ""))
    question = store.add_message(a_question(chat, *files))
    reply = store.add_message(Message(chat_id=chat.id, role="assistant", content="A photo.",
                                      parent_id=question.id))

    assert question.attachments == files  # the returned message holds them as written
    stored = backend.store().messages(chat.id)
    assert [m.id for m in stored] == [question.id, reply.id]
    assert stored[0].attachments == files
    assert [a.name for a in stored[0].attachments] == ["b.png", "a.txt", "c.jpg", "empty.txt"]
    assert stored[0].attachments[0].data == every_byte
    assert stored[1].attachments == ()


def test_each_message_gets_its_own_attachments(backend: Backend):
    store = backend.store()
    chat = store.save_chat(Chat(title="Two questions"))
    first = store.add_message(a_question(chat, an_image("one.png", b"1")))
    second = store.add_message(a_question(chat, *(a_document(f"{n}.txt", str(n))
                                                  for n in range(MAX_ATTACHMENTS)),
                                          parent_id=first.id))

    by_id = {m.id: m for m in backend.store().messages(chat.id)}
    assert [a.data for a in by_id[first.id].attachments] == [b"1"]
    assert [a.text for a in by_id[second.id].attachments] == [str(n) for n in
                                                              range(MAX_ATTACHMENTS)]


def test_a_message_with_one_attachment_too_many_is_refused_whole(backend: Backend):
    store = backend.store()
    chat = store.save_chat(Chat(title="Too many"))
    files = [a_document(f"{n}.txt") for n in range(MAX_ATTACHMENTS + 1)]

    with pytest.raises(UserFacingError, match=f"at most {MAX_ATTACHMENTS} files"):
        store.add_message(a_question(chat, *files))

    assert store.messages(chat.id) == []
    assert backend.stored_attachments() == 0


@pytest.mark.parametrize("refused, said", [
    (an_image(data=b"x" * (MAX_IMAGE_BYTES + 1)), "An image can be at most 2 MB"),
    (a_document(name="n" * (MAX_ATTACHMENT_NAME_LENGTH + 1)), "A file's name must be 1 to 255"),
    (Attachment(name="clip.mp4", kind="video", mime="video/mp4"), "Only images and documents"),
])
def test_a_refused_attachment_leaves_no_message_and_a_second_add_works(backend: Backend,
                                                                       refused, said):
    store = backend.store()
    chat = store.save_chat(Chat(title="Refused"))
    question = a_question(chat, a_document(), refused)

    with pytest.raises(UserFacingError, match=said) as raised:
        store.add_message(question)

    assert "Nothing was saved." in str(raised.value)
    assert backend.stored_messages() == 0 and backend.stored_attachments() == 0
    # As the conversation does after a refusal: the same message again, as a note.
    note = store.add_message(question.with_changes(content="", attachments=(),
                                                   error="Not stored"))
    assert [(m.id, m.error, m.attachments) for m in backend.store().messages(chat.id)] == [
        (question.id, "Not stored", ())]
    assert note.attachments == ()


def test_adding_a_message_with_attachments_twice_changes_nothing(backend: Backend):
    store = backend.store()
    chat = store.save_chat(Chat(title="Twice"))
    question = a_question(chat, an_image(), a_document())
    first = store.add_message(question)

    again = backend.store().add_message(question.with_changes(content="other"))

    assert again == first
    assert again.attachments == question.attachments
    assert backend.stored_attachments() == 2


def test_updating_a_message_never_touches_its_attachments(backend: Backend):
    store = backend.store()
    chat = store.save_chat(Chat(title="Edit"))
    question = store.add_message(a_question(chat, an_image(), a_document()))

    changed = store.update_message(question.id, {"content": "changed", "error": "e"})

    assert changed.attachments == question.attachments
    assert backend.store().messages(chat.id)[0].attachments == question.attachments


def test_deleting_a_chat_deletes_its_attachments(backend: Backend):
    store = backend.store()
    kept = store.save_chat(Chat(title="Kept"))
    store.add_message(a_question(kept, an_image()))
    gone = store.save_chat(Chat(title="Gone"))
    store.add_message(a_question(gone, an_image(), a_document()))
    assert backend.stored_attachments() == 3

    store.delete_chat(gone.id)
    assert backend.stored_attachments() == 1
    store.delete_all()
    assert backend.stored_attachments() == 0


def test_another_user_sees_none_of_the_attachments(backend: Backend):
    store = backend.store()
    chat = store.save_chat(Chat(title="Mine"))
    store.add_message(a_question(chat, an_image()))

    assert backend.other_user().messages(chat.id) == []


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(max_tokens=st.none() | st.integers(1, MAX_REPLY_TOKENS),
       context_window=st.none() | st.integers(1, MAX_CONTEXT_WINDOW))
def test_reply_room_and_context_window_round_trip(backend, max_tokens, context_window):
    """Property: any reply room and context window within their bounds (or none) reads back
    as saved, on creating the chat and on changing it."""
    store = backend.store()
    chat = store.save_chat(Chat(title="Options", max_tokens=max_tokens,
                                context_window=context_window))
    assert (chat.max_tokens, chat.context_window) == (max_tokens, context_window)
    changed = store.save_chat(chat.with_changes(max_tokens=context_window and 7,
                                                context_window=max_tokens))
    read = backend.store().get_chat(chat.id)
    assert (read.max_tokens, read.context_window) == (context_window and 7, max_tokens)
    assert read == changed


@pytest.mark.parametrize("option, value, said", [
    ("max_tokens", 0, "The room kept for a reply must be 1 to"),
    ("max_tokens", MAX_REPLY_TOKENS + 1, "The room kept for a reply must be 1 to"),
    ("context_window", -5, "The context window must be 1 to"),
])
def test_a_reply_room_or_context_window_out_of_bounds_is_refused(backend, option, value, said):
    store = backend.store()
    chat = store.save_chat(Chat(title="Bounds"))

    with pytest.raises(UserFacingError, match=said):
        store.save_chat(chat.with_changes(**{option: value}))

    assert backend.store().get_chat(chat.id) == chat


def test_usage_totals_sum_each_models_replies_for_this_user_only(backend: Backend):
    store = backend.store()
    assert store.usage_totals() == []
    chat = store.save_chat(Chat(title="Usage"))
    question = store.add_message(a_question(chat))
    for label, usage in (("small · local", {"prompt_tokens": 10, "completion_tokens": 5,
                                            "total_tokens": 15}),
                         ("small · local", {"prompt_tokens": 7, "completion_tokens": 3,
                                            "total_tokens": 10}),
                         ("small · local", None),  # a reply whose server said no usage
                         ("big · cloud", {"prompt_tokens": 1000, "completion_tokens": 1})):
        store.add_message(Message(chat_id=chat.id, role="assistant", content="r",
                                  parent_id=question.id, model_label=label, usage=usage))
    other = backend.other_user()
    theirs = other.save_chat(Chat(title="Theirs"))
    other.add_message(Message(chat_id=theirs.id, role="assistant", content="r",
                              model_label="small · local",
                              usage={"prompt_tokens": 99, "completion_tokens": 99}))

    assert backend.store().usage_totals() == [
        UsageTotal("big · cloud", replies=1, prompt_tokens=1000, completion_tokens=1),
        UsageTotal("small · local", replies=3, prompt_tokens=17, completion_tokens=8)]
    assert other.usage_totals() == [UsageTotal("small · local", 1, 99, 99)]


# ---- Supabase: requests at most MAX_REQUEST_BYTES, one read of a chat's attachments --------


@pytest.fixture
def watched_store(supabase_stack):
    """A Supabase store for a new user, and the requests its client sends."""
    settings_ = Settings(supabase_url=supabase_stack.url,
                         supabase_anon_key=supabase_stack.anon_key)
    email = f"files-{uuid.uuid4().hex[:12]}@example.com"
    SupabaseAuth(settings_).sign_up(email, PASSWORD)
    sent: list[httpx.Request] = []
    client = supabase.create_client(supabase_stack.url, supabase_stack.anon_key,
                                    SyncClientOptions(httpx_client=httpx.Client(
                                        timeout=60, event_hooks={"request": [sent.append]})))
    user = client.auth.sign_in_with_password({"email": email, "password": PASSWORD}).user
    return SupabaseChatStore(client, user.id), sent


def test_big_attachments_go_to_supabase_in_requests_of_at_most_a_megabyte(watched_store):
    store, sent = watched_store
    chat = store.save_chat(Chat(title="Big files"))
    image = an_image("big.png", os.urandom(MAX_IMAGE_BYTES))
    document = a_document("book.txt", '"quoted" é 😀\n' * 200_000)  # 3,000,000 characters
    sent.clear()

    question = store.add_message(a_question(chat, image, document,
                                            content="long " * 300_000))

    writes = [request for request in sent if request.url.path.startswith("/rest/v1/")]
    assert max(len(request.content) for request in writes) <= MAX_REQUEST_BYTES
    as_sent = len(json.dumps(document.text, ensure_ascii=False).encode())
    assert len(writes) > as_sent // MAX_REQUEST_BYTES
    assert question.attachments == (image, document)
    [stored] = store.messages(chat.id)
    assert stored.attachments == (image, document)
    assert stored.content == "long " * 300_000


def test_a_chats_attachments_are_read_with_one_request_for_the_whole_chat(watched_store):
    store, sent = watched_store
    chat = store.save_chat(Chat(title="Many messages"))
    parent = None
    for number in range(6):
        parent = store.add_message(a_question(chat, an_image(f"{number}.png", bytes([number])),
                                              a_document(), parent_id=parent)).id
    sent.clear()

    messages = store.messages(chat.id)

    assert [m.attachments[0].data for m in messages] == [bytes([n]) for n in range(6)]
    assert [request.url.path for request in sent] == ["/rest/v1/messages",
                                                      "/rest/v1/attachments"]


# ---- export and import through both stores ------------------------------------------------


def test_export_and_import_keep_attachments_and_options_exactly(backend: Backend):
    store = backend.store()
    chat = store.save_chat(Chat(title="Exported", max_tokens=512, context_window=8192))
    files = (an_image("shot.png", bytes(range(256))), a_document("readme.md", "# Read\x01me"))
    question = store.add_message(a_question(chat, *files))
    store.add_message(Message(chat_id=chat.id, role="assistant", content="ok",
                              parent_id=question.id))
    exported = to_json(every_chat(store))

    importer = backend.other_user()
    report = import_chats(importer, exported, owner="someone else")
    again = import_chats(importer, exported, owner="someone else")

    assert (report.imported, again.imported) == (1, 0)
    [(imported, messages)] = every_chat(importer)
    assert (imported.max_tokens, imported.context_window) == (512, 8192)
    assert [m.attachments for m in messages][1:] == [()]
    kept = messages[0].attachments
    assert [replace(a, id="") for a in kept] == [replace(a, id="") for a in files]
    assert {a.id for a in kept}.isdisjoint(a.id for a in files)  # new ids, as the messages'
    assert backend.stored_attachments() == 4


def test_a_file_id_stored_with_another_message_is_refused_in_plain_words(backend: Backend):
    store = backend.store()
    chat = store.save_chat(Chat(title="Same file"))
    image = an_image()
    first = store.add_message(a_question(chat, image))

    with pytest.raises(UserFacingError, match="stored with another message already"):
        store.add_message(a_question(chat, image, parent_id=first.id))

    assert [m.id for m in store.messages(chat.id)] == [first.id]


def test_a_chat_found_by_search_carries_its_reply_room_and_context_window(backend: Backend):
    store = backend.store()
    chat = store.save_chat(Chat(title="Quokka notes", max_tokens=300, context_window=32_768))

    [found] = store.search("quokka")

    assert found.chat == chat
