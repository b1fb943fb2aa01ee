"""The frame is the only way into a page, in a real Chromium against `streamlit run` (issue 9).

Until something in a Streamlit process has called st.navigation, Streamlit serves the files of
pages/ as its own folder navigation: a fresh server's first visitor opening /settings directly
would get the page without the frame (no sign-in gate, the folder listed in the sidebar). And
when the frame cannot start (a damaged `encryption.key`), it shows one error page naming the
file: no traceback, no page links, and /settings does not open Settings.
"""

from __future__ import annotations

from cryptography.fernet import Fernet
from playwright.sync_api import expect

from tests.e2e.browser import assert_no_exception, errors, open_app

NAV_LINKS = '[data-testid="stSidebarNavLink"]'


def _links(page) -> list[str]:
    found = page.locator(NAV_LINKS)
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
    assert not any(link.rstrip("/").endswith(("settings", "chat")) for link in _links(page))

    open_app(page, app.url)
    assert_no_exception(page)
    expect(page.locator("h1", has_text="Switchboard")).to_be_visible()
    assert not any(link.rstrip("/").endswith(("settings", "chat")) for link in _links(page))
    open_app(page, app.url + "settings")
    expect(page.locator("h1", has_text="Settings")).to_have_count(0)
    assert secret_file.read_text() == "half-a-secret"  # left as it is
