"""Saved prompts in a real browser, as a person uses them: made in Settings (a name, a text
with two variables), offered on `/` in the chat's message box, picked with the arrow keys and
Enter, filled in a small form, sent to llm-katan (which echoes what it got); the
administrator's offered read-only; a file exported and imported back, and a bad one refused.
"""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import Page, expect

from tests.chatting import save_compatible
from tests.e2e.browser import (
    DESKTOP,
    PHONE,
    assert_no_exception,
    chat_input,
    errors,
    go_to,
    key,
    messages,
    open_app,
    pick,
    screenshot,
    upload,
    wait_idle,
)

ADMIN_PROMPTS = """
[prompts.standup]
name = "Standup notes"
text = "Summarise my standup notes in three bullet points."
model = "{model} · Team (administrator)"
temperature = 0.2
"""
# The administrator's connection to the same server: a second model label to switch to.
ADMIN_CONNECTION = """
[connections.team]
name = "Team"
base_url = "{base_url}"
api_key = "{api_key}"
models = ["{model}"]
"""
TEMPLATE = "Translate {{text}} into {{ language }}, keeping the tone."
MENU = ".sb-prompts-menu"
FORM = ".sb-prompts-form"


@pytest.fixture
def app(app_factory, katan_server, recording_proxy, isolated_data_dir):
    proxy, recorder = recording_proxy(katan_server)
    save_compatible(proxy.base_url, proxy.api_key, proxy.model)
    env = {"SWITCHBOARD_PROMPTS": ADMIN_PROMPTS.format(model=proxy.model),
           "SWITCHBOARD_CONNECTIONS": ADMIN_CONNECTION.format(
               base_url=proxy.base_url, api_key=proxy.api_key, model=proxy.model)}
    return app_factory(data_dir=isolated_data_dir, env=env), recorder


def _new_prompt(page: Page, name: str, text: str) -> None:
    """In Settings → Saved prompts, with "New prompt" picked: type it in, press Save."""
    page.locator(key("prompts:new:name")).locator("input").fill(name)
    page.locator(key("prompts:new:text")).locator("textarea").fill(text)
    page.get_by_role("button", name="Save prompt").click()
    wait_idle(page)
    expect(page.locator('[data-testid="stAlertContentSuccess"]')).to_contain_text(
        f"Saved the prompt “{name}”")


def _editing_id(page: Page) -> str:
    """The id of the prompt the Settings form shows (its fields are keyed by it)."""
    classes = page.locator('[class*="st-key-prompts-"][class*="-name"]').first.get_attribute(
        "class")
    return next(c for c in classes.split() if c.startswith("st-key-prompts-")
                ).removeprefix("st-key-prompts-").removesuffix("-name")


def _slash(page: Page, typed: str) -> None:
    box = chat_input(page)
    box.click()
    page.keyboard.type(typed)
    expect(page.locator(MENU)).to_be_visible()


