"""Two app processes (replicas) on one Supabase stack, in a real Chromium: a reply started
through one is seen growing through the other (read from the database), and Stop pressed
there reaches the worker in the first process."""

from __future__ import annotations

import uuid

import pytest
from cryptography.fernet import Fernet
from playwright.sync_api import expect

from tests.e2e.browser import button, go_to, messages, reply_text, send, wait_idle
from tests.e2e.test_supabase_mode import _settings_field, _sign_in, _sign_up
from tests.fixtures.llm_servers import FORTY_WORDS


@pytest.fixture
def two_replicas(app_factory, supabase_stack):
    """Two apps as an operator deploys replicas: the same database, the same secrets."""
    env = {
        "SUPABASE_URL": supabase_stack.url,
        "SUPABASE_ANON_KEY": supabase_stack.anon_key,
        "SWITCHBOARD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "SWITCHBOARD_ALLOWED_HOSTS": "127.0.0.1",
    }
    return app_factory(env=env), app_factory(env=env)


def _caption(page):
    return messages(page, "assistant").last.locator(
        '[data-testid="stCaptionContainer"]').first


def test_a_reply_started_on_one_replica_grows_and_stops_on_the_other(
        two_replicas, new_page, canned_server):
    first_app, second_app = two_replicas
    slow = canned_server(200, FORTY_WORDS, chunked=True, pace=0.3)  # about 12 s
    email = f"replicas-{uuid.uuid4().hex[:8]}@example.com"
    first = new_page()
    _sign_up(first, first_app, email)
    go_to(first, "Settings")
    for name, value in (("base_url", slow.base_url), ("model", slow.model)):
        _settings_field(first, name).fill(value)
        _settings_field(first, name).press("Enter")
        wait_idle(first)
    button(first, "settings:openai-compatible:save").click()
    expect(first.get_by_text("OpenAI-compatible settings saved.").last).to_be_visible()
    go_to(first, "Chat")
    send(first, "Tell me a long story")
    expect(messages(first, "assistant").last).to_contain_text("word1", timeout=20_000)
    address = first.url
    assert "?chat=" in address, address

    second = new_page()
    second.goto(second_app.url)
    _sign_in(second, email)
    second.locator('[data-testid="stSidebar"] button', has_text="Tell me a long story").click()
    growing = messages(second, "assistant").last
    expect(growing).to_contain_text("word3", timeout=20_000)
    seen = len(reply_text(growing).split())
    expect(growing).to_contain_text(f"word{seen + 2}", timeout=10_000)  # it grows there
    second.get_by_role("button", name="Stop").click()
    expect(_caption(second)).to_contain_text("Stopped", timeout=15_000)
    expect(_caption(first)).to_contain_text("Stopped", timeout=15_000)
    stopped = reply_text(messages(second, "assistant").last).split()
    assert len(stopped) < 40, stopped
    assert reply_text(messages(first, "assistant").last).split() == stopped
