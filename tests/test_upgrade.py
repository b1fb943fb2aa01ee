"""An upgrade from the previous release: its data, in both stores, works unchanged today.

The previous release itself (tests/upgrade/make_previous_release.py runs that commit's code)
saves the OpenAI-compatible provider (key, base URL, model name), chats with a server that
refuses `stream_options` so it learns `no_stream_options`, and keeps the chat: in a local data
folder, and in a Supabase database holding that release's migrations. Today's app then opens
that data (the Supabase database after today's migrations are pushed) and, through its pages:
offers the model, lists and opens the old chat, continues it with a real reply sent with the
saved key and model and without `stream_options`, and shows the saved settings.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import uuid
from contextlib import closing
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from tests.apptest import (
    chat_messages,
    compatible,
    history_titles,
    open_from_history,
    open_app,
    shown_text,
)
from tests.fixtures.common import REPO, missing
from tests.upgrade.make_previous_release import MESSAGES, PREVIOUS_RELEASE, QUIRK

SCRIPT = REPO / "tests" / "upgrade" / "make_previous_release.py"
AFTER = "A message after the upgrade"
PASSWORD = "a long enough password"


def saved_today(email: str | None = None):
    """The profile as today's store reads and decrypts it: the local one, or the Supabase
    user's (signed in with `email`). The one place this test reaches into today's core."""
    from core.config import load_settings
    from core.store.keybox import EncryptedProfileStore, keybox_for

    settings = load_settings(environ=os.environ, dotenv_path=None)
    if email is None:
        from core.store.sqlite import SQLiteProfileStore

        backend = SQLiteProfileStore(Path(settings.data_dir))
    else:
        from core.auth import SupabaseAuth
        from core.store.supabase import SupabaseProfileStore

        auth = SupabaseAuth(settings)
        backend = SupabaseProfileStore(auth.client, auth.sign_in(email, PASSWORD).id)
    return EncryptedProfileStore(backend, keybox_for(settings)).load()


def previous_release(*arguments: str) -> dict | None:
    """Run the previous release through the script; what its pages showed (None for the
    schema step, which reports nothing)."""
    known = subprocess.run(["git", "-C", str(REPO), "cat-file", "-e",
                            f"{PREVIOUS_RELEASE}^{{commit}}"], capture_output=True, check=False)
    if known.returncode != 0:
        missing(f"the previous release's commit {PREVIOUS_RELEASE} (a clone with full history)")
    result = subprocess.run([sys.executable, str(SCRIPT), *arguments], capture_output=True,
                            text=True, timeout=600, check=False)
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    lines = result.stdout.strip().splitlines()
    return json.loads(lines[-1]) if lines else None


def provider(server) -> list[str]:
    return ["--base-url", server.base_url, "--api-key", server.api_key, "--model", server.model]


@pytest.fixture
def strict_server(katan_server, refusing_stream_options):
    """llm-katan behind a proxy that answers 400 to `stream_options` and records requests."""
    return refusing_stream_options(katan_server)


def errors(at) -> list[str]:
    return [e.value for e in at.error]


def send(at, text: str):
    at.chat_input(key="chat:input").set_value(text).run()
    assert not at.exception, at.exception
    return at


def sign_in(at, email: str):
    at.text_input(key="sign_in:email").set_value(email)
    at.text_input(key="sign_in:password").set_value(PASSWORD)
    at.button[0].click().run()
    assert not at.exception, at.exception
    return at


def _model_of(label: str) -> str:
    return label.split(" · ")[0]  # "model · connection"


def chats_unchanged_after_the_upgrade(at, server, recorder, before: dict) -> None:
    """Today's app, on the chat page over the previous release's data."""
    assert [t.value for t in at.title] == ["Chat"]
    assert errors(at) == [] and not at.warning, (errors(at), [w.value for w in at.warning])
    assert server.model in [_model_of(o) for o in at.selectbox(key="chat:model").options]

    assert history_titles(at) == before["chats"] == [MESSAGES[0]]
    open_from_history(at, before["title"])
    assert [(role, text) for role, text in chat_messages(at)] == \
        [tuple(m) for m in before["messages"]]
    assert _model_of(at.selectbox(key="chat:model").value) == server.model

    send(at, AFTER)
    assert errors(at) == []
    (*_, (asked_role, asked), (reply_role, reply)) = chat_messages(at)
    assert (asked_role, asked, reply_role) == ("user", AFTER, "assistant")
    assert AFTER in reply  # llm-katan's echo: the server really answered this message

    sent = [r for r in recorder.requests if r.path.endswith("/chat/completions")]
    # The learned quirk is honoured: one request, without stream_options (not one refused
    # and asked again).
    assert ["stream_options" in r.body for r in sent] == [False]
    (request,) = sent
    assert request.sent_bearer(server.api_key)
    assert request.body["model"] == server.model
    asked_for = [m["content"] for m in request.body["messages"] if m["role"] == "user"]
    assert asked_for == [*MESSAGES, AFTER]  # the old chat is the context

    at.switch_page("pages/settings.py").run()
    assert not at.exception, at.exception
    assert at.text_input(key=compatible("base_url")).value == server.base_url
    assert at.text_input(key=compatible("model")).value == server.model
    assert any(f"ending in …{server.api_key[-4:]}" in c.value for c in at.caption), \
        [c.value for c in at.caption]
    assert server.api_key not in shown_text(at)  # the saved key is never sent back


def assert_kept_today(profile, server) -> None:
    assert (profile.openai_compatible_api_key, profile.openai_compatible_base_url,
            profile.openai_compatible_model_name, profile.openai_compatible_quirks) == (
        server.api_key, server.base_url, server.model, QUIRK)


def test_a_local_data_folder_of_the_previous_release_chats_unchanged(
        strict_server, isolated_data_dir):
    server, recorder = strict_server
    before = previous_release("local", str(isolated_data_dir), *provider(server))

    assert (isolated_data_dir / "encryption.key").is_file()
    with closing(sqlite3.connect(isolated_data_dir / "switchboard.db")) as db:
        (key, quirks), = db.execute(
            "select openai_compatible_api_key, openai_compatible_quirks from profiles")
    assert key.startswith("gAAAA") and server.api_key not in key  # ciphertext at rest
    assert quirks == QUIRK  # learned by the previous release itself
    recorder.clear()

    chats_unchanged_after_the_upgrade(open_app(timeout=60), server, recorder, before)
    assert_kept_today(saved_today(), server)


def test_a_supabase_database_of_the_previous_release_chats_unchanged(
        database_behind_api, strict_server, monkeypatch):
    server, recorder = strict_server
    behind, database = database_behind_api, database_behind_api.database
    previous_release("supabase-schema", "--db-url", database.db_dsn,
                     "--supabase-cli", str(database.tools.supabase))
    behind.start_api()
    monkeypatch.setenv("SUPABASE_URL", behind.url)
    monkeypatch.setenv("SUPABASE_ANON_KEY", behind.anon_key)
    monkeypatch.setenv("SWITCHBOARD_ENCRYPTION_KEYS", Fernet.generate_key().decode())
    monkeypatch.setenv("SWITCHBOARD_ALLOWED_HOSTS", "127.0.0.1")  # the operator allows loopback
    email = f"upgrade-{uuid.uuid4().hex[:12]}@example.com"
    before = previous_release("supabase", "--email", email, "--password", PASSWORD,
                              *provider(server))

    (row,) = database.sql(
        "select p.openai_compatible_api_key as key, p.openai_compatible_quirks as quirks "
        "from public.profiles p join auth.users u on u.id = p.user_id where u.email = %s", email)
    assert row["key"].startswith("gAAAA") and server.api_key not in row["key"]
    assert row["quirks"] == QUIRK
    database.push_migrations()  # the upgrade: today's migrations over the previous release's
    behind.restart_api()  # PostgREST reads the new schema
    recorder.clear()

    at = sign_in(open_app(timeout=60), email)
    chats_unchanged_after_the_upgrade(at, server, recorder, before)
    assert_kept_today(saved_today(email), server)
