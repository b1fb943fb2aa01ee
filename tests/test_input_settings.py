"""Input at the edges, on the Settings page (AppTest): what the form refuses says why and keeps
what was saved; an international domain name is saved and shown as typed."""

from __future__ import annotations

import pytest

from core.providers.urls import INVALID_URL_MESSAGE
from tests.apptest import compatible, configure_compatible, open_app


def _errors(at) -> list[str]:
    return [e.value for e in at.error]


@pytest.mark.parametrize(
    "typed, says",
    [
        ("http://0177.0.0.1:1234/v1", "0177.0.0.1 is not a valid IP address"),
        ("http://999.1.1.1:1234/v1", "999.1.1.1 is not a valid IP address"),
        ("http://localhost:1234/v1\u202e", "invisible formatting characters"),
    ],
)
def test_a_url_the_client_cannot_request_shows_why_and_disables_save(typed, says):
    at = open_app("settings")
    at.text_input(key=compatible("base_url")).set_value(typed).run()
    (error,) = _errors(at)
    assert error.startswith(f"{INVALID_URL_MESSAGE}. ") and says in error
    assert at.button(key=compatible("save")).disabled


def test_an_international_domain_name_is_saved_and_shown_as_typed():
    at = open_app("settings")
    configure_compatible(at, "https://例え.jp/v1/chat/completions", model="qwen")
    assert _errors(at) == []

    restarted = open_app("settings")
    assert restarted.text_input(key=compatible("base_url")).value == "https://例え.jp/v1"
    assert [s.options for s in open_app().selectbox if s.key == "chat:model"] == [
        ["qwen · OpenAI-compatible"]]


def test_a_key_a_header_cannot_carry_is_refused_and_the_saved_key_kept():
    at = open_app("settings")
    configure_compatible(at, "http://localhost:1234/v1", "sk-first-key-0000")
    configure_compatible(at, "http://localhost:1234/v1", "sk-clé-secrète-1234")
    assert any("API key may only contain plain letters, digits and symbols" in e
               for e in _errors(at))
    assert not any("secrète" in e for e in _errors(at))  # the key is never echoed
    restarted = open_app("settings")
    assert any("ending in …0000" in c.value for c in restarted.caption)
