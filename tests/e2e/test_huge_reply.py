"""A reply too long to draw whole stays light in a real browser: while it streams, the page shows
what it drew first and the latest characters under a caption, and stops growing; once finished,
the reply (and the user's long message above it) is shown a page at a time, with the end on the
last page and a Download of the whole reply in its Copy."""

from __future__ import annotations

import time
import uuid

import pytest
from playwright.sync_api import expect

from core.chat.blocks import LIVE_TAIL, LIVE_WHOLE_MAX
from tests.chatting import save_compatible
from tests.e2e.browser import assert_no_exception, chat_input, messages, open_app, wait_idle
from tests.fixtures.paced_relay import start_paced_relay

RATE = 8_000  # events of 4 characters a second: the 260 KB reply streams in about 8 s

# The last reply's text length, whether it shows the live tail's caption, the marker, its
# page picker (drawn by the final rerun) and its footer.
SAMPLE = """marker => {
    const replies = [...document.querySelectorAll('[data-testid="stChatMessage"]')]
        .filter(m => m.querySelector('[data-testid="stChatMessageAvatarAssistant"]'));
    const reply = replies[replies.length - 1];
    if (!reply) return null;
    const text = reply.querySelector('[data-testid="stChatMessageContent"]').textContent;
    return {length: text.length, tail: text.includes("while the reply arrives"),
            marker: text.includes(marker),
            paged: !!reply.querySelector('[data-testid="stPagination"]'),
            finished: [...reply.querySelectorAll('[data-testid="stCaptionContainer"]')]
                .some(c => c.textContent.includes("katan-echo"))};
}"""


@pytest.fixture
def fast_katan(katan_server):
    relay, _, stop = start_paced_relay(katan_server, RATE)
    yield relay
    stop()


def test_a_huge_reply_streams_in_a_bounded_page_and_ends_in_pages(
        app_factory, new_page, fast_katan, isolated_data_dir):
    save_compatible(fast_katan.base_url, fast_katan.api_key, fast_katan.model)
    app = app_factory(data_dir=isolated_data_dir)
    page = new_page()
    open_app(page, app.url, "Chat")
    marker = f"END{uuid.uuid4().hex[:8]}"
    words = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do ".split()
    prompt = " ".join(words[i % len(words)] for i in range(43_000))[:260_000] + " " + marker
    box = chat_input(page)
    box.evaluate("""(box, text) => {  // in one go: filling 260 KB key by key takes minutes
        Object.getOwnPropertyDescriptor(HTMLTextAreaElement.prototype, "value").set.call(box, text);
        box.dispatchEvent(new Event("input", {bubbles: true}));
    }""", prompt)
    # The moment the end arrives in the tail can be shorter than the sampling interval (the
    # final rerun follows at once): an observer records it as it happens.
    page.evaluate("""marker => {
        window.__tailEnd = false;
        new MutationObserver(() => {
            const replies = [...document.querySelectorAll('[data-testid="stChatMessage"]')]
                .filter(m => m.querySelector('[data-testid="stChatMessageAvatarAssistant"]'));
            const reply = replies[replies.length - 1];
            const text = reply ? reply.textContent : "";
            if (text.includes("while the reply arrives") && text.includes(marker))
                window.__tailEnd = true;
        }).observe(document.body, {childList: true, subtree: true, characterData: true});
    }""", marker)
    box.press("Enter")

    samples = []
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        sample = page.evaluate(SAMPLE, marker)
        if sample:
            samples.append(sample)
            if sample["finished"]:
                break
        page.wait_for_timeout(100)
    streaming = [s for s in samples if not s["paged"] and not s["finished"]]
    # While it streamed: the tail took over, and the reply never grew past the drawn head,
    # the latest characters and the caption.
    assert any(s["tail"] for s in streaming), streaming[-3:]
    assert max(s["length"] for s in streaming) < LIVE_WHOLE_MAX + LIVE_TAIL + 5_000
    assert page.evaluate("window.__tailEnd"), samples[-4:]  # the end arrived in the tail
    wait_idle(page)

    reply = messages(page, "assistant").last
    expect(reply.locator('[data-testid="stCaptionContainer"]').last).to_contain_text("katan-echo")
    expect(reply.get_by_text("A long reply (")).to_be_visible()
    expect(reply.get_by_text(marker)).to_have_count(0)  # on the last page, not the first
    reply.locator('[data-testid="stPaginationNext"]').click()
    wait_idle(page)
    expect(reply.get_by_text("this page holds characters 1 to")).to_have_count(0)
    while reply.locator('[data-testid="stPaginationNext"]:enabled').count():
        reply.locator('[data-testid="stPaginationNext"]').click()
        wait_idle(page)
    expect(reply.get_by_text(marker)).to_be_visible()
    # The user's message above is shown a page at a time too.
    mine = messages(page, "user").last
    expect(mine.locator('[data-testid="stPagination"]')).to_be_visible()
    expect(mine.get_by_text("A long message (")).to_be_visible()

    reply.locator('[data-testid="stPopoverButton"]').click()
    popover = page.locator('[data-testid="stPopoverBody"]')
    expect(popover.get_by_role("button", name="Download")).to_be_visible()
    expect(popover.locator('[data-testid="stCode"]')).to_contain_text(marker)  # the last page
    with page.expect_download() as download:
        popover.get_by_role("button", name="Download").click()
    saved = download.value.path().read_text()
    assert saved.startswith("[echo] model=katan-echo") and saved.endswith("User: " + prompt)
    assert_no_exception(page)
