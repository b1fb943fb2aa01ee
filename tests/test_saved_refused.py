"""Saved values that today's rules refuse (an earlier release accepted them, or they were
written by hand): Settings opens with each value where the user can fix it, and says why;
Chat names the setting and links to it; never a traceback. In both stores, written straight
into the store past the app's checks."""

from __future__ import annotations

import json
import os
import sqlite3
import uuid

from cryptography.fernet import Fernet

from tests.apptest import compatible, open_app, shown_text
from tests.test_supabase_app import sign_up

OLD_URL = "http://0177.0.0.1/v1"  # an octal IPv4 form earlier releases saved
BAD_MODEL = "llama\u202e3"  # a text-direction override inside a model name
BAD_HEADER = ("Host", "gateway.example")  # a header the connection sets itself


def _local_db(data_dir):
    return sqlite3.connect(data_dir / "switchboard.db")


def _write_local(data_dir, column: str, value: str) -> None:
    open_app()  # the app makes the data folder and the file
    with _local_db(data_dir) as db:
        db.execute(f"insert into profiles (user_id, {column}) values ('local', ?) "
                   f"on conflict (user_id) do update set {column} = excluded.{column}", (value,))


def _local_header_connection(data_dir) -> None:
    open_app()
    box = Fernet(open(data_dir / "encryption.key").read().strip())
    headers = box.encrypt(json.dumps([list(BAD_HEADER)]).encode()).decode()
    with _local_db(data_dir) as db:
        db.execute("insert into connections (id, user_id, name, kind, base_url, headers, models)"
                   " values (?, 'local', 'Gateway', 'openai-compatible', "
                   "'http://127.0.0.1:9/v1', ?, '[\"m\"]')", (str(uuid.uuid4()), headers))


def _settings(at):
    at.switch_page("pages/settings.py").run()
    assert not at.exception, at.exception
    return at


def _chat(at):
    at.switch_page("pages/chat.py").run()
    assert not at.exception, at.exception
    return at


def _warnings(at) -> list[str]:
    return [w.value for w in at.warning]


def _errors(at) -> list[str]:
    return [e.value for e in at.error]


def _check_base_url(at) -> None:
    settings = _settings(at)
    assert settings.text_input(key=compatible("base_url")).value == OLD_URL
    assert any("0177.0.0.1 is not a valid IP address" in e for e in _errors(settings))
    assert settings.button(key=compatible("save")).disabled  # until it is fixed
    chat = _chat(at)
    said = " ".join(_warnings(chat))
    assert "OpenAI-compatible is not offered" in said and "0177.0.0.1" in said
    assert "Correct OpenAI-compatible in Settings" in shown_text(chat)


def _check_model(at) -> None:
    settings = _settings(at)
    assert settings.text_input(key=compatible("model")).value == BAD_MODEL
    assert any("invisible formatting characters" in e for e in _errors(settings))
    chat = _chat(at)
    assert any("OpenAI-compatible is not offered" in w and "invisible" in w
               for w in _warnings(chat))
    # Fixed in Settings, it is offered again.
    settings = _settings(at)
    settings.text_input(key=compatible("model")).set_value("llama3").run()
    settings.button(key=compatible("save")).click().run()
    assert not settings.exception, settings.exception
    assert not any("refused by today's rules" in e for e in _errors(settings))
    chat = _chat(at)
    assert not any("not offered" in w for w in _warnings(chat))
    assert "llama3 · OpenAI-compatible" in shown_text(chat)


def _check_header(at) -> None:
    settings = _settings(at)
    text = shown_text(settings)
    assert "Host: value saved" in text  # its name, never its value
    assert "gateway.example" not in text
    assert any("The header Host cannot be set here" in e for e in _errors(settings))
    chat = _chat(at)
    assert any("Gateway is not offered" in w and "Host" in w for w in _warnings(chat))
    assert "m · Gateway" not in shown_text(chat)


# ---------------------------------------------------------------- the local store


def test_local_a_refused_base_url_opens_in_settings_and_chat_names_it(isolated_data_dir):
    _write_local(isolated_data_dir, "openai_compatible_base_url", OLD_URL)
    _check_base_url(open_app())


def test_local_a_refused_model_name_opens_in_settings_and_can_be_fixed(isolated_data_dir):
    _write_local(isolated_data_dir, "openai_compatible_base_url", "http://127.0.0.1:9/v1")
    _write_local(isolated_data_dir, "openai_compatible_model_name", BAD_MODEL)
    _check_model(open_app())


def test_local_a_refused_header_is_named_in_settings_and_chat(isolated_data_dir):
    _local_header_connection(isolated_data_dir)
    _check_header(open_app())


# ---------------------------------------------------------------- Supabase


def _signed_up(supabase_mode):
    email = f"refused-{uuid.uuid4().hex[:10]}@example.com"
    at = sign_up(email)
    (user,) = supabase_mode.sql("select id from auth.users where email = %s", email)
    return at, user["id"]


def test_supabase_a_refused_base_url_opens_in_settings_and_chat_names_it(supabase_mode):
    at, user_id = _signed_up(supabase_mode)
    supabase_mode.sql("update public.profiles set openai_compatible_base_url = %s "
                      "where user_id = %s returning user_id", OLD_URL, user_id)
    _check_base_url(at)


def test_supabase_a_refused_model_name_opens_in_settings_and_can_be_fixed(supabase_mode,
                                                                          monkeypatch):
    # The hosted guard refuses loopback: allow it, as an operator running a local model would.
    monkeypatch.setenv("SWITCHBOARD_ALLOWED_HOSTS", "127.0.0.1")
    at, user_id = _signed_up(supabase_mode)
    supabase_mode.sql("update public.profiles set openai_compatible_base_url = %s, "
                      "openai_compatible_model_name = %s where user_id = %s returning user_id",
                      "http://127.0.0.1:9/v1", BAD_MODEL, user_id)
    _check_model(at)


def test_supabase_a_refused_header_is_named_in_settings_and_chat(supabase_mode):
    at, user_id = _signed_up(supabase_mode)
    box = Fernet(os.environ["SWITCHBOARD_ENCRYPTION_KEYS"].split(",")[0])
    headers = box.encrypt(json.dumps([list(BAD_HEADER)]).encode()).decode()
    supabase_mode.sql("insert into public.connections (user_id, name, kind, base_url, headers, "
                      "models) values (%s, 'Gateway', 'openai-compatible', "
                      "'http://127.0.0.1:9/v1', %s, '[\"m\"]') returning id", user_id, headers)
    _check_header(at)
