"""Supabase mode in a real browser, on the test stack (PostgreSQL + PostgREST + the auth
stand-in of tests/supabase_stack): sign up, settings, chat, sign out, sign in, and a second
user who sees none of the first one's settings.
"""

from __future__ import annotations

import re
import uuid

import pytest
from cryptography.fernet import Fernet
from playwright.sync_api import expect

from tests.e2e.browser import (
    NAV_TITLE,
    assert_no_exception,
    button,
    compatible,
    go_to,
    messages,
    open_app,
    screenshot,
    send,
    wait_idle,
)
from tests.e2e.files import attach, pdf, photo

PASSWORD = "a long enough password"


@pytest.fixture
def supabase_app(app_factory, supabase_stack):
    """The app configured for the test stack, as an operator would; loopback allowed so it
    can reach the test's model server."""
    return app_factory(env={
        "SUPABASE_URL": supabase_stack.url,
        "SUPABASE_ANON_KEY": supabase_stack.anon_key,
        "SWITCHBOARD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "SWITCHBOARD_ALLOWED_HOSTS": "127.0.0.1",
    })


def _email() -> str:
    return f"e2e-{uuid.uuid4().hex[:10]}@example.com"


def _sign_up(page, app, email: str) -> None:
    open_app(page, app.url, "Sign in")
    page.locator('.stMain [data-testid="stPageLink-NavLink"]', has_text="Sign up").click()
    expect(page.locator("h1", has_text="Sign up")).to_be_visible()
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page.locator("h1", has_text="Chat")).to_be_visible()
    wait_idle(page)
    expect(page.locator('[data-testid="stSidebar"]')).to_contain_text(f"Signed in as {email}")
    expect(page.locator(NAV_TITLE)).to_have_text(["Chat", "Settings", "Sign out"])


def _sign_in(page, email: str, shoot: str | None = None) -> None:
    expect(page.locator("h1", has_text="Sign in")).to_be_visible()
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    if shoot:
        screenshot(page, shoot)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("h1", has_text="Chat")).to_be_visible()
    wait_idle(page)


def _settings_field(page, name: str):
    return page.locator(compatible(name)).locator("input")


def _save_compatible(page, server) -> None:
    """Settings' OpenAI-compatible provider typed and saved, as a user does."""
    go_to(page, "Settings")
    for name, value in (("base_url", server.base_url), ("key", server.api_key),
                        ("model", server.model)):
        _settings_field(page, name).fill(value)
        _settings_field(page, name).press("Enter")
        wait_idle(page)
    button(page, "settings:openai-compatible:save").click()
    wait_idle(page)


def test_sign_up_settings_chat_sign_out_sign_in_and_a_second_user(
    supabase_app, new_page, katan_server
):
    email = "ada@example.com"  # the stack is new for each test session; a stable screenshot
    page = new_page()

    # Signed out, only the sign-in pages exist.
    open_app(page, supabase_app.url, "Sign in")
    nav = page.locator(NAV_TITLE)
    expect(nav).to_have_text(["Sign in", "Sign up"])

    _sign_up(page, supabase_app, email)
    expect(page.get_by_text("No provider is configured yet")).to_be_visible()

    _save_compatible(page, katan_server)
    expect(page.get_by_text("OpenAI-compatible settings saved.").last).to_be_visible()
    assert katan_server.api_key not in page.content()

    go_to(page, "Chat")
    send(page, "hello from supabase mode")
    wait_idle(page)
    expect(messages(page, "assistant").last).to_contain_text("User: hello from supabase mode")

    go_to(page, "Sign out")
    button(page, "sign_out").click()
    expect(page.locator("h1", has_text="Sign in")).to_be_visible()
    wait_idle(page)
    expect(nav).to_have_text(["Sign in", "Sign up"])

    # Signing in again brings the saved settings back, the key still masked.
    _sign_in(page, email, shoot="sign-in-desktop")
    expect(messages(page)).to_have_count(0)  # the conversation went with the sign-out
    go_to(page, "Settings")
    expect(_settings_field(page, "base_url")).to_have_value(katan_server.base_url)
    expect(_settings_field(page, "model")).to_have_value(katan_server.model)
    expect(page.get_by_text(f"A key is saved, ending in …{katan_server.api_key[-4:]}.")).to_be_visible()
    assert katan_server.api_key not in page.content()
    go_to(page, "Chat")
    send(page, "and again after signing in")
    wait_idle(page)
    expect(messages(page, "assistant").last).to_contain_text("User: and again after signing in")
    assert_no_exception(page)

    # A second user, in another browser, sees none of it.
    other = new_page()
    _sign_up(other, supabase_app, _email())
    expect(other.get_by_text("No provider is configured yet")).to_be_visible()
    go_to(other, "Settings")
    expect(_settings_field(other, "base_url")).to_have_value("")
    expect(_settings_field(other, "model")).to_have_value("")
    expect(other.locator('[data-testid="stExpander"]', has_text="OpenAI-compatible")
           .get_by_text("No key saved.")).to_be_visible()
    content = other.content()
    assert katan_server.base_url not in content and email not in content
    assert katan_server.api_key not in supabase_app.log_text()


