"""The local default (no Supabase, no sign-in) in a real Chromium against `streamlit run`.

First run, settings (validation, save, masked key), a reply streamed from llama.cpp with a
real small model, an error that keeps the typed message, Stop mid-reply, and a reload.
"""

from __future__ import annotations

import time

from playwright.sync_api import expect

from tests.chatting import save_compatible
from tests.e2e.browser import (
    PHONE,
    assert_no_exception,
    button,
    chat_input,
    compatible,
    errors,
    go_to,
    key,
    messages,
    open_app,
    pick,
    reply_text,
    screenshot,
    send,
    wait_idle,
)
from tests.fixtures.common import free_port

INVALID_URL = "Please enter a valid URL (e.g., http://localhost:1234/v1)"


def test_first_run_has_no_provider_and_links_to_settings(app_factory, new_page):
    app = app_factory()
    page = new_page()
    open_app(page, app.url, "Chat")
    expect(page.get_by_text("No provider is configured yet")).to_be_visible()
    expect(chat_input(page)).to_have_count(0)  # nothing to chat with yet
    page.locator('[data-testid="stPageLink-NavLink"]', has_text="Open Settings").click()
    expect(page.locator("h1", has_text="Settings")).to_be_visible()
    wait_idle(page)
    expect(page.locator('[data-testid="stExpander"]', has_text="OpenAI-compatible")).to_be_visible()
    base_url = page.locator(compatible("base_url")).locator("input")
    expect(base_url).to_have_attribute("placeholder", "http://localhost:1234/v1")
    expect(page.get_by_text("Default when empty:")).to_be_visible()
    assert_no_exception(page)


def _fill(page, name: str, value: str) -> None:
    """Type into a settings text input and commit it (Enter), as a user does."""
    field = page.locator(compatible(name)).locator("input")
    field.fill(value)
    field.press("Enter")
    wait_idle(page)


def test_settings_validate_save_mask_the_key_and_survive_a_reload(app_factory, new_page, llama_server):
    app = app_factory()
    page = new_page()
    open_app(page, app.url, "Chat")
    go_to(page, "Settings")
    save = button(page, "settings:openai-compatible:save")
    section = page.locator('[data-testid="stExpander"]', has_text="OpenAI-compatible")

    # An invalid URL is refused as it is typed (no Enter, no leaving the field), and Save
    # is disabled.
    page.locator(compatible("base_url")).locator("input").press_sequentially("http://", delay=30)
    expect(section.get_by_text(INVALID_URL)).to_be_visible()
    expect(save).to_be_disabled()
    wait_idle(page)
    _fill(page, "base_url", "ftp://models.example")
    expect(section.get_by_text("Only http:// and https:// URLs are supported.")).to_be_visible()
    expect(save).to_be_disabled()

    # A valid one (with a pasted endpoint, which is trimmed) saves.
    _fill(page, "base_url", llama_server.base_url + "/chat/completions")
    expect(section.locator('[data-testid="stAlertContentError"]')).to_have_count(0)
    expect(save).to_be_enabled()
    _fill(page, "key", llama_server.api_key)
    _fill(page, "model", llama_server.model)
    save.click()
    wait_idle(page)
    expect(page.locator('[data-testid="stToast"]', has_text="settings saved")).to_be_visible()
    expect(section.get_by_text("OpenAI-compatible settings saved.")).to_be_visible()

    # The key input is empty again, the page names only the key's last four characters,
    # and the key itself is nowhere in the page nor in the server's log.
    last_four = llama_server.api_key[-4:]
    expect(page.locator(compatible("key")).locator("input")).to_have_value("")
    expect(section.get_by_text(f"A key is saved, ending in …{last_four}.")).to_be_visible()
    expect(page.locator(compatible("base_url")).locator("input")).to_have_value(llama_server.base_url)
    assert llama_server.api_key not in page.content()
    assert llama_server.api_key not in app.log_text()
    assert_no_exception(page)
    section.get_by_text("OpenAI-compatible settings saved.").scroll_into_view_if_needed()
    screenshot(page, "settings-desktop")

    # A reload is a new session: everything saved is read back from the store.
    page.reload()
    wait_idle(page)
    expect(page.locator("h1", has_text="Settings")).to_be_visible()
    expect(page.locator(compatible("base_url")).locator("input")).to_have_value(llama_server.base_url)
    expect(page.locator(compatible("model")).locator("input")).to_have_value(llama_server.model)
    expect(section.get_by_text(f"A key is saved, ending in …{last_four}.")).to_be_visible()
    assert llama_server.api_key not in page.content()
    go_to(page, "Chat")
    expect(page.get_by_role("combobox", name="Model")).to_have_value(
        f"{llama_server.model} · OpenAI-compatible"
    )

    # The same settings page at a phone's width.
    phone = new_page(PHONE)
    open_app(phone, app.url, "Chat")
    go_to(phone, "Settings")
    expect(phone.get_by_text(f"A key is saved, ending in …{last_four}.")).to_be_visible()
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    screenshot(phone, "settings-phone")


