"""Imports people trust, in a real Chromium against `streamlit run`: a ChatGPT export with
branches uploaded through Settings' file input imports in the background with a progress bar
and Cancel (nothing kept), then fully; a chat opens with its versions (◀ ▶); after Delete all
the prepared export is no longer offered."""

from __future__ import annotations

import json
import random
import re

from playwright.sync_api import Page, expect

from tests.chatgpt_exports import conversation, node
from tests.e2e.browser import (PHONE, button, go_to, key, messages, open_app, open_sidebar,
                                screenshot, upload, wait_idle)

GENERATED = 5_000  # enough chats for the import to take a few seconds, to watch and cancel


def _branched() -> dict:
    """A conversation with a regenerated reply, the newest of all (first in the chat list)."""
    mapping = {"root": node("root", None),
               "sys": node("sys", "root", "system", [""],
                           metadata={"is_visually_hidden_from_conversation": True}),
               "q": node("q", "sys", "user", ["Tell me about cats"], created=1_900_000_000.0),
               "a1": node("a1", "q", "assistant", ["Cats purr (first try)"],
                          created=1_900_000_001.0),
               "a2": node("a2", "q", "assistant", ["Cats sleep a lot (regenerated)"],
                          created=1_900_000_002.0)}
    return {"title": "Cats and versions", "create_time": 1_900_000_000.0,
            "update_time": 1_900_000_100.0, "mapping": mapping, "current_node": "a2",
            "id": "cats-versions", "conversation_id": "cats-versions"}


def _export(path) -> None:
    rng = random.Random(21)
    chats = [_branched(), *(conversation(rng, n, turns=3, words=8) for n in range(GENERATED))]
    path.write_text(json.dumps(chats))


def _choose(page: Page, path) -> None:
    upload(page.locator(key("chats:import_file")), path)


def _sidebar_chat(page: Page, title: str):
    return page.locator('[data-testid="stSidebar"] button', has_text=title)


def test_a_chatgpt_export_imports_in_the_background_with_progress_cancel_and_versions(
        app_factory, new_page, tmp_path):
    export = tmp_path / "conversations.json"
    _export(export)
    app = app_factory()
    page = new_page()
    open_app(page, app.url, "Chat")
    go_to(page, "Settings")

    button(page, "chats:import").click()  # no file chosen yet
    expect(page.get_by_text("Choose a file to import first")).to_be_visible()

    _choose(page, export)
    button(page, "chats:import").click()
    bar = page.locator('[data-testid="stProgress"]')
    expect(bar).to_be_visible(timeout=30_000)
    expect(page.get_by_text(re.compile(rf"Importing: [\d,]+ of {GENERATED + 1:,} chats"))) \
        .to_be_visible(timeout=60_000)
    screenshot(page, "import-progress")
    button(page, "chats:import_cancel").click()
    expect(page.get_by_text("The import was cancelled; nothing of it was kept.")) \
        .to_be_visible(timeout=60_000)
    expect(bar).to_have_count(0)
    go_to(page, "Chat")
    expect(_sidebar_chat(page, "Cats and versions")).to_have_count(0)

    go_to(page, "Settings")
    _choose(page, export)
    button(page, "chats:import").click()
    expect(page.get_by_text(re.compile(rf"Imported {GENERATED + 1:,} chats with [\d,]+ "
                                       r"messages, of which [\d,]+ are other versions"))) \
        .to_be_visible(timeout=300_000)
    expect(page.get_by_text(re.compile(r"hidden system messages were skipped \(ChatGPT's own "
                                       r"setup, not your words\)"))).to_be_visible()
    screenshot(page, "import-summary")

    go_to(page, "Chat")
    _sidebar_chat(page, "Cats and versions").click()
    wait_idle(page)
    reply = messages(page, "assistant").last
    expect(reply).to_contain_text("Cats sleep a lot (regenerated)")
    versions = page.locator('[class*="st-key-chat-versions-"]').last
    expect(versions).to_contain_text("2 / 2")
    versions.locator("button:visible", has_text="◀").click()
    wait_idle(page)
    expect(messages(page, "assistant").last).to_contain_text("Cats purr (first try)")
    expect(page.locator('[class*="st-key-chat-versions-"]').last).to_contain_text("1 / 2")


def test_after_delete_all_the_prepared_export_is_no_longer_offered(app_factory, new_page,
                                                                   tmp_path):
    export = tmp_path / "conversations.json"
    export.write_text(json.dumps([_branched()]))
    app = app_factory()
    page = new_page()
    open_app(page, app.url, "Chat")
    go_to(page, "Settings")
    _choose(page, export)
    button(page, "chats:import").click()
    expect(page.get_by_text("Imported 1 chat with 3 messages")).to_be_visible(timeout=60_000)
    button(page, "chats:prepare").click()
    wait_idle(page)
    download = page.locator(key("chats:download"))
    expect(download).to_have_count(1)
    button(page, "chats:delete").click()
    wait_idle(page)
    button(page, "chats:delete_yes").click()
    expect(page.get_by_text("1 chats deleted.")).to_be_visible()
    expect(download).to_have_count(0)


def test_on_a_phone_an_export_imports_and_its_chat_opens_with_its_versions(
        app_factory, new_page, tmp_path):
    """The same at a phone's width, with a small export: chosen with a tap, its summary in
    plain words, then the chat from the sidebar with its versions."""
    export = tmp_path / "conversations.json"
    rng = random.Random(7)
    export.write_text(json.dumps([_branched(),
                                  *(conversation(rng, n, turns=2, words=5) for n in range(3))]))
    app = app_factory()
    page = new_page(PHONE)
    open_app(page, app.url, "Chat")
    go_to(page, "Settings")
    _choose(page, export)
    button(page, "chats:import").click()
    expect(page.get_by_text(re.compile(r"Imported 4 chats with [\d,]+ messages, of which [\d,]+ "
                                       r"are other versions"))).to_be_visible(timeout=60_000)
    go_to(page, "Chat")
    open_sidebar(page)
    _sidebar_chat(page, "Cats and versions").click()
    wait_idle(page)
    expect(messages(page, "assistant").last).to_contain_text("Cats sleep a lot (regenerated)")
    versions = page.locator('[class*="st-key-chat-versions-"]').last
    expect(versions).to_contain_text("2 / 2")
    versions.locator("button:visible", has_text="◀").click()
    wait_idle(page)
    expect(messages(page, "assistant").last).to_contain_text("Cats purr (first try)")