@pytest.mark.parametrize("device", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_a_prompt_with_two_variables_is_made_picked_filled_and_sent(app, new_page, device):
    app, recorder = app
    page = new_page(device)
    open_app(page, app.url, "Chat")
    go_to(page, "Settings")
    _new_prompt(page, "Translate", TEMPLATE)
    expect(page.get_by_text("Variables: text, language")).to_be_visible()

    go_to(page, "Chat")
    _slash(page, "/")
    options = page.locator(f"{MENU} [role=option]")
    expect(options).to_have_count(2)  # the user's, then the administrator's
    expect(options.nth(0)).to_contain_text("Translate")
    expect(options.nth(1)).to_contain_text("from the administrator")
    page.keyboard.type("tr")  # "/tr": filtered as the user types
    expect(options).to_have_count(1)
    page.keyboard.press("ArrowDown")  # around the one option and back
    expect(options.first).to_have_attribute("aria-selected", "true")
    page.keyboard.press("Enter")

    form = page.locator(FORM)
    expect(form).to_be_visible()
    fields = form.locator("input")
    expect(fields).to_have_count(2)
    expect(form).to_contain_text("text")
    expect(form).to_contain_text("language")
    expect(fields.first).to_be_focused()
    page.keyboard.type("good morning, {{friend}}")  # braces in a value stay as typed
    page.keyboard.press("Enter")  # to the next field
    expect(fields.nth(1)).to_be_focused()
    page.keyboard.type("French")
    if device is DESKTOP:
        screenshot(page, "prompt-variables")
        fields.nth(1).click()  # the picture took the focus away: back to the last field
    page.keyboard.press("Enter")

    filled = "Translate good morning, {{friend}} into French, keeping the tone."
    expect(form).to_have_count(0)
    expect(chat_input(page)).to_have_value(filled)
    expect(chat_input(page)).to_be_focused()
    page.keyboard.press("Enter")  # sent as is
    wait_idle(page)
    expect(messages(page, "assistant").last).to_contain_text(f"User: {filled}")
    assert recorder.chat_requests[-1].body["messages"][-1] == {"role": "user",
                                                                "content": filled}
    assert_no_exception(page)


def test_the_administrators_prompt_is_offered_read_only_and_sets_its_model(app, new_page):
    app, recorder = app
    page = new_page()
    open_app(page, app.url, "Chat")
    go_to(page, "Settings")
    section = page.get_by_text("From the administrator")
    expect(section).to_be_visible()
    expect(page.get_by_text("Standup notes", exact=True)).to_be_visible()
    shown = page.locator('[data-testid="stExpander"]', has_text="Standup notes")
    shown.get_by_text("Standup notes", exact=True).click()
    expect(shown).to_contain_text("Summarise my standup notes in three bullet points.")
    expect(shown.locator("input, textarea, button")).to_have_count(0)  # nothing to change

    go_to(page, "Chat")
    model = page.locator(key("chat:model")).get_by_role("combobox")
    expect(model).to_have_value(re.compile(r"OpenAI-compatible"))  # the first model offered
    _slash(page, "/stand")
    page.locator(f"{MENU} [role=option]", has_text="Standup notes").click()  # a click picks
    text = "Summarise my standup notes in three bullet points."
    expect(chat_input(page)).to_have_value(text)
    wait_idle(page)  # the pick set the chat's model and temperature: the page ran again
    expect(model).to_have_value(re.compile(r" · Team \(administrator\)$"))
    expect(chat_input(page)).to_have_value(text)  # and the box kept the text
    chat_input(page).press("Enter")
    wait_idle(page)
    body = recorder.chat_requests[-1].body
    assert body["messages"][-1] == {"role": "user", "content": text}
    assert body["temperature"] == pytest.approx(0.2)
    assert_no_exception(page)


def test_escape_closes_the_offer_and_a_slash_later_in_the_text_offers_nothing(app, new_page):
    app, _ = app
    page = new_page()
    open_app(page, app.url, "Chat")
    _slash(page, "/")
    page.keyboard.press("Escape")
    expect(page.locator(MENU)).to_have_count(0)
    chat_input(page).fill("")
    page.keyboard.type("a/b")
    expect(page.locator(MENU)).to_have_count(0)
    chat_input(page).fill("")
    page.keyboard.type("/nothing like it")
    expect(page.locator(MENU)).to_contain_text("No saved prompt has that name.")
    page.keyboard.press("Enter")  # nothing to pick: Enter sends what was typed
    wait_idle(page)
    expect(page.locator(MENU)).to_have_count(0)
    expect(messages(page, "assistant").last).to_contain_text("User: /nothing like it")


def test_prompts_export_and_import_back_and_a_bad_file_is_refused(app, new_page, tmp_path):
    app, _ = app
    page = new_page()
    open_app(page, app.url, "Chat")
    go_to(page, "Settings")
    _new_prompt(page, "Translate", TEMPLATE)
    pick(page, page.locator(key("prompts:editing")), "New prompt")
    _new_prompt(page, "Review", "Review {{code}}")

    with page.expect_download() as download:
        page.locator(key("prompts:export")).locator("button").click()
    exported = tmp_path / "prompts.json"
    download.value.save_as(exported)
    assert [(p["name"], p["text"]) for p in json.loads(exported.read_text())["prompts"]] == [
        ("Review", "Review {{code}}"), ("Translate", TEMPLATE)]

    page.get_by_role("button", name="Import prompts").click()  # no file chosen
    wait_idle(page)
    assert any("Choose a JSON file of prompts first" in e for e in errors(page))

    uploader = page.locator('[class*="st-key-prompts-import_file"]')  # keyed by round
    upload(uploader, exported)
    page.get_by_role("button", name="Import prompts").click()
    wait_idle(page)
    expect(page.locator('[data-testid="stAlertContentSuccess"]')).to_contain_text(
        "Imported 0 prompts. 2 you already had, unchanged, were left as they are.")

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"name": "fine", "text": "ok"}, {"name": "", "text": "x"}]))
    upload(uploader, bad)
    page.get_by_role("button", name="Import prompts").click()
    wait_idle(page)
    said = " ".join(errors(page))
    assert "This file cannot be imported: prompt 2" in said and "Nothing was imported." in said

    # Deleted, then imported back from the exported file.
    for name in ("Review", "Translate"):
        pick(page, page.locator(key("prompts:editing")), name)
        page.get_by_role("button", name="Delete this prompt").click()
        wait_idle(page)
    upload(uploader, exported)
    page.get_by_role("button", name="Import prompts").click()
    wait_idle(page)
    expect(page.locator('[data-testid="stAlertContentSuccess"]')).to_contain_text(
        "Imported 2 prompts.")
    for name in ("Review", "Translate"):  # both back, each to edit
        pick(page, page.locator(key("prompts:editing")), name)
        expect(page.locator(key(f"prompts:{_editing_id(page)}:name")).locator("input")
               ).to_have_value(name)
    assert_no_exception(page)
