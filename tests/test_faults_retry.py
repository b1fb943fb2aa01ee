"""A failed Retry keeps the interrupted partial reply it was retrying (issue 9)."""

from __future__ import annotations

from core.chat.call import Reply
from core.history.conversation import Conversation, ShownMessage


def _reply(text: str, status: str, error: str | None = None) -> Reply:
    reply = Reply(model="m", provider="p", status=status, error=error)
    reply.add_answer(text)
    return reply


def _replied(conversation: Conversation, reply: Reply) -> None:
    """A reply asked for and ended, as the chat page shows one its worker ran."""
    turn = conversation.ask_reply()
    conversation.end_live(ShownMessage.ended(turn, reply), stored=True)


def _interrupted_then_retried(second: Reply) -> Conversation:
    conversation = Conversation()
    conversation.add_user("tell me a story")
    _replied(conversation, _reply("Once upon a", "interrupted", "The connection dropped."))
    assert conversation.prepare_regenerate()
    _replied(conversation, second)
    return conversation


def test_a_retry_that_gets_nothing_keeps_the_partial_reply_with_the_new_error():
    conversation = _interrupted_then_retried(_reply("", "failed", "Could not connect."))
    last = conversation.turns[-1]
    assert (last.content, last.status, last.error) == ("Once upon a", "interrupted", "Could not connect.")
    assert conversation.needs_retry()
    assert conversation.chat.current_id == last.id


def test_a_retry_that_gets_text_replaces_the_partial_reply():
    conversation = _interrupted_then_retried(_reply("Once upon a time, the end.", "complete"))
    assert [t.content for t in conversation.turns] == ["tell me a story", "Once upon a time, the end."]
    assert conversation.chat.current_id == conversation.turns[-1].id


def test_a_new_message_forgets_the_reply_being_retried():
    conversation = Conversation()
    conversation.add_user("first")
    _replied(conversation, _reply("partial", "interrupted", "dropped"))
    conversation.prepare_regenerate()
    conversation.add_user("second")  # the retry was abandoned for a new message
    _replied(conversation, _reply("", "failed", "Could not connect."))
    assert conversation.turns[-1].content == "" and conversation.turns[-1].status == "failed"
