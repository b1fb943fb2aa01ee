"""The context budget on the chat page (AppTest, a real echo server): a message over the window
is not sent and comes back to the box with what to drop; an edit over it stays open; a model
known to take no images gets each earlier image named in its place."""

from __future__ import annotations

from tests.chatting import chat_messages, send, start_chat, use_server

WINDOW = 300  # tokens: a few sentences fit, a long message does not


def _small_window(at):
    at.number_input(key="chat:context_window").set_value(WINDOW).run()
    at.number_input(key="chat:max_tokens").set_value(50).run()
    return at


def _refusal(at) -> str:
    return next((e.value for e in at.error if e.value.startswith("Not sent:")), "")


def test_over_the_window_the_message_comes_back_with_what_to_drop(katan_server,
                                                                   recording_proxy):
    proxy, recorder = recording_proxy(katan_server)
    use_server(proxy)
    at = _small_window(start_chat())
    long = "The minutes of the meeting go on and on. " * 60
    send(at, long)
    assert chat_messages(at) == []
    assert recorder.chat_requests == []
    assert "context window is 300" in _refusal(at)
    assert "Your message alone does not fit" in _refusal(at)
    # (The words going back into the box is seen in Chromium: test_attachments_browser.py.)

    send(at, "short")  # fits: sent, and the refusal goes
    assert [role for role, _ in chat_messages(at)] == ["user", "assistant"]
    assert _refusal(at) == ""


def test_an_edit_over_the_window_stays_open_and_is_not_sent(katan_server, recording_proxy):
    proxy, recorder = recording_proxy(katan_server)
    use_server(proxy)
    at = _small_window(start_chat())
    send(at, "a short question")
    asked = len(recorder.chat_requests)
    at.button(key="chat:edit").click().run()
    at.text_area(key="chat:editing").set_value("far too long to fit. " * 120).run()
    at.button(key="chat:edit_send").click().run()
    assert len(recorder.chat_requests) == asked
    assert "context window is 300" in _refusal(at)
    assert at.text_area(key="chat:editing").value.startswith("far too long to fit.")
    at.button(key="chat:edit_cancel").click().run()  # cancelled: the refusal goes with it
    assert _refusal(at) == ""
    assert [text for _, text in chat_messages(at)][0] == "a short question"


def test_a_message_offered_back_is_checked_as_one_typed(katan_server, recording_proxy):
    """A message kept when the session ended ("Your message was not sent": Send) goes through
    the same checks as the box: one longer than a message can be is not sent, and says so."""
    from core.history.model import MAX_CONTENT_LENGTH
    from core.session import UNSENT

    proxy, recorder = recording_proxy(katan_server)
    use_server(proxy)
    at = start_chat()
    at.session_state[UNSENT] = "x" * (MAX_CONTENT_LENGTH + 1)
    at.run()
    at.button(key="chat:unsent_send").click().run()
    assert chat_messages(at) == [] and recorder.chat_requests == []
    assert _refusal(at) == (f"Not sent: Your message is {MAX_CONTENT_LENGTH + 1:,} characters "
                            f"long; a message can be at most {MAX_CONTENT_LENGTH:,}. Shorten "
                            "it, or attach it as a file.")

    at.session_state[UNSENT] = "a short one"
    at.run()
    at.button(key="chat:unsent_send").click().run()
    assert [role for role, _ in chat_messages(at)] == ["user", "assistant"]
