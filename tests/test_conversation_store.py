"""A conversation keeps every change in its store, also a change made while a write is under
way, and a reply its worker streams is in the store as it grows and as it ends (a Stop keeps
what came). A reply the worker could not store (its chat was not stored yet) is written by the
conversation showing it, with the chat, once the store answers again."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from core.chat.call import Reply
from core.history.conversation import Conversation, ShownMessage
from core.history.model import Message
from core.history.replies import Replies
from core.store.errors import StoreUnavailable
from core.store.sqlite import SQLiteChatStore
from tests.fixtures.llm_servers import FORTY_WORDS
from tests.replying import ask, show_ended, wait


class Interrupting(SQLiteChatStore):
    """A real local store that, during its `at`-th write, runs `meanwhile` once first (a change
    made while a write is under way), and refuses every write while `down` (an outage)."""

    def __init__(self, folder, at: int = -1, meanwhile=lambda: None):
        super().__init__(folder)
        self.writes, self.at, self.meanwhile, self.down = 0, at, meanwhile, False

    def _write(self) -> None:
        if self.down:
            raise StoreUnavailable("The chat store is busy; try again.", "busy")
        self.writes += 1
        if self.writes == self.at:
            self.meanwhile()

    def save_chat(self, chat):
        self._write()
        return super().save_chat(chat)

    def add_message(self, message):
        self._write()
        return super().add_message(message)

    def update_message(self, message_id, changes):
        self._write()
        return super().update_message(message_id, changes)


def _stored(store, conversation: Conversation) -> list[tuple]:
    """The chat's messages in the store, oldest first."""
    return [(m.id, m.role, m.content, m.status) for m in store.messages(conversation.chat.id)]


def _held(conversation: Conversation) -> set[tuple]:
    return {(m.id, m.role, m.content, m.status) for m in conversation.messages}


def _stored_reply(store, message_id: str) -> Message:
    """The reply as stored now; an empty one until its worker added it."""
    found = store.read_reply(message_id)
    return found[0] if found is not None else Message("", "assistant", "")


def _replies() -> Replies:
    return Replies(workers=2, writers=2, save_every=0.2)


def test_a_reply_is_stored_as_it_streams_and_a_stop_keeps_what_came_marked_stopped(
        tmp_path, canned_server):
    store = SQLiteChatStore(tmp_path)
    conversation = Conversation(store=store)
    conversation.add_user("count to forty")
    slow = canned_server(200, FORTY_WORDS, chunked=True, pace=0.1)  # about 4 s
    job = ask(_replies(), conversation, slow)

    wait(lambda: "word3 " in _stored_reply(store, job.id).content)  # the worker's saves
    assert _stored_reply(store, job.id).status == "streaming"
    job.stop()  # what Stop does, from any tab
    turn = show_ended(conversation, job)

    assert turn.status == "stopped" and turn.error == ""
    assert turn.content.startswith("word0 word1 word2 word3 ") and "word39" not in turn.content
    assert _stored(store, conversation)[-1] == (turn.id, "assistant", turn.content, "stopped")
    assert set(_stored(store, conversation)) == _held(conversation)
    assert store.get_chat(conversation.chat.id).current_id == turn.id


def test_a_reply_its_worker_could_not_store_is_written_with_its_chat_once_the_store_is_back(
        tmp_path, canned_server):
    """The chat was not stored when the message was sent, so the worker cannot add the reply
    to it; the conversation writes both once the store answers, with a change made in the
    middle of that write."""
    store = Interrupting(tmp_path)
    conversation = Conversation(store=store)
    store.down = True
    conversation.add_user("count to forty")
    assert conversation.unsaved  # said on the page; the message waits to be stored
    job = ask(_replies(), conversation, canned_server(200, FORTY_WORDS, chunked=True))
    turn = show_ended(conversation, job)
    assert job.left_to_page and turn.status == "complete" and "word39" in turn.content
    assert conversation.unsaved

    store.down = False
    store.at, store.meanwhile = store.writes + 2, lambda: conversation.rename("Counting")
    conversation.store_again()  # the next run

    assert conversation.unsaved is None
    assert set(_stored(store, conversation)) == _held(conversation)
    assert [(role, content) for _, role, content, _ in _stored(store, conversation)] == [
        ("user", "count to forty"), ("assistant", turn.content)]
    saved = store.get_chat(conversation.chat.id)
    assert (saved.title, saved.current_id) == ("Counting", turn.id)


typed = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=20)


@settings(max_examples=60, deadline=None)
@given(
    before=st.lists(typed, min_size=1, max_size=4),
    more=st.lists(typed, min_size=1, max_size=4),
    at=st.integers(min_value=1, max_value=12),
    nested=st.sampled_from(["ended", "user", "rename"]),
)
def test_a_change_made_during_any_write_is_stored_too(tmp_path_factory, before, more, at, nested):
    """Property: whichever write a change lands in the middle of (the chat row, a new message,
    a reply's end), once the outer write returns the store holds exactly what the conversation
    holds, and the chat's title and current message are the conversation's. The reply is one
    its worker left to the conversation to store."""
    store = Interrupting(tmp_path_factory.mktemp("chats"))
    conversation = Conversation(store=store)

    def end_reply(text: str) -> None:
        live = conversation.live_turn()
        if live is not None:  # nothing once the reply has ended
            reply = Reply(model="m", provider="p", status="complete")
            reply.add_answer(text)
            conversation.end_live(ShownMessage.ended(live, reply), stored=False, added=False)

    def meanwhile():
        if nested == "ended":
            end_reply("".join(more))
        elif nested == "user":
            if conversation.live_turn() is None:  # no message is sent while a reply arrives
                conversation.add_user("".join(more))
        else:
            conversation.rename("".join(more))

    store.at, store.meanwhile = at, meanwhile
    for text in before:
        conversation.add_user(text)
    conversation.ask_reply()
    end_reply("".join(before))

    assert set(_stored(store, conversation)) == _held(conversation)
    stored_chat = store.get_chat(conversation.chat.id)
    assert (stored_chat.title, stored_chat.current_id) == (
        conversation.chat.title, conversation.chat.current_id)


def test_a_conversation_made_while_the_store_was_out_is_written_whole_once_attached(tmp_path):
    conversation = Conversation(unsaved="The chat history is unavailable right now.")
    conversation.add_user("hello there")
    turn = conversation.ask_reply()
    reply = Reply(model="m", provider="p", status="complete")
    reply.add_answer("hi")
    conversation.end_live(ShownMessage.ended(turn, reply), stored=False, added=False)
    conversation.add_user("again")
    store = SQLiteChatStore(tmp_path)
    conversation.attach(store)
    assert conversation.unsaved is None
    assert set(_stored(store, conversation)) == _held(conversation)
    saved = store.get_chat(conversation.chat.id)
    assert (saved.title, saved.current_id) == ("hello there", conversation.turns[-1].id)
    conversation.add_user("third")
    assert len(_stored(store, conversation)) == 4
