"""Faults of the hosted backend seen on the pages (issue 9, acceptance 1), in AppTest on a
Supabase stand-in of its own (`fault_stack`): PostgREST, PostgreSQL and the auth stand-in
stopped and started under a signed-in session, a session revoked, and the encryption secret
rotated away and back.

For each: the page says what happened (an outage says unavailable, never "refused" or a raw
"[Errno ...]"), no exception reaches it, the settings draft and the conversation (and a chat
message sent as the session ended) are kept, and the same session works again afterwards.
"""

from __future__ import annotations

import time
import uuid

import pytest
from cryptography.fernet import Fernet

from tests.apptest import chat_messages, compatible, open_app
from tests.chatting import errors, send

PASSWORD = "a long enough password"
SECRET = Fernet.generate_key().decode()
TYPED_MODEL = "typed-during-the-fault"
RECOVERY_SECONDS = 60  # PostgREST reconnects to PostgreSQL with a growing back-off
ENDED = "Your session has ended. Please sign in again."


@pytest.fixture
def hosted(fault_stack_restored, monkeypatch):
    """The app configured, as an operator would, for the fault stack (loopback allowed)."""
    monkeypatch.setenv("SUPABASE_URL", fault_stack_restored.url)
    monkeypatch.setenv("SUPABASE_ANON_KEY", fault_stack_restored.anon_key)
    monkeypatch.setenv("SWITCHBOARD_ENCRYPTION_KEYS", SECRET)
    monkeypatch.setenv("SWITCHBOARD_ALLOWED_HOSTS", "127.0.0.1")
    return fault_stack_restored


def _ok(at):
    assert not at.exception, at.exception
    return at


def _titles(at) -> list[str]:
    return [t.value for t in at.title]


def _said(at) -> str:
    """Every error and warning on the page, the frame's included."""
    return "\n".join([*errors(at), *(w.value for w in at.warning)])


def _sign_in(at, email: str):
    at.text_input(key="sign_in:email").set_value(email)
    at.text_input(key="sign_in:password").set_value(PASSWORD)
    return _ok(at.button[0].click().run())


def _signed_up_and_chatting(server) -> tuple[object, str]:
    """A new user, signed up through the page, the server saved in Settings, one chat done."""
    email = f"fault-page-{uuid.uuid4().hex[:10]}@example.com"
    at = _ok(open_app(timeout=60))
    at.switch_page("pages/sign_up.py").run()
    at.text_input(key="sign_up:email").set_value(email)
    at.text_input(key="sign_up:password").set_value(PASSWORD)
    _ok(at.button[0].click().run())
    at.switch_page("pages/settings.py").run()
    for name, value in (("base_url", server.base_url), ("key", server.api_key),
                        ("model", server.model)):
        _ok(at.text_input(key=compatible(name)).set_value(value).run())
    _save(at)
    assert any("saved" in s.value for s in at.success), _said(at)
    at.switch_page("pages/chat.py").run()
    send(at, "before the fault")
    assert "before the fault" in _replies(at)[-1]
    return at, email


def _save(at):
    return _ok(at.button(key=compatible("save")).click().run())


def _keys(at) -> set[str]:
    """The keys of every element and container on the page."""
    return {key for node in at if (key := getattr(node, "key", None))}


def _replies(at) -> list[str]:
    return [text for role, text in chat_messages(at) if role == "assistant"]


def _stored_model(stack, email: str) -> str:
    (row,) = stack.sql("select p.openai_compatible_model_name as model from public.profiles p "
                       "join auth.users u on u.id = p.user_id where u.email = %s", email)
    return row["model"]


def assert_outage(text: str) -> None:
    assert "unavailable" in text and "try again" in text, text
    assert "refused" not in text and "Errno" not in text and "Traceback" not in text, text


def _until_recovered(at):
    """Recovery by itself: the page is run again (as the user would) until nothing is said."""
    deadline = time.monotonic() + RECOVERY_SECONDS
    while _said(_ok(at.run())):
        assert time.monotonic() < deadline, _said(at)
        time.sleep(0.5)
    return at


PARTS = {
    "postgrest": ("stop_postgrest", "start_postgrest"),
    "postgresql": ("stop_postgres", "start_postgres"),
    "gateway-and-auth": ("stop_gateway", "start_gateway"),
}


@pytest.mark.parametrize("part", list(PARTS))
def test_a_stopped_part_is_said_as_an_outage_on_the_pages_and_the_session_recovers(
        hosted, katan_server, part):
    at, email = _signed_up_and_chatting(katan_server)
    before = chat_messages(at)
    at.switch_page("pages/settings.py").run()
    _ok(at.text_input(key=compatible("model")).set_value(TYPED_MODEL).run())
    stop, start = (getattr(hosted, name) for name in PARTS[part])

    stop()
    try:
        _ok(at.run())
        assert_outage(_said(at))
        _save(at)
        assert_outage(_said(at))
        assert at.text_input(key=compatible("model")).value == TYPED_MODEL  # typed: kept
        at.switch_page("pages/chat.py").run()
        assert_outage(_said(_ok(at)))
        assert chat_messages(at) == before  # the conversation on screen stays
        send(at, "during the outage")  # the models read before are still offered
        assert "during the outage" in _replies(at)[-1]
    finally:
        start()

    _until_recovered(at)  # still signed in: never sent to sign in by an outage
    assert _titles(at) == ["Chat"]
    at.switch_page("pages/settings.py").run()
    assert at.text_input(key=compatible("model")).value == TYPED_MODEL
    _save(at)
    assert not errors(at), errors(at)
    assert _stored_model(hosted, email) == TYPED_MODEL
    at.switch_page("pages/chat.py").run()
    send(at, "after the outage")
    assert "after the outage" in _replies(at)[-1]