def test_attachments_are_kept_in_supabase_and_come_back_with_a_reload(
    supabase_app, new_page, katan_server, tmp_path
):
    """The other store: an image and a PDF sent in Supabase mode are stored with their message
    (the attachments table under row-level security) and drawn again after a reload."""
    page, email = new_page(), _email()
    _sign_up(page, supabase_app, email)
    _save_compatible(page, katan_server)
    go_to(page, "Chat")
    photo(tmp_path / "photo.png")
    pdf(tmp_path / "report.pdf", "SUPA-FIRST", "SUPA-LAST")
    attach(page, tmp_path / "photo.png", tmp_path / "report.pdf")
    send(page, "kept in supabase?")
    wait_idle(page)
    expect(messages(page, "assistant").last).to_contain_text("[image:image/jpeg]")
    expect(messages(page, "assistant").last).to_contain_text("SUPA-LAST")

    page.reload()  # a new browser session: signed in again, the chat in the address opens
    wait_idle(page)
    _sign_in(page, email)
    user = messages(page, "user").last
    expect(user.locator('[data-testid="stImage"] img')).to_have_count(1)
    user.get_by_role("button", name="report.pdf").click()
    expect(page.locator('[data-testid="stPopoverBody"]')).to_contain_text("SUPA-FIRST")
    assert_no_exception(page)


def test_a_blind_comparison_is_kept_in_supabase_with_its_verdict_and_tally(
    app_factory, supabase_stack, new_page, katan_server, llama_server
):
    """The other store: two of the administrator's models compared blind; the pick, the
    columns and the tally come back after a reload and signing in again (the comparisons table
    under row-level security)."""
    servers = {"echo": ("Echo", katan_server), "llama": ("Llama", llama_server)}
    connections = "\n".join(
        f'[connections.{key}]\nname = "{name}"\nbase_url = "{server.base_url}"\n'
        f'api_key = "{server.api_key}"\nmodels = ["{server.model}"]\n'
        for key, (name, server) in servers.items())
    app = app_factory(env={
        "SUPABASE_URL": supabase_stack.url,
        "SUPABASE_ANON_KEY": supabase_stack.anon_key,
        "SWITCHBOARD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "SWITCHBOARD_ALLOWED_HOSTS": "127.0.0.1",
        "SWITCHBOARD_CONNECTIONS": connections,
    })
    echo, llama = f"{katan_server.model} · Echo", f"{llama_server.model} · Llama"
    page, email = new_page(), _email()
    _sign_up(page, app, email)
    page.locator(".st-key-compare-picker button:visible").first.click()
    box = page.locator('[data-testid="stMultiSelect"]')
    for label in (echo, llama):
        box.locator("input").click()
        page.keyboard.type(label)
        page.get_by_role("option", name=label).click()
        wait_idle(page)
    page.keyboard.press("Escape")
    page.locator('[data-testid="stPopoverBody"]').get_by_text("Blind").click()
    wait_idle(page)
    page.locator(".st-key-compare-picker button:visible").first.click()
    send(page, "compared in supabase?")
    columns = [page.locator(f".st-key-compare-col-{i}") for i in (0, 1)]
    for column in columns:
        expect(column).to_contain_text("complete", timeout=60_000)
    wait_idle(page)
    echo_index = 0 if "[echo]" in columns[0].inner_text() else 1
    columns[echo_index].get_by_role("button", name="This one is best").click()
    wait_idle(page)

    page.reload()  # a new browser session: signed in again, the chat in the address opens
    wait_idle(page)
    _sign_in(page, email)
    reply = messages(page, "assistant").last
    expect(reply).to_contain_text(echo)
    reply.get_by_role("button", name="Show the comparison").click()
    wait_idle(page)
    expect(columns[echo_index]).to_contain_text("picked")
    expect(columns[1 - echo_index]).to_contain_text(llama)
    go_to(page, "Settings")
    tally = page.locator('[data-testid="stDataFrame"]').last
    expect(tally).to_contain_text(echo)
    text = " ".join(tally.evaluate("t => t.textContent").split())
    found = re.search(re.escape(echo) + r"\D*(\d+)\s*(\d+)\s*(\d+)\s*(\d+)", text)
    assert found and found.groups() == ("1", "0", "0", "1"), text  # wins, losses, ties, compared
    assert_no_exception(page)
