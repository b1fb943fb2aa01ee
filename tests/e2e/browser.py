"""Helpers for driving the real app in Chromium: wait for Streamlit, navigate, chat, shoot.

Streamlit marks its root element with the script's state
(`[data-testid="stApp"][data-test-script-state="running"|"notRunning"|...]`) and the
websocket's (`data-test-connection-state="CONNECTED"`): `wait_idle` waits on both.
A page load starts a new Streamlit session, so navigation is by clicking the sidebar links.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from playwright.sync_api import Locator, Page, expect

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "docs" / "screenshots"
# Browser context options: a desktop window, and a phone (a phone's user agent and touch, so
# the app behaves as on a phone: e.g. Streamlit closes the sidebar after a navigation click).
DESKTOP = {"viewport": {"width": 1280, "height": 800}}
PHONE = {
    "viewport": {"width": 390, "height": 844},
    "is_mobile": True,
    "has_touch": True,
    "user_agent": (
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/130.0.0.0 Mobile Safari/537.36"
    ),
}
PHONE_WIDTH = PHONE["viewport"]["width"]

IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"][data-test-connection-state="CONNECTED"]'
STALE = '[data-stale="true"]'  # an element of the last run not (yet) drawn again by this one


def key(name: str) -> str:
    """The CSS selector of the element container of the widget with key `name`.

    Streamlit 1.67 gives each keyed element the class `st-key-<key>`, with every character
    outside [a-zA-Z0-9_-] replaced by '-'.
    """
    return ".st-key-" + re.sub(r"[^a-zA-Z0-9_-]", "-", name.strip())


def compatible(name: str) -> str:
    """A widget of the OpenAI-compatible expander on the settings page."""
    return key(f"settings:openai-compatible:{name}")


def wait_idle(page: Page, timeout: float = 30, settle: float = 0.15) -> None:
    """Wait until no script runs, the websocket is up and no stale element is left, twice
    `settle` apart.

    A click's rerun may start a moment after the click, and `st.rerun()` chains two runs, so
    one idle reading is not enough.
    """
    deadline = time.monotonic() + timeout
    while True:
        left = max(deadline - time.monotonic(), 0.1)
        page.wait_for_selector(IDLE, timeout=left * 1000, state="attached")
        page.wait_for_timeout(settle * 1000)
        if page.locator(IDLE).count() and not page.locator(STALE).count():
            return
        if time.monotonic() > deadline:
            raise TimeoutError("the app did not become idle")


def open_app(page: Page, url: str, title: str | None = None) -> None:
    """Load the app (a new Streamlit session) and wait for its first run to finish."""
    page.goto(url)
    page.wait_for_selector('[data-testid="stApp"]')
    wait_idle(page)
    if title:
        expect(page.locator("h1", has_text=title)).to_be_visible()


def pick(page: Page, box: Locator, option: str, attempts: int = 3) -> None:
    """Open a select box, type to filter it, and click the option, as a user does.

    Under load a click can land while a rerun redraws the box and the list does not open
    (CI saw it once); a user clicks again, and so does this, up to `attempts` times.
    """
    choice = page.get_by_role("option", name=option)
    for attempt in range(attempts):
        box.click()
        page.keyboard.type(option)
        try:
            expect(choice).to_be_visible(timeout=5_000)
            break
        except AssertionError:
            if attempt == attempts - 1:
                raise
            page.keyboard.press("Escape")
            wait_idle(page)
    choice.click()
    wait_idle(page)


SIDEBAR_OPEN = '[data-testid="stSidebar"][data-collapsed="false"]'


def open_sidebar(page: Page) -> None:
    """On a narrow screen the sidebar starts collapsed: open it."""
    if not page.locator(SIDEBAR_OPEN).count():
        page.locator('[data-testid="stExpandSidebarButton"]').click()
    expect(page.locator(SIDEBAR_OPEN)).to_have_count(1)
    page.wait_for_timeout(300)  # its slide-in transition


# The app's own navigation: page links in the sidebar (Streamlit's page list is turned off).
NAV_LINK = '[data-testid="stSidebar"] [data-testid="stPageLink-NavLink"]'
NAV_TITLE = NAV_LINK + ' [data-testid="stMarkdownContainer"]'  # a link's title, not its icon


def nav_current(page: Page) -> list[str]:
    """The titles the navigation marks as the page shown (Streamlit draws them bold)."""
    return page.locator(NAV_TITLE).evaluate_all(
        "titles => titles.filter(t => Number(getComputedStyle(t.querySelector('p') || t)"
        ".fontWeight) >= 600).map(t => t.innerText.trim())")


def go_to(page: Page, title: str) -> None:
    """Click the sidebar link to page `title`, as a user does (no page load, same session)."""
    open_sidebar(page)
    page.locator(NAV_LINK, has_text=title).click()
    expect(page.locator("h1", has_text=title)).to_be_visible()
    wait_idle(page)
    if page.viewport_size["width"] < 640:  # on a phone the open sidebar covers the page
        close_sidebar(page)


def close_sidebar(page: Page) -> None:
    """Close the sidebar with its own button, as a user does. A page link in it (the app's
    navigation) leaves it open, also on a phone, unlike Streamlit's page list."""
    if page.locator(SIDEBAR_OPEN).count():
        page.locator('[data-testid="stSidebarCollapseButton"] button').click()
    expect(page.locator(SIDEBAR_OPEN)).to_have_count(0)
    page.wait_for_timeout(300)  # its slide-out transition


