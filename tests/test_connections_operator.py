"""Connections the operator defines in secrets shown read-only to every user.

Offered to every user, a fresh one included, as "(administrator)"; their key is sent to their
server only, never shown on any page, and a user cannot change them.
"""

from __future__ import annotations

import logging
import uuid

import pytest
from streamlit.testing.v1 import AppTest

from core.config import load_settings
from core.failures import Misconfigured, UserFacingError
from core.providers.operator import operator_connections, parse_toml
from tests.apptest import APP, shown_text
from tests.chatting import chat_messages, connection_store, errors, send
from tests.test_supabase_app import sign_up

OPERATOR_KEY = "sk-operator-4f0c2a9d1b7e6h3k"
HEADER_VALUE = "operator-header-5d2e8c"


def _entry(server, **overrides) -> dict:
    return {"name": "Team server", "base_url": server.base_url, "api_key": server.api_key,
            "models": [server.model], "headers": {"X-Team": HEADER_VALUE}, **overrides}


def _app_with(secrets: dict) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.secrets.update(secrets)
    at.run()
    assert not at.exception, at.exception
    return at


def test_offered_from_secrets_sent_only_to_its_server_and_never_shown(
        katan_server, recording_proxy):
    proxy, recorder = recording_proxy(katan_server)  # llm-katan checks the key: a wrong one fails
    at = _app_with({"connections": {"team": _entry(proxy)}})
    label = f"{proxy.model} · Team server (administrator)"
    assert at.selectbox(key="chat:model").options == [label]
    send(at, "hello")
    assert not errors(at), errors(at)
    assert chat_messages(at)[-1][1].strip()
    (chat,) = [r for r in recorder.requests if r.path.endswith("/chat/completions")]
    assert chat.sent_bearer(proxy.api_key) and chat.headers["x-team"] == HEADER_VALUE
    for page in (None, "pages/settings.py"):
        if page:
            at.switch_page(page).run()
            assert not at.exception, at.exception
        shown = shown_text(at)
        assert proxy.api_key not in shown and HEADER_VALUE not in shown
        assert f"…{proxy.api_key[-4:]}" not in shown  # not even the end of it


def test_a_user_cannot_edit_or_delete_it(canned_server):
    server = canned_server(200, {"object": "list", "data": []})
    at = _app_with({"connections": {"team": _entry(server)}})
    store = connection_store()
    with pytest.raises(UserFacingError):
        store.update("operator:team", {"base_url": "http://127.0.0.1:9/v1"}, None)
    store.delete("operator:team")  # not one of the user's rows: nothing happens
    at.run()
    assert at.selectbox(key="chat:model").options == [f"{server.model} · Team server (administrator)"]


def test_its_key_does_not_follow_a_redirect_to_another_server(canned_server, recording_proxy,
                                                              katan_server):
    elsewhere, elsewhere_saw = recording_proxy(katan_server)
    redirecting = canned_server(307, "", headers={"Location": f"{elsewhere.base_url}/chat/completions"})
    at = _app_with({"connections": {"team": _entry(redirecting, models=["m"])}})
    send(at, "hello")
    (error,) = errors(at)
    assert "redirected the request" in error and error.startswith("Team server (administrator): ")
    assert elsewhere_saw.requests == []


def test_a_fresh_supabase_user_is_offered_it(supabase_mode, monkeypatch, katan_server):
    toml = (f'[connections.team]\nname = "Team server"\nbase_url = "{katan_server.base_url}"\n'
            f'api_key = "{katan_server.api_key}"\nmodels = ["{katan_server.model}"]\n')
    monkeypatch.setenv("SWITCHBOARD_CONNECTIONS", toml)
    monkeypatch.setenv("SWITCHBOARD_ALLOWED_HOSTS", "127.0.0.1")
    at = sign_up(f"user-{uuid.uuid4().hex[:10]}@example.com")
    assert at.selectbox(key="chat:model").options == [
        f"{katan_server.model} · Team server (administrator)"]
    send(at, "hello")
    assert not errors(at), errors(at)
    assert katan_server.api_key not in shown_text(at)


def test_an_invalid_entry_is_left_out_and_logged_without_its_key(caplog):
    caplog.set_level(logging.WARNING, logger="core.providers.operator")
    found = operator_connections({
        "good": {"base_url": "http://127.0.0.1:1234/v1", "models": ["m"]},
        "bad-url": {"base_url": "ftp://example.com", "api_key": OPERATOR_KEY},
        "bad-header": {"base_url": "https://example.com/v1", "api_key": OPERATOR_KEY,
                       "headers": {"Authorization": OPERATOR_KEY}},
        "typo": {"base_url": "https://example.com/v1", "apikey": OPERATOR_KEY},
        "not-a-table": "https://example.com/v1",
    })
    assert [c.id for c in found] == ["operator:good"]
    assert found[0].origin == "operator"
    logged = caplog.text
    for key in ("bad-url", "bad-header", "typo", "not-a-table"):
        assert f"[connections.{key}]" in logged
    assert OPERATOR_KEY not in logged


def test_an_openai_entry_without_a_base_url_uses_openai_s_own():
    found = operator_connections({"o": {"kind": "openai", "api_key": OPERATOR_KEY},
                                  "c": {"models": ["m"]}})
    assert [c.id for c in found] == ["operator:o"]  # a compatible one needs a base URL
    assert found[0].base_url == "https://api.openai.com/v1"


def test_the_environment_variable_takes_the_same_toml():
    text = '[connections.local]\nbase_url = "http://localhost:11434/v1"\nmodels = ["llama3"]\n'
    settings = load_settings({}, environ={"SWITCHBOARD_CONNECTIONS": text}, dotenv_path=None)
    (connection,) = settings.operator_connections
    assert (connection.name, connection.models) == ("local", ("llama3",))
    with pytest.raises(Misconfigured, match="^SWITCHBOARD_CONNECTIONS is not valid TOML: "):
        parse_toml("not [valid")  # the app does not start (tests/test_secrets_unreadable.py)
    assert OPERATOR_KEY not in repr(load_settings(
        {"connections": {"t": {"base_url": "http://localhost:1/v1", "api_key": OPERATOR_KEY}}},
        environ={}, dotenv_path=None))
