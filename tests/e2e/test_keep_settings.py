"""Settings keep what the user gave, in a real Chromium against `streamlit run` (issue 8).

A key typed, then Tab, then Save is saved and used; unsaved settings survive a visit to Chat
and say so; a Test connection result goes away once the inputs it was made for change.
"""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.e2e.browser import (
    assert_no_exception,
    button,
    compatible,
    errors,
    go_to,
    messages,
    open_app,
    screenshot,
    send,
    wait_idle,
)

SAVE = "settings:openai-compatible:save"


def _field(page: Page, name: str):
    return page.locator(compatible(name)).locator("input")


def _fill(page: Page, name: str, value: str) -> None:
    """Type into a settings input and commit it with Enter."""
    _field(page, name).fill(value)
    _field(page, name).press("Enter")
    wait_idle(page)


def _expander(page: Page):
    return page.locator('[data-testid="stExpander"]', has_text="OpenAI-compatible")


def _settings(app_factory, new_page) -> Page:
    page = new_page()
    open_app(page, app_factory().url, "Chat")
    go_to(page, "Settings")
    return page


def test_a_key_typed_then_tab_then_save_is_saved_and_a_chat_uses_it(app_factory, new_page, katan_server):
    """Tab moves the focus from the key to the field's own show-password button; the key
    used to be dropped then, and the next chat got a 401 from this key-checking server."""
    page = _settings(app_factory, new_page)
    _fill(page, "base_url", katan_server.base_url)
    _fill(page, "model", katan_server.model)

    _field(page, "key").click()
    page.keyboard.type(katan_server.api_key)
    page.keyboard.press("Tab")
    button(page, SAVE).click()

    # Each typed character reruns the page (so none is lost): on two busy cores that takes a while.
    saved = _expander(page).get_by_text(f"ending in …{katan_server.api_key[-4:]}")
    expect(saved).to_be_visible(timeout=60_000)
    wait_idle(page, timeout=60)
    expect(_expander(page).get_by_text("No key saved")).to_have_count(0)
    expect(_field(page, "key")).to_have_value("")  # never sent back once saved
    go_to(page, "Chat")
    send(page, "hello after Tab")
    wait_idle(page)
    expect(messages(page, "assistant").last).to_contain_text("User: hello after Tab")
    assert errors(page) == []
    assert_no_exception(page)


def _unsaved_badge(page: Page):
    return _expander(page).get_by_text("Unsaved:")


def test_unsaved_settings_survive_a_visit_to_chat_and_say_so(app_factory, new_page, katan_server):
    page = _settings(app_factory, new_page)
    expect(_expander(page)).not_to_contain_text("Unsaved")
    _fill(page, "base_url", katan_server.base_url)
    _fill(page, "model", katan_server.model)
    _field(page, "key").fill(katan_server.api_key)  # not committed by leaving the field

    go_to(page, "Chat")
    go_to(page, "Settings")
    expect(_field(page, "base_url")).to_have_value(katan_server.base_url)
    expect(_field(page, "model")).to_have_value(katan_server.model)
    expect(_field(page, "key")).to_have_value(katan_server.api_key)
    expect(_expander(page).locator("summary")).to_contain_text("Unsaved changes")
    expect(_unsaved_badge(page)).to_have_text("✏️ Unsaved: API key, base URL, model name")
    expect(button(page, "settings:openai-compatible:discard")).to_be_visible()
    screenshot(page, "settings-unsaved")

    button(page, SAVE).click()
    wait_idle(page)
    expect(_expander(page).get_by_text(f"ending in …{katan_server.api_key[-4:]}")).to_be_visible()
    expect(_expander(page)).not_to_contain_text("Unsaved")

    # A check's result holds for the inputs it was made for, and only for them.
    button(page, "settings:openai-compatible:test_button").click()
    wait_idle(page, timeout=60)
    works = _expander(page).locator('[data-testid="stAlertContentSuccess"]', has_text="Connection works")
    expect(works).to_be_visible()
    _field(page, "base_url").fill(katan_server.base_url.replace("127.0.0.1", "localhost"))
    expect(works).to_have_count(0)  # the URL is committed as typed (after a short pause)
    expect(_unsaved_badge(page)).to_have_text("✏️ Unsaved: base URL")

    button(page, "settings:openai-compatible:discard").click()
    wait_idle(page)
    expect(_field(page, "base_url")).to_have_value(katan_server.base_url)
    expect(_expander(page)).not_to_contain_text("Unsaved")
    assert_no_exception(page)


def test_settings_shown_stay_when_the_data_file_is_deleted_and_one_save_puts_them_back(
        app_factory, new_page):
    """The data file deleted while the tab is open: the next page to read makes it again,
    empty; Settings still show what they showed, as unsaved changes, ask for the key again
    (never shown), and one Save stores them in a file only its owner may read."""
    import stat

    from core.store.sqlite import DB_FILENAME, SQLiteProfileStore

    app = app_factory()
    page = new_page()
    open_app(page, app.url, "Chat")
    go_to(page, "Settings")
    url, key = "http://127.0.0.1:9/v1", "sk-never-shown-again-8642"
    _fill(page, "base_url", url)
    _field(page, "key").fill(key)
    _fill(page, "model", "some-model")
    button(page, SAVE).click()
    wait_idle(page)
    expect(_expander(page).get_by_text(f"ending in …{key[-4:]}")).to_be_visible()

    path = app.data_dir / DB_FILENAME
    path.unlink()
    go_to(page, "Chat")  # Chat reads its chats first: the file is made again there
    expect(page.get_by_text("went missing")).to_be_visible()
    go_to(page, "Settings")
    expect(_field(page, "base_url")).to_have_value(url)
    expect(_field(page, "model")).to_have_value("some-model")
    expect(_field(page, "key")).to_have_value("")
    expect(_unsaved_badge(page)).to_have_text("✏️ Unsaved: base URL, model name")
    expect(_expander(page).get_by_text("The saved key was lost with the data file")).to_be_visible()

    button(page, SAVE).click()
    wait_idle(page)
    expect(_expander(page)).not_to_contain_text("Unsaved")
    profile = SQLiteProfileStore(app.data_dir).load()
    assert (profile.openai_compatible_base_url, profile.openai_compatible_model_name) == (
        url, "some-model")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert_no_exception(page)
