"""No traceback, ever (issue 8): whatever fails while a request is built or run ends as a
reply error. A provider or network failure is said as such; a bug of ours is logged (keys
redacted) and the user sees that Switchboard itself failed, with a reference to the log line.
"""

from __future__ import annotations

import logging
import re

import pytest

import core.chat.call
import core.chat.events
from core.chat.call import Reply, start_reply
from core.config import load_settings
from core.providers.kinds import Target
from tests.chatting import assistant_captions, errors, send, start_chat, use_server

KEY = "sk-SECRET_0123456789abcdef"
BUG = re.compile(r"Switchboard itself failed \(reference ([0-9a-f]{8})\); "
                 r"this is a bug in Switchboard, not the server\.")


def _run(base_url: str, model: str = "m", key: str = KEY) -> Reply:
    reply = Reply()
    target = Target("openai-compatible", "Compatible", base_url, key, model)
    settings = load_settings(environ={}, dotenv_path=None)
    for _ in start_reply(settings, target, [{"role": "user", "content": "hi"}], reply):
        pass
    return reply


@pytest.mark.parametrize("url, host", [
    ("http://0177.0.0.1:1234/v1", "0177.0.0.1"),
    ("http://999.1.1.1:1234/v1", "999.1.1.1"),
])
def test_a_base_url_the_http_client_cannot_parse_ends_as_a_reply_error(url, host):
    reply = _run(url)  # must not raise
    assert reply.status == "failed" and reply.error_field == "base_url"
    assert reply.error.startswith(f"The base URL {url} cannot be used")
    assert host in reply.error


def test_a_bug_while_reading_a_stream_is_ours_logged_with_a_reference_and_no_key(
    katan_server, monkeypatch, caplog
):
    key = katan_server.api_key

    def broken(self, chunk):
        raise RuntimeError(f"our own mistake, holding {key}")

    monkeypatch.setattr(core.chat.events.ChunkReader, "chunk", broken)
    with caplog.at_level(logging.ERROR, logger="core.chat.errors"):
        reply = _run(katan_server.base_url, katan_server.model, key)
    match = BUG.fullmatch(reply.error)
    assert match and reply.status == "failed" and reply.error_field is None
    assert match.group(1) in caplog.text and "our own mistake" in caplog.text
    assert "RuntimeError" in caplog.text and "Traceback" in caplog.text
    assert key[:12] not in caplog.text and key[-12:] not in caplog.text


def test_a_bug_while_building_the_request_never_raises(monkeypatch):
    def broken(*args, **kwargs):
        raise TypeError("build_client got confused")

    monkeypatch.setattr(core.chat.call, "build_client", broken)
    reply = _run("http://127.0.0.1:9/v1")
    assert BUG.fullmatch(reply.error) and reply.status == "failed"


def test_the_chat_page_shows_our_bug_as_ours_and_keeps_the_message(katan_server, monkeypatch):
    def broken(self, chunk):
        raise KeyError("choices")

    monkeypatch.setattr(core.chat.events.ChunkReader, "chunk", broken)
    use_server(katan_server)
    at = start_chat()
    send(at, "hello")  # asserts no exception reached the page
    assert BUG.fullmatch(errors(at)[0])
    assert "Failed" in assistant_captions(at)[-1]
    assert at.button(key="chat:retry").label == "Retry"


def test_a_malformed_chunk_is_the_servers_fault_not_ours(canned_server):
    events = ['data: {"choices": [{"delta": {"content": "Hi"}}]}\n\n', 'data: {"choices": 5}\n\n']
    reply = _run(canned_server(200, events, chunked=True).base_url)
    assert reply.status == "interrupted" and reply.text == "Hi"
    assert reply.error == "The server sent a malformed reply that could not be read."
