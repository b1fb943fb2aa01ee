"""The chat list in a real Chromium against `streamlit run`, as a person uses it: pin and
unpin a chat, file it in a folder typed there, show only that folder, delete the folder; and
search as you type (letters one by one, no Enter): the list changes, the matches are marked,
the count is every chat found, Load more, and a hit opens its chat at the message, on the
version of it that holds the words. At desktop and phone widths; then once in Supabase mode."""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import Page, expect

from core.auth import SupabaseAuth
from core.config import Settings
from core.history.model import Chat, Message
from core.store.sqlite import SQLiteChatStore
from core.store.supabase import SupabaseChatStore
from tests.e2e.browser import (
    DESKTOP,
    PHONE,
    assert_no_exception,
    key,
    messages,
    open_app,
    open_sidebar,
    screenshot,
    wait_idle,
)
from tests.e2e.test_supabase_mode import PASSWORD, _email, _sign_up, supabase_app  # noqa: F401

SIDEBAR = '[data-testid="stSidebar"]'
MATCHING = 27  # chats holding the searched word: more than one page of hits (20)


def seed(store) -> dict[str, str]:
    """Chats to find: MATCHING about quokkas, one whose earlier version of a message holds
    "wombat" (the version on screen does not), and a title with Markdown and HTML in it."""
    for n in range(MATCHING):
        chat = store.save_chat(Chat(title=f"Island notes {n}"))
        store.add_message(Message(chat_id=chat.id, role="user",
                                  content=f"day {n}: a quokka smiled at the ferry"))
    branched = store.save_chat(Chat(title="Branched"))
    first = store.add_message(Message(chat_id=branched.id, role="user",
                                      content="tell me about the wombat burrow"))
    store.add_message(Message(chat_id=branched.id, role="assistant", parent_id=first.id,
                              content="Wombats dig."))
    second = store.add_message(Message(chat_id=branched.id, role="user",
                                       content="tell me about kangaroos instead"))
    store.save_chat(branched.with_changes(current_id=second.id))
    marked = store.save_chat(Chat(title="**Bold** <b>tag</b> plans"))
    store.add_message(Message(chat_id=marked.id, role="user", content="plans for the trip"))
    return {"branched": branched.id, "wombat": first.id, "marked": marked.id}


def sidebar_button(page: Page, title: str):
    """The chat's button in the list (Streamlit also keeps a hidden copy of a button)."""
    return page.locator(f"{SIDEBAR} button:visible",
                        has_text=re.compile(f"^{re.escape(title)}$"))


def search_box(page: Page):
    return page.locator(key("history:search")).locator("input")


def open_menu(page: Page) -> None:
    """The open chat's menu, opened unless it still is."""
    rename = page.get_by_role("button", name="Rename", exact=True)
    if not rename.is_visible():
        page.locator(SIDEBAR).get_by_text("Pin, file, rename, export, delete").click()
    expect(rename).to_be_visible()


def close_menu(page: Page) -> None:
    page.keyboard.press("Escape")
    wait_idle(page)


def show(page: Page, choice: str) -> None:
    """Pick what the list shows, its box scrolled into view first (a phone's sidebar scrolls)."""
    box = page.locator(key("history:showing"))
    box.scroll_into_view_if_needed()
    box.click()
    page.keyboard.type(choice.removeprefix("📁 ").split(" (")[0])  # what a person types
    page.get_by_role("option", name=choice).click()
    wait_idle(page)


def group_of(page: Page, title: str) -> str:
    """The caption of the group the chat's button is listed under."""
    return page.locator(SIDEBAR).evaluate(
        """(bar, title) => {
            let label = "";
            for (const el of bar.querySelectorAll('[data-testid="stCaptionContainer"], button')) {
                if (el.tagName !== "BUTTON") label = el.innerText.trim();
                else if (el.innerText.trim() === title) return label;
            }
            return null;
        }""", title)


def pin_file_and_filter(page: Page) -> None:
    sidebar_button(page, "Island notes 3").click()
    wait_idle(page)
    open_sidebar(page)  # on a phone, picking a chat closed it
    open_menu(page)
    page.get_by_role("button", name="Pin to the top").click()
    wait_idle(page)
    expect(page.locator(SIDEBAR).get_by_text("📌 Pinned")).to_be_visible()
    assert group_of(page, "Island notes 3") == "📌 Pinned"

    # Filed in a folder typed there (a new name), then the list shows only that folder.
    open_menu(page)
    folder = page.locator('[class*="st-key-history-folder-"]').first  # the open chat's folder box
    folder.click()
    page.keyboard.type("Travel")
    page.keyboard.press("Enter")
    wait_idle(page)
    close_menu(page)
    show(page, "📁 Travel (1)")
    expect(sidebar_button(page, "Island notes 3")).to_be_visible()
    expect(sidebar_button(page, "Island notes 4")).to_have_count(0)

    # Pinned only, then unpinned: gone from the pins.
    show(page, "Pinned")
    expect(sidebar_button(page, "Island notes 3")).to_be_visible()
    expect(sidebar_button(page, "Island notes 2")).to_have_count(0)
    open_menu(page)
    page.get_by_role("button", name="Unpin").click()
    wait_idle(page)
    expect(sidebar_button(page, "Island notes 3")).to_have_count(0)

    # The folder deleted: its chat stays, in no folder, and the list shows every chat.
    show(page, "📁 Travel (1)")
    page.locator(SIDEBAR).get_by_text("Folder “Travel”").click()
    page.get_by_role("button", name="Delete folder (its chats stay, in no folder)").click()
    wait_idle(page)
    expect(page.locator(SIDEBAR).get_by_text("Folder “Travel”")).to_have_count(0)
    expect(sidebar_button(page, "Island notes 4")).to_be_visible()  # every chat listed again
    expect(sidebar_button(page, "Island notes 3")).to_be_visible()
    expect(page.locator(SIDEBAR).get_by_text("📌 Pinned")).to_have_count(0)


