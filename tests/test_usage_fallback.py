"""Usage via stream_options, and the one retry without it for a server that rejects it."""

from __future__ import annotations

import http.server
import json
import threading
import urllib.request

import pytest

from tests.chatting import assistant_captions, chat_messages, errors, send, start_chat, use_server


class _RejectsStreamOptions(http.server.BaseHTTPRequestHandler):
    """A front for a real server that refuses `stream_options`, as some servers do (400)."""

    upstream = ""
    seen: list = []

    def do_POST(self):  # noqa: N802 (http.server's naming)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path.rstrip("/").endswith("/chat/completions"):  # not its window, nor counts
            type(self).seen.append(body)
        if "stream_options" in body:
            self._send(400, json.dumps({"error": {
                "message": "Unrecognized request argument supplied: stream_options"}}).encode(),
                "application/json")
            return
        forward = urllib.request.Request(
            self.upstream + self.path.removeprefix("/v1"), data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "Authorization": self.headers["Authorization"]},
        )
        with urllib.request.urlopen(forward) as answer:
            self._send(200, answer.read(), answer.headers["Content-Type"])

    def _send(self, status, data, content_type):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def picky_server(katan_server):
    handler = type("Handler", (_RejectsStreamOptions,), {"upstream": katan_server.base_url, "seen": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    yield type(katan_server)(url, katan_server.api_key, katan_server.model, "picky"), handler.seen
    server.shutdown()
    server.server_close()


def test_a_server_rejecting_stream_options_is_retried_without_and_remembered(picky_server):
    server, seen = picky_server
    use_server(server)
    at = start_chat()
    send(at, "first")
    assert errors(at) == []
    assert "User: first" in chat_messages(at)[-1][1]
    assert ["stream_options" in body for body in seen] == [True, False]
    send(at, "second")
    assert ["stream_options" in body for body in seen] == [True, False, False]  # remembered
    assert "tokens" in assistant_captions(at)[-1]  # llm-katan sends usage anyway
