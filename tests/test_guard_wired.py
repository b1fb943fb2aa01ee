"""The SSRF guard is wired into every path that reaches a user's base URL (issue 8).

In Supabase mode a user can write any base URL into their own profile row through the REST
API, past the Save check. With a loopback URL stored that way, a chat, Fetch models and Test
connection, run through the app on the real stack, are each refused with the clear message,
and a real listener on that address accepts no connection at all. Handing any of the three
paths an unguarded HTTP client makes the listener count a connection, and this test fail.
"""

from __future__ import annotations

import socket
import threading
import uuid

import httpx
import pytest

from tests.apptest import open_app
from tests.chatting import send

PASSWORD = "a long enough password"
REFUSAL = "on a private network, and this server does not connect there"


class CountingListener:
    """A TCP listener on 127.0.0.1 that counts (and at once closes) every connection."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stopped:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self.stopped = True
        self.sock.close()


@pytest.fixture
def listener():
    server = CountingListener()
    yield server
    server.close()


def _sign_up_through_the_api(stack) -> tuple[str, str, str]:
    """(email, user id, access token) of a new user, signed up as any visitor can."""
    email = f"wired-{uuid.uuid4().hex[:10]}@example.com"
    response = httpx.post(
        f"{stack.url}/auth/v1/signup",
        json={"email": email, "password": PASSWORD},
        headers={"apikey": stack.anon_key},
    )
    session = response.raise_for_status().json()
    return email, session["user"]["id"], session["access_token"]


def _write_own_profile(stack, user_id: str, token: str, values: dict) -> None:
    """PATCH the user's own row through PostgREST, with the user's token: no app check runs."""
    response = httpx.patch(
        f"{stack.url}/rest/v1/profiles",
        params={"user_id": f"eq.{user_id}"},
        json=values,
        headers={"apikey": stack.anon_key, "Authorization": f"Bearer {token}",
                 "Prefer": "return=representation"},
    )
    assert len(response.raise_for_status().json()) == 1


def _sign_in(email: str):
    at = open_app()
    at.text_input(key="sign_in:email").set_value(email)
    at.text_input(key="sign_in:password").set_value(PASSWORD)
    at.button[0].click().run()
    assert not at.exception, at.exception
    return at


def _shown(at) -> list[str]:
    """Every message element on the page: errors, warnings, notes, successes."""
    return [e.value for kind in (at.error, at.warning, at.info, at.success) for e in kind]


def _click(at, label: str):
    (button,) = [b for b in at.button if b.label == label]
    button.click().run()
    assert not at.exception, at.exception
    return at


def test_a_loopback_url_written_past_save_is_refused_on_every_path(supabase_mode, listener):
    email, user_id, token = _sign_up_through_the_api(supabase_mode)
    base_url = f"http://127.0.0.1:{listener.port}/v1"
    _write_own_profile(supabase_mode, user_id, token, {
        "openai_compatible_base_url": base_url,
        "openai_compatible_model_name": "local-model",
    })
    (row,) = supabase_mode.sql("select openai_compatible_base_url from public.profiles where user_id = %s", user_id)
    assert row["openai_compatible_base_url"] == base_url  # stored as given, unchecked

    at = _sign_in(email)
    send(at, "hello")
    chat_refusals = [m for m in _shown(at) if REFUSAL in m]
    assert chat_refusals and "127.0.0.1" in chat_refusals[0], _shown(at)
    assert listener.accepted == 0

    at.switch_page("pages/settings.py").run()
    _click(at, "Fetch models")
    assert any(REFUSAL in m and "127.0.0.1" in m for m in _shown(at)), _shown(at)
    assert listener.accepted == 0

    assert not [e.value for e in at.error if REFUSAL in e.value]  # Fetch's note is a warning
    _click(at, "Test connection")
    assert any(REFUSAL in e.value and "127.0.0.1" in e.value for e in at.error), _shown(at)
    assert listener.accepted == 0
    assert all("SWITCHBOARD_ALLOWED_HOSTS" not in m for m in _shown(at))
