"""One guarded HTTP client per process (core/chat/client.py `connection_for`): connections are kept
alive across replies, Fetch models and Test connection, and nothing of one user's requests
stays in the shared client for the next.

Every server here is a real HTTP/1.1 server on 127.0.0.1 that counts the TCP connections it
accepts.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx2
import openai
import pytest

from core.chat.call import Reply, start_reply
from core.chat.client import Limits, build_client, connection_for
from core.config import Settings
from core.chat.discovery import list_models, test_connection
from core.providers.kinds import Target

LOCAL = Settings()
# Supabase mode with loopback allowed by the operator: the guarded path, reaching our server.
GUARDED_LOOPBACK_ALLOWED = Settings(
    supabase_url="https://p.supabase.co", supabase_anon_key="anon", allowed_hosts=("127.0.0.1",)
)
MESSAGES = [{"role": "user", "content": "hi"}]


def _sse(*events: dict) -> bytes:
    lines = [f"data: {json.dumps(event)}\n\n" for event in events] + ["data: [DONE]\n\n"]
    return "".join(lines).encode()


def _chunk(delta: dict, finish: str | None = None) -> dict:
    return {
        "id": "c1", "object": "chat.completion.chunk", "created": 0, "model": "m",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


CHAT_STREAM = _sse(_chunk({"role": "assistant", "content": "hello"}), _chunk({}, "stop"))
MODEL_LIST = json.dumps({"object": "list", "data": [{"id": "m", "object": "model"}]}).encode()


class CountingServer(ThreadingHTTPServer):
    """Answers GET with a model list and POST with a streamed chat reply; counts connections."""

    daemon_threads = True

    def __init__(self, set_cookie: bool = False, stall: threading.Event | None = None):
        self.accepted = 0
        self.cookies_received: list[str | None] = []
        self.set_cookie = set_cookie
        self.stall = stall  # when set: hold every request until the event fires
        super().__init__(("127.0.0.1", 0), _Handler)

    def verify_request(self, request, client_address) -> bool:
        self.accepted += 1
        return True

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive

    def log_message(self, *args) -> None:
        pass

    def _answer(self, body: bytes, content_type: str) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.cookies_received.append(self.headers.get("Cookie"))
        if self.server.stall is not None:
            self.server.stall.wait(30)
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if self.server.set_cookie:
            self.send_header("Set-Cookie", "session=user-a-secret; Path=/")
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._answer(MODEL_LIST, "application/json")

    def do_POST(self) -> None:
        self._answer(CHAT_STREAM, "text/event-stream")


@pytest.fixture
def counting_server():
    started: list[CountingServer] = []

    def start(**options) -> CountingServer:
        server = CountingServer(**options)
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.shutdown()
        server.server_close()


def _target(server: CountingServer, key: str = "sk-user-a") -> Target:
    return Target("openai-compatible", "OpenAI-compatible", server.base_url, key, "m")


def _reply_text(settings: Settings, target: Target) -> str:
    reply = Reply(target.provider_id, target.model)
    text = "".join(c for c in start_reply(settings, target, MESSAGES, reply) if isinstance(c, str))
    assert reply.error is None, reply.error
    return text


def test_one_client_per_policy_for_the_whole_process():
    limits, client = connection_for(GUARDED_LOOPBACK_ALLOWED)
    again_limits, again = connection_for(GUARDED_LOOPBACK_ALLOWED)
    assert again is client and again_limits == limits
    slower = dataclasses.replace(GUARDED_LOOPBACK_ALLOWED, first_token_timeout=9.0)
    assert connection_for(slower) == (Limits(5.0, 9.0, 30.0), client)  # limits are per request
    assert connection_for(LOCAL)[1] is not client  # another policy, another pool
    strict = Settings(supabase_url="https://p.supabase.co", supabase_anon_key="anon")
    assert connection_for(strict)[1] not in (client, connection_for(LOCAL)[1])


@pytest.mark.parametrize("settings", [LOCAL, GUARDED_LOOPBACK_ALLOWED], ids=["local", "guarded"])
def test_replies_fetch_and_test_share_one_kept_alive_connection(counting_server, settings):
    server = counting_server()
    target = _target(server)
    assert _reply_text(settings, target) == "hello"
    assert _reply_text(settings, _target(server, key="sk-user-b")) == "hello"  # another user
    assert list_models(target, *connection_for(settings)) == ["m"]
    report = test_connection(target, *connection_for(settings))
    assert report.ok, report.summary
    assert server.accepted == 1  # five requests, one TCP connection
    assert not connection_for(settings)[1].is_closed  # nobody closed the shared client


def test_a_closed_shared_client_is_replaced_not_reused(counting_server):
    server = counting_server()
    _, client = connection_for(LOCAL)
    client.close()  # a bug elsewhere must not break every later request of the process
    assert _reply_text(LOCAL, _target(server)) == "hello"
    assert connection_for(LOCAL)[1] is not client


def test_no_cookie_set_for_one_user_is_sent_for_another(counting_server):
    server = counting_server(set_cookie=True)
    _, shared = connection_for(LOCAL)
    build_client(_target(server, "sk-user-a"), http_client=shared).models.list()
    build_client(_target(server, "sk-user-b"), http_client=shared).models.list()
    assert server.cookies_received == [None, None]
    assert server.accepted == 1


def test_per_request_time_limits_still_apply_on_the_shared_client(counting_server):
    release = threading.Event()
    server = counting_server(stall=release)
    _, shared = connection_for(LOCAL)
    try:
        client = build_client(_target(server), Limits(first_token=0.2), http_client=shared)
        with pytest.raises(openai.APITimeoutError) as info:
            client.models.list()
        assert isinstance(info.value.__cause__, httpx2.ReadTimeout)
    finally:
        release.set()
