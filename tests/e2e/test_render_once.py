"""A reply streams as Markdown blocks (each finished block drawn once, a growing code fence
plain) and, once finished, is drawn exactly as before: one Markdown element with its headings,
tables, LaTeX and highlighted code, the same as when the chat is opened again. A reply cut
short is kept and marked, on screen and after a reload."""

from __future__ import annotations

import re
import time
import uuid

import pytest
from playwright.sync_api import expect

from tests.chatting import save_compatible
from tests.e2e.browser import (
    assert_no_exception,
    messages,
    open_app,
    send,
    wait_idle,
)
from tests.fixtures.paced_relay import start_paced_relay

MARKDOWN = '[data-testid="stMarkdownContainer"]'  # a drawn reply, not the text Copy holds
CODE = "".join(f"def step_{i}(value):\n    return value * {i}  # step {i}\n" for i in range(60))
REPLY = (
    "Here it is.\n\n# A heading\n\nA paragraph with **bold words**, `inline code` and a "
    "[link](https://example.com).\n\n- one item\n- another item\n\n"
    "| name | value |\n|------|-------|\n| a    | 1     |\n| b    | 2     |\n\n"
    "Inline math $x^2$ and a block:\n\n$$\n\\int_0^1 x\\,dx\n$$\n\n"
    f"```python\n{CODE}```\n\nThe last paragraph"
)

# What the last assistant message shows: its Markdown elements (not the caption or a button's
# label), code elements, and highlighted tokens; whether it has finished (its caption); and
# whether the hidden block that loads the highlighter is there, and hidden.
SAMPLE = """() => {
    const replies = [...document.querySelectorAll('[data-testid="stChatMessage"]')]
        .filter(m => m.querySelector('[data-testid="stChatMessageAvatarAssistant"]'));
    const reply = replies[replies.length - 1];
    if (!reply) return null;
    const content = reply.querySelector('[data-testid="stChatMessageContent"]');
    return {
        blocks: [...content.querySelectorAll('[data-testid="stMarkdownContainer"]')]
            .filter(m => !m.closest('[data-testid="stCaptionContainer"], button')).length,
        code: content.querySelectorAll('[data-testid="stCode"]').length,
        tokens: content.querySelectorAll('[data-testid="stCode"] .token').length,
        finished: !!content.querySelector('[data-testid="stCaptionContainer"]'),
        warm: (w => !w ? null : getComputedStyle(w.parentElement).display === "none"
                   && w.offsetParent === null ? "hidden" : "shown")(  // its wrapper too: no gap
            content.querySelector('.st-key-chat-highlighter-warm')),
    };
}"""


# Notes, on every change of the page, whether a reply shows code with nothing highlighted.
WATCH_PLAIN_CODE = """() => {
    window.plainCodeSeen = false;
    new MutationObserver(() => {
        for (const code of document.querySelectorAll(
                '[data-testid="stChatMessageContent"] [data-testid="stCode"]')) {
            if (code.textContent.includes("step_1") && !code.querySelector('.token')) {
                window.plainCodeSeen = true;
            }
        }
    }).observe(document.body, {childList: true, subtree: true, characterData: true});
}"""


@pytest.fixture
def slow_katan(katan_server):
    relay, _, stop = start_paced_relay(katan_server, 250)  # about 5 s for this reply
    yield relay
    stop()


def _reply_markdown(page) -> str:
    """The last reply's Markdown as the page draws it (without per-session generated ids)."""
    reply = messages(page, "assistant").last
    body = reply.locator('[data-testid="stChatMessageContent"] > div [data-testid="stMarkdownContainer"]')
    expect(body.first).to_be_visible()
    expect(reply.locator('[data-testid="stSkeleton"]')).to_have_count(0)  # code highlighter loaded
    return re.sub(r'\s[\w-]+=":\w+:"', "", body.first.inner_html())  # React's ids differ


