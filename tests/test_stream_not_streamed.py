"""A server that ignores stream=true and answers with one chat.completion JSON (issue 8).

That answer is a complete reply: shown, with a note that the server did not stream, and the
base URL is never blamed. Real HTTP: a canned server on loopback sends the JSON.
"""

from __future__ import annotations

from core.chat.call import Reply, start_reply
from core.config import load_settings
from core.providers.kinds import Target
from tests.chatting import assistant_captions, chat_messages, errors, send, start_chat, use_server


def _completion(message: dict, finish_reason: str | None = "stop", usage: dict | None = None) -> dict:
    return {
        "id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", **message},
                     "finish_reason": finish_reason}],
        **({"usage": usage} if usage else {}),
    }


USAGE = {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}


def _reply_from(server) -> tuple[Reply, list]:
    reply = Reply()
    target = Target("openai-compatible", "Compatible", server.base_url, "k", "m")
    settings = load_settings(environ={}, dotenv_path=None)
    pieces = list(start_reply(settings, target, [{"role": "user", "content": "hi"}], reply))
    return reply, pieces


def test_a_whole_json_reply_is_the_reply_with_its_reasoning_and_usage(canned_server):
    body = _completion({"content": "<think>short plan</think>Paris.", "reasoning_content": "Capital? "},
                       usage=USAGE)
    reply, pieces = _reply_from(canned_server(200, body))
    assert (reply.status, reply.error, reply.error_field) == ("complete", None, None)
    assert reply.text == "Paris." and "".join(p for p in pieces if isinstance(p, str)) == "Paris."
    assert reply.reasoning == "Capital? short plan"
    assert reply.usage == USAGE and reply.finish_reason == "stop"
    assert reply.notice == "The server did not stream this reply."


def test_a_whole_json_reply_cut_at_the_length_limit_says_so(canned_server):
    reply, _ = _reply_from(canned_server(200, _completion({"content": "Once upon"}, "length")))
    assert reply.status == "incomplete" and reply.text == "Once upon"
    assert "length limit" in reply.error


def test_the_chat_page_shows_the_whole_reply_and_notes_it_was_not_streamed(canned_server):
    server = canned_server(200, _completion({"content": "A complete answer."}, usage=USAGE))
    use_server(server)
    at = start_chat()
    send(at, "hello")
    assert errors(at) == []
    assert chat_messages(at)[-1] == ("assistant", "A complete answer.")
    caption = assistant_captions(at)[-1]
    assert "did not stream" in caption and "8 tokens" in caption


def test_an_error_in_a_json_answer_is_the_servers_error(canned_server):
    reply, _ = _reply_from(canned_server(200, {"error": {"message": "quota exhausted"}}))
    assert reply.status == "failed"
    assert reply.error == "The server reported an error during the reply: quota exhausted"
    assert reply.error_field is None  # not the base URL's fault


def test_json_that_is_no_reply_points_at_the_base_url_with_the_right_article(canned_server):
    reply, _ = _reply_from(canned_server(200, {"object": "list", "data": []}))
    assert reply.status == "failed" and reply.error_field == "base_url"
    assert "answered with an application/json page" in reply.error
