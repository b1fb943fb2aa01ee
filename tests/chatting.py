"""Helpers for chat-page tests: configure a server, send a message, read the page."""

from __future__ import annotations

import os
from pathlib import Path

from core.config import load_settings
from core.store.keybox import EncryptedProfileStore, keybox_for
from core.profiles import Profile
from core.store.sqlite import SQLiteProfileStore
from tests.apptest import chat_messages, open_app


def save_compatible(base_url: str, api_key: str = "", model: str = "") -> None:
    """Save the compatible provider in the test's local store, as the settings page would."""
    settings = load_settings(environ=os.environ, dotenv_path=None)
    store = EncryptedProfileStore(SQLiteProfileStore(Path(settings.data_dir)), keybox_for(settings))
    store.save(
        Profile(
            openai_compatible_base_url=base_url,
            openai_compatible_api_key=api_key,
            openai_compatible_model_name=model,
        )
    )


def use_server(server, model: str | None = None) -> None:
    save_compatible(server.base_url, server.api_key, server.model if model is None else model)


def send(at, text: str):
    at.chat_input(key="chat:input").set_value(text).run()
    assert not at.exception, at.exception
    return at


def assistant_captions(at) -> list[str]:
    return [c.value for m in at.chat_message if m.name == "assistant" for c in m.caption]


def errors(at) -> list[str]:
    return [e.value for e in at.error]


def start_chat(timeout: float = 60):
    at = open_app(timeout=timeout)
    return at


__all__ = ["chat_messages", "send", "use_server", "save_compatible", "errors", "start_chat"]
