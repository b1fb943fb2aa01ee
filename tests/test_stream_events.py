"""How a reply's server-sent events are read: what ends a stream, errors inside it, odd servers.

Real HTTP on loopback (canned event streams); the outcomes are the ones the chat page shows.
"""

from __future__ import annotations

import json

from core.chat.call import Reply, start_reply
from core.config import load_settings
from core.providers.kinds import Target
from tests.fixtures.llm_servers import SSE_DONE, sse_chunk


def _reply_from(server) -> Reply:
    reply = Reply()
    target = Target("openai-compatible", "Compatible", server.base_url, "k", "m")
    settings = load_settings(environ={}, dotenv_path=None)
    for _ in start_reply(settings, target, [{"role": "user", "content": "hi"}], reply):
        pass
    return reply


HELLO = sse_chunk({"role": "assistant", "content": "Hello"})


def test_events_sent_as_text_plain_are_still_read(canned_server):
    server = canned_server(200, [HELLO, sse_chunk({}, "stop"), SSE_DONE], chunked=True,
                           content_type="text/plain")
    reply = _reply_from(server)
    assert (reply.status, reply.text, reply.error) == ("complete", "Hello", None)


def test_keep_alive_comments_and_empty_events_are_skipped(canned_server):
    events = [": ping\n\n", HELLO, "event: ping\ndata:\n\n", sse_chunk({"content": "!"}, "stop"),
              SSE_DONE]
    reply = _reply_from(canned_server(200, events, chunked=True))
    assert (reply.status, reply.text) == ("complete", "Hello!")


def test_an_error_event_without_an_error_field_is_the_servers_error(canned_server):
    events = [HELLO, 'event: error\ndata: {"message": "overloaded"}\n\n']
    reply = _reply_from(canned_server(200, events, chunked=True))
    assert reply.status == "interrupted" and reply.text == "Hello"
    assert reply.error == "The server reported an error during the reply: overloaded"


def test_a_message_chunk_without_choices_is_an_error_too(canned_server):
    reply = _reply_from(canned_server(200, ['data: {"message": "model crashed"}\n\n'], chunked=True))
    assert reply.status == "failed"
    assert reply.error == "The server reported an error during the reply: model crashed"


def test_done_without_a_finish_reason_is_incomplete_and_no_done_is_cut_short(canned_server):
    with_done = _reply_from(canned_server(200, [HELLO, SSE_DONE], chunked=True))
    assert with_done.status == "incomplete" and "without saying it was finished" in with_done.error
    closed = _reply_from(canned_server(200, [HELLO], chunked=True))
    assert closed.status == "interrupted" and "closed before the reply was finished" in closed.error


def test_usage_in_a_last_chunk_without_choices_is_kept(canned_server):
    usage = {"prompt_tokens": 2, "completion_tokens": 1, "total_tokens": 3,
             "completion_tokens_details": None}
    events = [HELLO, sse_chunk({}, "stop"), f'data: {{"choices": [], "usage": {json.dumps(usage)}}}\n\n',
              SSE_DONE]
    reply = _reply_from(canned_server(200, events, chunked=True))
    assert reply.status == "complete"
    assert reply.usage == {"prompt_tokens": 2, "completion_tokens": 1, "total_tokens": 3}
