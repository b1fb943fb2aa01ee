"""Two tabs on Settings never silently undo each other (issue 9: Save writes only what the form
changed, or refuses when the row changed since it was read), in AppTest on the real SQLite store."""

from __future__ import annotations

import os
from pathlib import Path

from core.config import load_settings
from core.store.keybox import EncryptedProfileStore, keybox_for
from core.store.sqlite import SQLiteProfileStore
from tests.apptest import compatible, open_app
from tests.chatting import save_compatible


def _saved():
    settings = load_settings(environ=os.environ, dotenv_path=None)
    store = EncryptedProfileStore(SQLiteProfileStore(Path(settings.data_dir)), keybox_for(settings))
    return store.load()


def _type(at, name: str, value: str):
    at.text_input(key=compatible(name)).set_value(value).run()
    assert not at.exception, at.exception


def _save(at):
    at.button(key=compatible("save")).click().run()
    assert not at.exception, at.exception


def _errors(at) -> list[str]:
    return [e.value for e in at.error]


def test_two_tabs_changing_different_fields_keep_both():
    save_compatible("http://127.0.0.1:9/v1", "", "first-model")
    first, second = open_app("settings"), open_app("settings")
    _type(second, "model", "second-model")
    _save(second)
    _type(first, "key", "sk-typed-in-the-first-tab-0001")
    _save(first)  # its model field still shows first-model: it was not edited, so not written
    saved = _saved()
    assert saved.openai_compatible_model_name == "second-model"
    assert saved.openai_compatible_api_key == "sk-typed-in-the-first-tab-0001"
    assert first.text_input(key=compatible("model")).value == "second-model"  # it follows


def test_the_same_field_changed_in_two_tabs_is_refused_then_saved_on_purpose():
    save_compatible("http://127.0.0.1:9/v1", "", "first-model")
    first, second = open_app("settings"), open_app("settings")
    _type(first, "model", "model-from-first")
    _type(second, "model", "model-from-second")
    _save(second)
    _save(first)
    assert any("another tab or session" in e for e in _errors(first))
    assert _saved().openai_compatible_model_name == "model-from-second"  # nothing undone
    assert first.text_input(key=compatible("model")).value == "model-from-first"  # kept
    _save(first)  # told, the user saves again: now it is their choice
    assert _saved().openai_compatible_model_name == "model-from-first"