def _stream_lengths(page, timeout: float = 90) -> list[int]:
    """Lengths of the last reply's text, sampled while the script runs, until it ends."""
    script = """() => {
        const replies = [...document.querySelectorAll('[data-testid="stChatMessage"]')]
            .filter(m => m.querySelector('[data-testid="stChatMessageAvatarAssistant"]'));
        const last = replies[replies.length - 1];
        const state = document.querySelector('[data-testid="stApp"]').dataset.testScriptState;
        // The reply streams as several Markdown blocks: measure them all.
        const blocks = last ? [...last.querySelectorAll('[data-testid="stMarkdownContainer"]')]
            .filter(m => !m.closest('button')) : [];
        return [state, blocks.reduce((sum, m) => sum + m.innerText.length, 0)];
    }"""
    lengths: list[int] = []
    deadline = time.monotonic() + timeout
    started = False
    while time.monotonic() < deadline:
        state, length = page.evaluate(script)
        if state == "running":
            started = True
            if length and (not lengths or lengths[-1] != length):
                lengths.append(length)
        elif started:
            return lengths
        page.wait_for_timeout(20)
    raise TimeoutError("the reply did not finish")


def test_a_reply_streams_from_llama_cpp(app_factory, new_page, llama_server, isolated_data_dir):
    save_compatible(llama_server.base_url, llama_server.api_key, llama_server.model)
    app = app_factory(data_dir=isolated_data_dir)
    page = new_page()
    open_app(page, app.url, "Chat")
    pick(page, page.locator(key("chat:model")), f"{llama_server.model} · OpenAI-compatible")
    send(page, "Give me three tips for learning to sail, as a short bulleted list.")
    lengths = _stream_lengths(page)
    wait_idle(page)
    (reply,) = messages(page, "assistant").all()
    text = reply_text(reply)
    assert len(text) > 40, text
    # It grew on screen while the model generated, not all at once at the end. (Rendered
    # Markdown may shrink by a character when a marker closes, so not strictly sorted.)
    assert len(lengths) >= 3 and lengths[0] < lengths[len(lengths) // 2] < lengths[-1], lengths
    expect(reply.locator('[data-testid="stCaptionContainer"]')).to_contain_text(
        f"{llama_server.model} · OpenAI-compatible"
    )
    expect(page.locator(key("chat:retry"))).to_contain_text("Regenerate")
    assert errors(page) == []
    assert_no_exception(page)
    screenshot(page, "chat-desktop")
    print(f"\nllama.cpp reply: {len(text)} characters, {len(lengths)} page updates seen")


def test_an_error_names_the_url_and_keeps_the_message(app_factory, new_page, katan_server, isolated_data_dir):
    closed = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    save_compatible(closed, "sk-e2e-unused-key-0000", "some-model")
    app = app_factory(data_dir=isolated_data_dir)
    page = new_page()
    open_app(page, app.url, "Chat")
    typed = "Please keep this message: it took me a while to write."
    send(page, typed)
    wait_idle(page)
    expect(page.locator(".stMain").get_by_text(f"Could not connect to {closed}")).to_be_visible()
    (user,) = messages(page, "user").all()
    assert reply_text(user) == typed
    retry = page.locator(key("chat:retry"))
    expect(retry).to_contain_text("Retry")
    assert_no_exception(page)
    screenshot(page, "error-desktop")

    # Once the server is fixed, one click on Retry answers the kept message.
    save_compatible(katan_server.base_url, katan_server.api_key, katan_server.model)
    button(page, "chat:retry").click()
    wait_idle(page)
    expect(messages(page, "assistant").last).to_contain_text(f"User: {typed}")
    assert [reply_text(m) for m in messages(page, "user").all()] == [typed]
    expect(retry).to_contain_text("Regenerate")


def test_stop_keeps_the_partial_reply_marked_stopped(app_factory, new_page, llmock_factory, isolated_data_dir):
    slow = llmock_factory("--stream-chunk-delay-ms", "100", "--response-style", "echo")
    save_compatible(slow.base_url, slow.api_key, slow.model)
    app = app_factory(data_dir=isolated_data_dir)
    page = new_page()
    open_app(page, app.url, "Chat")
    words = [f"word{i}" for i in range(300)]  # about 30 s of reply at 10 chunks/s
    send(page, " ".join(words))

    stop = page.locator(key("chat:stop")).locator("button").first
    expect(stop).to_be_visible()  # a Stop button shows while the reply streams
    expect(chat_input(page)).to_be_disabled()
    reply = messages(page, "assistant").last
    expect(reply).to_contain_text("word5")
    stop.click()
    wait_idle(page)

    # Stop reruns the page: the partial reply is kept and marked as stopped at once.
    reply = messages(page, "assistant").last
    expect(reply.locator('[data-testid="stCaptionContainer"]')).to_contain_text("Stopped")
    kept = reply_text(reply)
    assert "word5" in kept and "word299" not in kept, kept
    expect(page.locator(key("chat:stop"))).to_have_count(0)
    expect(chat_input(page)).to_be_enabled()
    expect(page.locator(key("chat:retry"))).to_contain_text("Regenerate")
    assert_no_exception(page)
