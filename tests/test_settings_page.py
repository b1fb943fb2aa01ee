"""The settings page in AppTest: validation, Save, persistence across restarts."""

from __future__ import annotations

from core.providers.urls import INVALID_URL_MESSAGE
from tests.apptest import compatible, configure_compatible, open_app, shown_text


def _errors(at) -> list[str]:
    return [e.value for e in at.error]


def test_the_compatible_expander_has_its_fields_with_placeholder_and_default():
    at = open_app("settings")
    labels = [e.label for e in at.expander]
    assert "OpenAI-compatible" in labels and "OpenAI" in labels
    url = at.text_input(key=compatible("base_url"))
    assert url.placeholder == "http://localhost:1234/v1"
    assert at.text_input(key=compatible("key")).proto.type == 1  # TextInput.PASSWORD
    model = at.text_input(key=compatible("model"))
    assert model.placeholder == "local-model"
    assert any("local-model" in c.value for c in at.caption)


def test_an_invalid_url_shows_the_message_and_disables_save():
    at = open_app("settings")
    at.text_input(key=compatible("base_url")).set_value("localhost:1234/v1").run()
    assert at.button(key=compatible("save")).disabled
    assert _errors(at) == [f"{INVALID_URL_MESSAGE}. Only http:// and https:// URLs are supported."]
    at.text_input(key=compatible("base_url")).set_value("http://").run()
    assert INVALID_URL_MESSAGE in _errors(at)
    assert at.button(key=compatible("save")).disabled
    at.text_input(key=compatible("base_url")).set_value("http://localhost:1234/v1").run()
    assert not at.button(key=compatible("save")).disabled
    assert _errors(at) == []


def test_settings_survive_a_restart_and_the_key_is_never_sent_back():
    at = open_app("settings")
    configure_compatible(at, "http://localhost:1234/v1/chat/completions", "sk-test-secret-9876", "qwen")
    assert any("saved" in s.value for s in at.success)

    restarted = open_app("settings")  # a new session reads what was stored
    assert restarted.text_input(key=compatible("base_url")).value == "http://localhost:1234/v1"
    assert restarted.text_input(key=compatible("model")).value == "qwen"
    assert restarted.text_input(key=compatible("key")).value == ""
    assert any("ending in …9876" in c.value for c in restarted.caption)
    assert "sk-test-secret-9876" not in shown_text(restarted)


def test_saving_without_typing_a_key_keeps_the_saved_key_and_remove_clears_it():
    at = open_app("settings")
    configure_compatible(at, "http://localhost:1234/v1", "sk-keep-this-key-1234")
    configure_compatible(at, "http://localhost:9999/v1")
    assert any("ending in …1234" in c.value for c in at.caption)
    at.checkbox(key=compatible("remove_key")).check().run()
    at.button(key=compatible("save")).click().run()
    assert any(c.value == "No key saved." for c in at.caption)


def test_an_empty_base_url_hides_the_provider_from_chat():
    at = open_app("settings")
    configure_compatible(at, "http://localhost:1234/v1")
    chat = open_app()
    assert [s.options for s in chat.selectbox if s.key == "chat:model"] == [
        ["local-model · OpenAI-compatible"]]
    at = open_app("settings")
    configure_compatible(at, "")
    chat = open_app()
    assert not [s for s in chat.selectbox if s.key == "chat:model"]
    assert any("No provider is configured" in i.value for i in chat.info)


def test_a_refused_save_says_why_and_keeps_what_was_typed():
    at = open_app("settings")
    configure_compatible(at, "http://localhost:1234/v1", "sk-first-key-0000", "first")
    at.text_input(key=compatible("model")).set_value("m" * 1001).run()
    at.button(key=compatible("save")).click().run()
    assert any("too long" in e for e in _errors(at))
    assert at.text_input(key=compatible("model")).value == "m" * 1001  # nothing typed is lost
    assert open_app("settings").text_input(key=compatible("model")).value == "first"


def test_a_server_side_key_replaces_the_input(monkeypatch):
    monkeypatch.setenv("OPENAI_COMPATIBLE_API_KEY", "operator-key-abcdefgh")
    at = open_app("settings")
    admin = at.text_input(key=compatible("admin_key"))
    assert admin.value == "Set by the administrator" and admin.disabled
    assert "operator-key-abcdefgh" not in shown_text(at)
