"""The frame is the only way into a page, in a real Chromium against `streamlit run` (issue 9).

Until something in a Streamlit process has called st.navigation, Streamlit serves the files of
pages/ as its own folder navigation: a fresh server's first visitor opening /settings directly
would get the page without the frame (no sign-in gate, the folder listed in the sidebar). And
when the frame cannot start (a damaged `encryption.key`), it shows one error page naming the
file: no traceback, no page links, and /settings does not open Settings. A tab open while the
server restarts reconnects without ever showing that folder navigation, and keeps its address.
"""

from __future__ import annotations

from cryptography.fernet import Fernet
from playwright.sync_api import expect

from tests.chatting import save_compatible
from tests.e2e.browser import (
    NAV_TITLE,
    assert_no_exception,
    errors,
    messages,
    nav_current,
    open_app,
    send,
    wait_idle,
)
from tests.fixtures.llm_servers import FORTY_WORDS

# Any link to a page: Streamlit's page list (st.navigation's or the pages/ folder's), or a page
# link (the app's own navigation in the sidebar, and links in a page).
PAGE_LINKS = '[data-testid="stSidebarNavLink"], [data-testid="stPageLink-NavLink"]'


def _links(page) -> list[str]:
    found = page.locator(PAGE_LINKS)
    return [found.nth(i).get_attribute("href") or "" for i in range(found.count())]


def test_a_fresh_server_opened_at_a_page_address_goes_through_the_frame(
        app_factory, new_page, supabase_stack):
    """Supabase mode, nobody signed in: the first request of the process is /settings."""
    app = app_factory(env={"SUPABASE_URL": supabase_stack.url,
                           "SUPABASE_ANON_KEY": supabase_stack.anon_key,
                           "SWITCHBOARD_ENCRYPTION_KEYS": Fernet.generate_key().decode()})
    page = new_page()
    open_app(page, app.url + "settings")
    assert_no_exception(page)
    expect(page.locator("h1", has_text="Sign in")).to_be_visible()  # gated: not Settings
    expect(page.locator("h1", has_text="Settings")).to_have_count(0)
    expect(page.locator(NAV_TITLE)).to_have_text(["Sign in", "Sign up"])
    assert not any(link.rstrip("/").endswith(("settings", "chat", "streamlit_app"))
                   for link in _links(page)), _links(page)


def test_a_damaged_secret_file_shows_one_error_page_and_no_way_to_the_pages(
        app_factory, new_page, tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    secret_file = data_dir / "encryption.key"
    secret_file.write_text("half-a-secret")
    app = app_factory(data_dir=data_dir)
    page = new_page()

    open_app(page, app.url + "settings")  # the process's first request, straight to a page
    assert_no_exception(page)
    expect(page.locator("h1", has_text="Switchboard")).to_be_visible()
    (said,) = errors(page)
    assert f"The encryption secret file {secret_file} is damaged" in said
    expect(page.locator("h1", has_text="Settings")).to_have_count(0)
    assert _links(page) == []  # no way to any page

    open_app(page, app.url)
    assert_no_exception(page)
    expect(page.locator("h1", has_text="Switchboard")).to_be_visible()
    assert _links(page) == []
    open_app(page, app.url + "settings")
    expect(page.locator("h1", has_text="Settings")).to_have_count(0)
    assert secret_file.read_text() == "half-a-secret"  # left as it is


# Every 50 ms, in the page itself (a reconnect does not reload it): the connection states the
# app goes through, and the text of any Streamlit page list (st.navigation's or the pages/
# folder's; the app's own navigation is page links) shown at that moment.
_WATCH_RECONNECT = """() => {
    window.watched = {states: [], navigation: []};
    setInterval(() => {
        const app = document.querySelector('[data-testid="stApp"]');
        const state = app ? app.dataset.testConnectionState : "no app";
        const states = window.watched.states;
        if (states[states.length - 1] !== state) states.push(state);
        for (const nav of document.querySelectorAll(
                '[data-testid="stSidebarNav"], [data-testid="stSidebarNavLink"]')) {
            const text = nav.innerText.replace(/\\s+/g, " ").trim();
            if (!window.watched.navigation.includes(text)) window.watched.navigation.push(text);
        }
    }, 50);
}"""

# What Streamlit titles the files of pages/ (and the frame's own file) in its folder list.
FOLDER_TITLES = ("streamlit app", "sign in", "sign out", "sign up")


def test_a_tab_reconnecting_after_a_restart_mid_reply_never_shows_the_pages_folder(
        app_factory, new_page, canned_server, isolated_data_dir):
    slow = canned_server(200, FORTY_WORDS, chunked=True, pace=0.1)  # about 4 s a reply
    save_compatible(slow.base_url, "", slow.model)
    app = app_factory(data_dir=isolated_data_dir)
    page = new_page()
    open_app(page, app.url, "Chat")
    send(page, "Tell me a long story")
    wait_idle(page, timeout=60)
    address = page.url  # a chat once stored is named in the address
    assert "?chat=" in address, address
    send(page, "And another one")
    expect(messages(page, "assistant").nth(1)).to_contain_text("word2", timeout=20_000)

    page.evaluate(_WATCH_RECONNECT)
    app.restart()
    page.wait_for_timeout(6_000)  # the reconnect and the first runs after it, watched
    wait_idle(page)
    watched = page.evaluate("window.watched")

    assert watched["states"][-1] == "CONNECTED" and len(watched["states"]) > 1, watched
    folder = [text for text in watched["navigation"]
              if any(title in text.lower() for title in FOLDER_TITLES)]
    assert not folder, f"the pages/ folder was listed while reconnecting: {watched}"
    assert watched["navigation"] == [], f"Streamlit's own page list was shown: {watched}"
    assert_no_exception(page)
    expect(page.locator(NAV_TITLE)).to_have_text(["Chat", "Settings"])
    assert nav_current(page) == ["Chat"]
    assert page.url == address
    expect(messages(page, "user").first).to_contain_text("Tell me a long story")
