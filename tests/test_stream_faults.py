"""Replies that go wrong mid-stream, against llmock's real fault modes (issue 4)."""

from __future__ import annotations

import pytest

from tests.chatting import assistant_captions, chat_messages, errors, send, start_chat, use_server

# Pace the chunks so that the fault (between the 1st and 6th chunk) comes after some text.
PACED = ("--stream-chunk-delay-ms", "20", "--response-style", "echo")


def _fault(llmock_factory, fault: str):
    return llmock_factory(*PACED, "--stream-fault", f"{fault}=1.0")


@pytest.mark.parametrize(
    "fault, says",
    [
        ("disconnect", "dropped in the middle of the reply"),
        ("truncate", "closed before the reply was finished"),
        ("malformed", "malformed"),
    ],
)
def test_a_broken_stream_keeps_the_partial_reply_marked_interrupted(llmock_factory, fault, says):
    """llmock breaks the stream at a random chunk (1st to 6th); retried until text came first."""
    use_server(_fault(llmock_factory, fault))
    at = start_chat()
    for attempt in range(8):
        send(at, f"attempt {attempt}: please answer with several words, streamed")
        role, text = chat_messages(at)[-1]
        shown = errors(at)[-1]
        if text:
            break
        assert "Failed" in assistant_captions(at)[-1]  # broken before any text: nothing to keep
        assert says in shown or "sent no reply" in shown
    assert role == "assistant" and text, "every fault came before the first token"
    assert "Interrupted" in assistant_captions(at)[-1]
    assert says in shown
    assert at.button(key="chat:retry").label == "Retry"
    users = [t for r, t in chat_messages(at) if r == "user"]
    assert users == [f"attempt {i}: please answer with several words, streamed" for i in range(attempt + 1)]


def test_a_stalled_stream_is_cut_by_its_limit(llmock_factory, monkeypatch):
    """A stall before any chunk hits the first-token limit, a stall after one the idle limit.

    The message says how long the server was silent, in words for users: no setting names.
    """
    monkeypatch.setenv("SWITCHBOARD_IDLE_TIMEOUT", "1")
    monkeypatch.setenv("SWITCHBOARD_FIRST_TOKEN_TIMEOUT", "1.5")
    server = llmock_factory(*PACED, "--stream-fault", "stall=1.0", "--stream-stall-seconds", "8")
    use_server(server)
    at = start_chat()
    seen = set()
    for attempt in range(8):
        send(at, f"attempt {attempt}: a reply that will stall")
        shown = errors(at)[-1]
        assert "SWITCHBOARD" not in shown
        if "stopped in the middle of the reply" in shown:
            assert "sent nothing for 1 seconds" in shown
            seen.add("idle")
        else:
            assert "did not start replying: sent nothing for 1.5 seconds" in shown
            seen.add("first_token")
        if "idle" in seen:
            break
    assert "idle" in seen


def test_a_complete_stream_is_marked_neither_stopped_nor_interrupted(llmock_factory):
    use_server(llmock_factory(*PACED))
    at = start_chat()
    send(at, "hello there")
    assert errors(at) == []
    caption = assistant_captions(at)[-1]
    assert not any(word in caption for word in ("Interrupted", "Stopped", "incomplete"))
    assert "tokens" in caption  # llmock sends usage when asked with stream_options