def chat_input(page: Page) -> Locator:
    return page.locator('[data-testid="stChatInputTextArea"]')


def send(page: Page, text: str) -> None:
    """Type a message in the chat input and press Enter (the run is left to the caller)."""
    box = chat_input(page)
    expect(box).to_be_enabled()
    box.fill(text)
    box.press("Enter")


def messages(page: Page, role: str | None = None) -> Locator:
    """Chat messages on the page, optionally only the user's or the assistant's."""
    found = page.locator('[data-testid="stChatMessage"]')
    if role == "assistant":
        return found.filter(has=page.locator('[data-testid="stChatMessageAvatarAssistant"]'))
    if role == "user":
        return found.filter(has=page.locator('[data-testid="stChatMessageAvatarUser"]'))
    return found


def upload(uploader: Locator, path) -> None:
    """Choose a file in a `st.file_uploader` and wait until it has reached the server.

    The name shows at once, beside a spinner while the bytes go up; the script sees the file
    only after that (a click on a button before then runs without it)."""
    uploader.locator('input[type="file"]').set_input_files(str(path))
    expect(uploader).to_contain_text(Path(path).name)
    expect(uploader.locator('[data-testid="stFileChipIconSpinner"]')).to_have_count(
        0, timeout=120_000)
    wait_idle(uploader.page)


def reply_text(message: Locator, wait: float = 10) -> str:
    """The text of a reply's Markdown, without its caption, buttons or popover."""
    markdown = message.locator('[data-testid="stChatMessageContent"] [data-testid="stMarkdownContainer"]')
    # A rerun may redraw the message just as it is read (its blocks empty for a moment):
    # read again until words show, for a few seconds, before calling it empty.
    deadline = time.monotonic() + wait
    while True:
        texts = [text for text in markdown.all_inner_texts() if text.strip()]
        if texts or time.monotonic() > deadline:
            return texts[0] if texts else ""
        time.sleep(0.1)


def errors(page: Page) -> list[str]:
    """The text of every error box shown in the main area."""
    alerts = page.locator('.stMain [data-testid="stAlertContentError"]')
    return [alerts.nth(i).inner_text() for i in range(alerts.count())]


def assert_no_exception(page: Page) -> None:
    exceptions = page.locator('[data-testid="stException"]')
    assert exceptions.count() == 0, exceptions.first.inner_text()


def screenshot(page: Page, name: str) -> Path:
    """Save the viewport as docs/screenshots/<name>.png once the app is idle."""
    wait_idle(page)
    # A toast from an earlier step (e.g. "settings saved" before signing out) goes by itself.
    expect(page.locator('[data-testid="stToast"]')).to_have_count(0, timeout=10_000)
    page.mouse.move(0, 0)  # no hover highlight or tooltip in the picture
    page.evaluate("document.activeElement && document.activeElement.blur()")  # no focus ring
    page.wait_for_timeout(300)  # let transitions (expanders, fades) finish
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), animations="disabled", caret="hide")
    return path


def button(page: Page, name: str) -> Locator:
    """The button of the widget keyed `name` (Streamlit also renders a hidden copy of it)."""
    return page.locator(key(name)).locator("button:visible")
