"""A 20,000-chunk reply at about 2,000 chunks/s completes on screen (FACTS.md: without
coalescing, Streamlit drops a client whose send queue passes 500 messages and the page
silently freezes).

llm-katan's echo backend answers an 80,000-character prompt with about 20,000 4-character
chunks, but only at full speed (about 5,900 chunks/s here) or, with `--chunk-delay-ms 1`, at
about 840/s. A small relay in front of it paces the real stream to 2,000 events per second.
"""

from __future__ import annotations

import http.client
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from tests.chatting import save_compatible
from tests.e2e.browser import (
    assert_no_exception,
    button,
    messages,
    open_app,
    send,
    wait_idle,
)
from tests.fixtures.llm_servers import LLMServer

RATE = 2000  # SSE events per second
CHUNKS = 20_000


class _PacedRelay(BaseHTTPRequestHandler):
    """Forwards a request to the upstream and relays its SSE events at `rate` per second."""

    protocol_version = "HTTP/1.1"
    upstream: LLMServer
    rate: float
    events: list[int]  # events relayed per request
    seconds: list[float]  # how long each relay took

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        parts = urlsplit(self.upstream.base_url)
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() in ("authorization", "content-type")}
        conn.request("POST", self.path, body, headers)
        reply = conn.getresponse()
        self.send_response_only(reply.status)
        self.send_header("Content-Type", reply.getheader("Content-Type", "text/event-stream"))
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        start, sent, pending = time.monotonic(), 0, []
        try:
            for line in reply:
                pending.append(line)
                if line.strip():
                    continue
                if any(piece.startswith(b"data:") for piece in pending):  # one whole event
                    sent += 1
                    wait = start + sent / self.rate - time.monotonic()
                    if wait > 0:
                        time.sleep(wait)
                data = b"".join(pending)
                pending.clear()
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.write(b"0\r\n\r\n")
        finally:
            conn.close()
            self.events.append(sent)
            self.seconds.append(time.monotonic() - start)

    def log_message(self, format, *args) -> None:
        pass


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client hanging up is fine
            super().handle_error(request, client_address)


@pytest.fixture
def paced_katan(katan_server):
    handler = type("Relay", (_PacedRelay,), {
        "upstream": katan_server, "rate": RATE, "events": [], "seconds": [],
    })
    server = _QuietServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    relay = LLMServer(f"http://127.0.0.1:{port}/v1", katan_server.api_key, katan_server.model,
                      "paced llm-katan")
    yield relay, handler
    server.shutdown()
    server.server_close()


def test_a_20000_chunk_reply_completes_on_screen(app_factory, new_page, paced_katan, isolated_data_dir):
    relay, stats = paced_katan
    save_compatible(relay.base_url, relay.api_key, relay.model)
    app = app_factory(data_dir=isolated_data_dir)
    page = new_page()
    open_app(page, app.url, "Chat")

    marker = f"END-{uuid.uuid4().hex[:12]}"
    words = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do ".split()
    prompt = " ".join(words[i % len(words)] for i in range(14_000))
    prompt = prompt[: 4 * CHUNKS - len(marker) - 1] + " " + marker  # 80,000 characters
    assert len(prompt) == 4 * CHUNKS

    sent_at = time.monotonic()
    send(page, prompt)
    reply = messages(page, "assistant").last
    # While it streams, the page keeps its connection and keeps showing more of the reply.
    samples: list[tuple[str, int]] = []
    while time.monotonic() - sent_at < 120:
        connection, length, done = page.evaluate("""marker => {
            const app = document.querySelector('[data-testid="stApp"]');
            const replies = [...document.querySelectorAll('[data-testid="stChatMessage"]')]
                .filter(m => m.querySelector('[data-testid="stChatMessageAvatarAssistant"]'));
            const text = replies.length ? replies[replies.length - 1].innerText : "";
            return [app.dataset.testConnectionState, text.length, text.includes(marker)];
        }""", marker)
        samples.append((connection, length))
        if done:
            break
        page.wait_for_timeout(250)
    expect(reply.get_by_text(marker)).to_be_visible()
    on_screen = time.monotonic() - sent_at
    wait_idle(page)

    assert stats.events and stats.events[-1] >= CHUNKS, stats.events
    rate = stats.events[-1] / stats.seconds[-1]
    print(f"\n{stats.events[-1]} chunks relayed in {stats.seconds[-1]:.1f} s ({rate:.0f}/s); "
          f"end marker on screen {on_screen:.1f} s after Enter; {len(samples)} samples")
    assert 1500 <= rate <= 2500, rate
    assert all(connection == "CONNECTED" for connection, _ in samples), samples
    lengths = [length for _, length in samples if length]
    assert len(set(lengths)) >= 3, lengths  # it grew on screen along the way
    expect(reply.locator('[data-testid="stCaptionContainer"]')).to_contain_text("katan-echo")
    assert marker in reply.inner_text()

    # The page still answers: a new chat clears the long conversation at once.
    button(page, "chat:new").click()
    wait_idle(page)
    expect(messages(page)).to_have_count(0)
    assert_no_exception(page)
