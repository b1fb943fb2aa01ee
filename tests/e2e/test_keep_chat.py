"""The chat page keeps what the user gave, in a real Chromium against `streamlit run` (issue 8).

The chat's options survive a visit to Settings; Stop stays in view while a long reply streams,
on a desktop and on a phone; a message keeps its line breaks; an error about the key links to
Settings; reasoning streams into a collapsed "Thinking…" area that tells how long it took.
"""

from __future__ import annotations

import json
import re
import time

import pytest
from playwright.sync_api import Page, expect

from tests.chatting import save_compatible
from tests.e2e.browser import (
    DESKTOP,
    PHONE,
    SCREENSHOTS,
    assert_no_exception,
    button,
    chat_input,
    go_to,
    key,
    messages,
    open_app,
    open_sidebar,
    reply_text,
    screenshot,
    send,
    wait_idle,
)


def _chat(app_factory, new_page, server, data_dir, device: dict = DESKTOP) -> Page:
    save_compatible(server.base_url, server.api_key, server.model)
    app = app_factory(data_dir=data_dir)
    page = new_page(device)
    open_app(page, app.url, "Chat")
    return page


def _open_chat_options(page: Page) -> None:
    open_sidebar(page)
    options = page.locator('[data-testid="stSidebar"] [data-testid="stExpander"]', has_text="Chat options")
    if not options.locator("details[open]").count():
        options.get_by_text("Chat options").click()
    expect(page.locator(key("chat:system_prompt")).locator("textarea")).to_be_visible()


def test_chat_options_survive_a_visit_to_settings_and_new_chat_resets_them(
    app_factory, new_page, katan_server, recording_proxy, isolated_data_dir
):
    proxy, recorder = recording_proxy(katan_server)
    page = _chat(app_factory, new_page, proxy, isolated_data_dir)
    _open_chat_options(page)
    prompt = page.locator(key("chat:system_prompt")).locator("textarea")
    prompt.fill("You are a terse pirate.")
    prompt.press("Control+Enter")
    wait_idle(page)
    page.locator(key("chat:custom_temperature")).locator("label").click()
    wait_idle(page)
    thumb = page.locator(key("chat:temperature")).get_by_role("slider")
    thumb.focus()
    for _ in range(3):  # 0.7 -> 0.4, one rerun per step (a key pressed mid-rerun is lost)
        thumb.press("ArrowLeft")
        wait_idle(page)

    go_to(page, "Settings")
    go_to(page, "Chat")
    _open_chat_options(page)
    expect(prompt).to_have_value("You are a terse pirate.")
    expect(thumb).to_be_enabled()
    expect(page.locator(key("chat:temperature"))).to_contain_text("0.40")
    send(page, "ahoy")
    wait_idle(page)
    body = [r.body for r in recorder.chat_requests][-1]
    assert body["messages"][0] == {"role": "system", "content": "You are a terse pirate."}
    assert body["temperature"] == pytest.approx(0.4)

    # New chat sets them back, and the defaults are what survives the next visit.
    button(page, "chat:new").click()
    wait_idle(page)
    go_to(page, "Settings")
    go_to(page, "Chat")
    _open_chat_options(page)
    expect(prompt).to_have_value("")
    expect(thumb).to_be_disabled()
    assert_no_exception(page)


# Forty paragraphs, echoed back by llm-katan a few characters at a time: a reply far taller
# than any screen, streaming for several seconds.
# Long enough that the reply is still streaming well after it outgrows the screen (with 40
# paragraphs, a loaded CI machine once saw it end before Stop was clicked).
PARAGRAPHS = 80
LONG_PROMPT = "\n\n".join(
    f"Paragraph {n}: the reply keeps growing below." for n in range(PARAGRAPHS))


# Measured in one step in the page: the reply keeps moving things between two calls.
_WHERE_AND_WHAT_COVERS = """b => {
    const r = b.getBoundingClientRect();
    const hit = document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2);
    return {top: r.top, bottom: r.bottom, height: window.innerHeight, onTop: b.contains(hit)};
}"""


def _in_view_and_on_top(stop) -> None:
    """Stop is inside the viewport and nothing (the chat input) covers its middle."""
    seen = stop.evaluate(_WHERE_AND_WHAT_COVERS)
    assert 0 <= seen["top"] and seen["bottom"] <= seen["height"], seen
    assert seen["onTop"], f"something covers Stop: {seen}"


