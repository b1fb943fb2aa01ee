"""A conversation keeps every change in its store, even when a change arrives while a write is
under way: Stop ends a run inside `st.write_stream`, and the stopped reply's cleanup keeps what
arrived. CI once showed that cleanup running (from the garbage collector) in the middle of the
next run's write, which then failed with a KeyError on the page."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from core.chat.call import Reply, coalesce
from core.history.conversation import Conversation
from core.store.errors import StoreUnavailable
from core.store.sqlite import SQLiteChatStore


class Interrupting(SQLiteChatStore):
    """A real local store that, during its `at`-th write, runs `meanwhile` once first: what a
    collected generator's `finally` does when the collector runs in the middle of a write."""

    def __init__(self, folder, at: int = -1, meanwhile=lambda: None):
        super().__init__(folder)
        self.writes, self.at, self.meanwhile = 0, at, meanwhile

    def _write(self) -> None:
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


def _arriving(reply: Reply, pieces: list[str], closed: list[bool]):
    """A reply's stream: each piece is added to the reply as it is passed on."""
    try:
        for piece in pieces:
            reply.add_answer(piece)
            yield piece
    finally:
        closed.append(True)


def test_a_stopped_reply_ends_its_stream_and_is_kept_with_what_arrived(tmp_path):
    store = SQLiteChatStore(tmp_path)
    conversation = Conversation(store=store)
    conversation.add_user("count to ten")
    reply = conversation.begin_reply()
    closed: list[bool] = []
    source = _arriving(reply, ["one ", "two ", "three ", "four "], closed)
    kept = conversation.keeping_partial(coalesce(source, interval=0, render_rate=1e12), reply, every=1000)
    assert [next(kept), next(kept)] == ["one ", "two "]

    kept.close()  # what the page does when Stop ends the run inside write_stream

    assert closed == [True]  # the server's stream is ended at once, not when collected
    assert _stored(store, conversation)[-1][2:] == ("one two ", "streaming")
    conversation.recover()  # the next run marks it stopped
    assert _stored(store, conversation)[-1][2:] == ("one two ", "stopped")


def test_a_stopped_replys_cleanup_during_the_next_runs_write_loses_nothing(tmp_path):
    """The CI failure: a rerun writes what an outage left unstored, and the stopped reply's
    cleanup (keeping the same reply) runs in the middle of that write."""
    store = Interrupting(tmp_path)
    conversation = Conversation(store=store)
    conversation.add_user("count to ten")
    reply = conversation.begin_reply()
    abandoned = conversation.keeping_partial(
        _arriving(reply, ["one ", "two ", "three "], []), reply, every=1000)
    assert next(abandoned) == "one "

    def outage():
        raise StoreUnavailable("The chat store is busy; try again.", "busy")

    store.at, store.meanwhile = store.writes + 1, outage
    conversation.keep_partial(reply)
    assert conversation.unsaved  # said on the page; the reply waits to be stored
    store.at, store.meanwhile = store.writes + 1, abandoned.close

    conversation.store_again()  # the next run

    assert conversation.unsaved is None
    assert set(_stored(store, conversation)) == _held(conversation)
    assert [(role, content) for _, role, content, _ in _stored(store, conversation)] == [
        ("user", "count to ten"), ("assistant", "one ")]
    conversation.recover()
    assert _stored(store, conversation)[-1][2:] == ("one ", "stopped")


typed = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=20)


@settings(max_examples=60, deadline=None)
@given(
    before=st.lists(typed, min_size=1, max_size=4),
    more=st.lists(typed, min_size=1, max_size=4),
    at=st.integers(min_value=1, max_value=12),
    nested=st.sampled_from(["partial", "user", "rename"]),
)
def test_a_change_made_during_any_write_is_stored_too(tmp_path_factory, before, more, at, nested):
    """Property: whichever write a change lands in the middle of (the chat row, a new message,
    a reply's update), once the outer write returns the store holds exactly what the
    conversation holds, and the chat's title and current message are the conversation's."""
    store = Interrupting(tmp_path_factory.mktemp("chats"))
    conversation = Conversation(store=store)
    reply = Reply(model="m", provider="p")

    def meanwhile():
        if nested == "partial":  # nothing once the reply has ended
            reply.add_answer("".join(more))
            conversation.keep_partial(reply)
        elif nested == "user":
            conversation.add_user("".join(more))
        else:
            conversation.rename("".join(more))

    store.at, store.meanwhile = at, meanwhile
    for text in before:
        conversation.add_user(text)
    reply = conversation.begin_reply()
    reply.add_answer("".join(before))
    conversation.keep_partial(reply)
    conversation.finish_reply(reply)

    assert set(_stored(store, conversation)) == _held(conversation)
    stored_chat = store.get_chat(conversation.chat.id)
    assert (stored_chat.title, stored_chat.current_id) == (
        conversation.chat.title, conversation.chat.current_id)


def test_a_conversation_made_while_the_store_was_out_is_written_whole_once_attached(tmp_path):
    conversation = Conversation(unsaved="The chat history is unavailable right now.")
    conversation.add_user("hello there")
    reply = conversation.begin_reply()
    reply.add_answer("hi")
    reply.status = "complete"
    conversation.finish_reply(reply)
    conversation.add_user("again")
    store = SQLiteChatStore(tmp_path)
    conversation.attach(store)
    assert conversation.unsaved is None
    assert set(_stored(store, conversation)) == _held(conversation)
    saved = store.get_chat(conversation.chat.id)
    assert (saved.title, saved.current_id) == ("hello there", conversation.turns[-1].id)
    conversation.add_user("third")
    assert len(_stored(store, conversation)) == 4