def _revoke(stack, email: str) -> None:
    stack.sql("update auth.refresh_tokens set revoked = true where user_id = "
              "(select id from auth.users where email = %s)", email)


# How the ended session is found: the run (or callback) that first asks Auth to renew it.
REVEALED_BY = {
    "sending a chat message": ("chat", lambda at: at.chat_input(key="chat:input")
                               .set_value("typed as the session ended").run()),
    "Save": ("settings", lambda at: at.button(key=compatible("save")).click().run()),
    "Fetch models": ("settings", lambda at: at.button(key=compatible("fetch")).click().run()),
    "Test connection": ("settings",
                        lambda at: at.button(key=compatible("test_button")).click().run()),
}


@pytest.mark.parametrize("action", list(REVEALED_BY))
def test_an_ended_session_is_said_and_nothing_typed_is_lost_after_signing_in_again(
        hosted, katan_server, action):
    at, email = _signed_up_and_chatting(katan_server)
    before = chat_messages(at)
    at.switch_page("pages/settings.py").run()
    _ok(at.text_input(key=compatible("model")).set_value(TYPED_MODEL).run())
    page, act = REVEALED_BY[action]
    at.switch_page(f"pages/{page}.py").run()
    _revoke(hosted, email)

    _ok(act(at))  # a callback or the frame finds the session ended: never an exception
    assert ENDED in [w.value for w in at.warning]
    assert _titles(at) == ["Sign in"]

    _sign_in(at, email)
    assert _titles(at) == ["Chat"]
    assert chat_messages(at)[: len(before)] == before
    if action == "sending a chat message":  # offered back, not lost, not sent by itself
        offered = at.container(key="chat-unsent")
        assert "typed as the session ended" in [m.value for m in offered.markdown]
        _ok(at.button(key="chat:unsent_send").click().run())
        assert "typed as the session ended" in _replies(at)[-1]
        assert "chat-unsent" not in _keys(at)  # offered once
    at.switch_page("pages/settings.py").run()
    assert at.text_input(key=compatible("model")).value == TYPED_MODEL  # the draft is back
    _save(at)
    assert _stored_model(hosted, email) == TYPED_MODEL


def test_another_account_signing_in_after_an_ended_session_gets_none_of_its_drafts(
        hosted, katan_server):
    at, email = _signed_up_and_chatting(katan_server)
    other, other_email = _signed_up_and_chatting(katan_server)
    other.switch_page("pages/sign_out.py").run()
    _ok(other.button(key="sign_out").click().run())
    at.switch_page("pages/settings.py").run()
    _ok(at.text_input(key=compatible("model")).set_value(TYPED_MODEL).run())
    at.switch_page("pages/chat.py").run()
    _revoke(hosted, email)
    _ok(at.chat_input(key="chat:input").set_value("private words").run())
    assert _titles(at) == ["Sign in"]

    _sign_in(at, other_email)
    assert _titles(at) == ["Chat"]
    assert chat_messages(at) == []  # not the first user's conversation
    assert "chat-unsent" not in _keys(at)  # nor the message the first user typed
    at.switch_page("pages/settings.py").run()
    assert at.text_input(key=compatible("model")).value == katan_server.model  # not the draft


def test_a_key_saved_under_a_rotated_away_secret_is_said_kept_and_works_once_it_is_back(
        hosted, katan_server, monkeypatch):
    """Acceptance 2, Supabase mode: a key saved, SWITCHBOARD_ENCRYPTION_KEYS rotated to a
    secret that does not open it, a model name saved, the old secret restored: the key works
    again against a server that checks it (llm-katan --validate-keys)."""
    _, email = _signed_up_and_chatting(katan_server)
    monkeypatch.setenv("SWITCHBOARD_ENCRYPTION_KEYS", Fernet.generate_key().decode())

    at = _sign_in(_ok(open_app(timeout=60)), email)  # a new session reads the new secret
    cannot_read = "Your saved OpenAI-compatible API key cannot be read"
    assert cannot_read in _said(at)
    assert "SWITCHBOARD_ENCRYPTION_KEYS" not in _said(at)  # the operator's setting: in the log
    assert not at.chat_input  # the key is not sent (no placeholder key, no 401)
    at.switch_page("pages/settings.py").run()
    assert cannot_read in _said(_ok(at))
    _ok(at.text_input(key=compatible("model")).set_value(TYPED_MODEL).run())
    _save(at)
    assert any("saved" in s.value for s in at.success), _said(at)

    monkeypatch.setenv("SWITCHBOARD_ENCRYPTION_KEYS", SECRET)
    at = _sign_in(_ok(open_app(timeout=60)), email)
    assert not _said(at), _said(at)
    send(at, "the key is back")
    assert not errors(at), errors(at)
    assert "the key is back" in _replies(at)[-1]
    assert at.selectbox(key="chat:model").value.startswith(TYPED_MODEL)
