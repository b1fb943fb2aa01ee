"""A reply lives on its own, in a real Chromium against `streamlit run` and a paced server on
loopback: switching to another chat and back, reloading during a new chat's first reply,
closing the tab, none of them stops it; Stop in a second tab does; a killed app process leaves
the reply marked Interrupted with what was stored."""

from __future__ import annotations

import time

from playwright.sync_api import Page, expect

from core.history.model import Chat, Message
from core.store.sqlite import SQLiteChatStore
from tests.chatting import save_compatible
from tests.e2e.browser import messages, open_app, reply_text, screenshot, send, wait_idle
from tests.fixtures.llm_servers import FORTY_WORDS


def _sidebar_chat(page: Page, title: str):
    return page.locator('[data-testid="stSidebar"] button', has_text=title)


def _caption(message) -> str:
    return message.locator('[data-testid="stCaptionContainer"]').first.inner_text()


def _complete(page: Page, timeout: float = 60_000) -> None:
    """The last reply ends with the server's last word and says how it ended."""
    reply = messages(page, "assistant").last
    expect(reply).to_contain_text("word39", timeout=timeout)
    expect(reply.locator('[data-testid="stCaptionContainer"]').first).to_be_visible(
        timeout=timeout)
    wait_idle(page, timeout=timeout / 1000)


def _slow_app(app_factory, canned_server, data_dir, pace: float = 0.15):
    slow = canned_server(200, FORTY_WORDS, chunked=True, pace=pace)  # 40 words, pace s apart
    save_compatible(slow.base_url, "", slow.model)
    return app_factory(data_dir=data_dir)


def _story_asked(page: Page, app, until: str) -> None:
    """A new chat asking for the slow story, shown until the word `until` has arrived."""
    open_app(page, app.url, "Chat")
    send(page, "Tell me a long story")
    expect(messages(page, "assistant").last).to_contain_text(until, timeout=20_000)


def _stored_chat(data_dir, title: str) -> None:
    """A chat from earlier, as the app stores it."""
    store = SQLiteChatStore(data_dir)
    chat = store.save_chat(Chat(title=title))
    question = store.add_message(Message(chat.id, "user", title))
    store.add_message(Message(chat.id, "assistant", "An earlier answer.", parent_id=question.id))
    store.save_chat(chat.with_changes(current_id=None))


def test_switching_to_another_chat_mid_reply_and_back_finds_it_complete(
        app_factory, new_page, canned_server, isolated_data_dir):
    _stored_chat(isolated_data_dir, "An earlier question")
    app = _slow_app(app_factory, canned_server, isolated_data_dir, pace=0.2)  # ~8 s
    page = new_page()
    _story_asked(page, app, "word3")
    _sidebar_chat(page, "An earlier question").click()  # away, mid-reply
    expect(messages(page, "user").first).to_contain_text("An earlier question")
    expect(messages(page, "assistant").last).to_contain_text("An earlier answer.")
    time.sleep(1.0)
    _sidebar_chat(page, "Tell me a long story").click()  # and back
    expect(messages(page, "user").last).to_contain_text("Tell me a long story")
    _complete(page)
    reply = messages(page, "assistant").last
    assert "Stopped" not in _caption(reply) and "Interrupted" not in _caption(reply)
    words = reply_text(reply).split()
    assert words[:2] == ["word0", "word1"] and words[-1] == "word39", words


def test_a_reload_during_a_new_chats_first_reply_shows_it_growing_then_complete(
        app_factory, new_page, canned_server, isolated_data_dir):
    app = _slow_app(app_factory, canned_server, isolated_data_dir, pace=0.2)  # ~8 s
    page = new_page()
    _story_asked(page, app, "word2")
    address = page.url
    assert "?chat=" in address, address  # in the address before the reply ends
    page.reload()
    expect(messages(page, "user").last).to_contain_text("Tell me a long story", timeout=20_000)
    assert page.url == address
    growing = messages(page, "assistant").last
    expect(growing).to_contain_text("word2", timeout=20_000)
    first = len(reply_text(growing).split())
    assert first < 40  # still arriving
    expect(page.get_by_role("button", name="Stop")).to_be_visible()
    _complete(page)
    assert len(reply_text(messages(page, "assistant").last).split()) == 40
    screenshot(page, "reply-after-reload")