@pytest.mark.parametrize("device", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_stop_stays_in_view_while_a_long_reply_streams(
    app_factory, new_page, katan_factory, isolated_data_dir, device
):
    slow = katan_factory("--chunk-delay-ms", "15")
    page = _chat(app_factory, new_page, slow, isolated_data_dir, device)
    send(page, LONG_PROMPT)
    stop = button(page, "chat:stop")
    expect(stop).to_be_visible(timeout=20_000)
    reply = messages(page, "assistant").last
    height = page.viewport_size["height"]
    deadline = time.monotonic() + 60
    while reply.bounding_box()["height"] < 1.5 * height:  # well past the bottom of the screen
        assert time.monotonic() < deadline, "the reply did not grow past the screen"
        assert stop.count(), "the reply ended before it outgrew the screen"
        page.wait_for_timeout(200)
    settled = time.monotonic() + 3  # the browser's scroll may trail the last update a moment
    while True:
        try:
            _in_view_and_on_top(stop)
            break
        except AssertionError:
            if time.monotonic() > settled:
                raise
            page.wait_for_timeout(200)
    name = "phone" if device is PHONE else "desktop"
    page.screenshot(path=str(SCREENSHOTS / f"chat-stop-{name}.png"))  # mid-reply, as it is
    stop.click()
    wait_idle(page)
    footer = messages(page, "assistant").last.locator('[data-testid="stCaptionContainer"]')
    expect(footer).to_contain_text("Stopped")
    assert f"Paragraph {PARAGRAPHS - 1}" not in reply_text(messages(page, "assistant").last)
    assert_no_exception(page)


def test_a_message_keeps_its_line_breaks_and_code_blocks(
    app_factory, new_page, katan_server, isolated_data_dir
):
    page = _chat(app_factory, new_page, katan_server, isolated_data_dir)
    chat_input(page).click()
    page.keyboard.type("line 1")
    page.keyboard.press("Shift+Enter")
    page.keyboard.type("line 2")
    page.keyboard.press("Enter")
    wait_idle(page)
    assert reply_text(messages(page, "user").last) == "line 1\nline 2"

    send(page, "Some **bold** text\nand code:\n```python\na = 1\n\nb = 2\n```")
    wait_idle(page)
    sent = messages(page, "user").last
    expect(sent.locator("strong", has_text="bold")).to_be_visible()
    assert sent.locator("pre code").inner_text().strip() == "a = 1\n\nb = 2"
    assert "```" not in sent.inner_text()
    assert sent.locator("p").first.inner_text() == "Some bold text\nand code:"
    screenshot(page, "chat-line-breaks")

    # A pasted file (over 20,000 characters) is shown as typed: no Markdown, no highlighting.
    pasted = "My log:\n```\n" + "".join(f"  line {i}: **ok**\n" for i in range(1_200)) + "```"
    send(page, pasted)
    wait_idle(page, timeout=60)
    sent = messages(page, "user").last
    shown = sent.locator('[data-testid="stText"]')
    expect(shown).to_have_count(1)
    assert shown.inner_text() == pasted
    expect(sent.locator("pre code")).to_have_count(0)
    expect(sent.locator("strong")).to_have_count(0)
    expect(sent).to_contain_text("A long message: shown as typed, without Markdown.")


def test_a_rejected_key_links_to_settings(app_factory, new_page, katan_server, isolated_data_dir):
    save_compatible(katan_server.base_url, "sk-not-the-right-key-0000", katan_server.model)
    app = app_factory(data_dir=isolated_data_dir)
    page = new_page()
    open_app(page, app.url, "Chat")
    send(page, "hello")
    # The run that shows the error may start after a first idle reading; wait for the error.
    expect(page.locator('.stMain [data-testid="stAlertContentError"]', has_text="API key was rejected")).to_be_visible()
    wait_idle(page)
    link = page.locator('.stMain [data-testid="stPageLink-NavLink"]', has_text="Check the API key in Settings")
    expect(link).to_be_visible()
    link.click()
    expect(page.locator("h1", has_text="Settings")).to_be_visible()
    assert_no_exception(page)


def _event(delta: dict, finish: str | None = None) -> str:
    chunk = {
        "id": "chatcmpl-thinking", "object": "chat.completion.chunk", "created": 0,
        "model": "canned-model",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return f"data: {json.dumps(chunk)}\n\n"


THOUGHTS = [f"Step {n} of my reasoning. " for n in range(12)]
REASONING_STREAM = [
    _event({"role": "assistant", "content": ""}),
    *(_event({"reasoning_content": piece}) for piece in THOUGHTS),
    _event({"content": "The answer is 42."}),
    _event({}, finish="stop"),
    "data: [DONE]\n\n",
]


def test_reasoning_streams_live_into_a_collapsed_thinking_area(
    app_factory, new_page, canned_server, isolated_data_dir
):
    server = canned_server(200, REASONING_STREAM, chunked=True, pace=0.25)
    page = _chat(app_factory, new_page, server, isolated_data_dir)
    send(page, "What is the answer?")
    reply = messages(page, "assistant").last
    thinking = reply.locator("summary", has_text="Thinking…")
    expect(thinking).to_be_visible(timeout=20_000)  # while the model still thinks
    expect(thinking).to_contain_text(re.compile(r"Thinking… [1-9][0-9.]* s"))  # time goes on
    assert "The answer is 42" not in reply.inner_text()  # the answer has not started
    expect(reply.get_by_text("Step 0 of my reasoning")).not_to_be_visible()  # collapsed
    page.screenshot(path=str(SCREENSHOTS / "chat-thinking-live.png"))  # mid-reply, as it is
    wait_idle(page, timeout=60)
    done = messages(page, "assistant").last.locator("summary", has_text="Thought for")
    expect(done).to_be_visible()
    expect(messages(page, "assistant").last).to_contain_text("The answer is 42.")
    seconds = float(done.inner_text().split("Thought for")[1].split("s")[0])
    assert 2 <= seconds <= 10, seconds  # twelve pieces a quarter of a second apart
    done.click()
    expect(messages(page, "assistant").last.get_by_text("Step 11 of my reasoning")).to_be_visible()
    screenshot(page, "chat-thinking")
    assert_no_exception(page)
