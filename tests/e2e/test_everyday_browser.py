"""The everyday things in a real Chromium against `streamlit run` and real servers: a title
written by the model after the first reply, Edit opening where the message is, a version
coming back with the reply last viewed under it, one-click Copy, a phone's sidebar closing on a
pick, and a 1,000-message chat opening at its latest turns."""

from __future__ import annotations

import os

import pytest
from playwright.sync_api import Page, expect

from core.config import load_settings
from core.history.model import Chat, Message
from core.history.thread import title_from
from core.store.sqlite import SQLiteChatStore
from tests.chatting import save_compatible
from tests.e2e.browser import (
    DESKTOP,
    PHONE,
    SIDEBAR_OPEN,
    assert_no_exception,
    button,
    messages,
    open_app,
    open_sidebar,
    screenshot,
    send,
    wait_idle,
)

HISTORY = '[data-testid="stSidebar"] [class*="st-key-history-open-"] button:visible'


def _chat(app_factory, new_page, server, data_dir, device=None, env=None) -> Page:
    save_compatible(server.base_url, server.api_key, server.model)
    app = app_factory(env=env, data_dir=data_dir)
    page = new_page(device) if device else new_page()
    open_app(page, app.url, "Chat")
    return page


def _say(page: Page, text: str, replies: int) -> None:
    send(page, text)
    expect(messages(page, "assistant")).to_have_count(replies, timeout=30_000)
    wait_idle(page)


@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_the_model_titles_a_new_chat_after_its_first_reply(
    app_factory, new_page, llama_server, isolated_data_dir, device
):
    page = _chat(app_factory, new_page, llama_server, isolated_data_dir,
                 device=DESKTOP if device == "desktop" else PHONE,
                 env={"SWITCHBOARD_CHAT_TITLES": "on"})
    first = "Give me three tips for keeping houseplants alive in a dark flat"
    _say(page, first, 1)
    open_sidebar(page)  # on a phone it starts closed
    listed = page.locator(HISTORY)
    expect(listed).to_have_count(1)
    expect(listed.first).not_to_have_text(title_from(first), timeout=30_000)
    title = listed.first.inner_text().strip()
    assert title and len(title) <= 81 and "\n" not in title
    # A second message does not title the chat again, and the title survives a reload.
    _say(page, "And for a cactus?", 2)
    page.reload()
    wait_idle(page)
    open_sidebar(page)
    expect(page.locator(HISTORY).first).to_have_text(title)
    assert_no_exception(page)


@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_edit_opens_where_the_message_is_and_a_version_keeps_the_reply_last_viewed(
    app_factory, new_page, katan_server, isolated_data_dir, device
):
    page = _chat(app_factory, new_page, katan_server, isolated_data_dir,
                 device=DESKTOP if device == "desktop" else PHONE)
    _say(page, "first question", 1)
    _say(page, "second question", 2)
    first = messages(page, "user").first
    first.get_by_role("button", name="Edit").click()
    wait_idle(page)
    box = page.locator(".st-key-chat-edit-box")
    expect(first.locator(".st-key-chat-edit-box")).to_have_count(1)  # inside that message
    second = messages(page, "user").nth(1)
    assert box.bounding_box()["y"] < second.bounding_box()["y"]  # not at the bottom
    area = box.get_by_role("textbox")
    expect(area).to_have_value("first question")
    area.fill("first question, edited")
    box.get_by_role("button", name="Send").click()
    expect(messages(page, "assistant")).to_have_count(1, timeout=30_000)
    wait_idle(page)
    expect(messages(page, "user").first).to_contain_text("first question, edited")
    expect(messages(page, "user").first).to_contain_text("2 / 2")

    # Back to version 1: its whole branch (both questions); there, view the first reply's
    # regenerated version, then the first one again; version 2 and back: still that one.
    messages(page, "user").first.get_by_role("button", name="◀").click()
    wait_idle(page)
    expect(messages(page, "user")).to_have_count(2)
    button(page, "chat:retry").click()  # a second version of the last reply
    wait_idle(page)
    last = messages(page, "assistant").last
    expect(last).to_contain_text("2 / 2", timeout=30_000)
    last.get_by_role("button", name="◀").click()
    wait_idle(page)
    expect(messages(page, "assistant").last).to_contain_text("1 / 2")
    messages(page, "user").first.get_by_role("button", name="▶").click()
    wait_idle(page)
    expect(messages(page, "user")).to_have_count(1)
    messages(page, "user").first.get_by_role("button", name="◀").click()
    wait_idle(page)
    expect(messages(page, "user")).to_have_count(2)
    expect(messages(page, "assistant").last).to_contain_text("1 / 2")  # as last viewed

    # Copy in one tap as well as one click: the reply's Markdown, and a toast says so.
    shown = messages(page, "assistant").last
    shown.get_by_role("button", name="Copy").click()
    expect(page.get_by_role("status").filter(has_text="Copied to the clipboard")).to_be_visible()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied.startswith("[echo] model=katan-echo") and copied.endswith("second question")
    assert_no_exception(page)


def test_on_a_phone_picking_a_chat_or_a_new_one_closes_the_sidebar(
    app_factory, new_page, katan_server, isolated_data_dir
):
    page = _chat(app_factory, new_page, katan_server, isolated_data_dir, device=PHONE)
    _say(page, "an earlier chat", 1)
    open_sidebar(page)
    button(page, "chat:new").click()
    expect(page.locator(SIDEBAR_OPEN)).to_have_count(0)
    wait_idle(page)
    expect(messages(page)).to_have_count(0)
    open_sidebar(page)
    page.locator(HISTORY).first.click()
    expect(page.locator(SIDEBAR_OPEN)).to_have_count(0)
    wait_idle(page)
    expect(messages(page, "user").first).to_contain_text("an earlier chat")
    assert_no_exception(page)


@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_a_long_chat_opens_at_its_latest_turns_and_shows_the_earlier_ones_on_demand(
    app_factory, new_page, katan_server, isolated_data_dir, device
):
    save_compatible(katan_server.base_url, katan_server.api_key, katan_server.model)
    settings = load_settings(environ={**os.environ, "SWITCHBOARD_DATA_DIR": str(isolated_data_dir)},
                             dotenv_path=None)
    store = SQLiteChatStore(settings.data_dir)
    chat, parent = store.save_chat(Chat(title="A long chat")), None
    for n in range(500):
        asked = store.add_message(Message(chat.id, "user", f"Question {n}", parent_id=parent))
        parent = store.add_message(Message(chat.id, "assistant", f"Answer {n}",
                                           parent_id=asked.id)).id
    store.save_chat(store.get_chat(chat.id).with_changes(current_id=parent))
    app = app_factory(data_dir=isolated_data_dir)
    page = new_page(DESKTOP if device == "desktop" else PHONE)
    open_app(page, f"{app.url}?chat={chat.id}")
    expect(messages(page)).to_have_count(40)
    expect(messages(page).last).to_contain_text("Answer 499")
    expect(messages(page).first).to_contain_text("Question 480")
    more = page.get_by_role("button", name="Show earlier messages (960 more)")
    more.click()
    wait_idle(page)
    expect(messages(page)).to_have_count(240)
    expect(messages(page).first).to_contain_text("Question 380")
    _say(page, "still here?", 121)  # the next message goes on the same branch (121 replies)
    if device == "desktop":
        screenshot(page, "chat-long")
    assert_no_exception(page)