def test_closing_the_tab_mid_reply_and_opening_the_address_finds_it_complete(
        app_factory, new_page, canned_server, isolated_data_dir):
    app = _slow_app(app_factory, canned_server, isolated_data_dir, pace=0.1)  # ~4 s
    page = new_page()
    _story_asked(page, app, "word2")
    address = page.url
    page.close()  # mid-reply
    time.sleep(6)  # the reply goes on without any page
    page = new_page()
    page.goto(address)
    wait_idle(page)
    reply = messages(page, "assistant").last
    expect(reply).to_contain_text("word39")
    assert _caption(reply).strip().endswith("canned-model · OpenAI-compatible") or \
        "Stopped" not in _caption(reply)
    assert len(reply_text(reply).split()) == 40


def test_stop_in_a_second_tab_ends_the_reply_started_in_the_first(
        app_factory, new_page, canned_server, isolated_data_dir):
    app = _slow_app(app_factory, canned_server, isolated_data_dir, pace=0.25)  # ~10 s
    first = new_page()
    _story_asked(first, app, "word2")
    second = new_page()
    second.goto(first.url)
    expect(messages(second, "assistant").last).to_contain_text("word3", timeout=20_000)
    second.get_by_role("button", name="Stop").click()
    for tab in (second, first):
        reply = messages(tab, "assistant").last
        expect(reply.locator('[data-testid="stCaptionContainer"]').first).to_contain_text(
            "Stopped", timeout=10_000)
    words = len(reply_text(messages(first, "assistant").last).split())
    assert 3 <= words < 40
    time.sleep(1.5)
    first.reload()
    wait_idle(first)
    assert len(reply_text(messages(first, "assistant").last).split()) == words  # as stored


def test_a_killed_app_process_leaves_the_reply_interrupted_with_what_was_stored(
        app_factory, new_page, canned_server, isolated_data_dir):
    app = _slow_app(app_factory, canned_server, isolated_data_dir, pace=0.25)  # ~10 s
    page = new_page()
    _story_asked(page, app, "word8")
    address = page.url
    app.proc.kill()  # SIGKILL: no clean-up of any kind
    app.proc.wait(timeout=30)
    again = app_factory(data_dir=isolated_data_dir)
    page.goto(address.replace(app.url.rstrip("/"), again.url.rstrip("/")))
    reply = messages(page, "assistant").last
    expect(reply.locator('[data-testid="stCaptionContainer"]').first).to_contain_text(
        "Interrupted", timeout=40_000)
    words = reply_text(reply).split()
    assert words[:2] == ["word0", "word1"] and 4 <= len(words) < 40, words
    expect(page.get_by_role("button", name="Retry")).to_be_visible()
    screenshot(page, "reply-interrupted")


def test_searching_while_a_reply_arrives_finds_chats_and_the_reply_goes_on(
        app_factory, new_page, canned_server, isolated_data_dir):
    """While a reply arrives the sidebar's list is drawn with the page (not alone): each
    keystroke's search shows its hits without waiting for the reply, which goes on, and the
    hit opens its chat."""
    _stored_chat(isolated_data_dir, "An earlier question about otters")
    app = _slow_app(app_factory, canned_server, isolated_data_dir, pace=0.25)  # ~10 s
    page = new_page()
    _story_asked(page, app, "word2")
    box = page.locator('.st-key-history-search input')
    box.click()
    box.press_sequentially("ott", delay=120)
    hit = page.locator('[data-testid="stSidebar"] [class*="st-key-history-found-"]')
    expect(hit.first).to_contain_text("otters", timeout=5_000)
    expect(page.locator('[data-testid="stSidebar"]')).to_contain_text("1 chat")
    reply = messages(page, "assistant").last
    assert "word39" not in reply.inner_text()  # found while the reply still arrived
    _complete(page)
    assert reply_text(messages(page, "assistant").last).split()[-1] == "word39"
    hit.first.get_by_role("button").click()
    expect(messages(page, "user").first).to_contain_text("An earlier question about otters")
    expect(messages(page, "assistant").last).to_contain_text("An earlier answer.")