def search_as_you_type(page: Page, ids: dict[str, str]) -> None:
    box = search_box(page)
    box.click()
    for letter in "quok":  # one by one, no Enter: the list follows the typing
        page.keyboard.type(letter, delay=60)
    expect(page.locator(SIDEBAR).get_by_text(f"{MATCHING} chats", exact=True)).to_be_visible(
        timeout=10_000)
    wait_idle(page)
    hits = page.locator(f'{SIDEBAR} [class*="st-key-history-found-"]')
    expect(hits).to_have_count(20)
    expect(hits.first.locator("mark")).to_have_text("quokka")
    page.locator(SIDEBAR).get_by_role("button", name=f"Load more ({MATCHING - 20} left)").click()
    wait_idle(page)
    expect(hits).to_have_count(MATCHING)

    # Titles are shown as typed: their Markdown and HTML are text, the match marked.
    box.fill("")
    page.keyboard.type("plan", delay=60)
    expect(page.locator(SIDEBAR).get_by_text("1 chat", exact=True)).to_be_visible(timeout=10_000)
    wait_idle(page)
    title = hits.first.locator(".sb-hit-title")
    expect(title).to_have_text("**Bold** <b>tag</b> plans")
    expect(title.locator("mark")).to_have_text("plan")
    expect(title.locator("b")).to_have_count(0)

    # A hit in an earlier version of a message: the chat opens on that version.
    box.fill("")
    page.keyboard.type("wombat bur", delay=60)
    expect(hits.first.locator(".sb-hit-title")).to_have_text("Branched", timeout=10_000)
    expect(page.locator(SIDEBAR).get_by_text("1 chat", exact=True)).to_be_visible()
    wait_idle(page)
    page.locator(SIDEBAR).get_by_role("button", name="Open at this message").click()
    wait_idle(page)
    if page.viewport_size["width"] < 640:  # a phone: the hit closed the sidebar over the chat
        expect(page.locator(f'{SIDEBAR}[data-collapsed="false"]')).to_have_count(0)
    expect(messages(page, "user").first).to_contain_text("tell me about the wombat burrow")
    expect(messages(page, "assistant").first).to_contain_text("Wombats dig.")
    assert f"chat={ids['branched']}" in page.url
    assert_no_exception(page)


@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_pins_folders_and_search_as_you_type(app_factory, new_page, isolated_data_dir, device):
    ids = seed(SQLiteChatStore(isolated_data_dir))
    app = app_factory(data_dir=isolated_data_dir)
    page = new_page(DESKTOP if device == "desktop" else PHONE)
    open_app(page, app.url, "Chat")
    open_sidebar(page)
    pin_file_and_filter(page)
    search_as_you_type(page, ids)


def test_pinned_chats_come_first_and_keep_their_pin_among_the_hits(app_factory, new_page,
                                                                    isolated_data_dir):
    """The list with pins, then a search: the pinned hits marked, the matches highlighted
    (the screenshot)."""
    store = SQLiteChatStore(isolated_data_dir)
    seed(store)
    for title in ("Island notes 5", "Island notes 9"):
        chat = next(c for c in store.list_chats(100) if c.title == title)
        store.save_chat(chat.with_changes(pinned=True))
    app = app_factory(data_dir=isolated_data_dir)
    page = new_page(DESKTOP)
    open_app(page, app.url, "Chat")
    expect(page.locator(SIDEBAR).get_by_text("📌 Pinned")).to_be_visible()
    assert group_of(page, "Island notes 9") == "📌 Pinned"
    search_box(page).click()
    page.keyboard.type("quokka smi", delay=60)
    expect(page.locator(SIDEBAR).get_by_text(f"{MATCHING} chats", exact=True)).to_be_visible(
        timeout=10_000)
    expect(page.locator(f"{SIDEBAR} mark").first).to_be_visible()
    expect(page.locator(f'{SIDEBAR} .sb-hit span[title="Pinned"]')
           ).to_have_count(2)
    screenshot(page, "list-pins-search")


def test_search_as_you_type_in_supabase_mode(supabase_app, new_page, supabase_stack):  # noqa: F811
    page = new_page(DESKTOP)
    email = _email()
    _sign_up(page, supabase_app, email)
    auth = SupabaseAuth(Settings(supabase_url=supabase_stack.url,
                                 supabase_anon_key=supabase_stack.anon_key))
    user = auth.sign_in(email, PASSWORD)
    ids = seed(SupabaseChatStore(auth.client, user.id))
    search_box(page).click()
    for letter in "quok":
        page.keyboard.type(letter, delay=60)
    expect(page.locator(SIDEBAR).get_by_text(f"{MATCHING} chats", exact=True)).to_be_visible(
        timeout=10_000)
    hits = page.locator(f'{SIDEBAR} [class*="st-key-history-found-"]')
    expect(hits).to_have_count(20)
    expect(hits.first.locator("mark")).to_have_text("quokka")
    search_box(page).fill("")
    page.keyboard.type("wombat", delay=60)
    expect(page.locator(SIDEBAR).get_by_text("1 chat", exact=True)).to_be_visible(timeout=10_000)
    wait_idle(page)
    page.locator(SIDEBAR).get_by_role("button", name="Open at this message").click()
    wait_idle(page)
    expect(messages(page, "user").first).to_contain_text("tell me about the wombat burrow")
    assert f"chat={ids['branched']}" in page.url
    assert uuid.UUID(ids["wombat"])
