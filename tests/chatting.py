"""Helpers for chat-page tests: configure a server, send a message, read the page."""

from __future__ import annotations

import os
from pathlib import Path

from core.config import load_settings
from core.providers.profile import Profile
from core.providers.connections import Connection
from core.store.keybox import EncryptedConnectionStore, EncryptedProfileStore, keybox_for
from core.store.sqlite import SQLiteConnectionStore, SQLiteProfileStore
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


def connection_store() -> EncryptedConnectionStore:
    """The test's local store of the user's own connections, as the settings page uses it."""
    settings = load_settings(environ=os.environ, dotenv_path=None)
    return EncryptedConnectionStore(SQLiteConnectionStore(Path(settings.data_dir)),
                                    keybox_for(settings))


def add_connection(name: str, server, headers=(), models=None, **fields) -> Connection:
    """Save a connection of the user's own to `server` (an LLMServer), with its key."""
    return connection_store().add(Connection(
        name=name, base_url=server.base_url, api_key=server.api_key, headers=tuple(headers),
        models=tuple(models if models is not None else (server.model,)), **fields))


def saved_profile() -> Profile:
    settings = load_settings(environ=os.environ, dotenv_path=None)
    return EncryptedProfileStore(SQLiteProfileStore(Path(settings.data_dir)),
                                 keybox_for(settings)).load()


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


__all__ = ["chat_messages", "send", "use_server", "save_compatible", "errors", "start_chat",
           "add_connection", "connection_store", "saved_profile"]

