"""A 20,000-chunk reply at about 2,000 chunks/s completes on screen (measured: without
coalescing, Streamlit drops a client whose send queue passes 500 messages and the page
silently freezes).

llm-katan's echo backend answers an 80,000-character prompt with about 20,000 4-character
chunks, but only at full speed (about 5,900 chunks/s here) or, with `--chunk-delay-ms 1`, at
about 840/s. A small relay in front of it (tests/fixtures/paced_relay.py) paces the real
stream to 2,000 events per second.
"""

from __future__ import annotations

import time
import uuid

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
from tests.fixtures.paced_relay import start_paced_relay

RATE = 2000  # SSE events per second
CHUNKS = 20_000


@pytest.fixture
def paced_katan(katan_server):
    relay, handler, stop = start_paced_relay(katan_server, RATE)
    yield relay, handler
    stop()


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
    # .first: as the reply ends, the streamed block and the finished reply's final drawing can
    # both be on the page for a moment.
    expect(reply.get_by_text(marker).first).to_be_visible()
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