def test_a_reply_streams_in_blocks_and_ends_drawn_whole_as_before(
        app_factory, new_page, slow_katan, isolated_data_dir):
    save_compatible(slow_katan.base_url, slow_katan.api_key, slow_katan.model)
    app = app_factory(data_dir=isolated_data_dir)
    page = new_page()
    open_app(page, app.url, "Chat")
    marker = f"END{uuid.uuid4().hex[:8]}"
    page.evaluate(WATCH_PLAIN_CODE)
    send(page, f"{REPLY} {marker}.")

    samples = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        sample = page.evaluate(SAMPLE)
        if sample:
            samples.append(sample)
            if sample["finished"]:
                break
        page.wait_for_timeout(50)
    streaming = [s for s in samples if not s["finished"]]
    assert streaming, samples
    # While it streamed: the reply was several Markdown elements, and the code fence, while
    # it grew, was plain text with nothing highlighted.
    assert max(s["blocks"] for s in streaming) >= 4, streaming
    assert page.evaluate("window.plainCodeSeen"), "the growing fence was highlighted"
    # Once a fence opened, the highlighter was loaded through a block the user never sees.
    warm = {s["warm"] for s in streaming}
    assert "hidden" in warm and "shown" not in warm, warm
    wait_idle(page)

    # Finished: one Markdown element, everything rendered as st.markdown renders it.
    reply = messages(page, "assistant").last
    expect(reply.locator('[data-testid="stCaptionContainer"]')).to_contain_text("katan-echo")
    finished = page.evaluate(SAMPLE)
    assert finished["blocks"] == 1 and finished["tokens"] > 100, finished
    for selector in ("h1", "strong", "table", ".katex-display", ".katex", "a[href]", "li"):
        expect(reply.locator(selector).first).to_be_attached()
    expect(reply.locator(MARKDOWN).get_by_text(marker)).to_be_visible()  # not Copy's store
    drawn = _reply_markdown(page)
    assert_no_exception(page)

    # The same chat opened again after a reload is drawn exactly the same.
    page.reload()
    page.wait_for_selector('[data-testid="stApp"]')
    wait_idle(page)
    page.locator('[data-testid="stSidebar"] button', has_text="Here it is").first.click()
    wait_idle(page)
    expect(messages(page, "assistant").last.locator(MARKDOWN).get_by_text(marker)).to_be_visible()
    assert _reply_markdown(page) == drawn


def test_a_reply_cut_by_the_server_is_kept_and_marked_after_a_reload(
        app_factory, new_page, llmock_factory, isolated_data_dir):
    broken = llmock_factory("--stream-chunk-delay-ms", "20", "--response-style", "echo",
                            "--stream-fault", "disconnect=1.0")
    save_compatible(broken.base_url, broken.api_key, broken.model)
    app = app_factory(data_dir=isolated_data_dir)
    page = new_page()
    open_app(page, app.url, "Chat")
    for attempt in range(8):  # llmock drops the stream at a random chunk: wait for one with text
        send(page, f"attempt {attempt}: please answer with several words, streamed")
        wait_idle(page)
        reply = messages(page, "assistant").last
        expect(reply.locator('[data-testid="stCaptionContainer"]')).to_be_visible()
        if "Interrupted" in reply.locator('[data-testid="stCaptionContainer"]').inner_text():
            break
    else:
        pytest.fail("every stream was dropped before its first word")
    kept = _reply_markdown(page)
    assert kept.strip()

    page.reload()
    page.wait_for_selector('[data-testid="stApp"]')
    wait_idle(page)
    page.locator('[data-testid="stSidebar"] button', has_text="attempt 0").first.click()
    wait_idle(page)
    reply = messages(page, "assistant").last
    expect(reply.locator('[data-testid="stCaptionContainer"]')).to_contain_text("Interrupted")
    assert _reply_markdown(page) == kept
    assert_no_exception(page)
