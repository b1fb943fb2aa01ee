"""A connection from a preset, end to end in a real Chromium against `streamlit run` (issue 10,
acceptance 6): add it, point it at a real server, test it, fetch and pick models, save, chat
with it, disable it (its models leave the chat's selector), delete it.

Typed with the keyboard, leaving each field with Tab, as a user does.
"""

from __future__ import annotations

from playwright.sync_api import Locator, Page, expect

from tests.e2e.browser import (
    assert_no_exception,
    button,
    errors,
    go_to,
    key,
    messages,
    open_app,
    pick,
    screenshot,
    send,
    wait_idle,
)
from tests.chatting import save_compatible

PRESET = "llama.cpp (llama-server)"


def _connection(page: Page, marked: str) -> Locator:
    """The expander of the connection whose title holds `marked`."""
    return page.locator('[data-testid="stExpander"]', has_text=marked)


def _type_then_tab(field: Locator, text: str) -> None:
    field.click()
    field.press("ControlOrMeta+a")
    field.page.keyboard.type(text)
    field.page.keyboard.press("Tab")


def _success(expander: Locator, text: str) -> Locator:
    return expander.locator('[data-testid="stAlertContentSuccess"]', has_text=text)


def test_a_preset_connection_is_tested_chatted_with_disabled_and_deleted(
        app_factory, new_page, katan_server, isolated_data_dir):
    # The seed's provider keeps the chat's selector on screen once the connection is off.
    save_compatible(katan_server.base_url, katan_server.api_key, katan_server.model)
    app = app_factory(data_dir=isolated_data_dir)
    page = new_page()
    open_app(page, app.url, "Chat")
    go_to(page, "Settings")

    pick(page, page.get_by_role("combobox", name="Add a connection from"), PRESET)
    expect(page.get_by_text("Get a key:")).to_have_count(0)  # a local server needs none
    button(page, "settings:connections:add").click()
    wait_idle(page)
    new = _connection(page, "Not saved yet")
    expect(new.get_by_label("Name", exact=True)).to_have_value(PRESET)

    _type_then_tab(new.get_by_label("Base URL", exact=True), katan_server.base_url)
    _type_then_tab(new.get_by_label("API key", exact=True), katan_server.api_key)
    wait_idle(page, timeout=60)  # each typed character reruns the page
    new.get_by_role("button", name="Test connection").click()
    wait_idle(page, timeout=60)
    expect(_success(new, "Connection works")).to_be_visible()
    new.get_by_role("button", name="Fetch models").click()
    wait_idle(page, timeout=60)
    _type_then_tab(new.get_by_label("Filter the models", exact=True), "echo")
    wait_idle(page)
    pick(page, new.get_by_role("combobox", name="Models offered in chat"), katan_server.model)
    page.keyboard.press("Escape")
    new.get_by_role("button", name="Save").click()
    wait_idle(page)

    saved = _connection(page, f"{PRESET} saved.")
    expect(saved.locator("summary")).to_contain_text("Enabled")
    expect(saved.get_by_text(f"A key is saved, ending in …{katan_server.api_key[-4:]}.")).to_be_visible()
    expect(saved.get_by_label("API key", exact=True)).to_have_value("")
    assert katan_server.api_key not in page.content()
    assert errors(page) == []
    saved.get_by_text("Custom headers").scroll_into_view_if_needed()
    screenshot(page, "settings-connection")

    label = f"{katan_server.model} · {PRESET}"
    go_to(page, "Chat")
    pick(page, page.locator(key("chat:model")), label)
    send(page, "hello through a connection")
    wait_idle(page, timeout=60)
    reply = messages(page, "assistant").last
    expect(reply).to_contain_text("hello through a connection")
    expect(reply.locator('[data-testid="stCaptionContainer"]')).to_contain_text(label)
    screenshot(page, "chat-connection")

    go_to(page, "Settings")
    connection = _connection(page, PRESET).filter(has=page.get_by_label("Base URL", exact=True))
    connection.get_by_text("Enabled", exact=True).last.click()  # the toggle, not the title
    wait_idle(page)
    expect(connection.locator("summary")).to_contain_text("Unsaved changes")
    connection.get_by_role("button", name="Save").click()
    wait_idle(page)
    expect(connection.locator("summary")).to_contain_text("Disabled")
    go_to(page, "Chat")
    page.locator(key("chat:model")).click()
    expect(page.get_by_role("option", name=f"{katan_server.model} · OpenAI-compatible")).to_be_visible()
    expect(page.get_by_role("option", name=label)).to_have_count(0)
    page.keyboard.press("Escape")

    go_to(page, "Settings")
    connection.get_by_role("button", name="Delete").click()
    wait_idle(page)
    expect(connection.get_by_text(f"Delete the connection {PRESET}?")).to_be_visible()
    connection.get_by_role("button", name="Delete for good").click()
    wait_idle(page)
    expect(page.get_by_text(f"{PRESET} deleted.")).to_be_visible()
    expect(_connection(page, PRESET)).to_have_count(0)
    assert katan_server.api_key not in app.log_text()
    assert_no_exception(page)
