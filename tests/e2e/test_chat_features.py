"""Each chat feature, used in a real browser: new chat, regenerate, edit and resend, copy,
system prompt and temperature per chat, Markdown and code, the model on each reply, and a
phone's width. What the server was sent is read from a recording proxy in front of llm-katan.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.chatting import save_compatible
from tests.e2e.browser import (
    PHONE,
    PHONE_WIDTH,
    assert_no_exception,
    button,
    chat_input,
    errors,
    key,
    messages,
    open_app,
    open_sidebar,
    reply_text,
    screenshot,
    send,
    wait_idle,
)


@pytest.fixture
def recorded_chat(app_factory, new_page, katan_server, recording_proxy, isolated_data_dir):
    """The chat page in a desktop browser, talking to llm-katan through a recording proxy."""
    proxy, recorder = recording_proxy(katan_server)
    save_compatible(proxy.base_url, proxy.api_key, proxy.model)
    app = app_factory(data_dir=isolated_data_dir)
    page = new_page()
    open_app(page, app.url, "Chat")
    return page, recorder


def _posts(recorder) -> list[dict]:
    return [r.body for r in recorder.chat_requests]


def _say(page, text: str) -> None:
    send(page, text)
    wait_idle(page)
    expect(messages(page, "assistant").last).to_contain_text(f"User: {text}")


def test_regenerate_edit_copy_and_new_chat(recorded_chat):
    page, recorder = recorded_chat
    _say(page, "first message")
    _say(page, "secnod mesage with typos")

    # Regenerate: the last message is answered again, with the same history.
    regenerate = button(page, "chat:retry")
    expect(regenerate).to_have_text("🔁Regenerate")
    regenerate.click()
    wait_idle(page)
    expect(messages(page, "assistant")).to_have_count(2)
    expect(messages(page, "user")).to_have_count(2)
    bodies = _posts(recorder)
    assert len(bodies) == 3 and bodies[2]["messages"] == bodies[1]["messages"]

    # Edit and resend the last message: it replaces the last exchange.
    button(page, "chat:edit").click()
    wait_idle(page)
    editor = page.locator(key("chat:editing")).locator("textarea")
    expect(editor).to_have_value("secnod mesage with typos")
    editor.fill("second message, fixed")
    editor.press("Control+Enter")  # commit the text area, as leaving it would
    wait_idle(page)
    button(page, "chat:edit_send").click()
    wait_idle(page)
    expect(messages(page, "user")).to_have_count(2)
    expect(messages(page, "assistant")).to_have_count(2)
    assert [reply_text(m) for m in messages(page, "user").all()] == [
        "first message", "second message, fixed",
    ]
    last_reply = messages(page, "assistant").last
    expect(last_reply).to_contain_text("User: second message, fixed")
    assert _posts(recorder)[-1]["messages"][-1] == {"role": "user", "content": "second message, fixed"}

    # Copy a reply in one click: its Markdown on the clipboard, and a toast says so.
    last_reply.get_by_role("button", name="Copy").click()
    expect(page.get_by_role("status").filter(has_text="Copied to the clipboard")).to_be_visible()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied.startswith("[echo] model=katan-echo") and copied.endswith("User: second message, fixed")

    # New chat: an empty conversation, the same model.
    open_sidebar(page)
    button(page, "chat:new").click()
    wait_idle(page)
    expect(messages(page)).to_have_count(0)
    expect(page.get_by_role("combobox", name="Model")).to_have_value("katan-echo · OpenAI-compatible")
    _say(page, "a fresh start")
    assert _posts(recorder)[-1]["messages"] == [{"role": "user", "content": "a fresh start"}]
    assert_no_exception(page)


def test_system_prompt_and_temperature_are_sent_for_this_chat(recorded_chat):
    page, recorder = recorded_chat
    sidebar = page.locator('[data-testid="stSidebar"]')
    sidebar.get_by_text("Chat options").click()
    prompt = page.locator(key("chat:system_prompt")).locator("textarea")
    prompt.fill("You are a terse pirate.")
    prompt.press("Control+Enter")
    wait_idle(page)
    thumb = page.locator(key("chat:temperature")).get_by_role("slider")
    for _ in range(3):  # under load a click can land while the sidebar is being redrawn
        page.locator(key("chat:custom_temperature")).locator("label").click()
        wait_idle(page)
        if thumb.is_enabled():
            break
    expect(thumb).to_be_enabled()
    thumb.focus()
    for _ in range(5):  # 0.7 -> 0.2 in steps of 0.1
        thumb.press("ArrowLeft")
    wait_idle(page)
    expect(page.locator(key("chat:temperature"))).to_contain_text("0.20")

    _say(page, "ahoy")
    body = _posts(recorder)[-1]
    assert body["messages"][0] == {"role": "system", "content": "You are a terse pirate."}
    assert body["temperature"] == pytest.approx(0.2)
    expect(messages(page, "assistant").last).to_contain_text("temperature=0.2")

    # They belong to this chat: a new chat starts with the server's defaults, in the request
    # and on screen. (AppTest cannot see this: only a real browser keeps its own widget values.)
    button(page, "chat:new").click()
    wait_idle(page)
    _say(page, "ahoy again")
    body = _posts(recorder)[-1]
    assert body["messages"] == [{"role": "user", "content": "ahoy again"}]
    assert "temperature" not in body
    expect(prompt).to_have_value("")
    expect(thumb).to_be_disabled()


def test_markdown_and_code_render_and_each_reply_names_its_model(recorded_chat):
    page, _ = recorded_chat
    send(page, "Some **bold words** and code:\n\n```python\nprint('rendered')\n```")
    wait_idle(page)
    _say(page, "a second question")
    replies = messages(page, "assistant").all()
    assert len(replies) == 2
    first = replies[0]
    expect(first.locator("strong", has_text="bold words")).to_be_visible()
    expect(first.locator("code", has_text="print('rendered')")).to_be_visible()
    assert "**" not in reply_text(first) and "```" not in reply_text(first)
    for reply in replies:
        expect(reply.locator('[data-testid="stCaptionContainer"]')).to_contain_text(
            "katan-echo · OpenAI-compatible"
        )
    assert errors(page) == []


def test_a_phone_width_chat_is_usable(app_factory, new_page, llama_server, isolated_data_dir):
    save_compatible(llama_server.base_url, llama_server.api_key, llama_server.model)
    app = app_factory(data_dir=isolated_data_dir)
    page = new_page(PHONE)
    open_app(page, app.url, "Chat")
    box = chat_input(page)
    expect(box).to_be_visible()
    expect(box).to_be_in_viewport()
    send(page, "What is the capital of France?")
    wait_idle(page, timeout=90)
    reply = messages(page, "assistant").last
    expect(reply).to_be_visible()
    assert len(reply_text(reply)) > 5
    expect(reply.locator('[data-testid="stCaptionContainer"]')).to_contain_text("smollm2")
    expect(box).to_be_in_viewport()
    expect(box).to_be_enabled()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    for element in (reply, box, button(page, "chat:retry")):
        right = element.evaluate("e => e.getBoundingClientRect().right")
        assert right <= PHONE_WIDTH, (element, right)
    assert errors(page) == []
    screenshot(page, "chat-phone")
    # The sidebar (navigation, New chat, Chat options) opens on demand.
    open_sidebar(page)
    expect(button(page, "chat:new")).to_be_visible()
