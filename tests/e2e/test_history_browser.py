"""Conversations that last, in a real Chromium against `streamlit run` (issue 11, acceptance 1
and 2): chat, reload (the address reopens the chat), find it in the sidebar with its messages,
model and options; restart the app, same. (A reply outliving its page: test_replies_live.py.)"""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.chatting import save_compatible
from tests.e2e.browser import key, messages, open_app, reply_text, screenshot, send, wait_idle


def _sidebar_chat(page: Page, title: str):
    return page.locator('[data-testid="stSidebar"] button', has_text=title)


def test_a_chat_survives_a_reload_and_a_restart(app_factory, new_page, katan_server,
                                                isolated_data_dir):
    save_compatible(katan_server.base_url, katan_server.api_key, katan_server.model)
    app = app_factory(data_dir=isolated_data_dir)
    page = new_page()
    open_app(page, app.url, "Chat")
    page.locator('[data-testid="stSidebar"] summary', has_text="Chat options").click()
    prompt = page.locator(key("chat:system_prompt")).locator("textarea")
    prompt.fill("Answer like a pirate.")
    prompt.press("Tab")
    wait_idle(page)
    send(page, "Where is the treasure?")
    expect(messages(page, "assistant").last).to_contain_text("User: Where is the treasure?",
                                                             timeout=60_000)
    wait_idle(page, timeout=60)
    answer = reply_text(messages(page, "assistant").last)
    assert "Where is the treasure?" in answer

    # The address names the chat: a reload (a new session) opens it again, and so does the
    # address in a new tab.
    address = page.url
    assert "?chat=" in address, address
    page.reload()
    wait_idle(page)
    expect(messages(page, "user")).to_have_count(1)
    assert page.url == address
    tab = new_page()
    tab.goto(address)
    wait_idle(tab)
    expect(messages(tab, "assistant").last).to_contain_text(answer)
    tab.close()
    expect(messages(page, "assistant").last).to_contain_text(answer)
    assert reply_text(messages(page, "user").first) == "Where is the treasure?"
    assert reply_text(messages(page, "assistant").last) == answer
    screenshot(page, "chat-history")

    app.proc.terminate()
    app.proc.wait(timeout=30)
    again = app_factory(data_dir=isolated_data_dir)
    page = new_page()
    open_app(page, again.url, "Chat")
    _sidebar_chat(page, "Where is the treasure?").click()
    expect(messages(page, "assistant").last).to_contain_text(answer)
    assert reply_text(messages(page, "assistant").last) == answer
    page.locator('[data-testid="stSidebar"] summary', has_text="Chat options").click()
    expect(page.locator(key("chat:system_prompt")).locator("textarea")).to_have_value(
        "Answer like a pirate.")
