"""Faults injected into the running app, seen on its pages (issue 9, acceptance 1 and 2).

The app runs in AppTest on the real components: the SQLite data folder on a real tmpfs made
read-only or filled, another real connection holding the lock, the data file overwritten with
noise, the encryption secret moved away or damaged, and a real model server (llm-katan, llmock)
answering. For each fault the pages must show its message (no exception), keep what was typed
in Settings and the conversation on screen, and work again in the same session once the fault
is gone.
"""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from core.history.replies import REPLIES
from core.store.keybox import LOCAL_KEY_FILE
from core.store.sqlite import LOCAL_USER_ID
from core.store.sqlite import DB_FILENAME
from tests.apptest import chat_messages, compatible, navigation, open_app
from tests.chatting import errors, send, use_server
from tests.fixtures.faults import (
    another_window_writing,
    assert_for_the_user,
    damage_pages,
    full_disk,
    local_store,
    read_only,
    tmpfs,
)

TYPED_MODEL = "typed-during-the-fault"


@contextmanager
def corrupt(folder: Path):
    """The data file overwritten with noise, then put back from a copy (a backup)."""
    path = folder / DB_FILENAME
    backup = folder.parent / "switchboard.db.backup"
    shutil.copy2(path, backup)
    damage_pages(path)
    try:
        yield
    finally:
        shutil.copy2(backup, path)


@contextmanager
def locked(folder: Path):
    """Another window holding every lock of the data file (reads wait, then give up)."""
    with another_window_writing(folder, "exclusive"):
        yield


# fault -> (what starts it, given the mount and the data folder; what its message says)
FAULTS = {
    "read-only": (lambda disk, folder: read_only(disk), ("read-only", "Nothing was saved")),
    "full": (lambda disk, folder: full_disk(disk), ("full", "Free some space")),
    "locked": (lambda disk, folder: locked(folder), ("Your data is busy", "try again")),
    "corrupt": (lambda disk, folder: corrupt(folder), ("is damaged", "left as it is")),
}


@pytest.fixture
def data_on_tmpfs(tmp_path, monkeypatch):
    """The app's data folder on a tmpfs of its own (small, so it can be filled)."""
    with tmpfs(tmp_path / "disk", size="512k") as disk:
        folder = disk / "data"
        monkeypatch.setenv("SWITCHBOARD_DATA_DIR", str(folder))
        yield disk, folder


def _saved_model(folder: Path) -> str:
    return local_store(folder).load().openai_compatible_model_name


def _page_errors(at) -> str:
    return "\n".join(errors(at))


def _no_exception(at):
    assert not at.exception, at.exception
    return at


def _type_model(at, value: str):
    return _no_exception(at.text_input(key=compatible("model")).set_value(value).run())


def _save(at):
    return _no_exception(at.button(key=compatible("save")).click().run())


def _replies(at) -> list[str]:
    return [text for role, text in chat_messages(at) if role == "assistant"]


@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_store_fault_is_said_on_every_page_loses_nothing_and_the_session_recovers(
        data_on_tmpfs, katan_server, fault):
    disk, folder = data_on_tmpfs
    use_server(katan_server)
    at = send(open_app(timeout=60), "before the fault")
    before = chat_messages(at)
    assert "before the fault" in _replies(at)[-1]
    at.switch_page("pages/settings.py").run()
    _type_model(at, TYPED_MODEL)
    start_fault, says = FAULTS[fault]

    with start_fault(disk, folder):
        _save(at)
        shown = _page_errors(at)
        assert_for_the_user(shown, *says)
        assert at.text_input(key=compatible("model")).value == TYPED_MODEL  # typed: kept
        at.switch_page("pages/chat.py").run()
        _no_exception(at)
        if fault in ("locked", "corrupt"):  # the store cannot even be read: said on Chat too
            assert_for_the_user(_page_errors(at), *says)
        assert chat_messages(at) == before  # the conversation on screen stays
        send(at, "during the fault")  # the models read before are still offered
        assert "during the fault" in _replies(at)[-1]

    assert _saved_model(folder) == katan_server.model  # nothing half-saved
    at.switch_page("pages/settings.py").run()
    assert at.text_input(key=compatible("model")).value == TYPED_MODEL
    _save(at)  # recovery: the same session saves what was typed during the fault
    assert not errors(at), errors(at)
    assert _saved_model(folder) == TYPED_MODEL
    at.switch_page("pages/chat.py").run()
    send(at, "after the fault")
    assert not errors(at), errors(at)
    assert "after the fault" in _replies(at)[-1]
    assert chat_messages(at)[: len(before)] == before


# ---- the encryption secret ------------------------------------------------------------------


def _warnings(at) -> str:
    return "\n".join(w.value for w in at.warning)


def test_a_key_whose_secret_is_moved_away_is_said_kept_and_works_once_it_is_back(
        tmp_path, isolated_data_dir, katan_server):
    """Acceptance 2 on the pages, in one browser session: a key saved, `encryption.key` moved
    away, the pages say the key cannot be read, a model name saved, the file put back: the key
    works again in a real chat with a server that checks it (llm-katan --validate-keys)."""
    use_server(katan_server)
    at = send(open_app(timeout=60), "with the key")
    assert "with the key" in _replies(at)[-1]
    secret_file = isolated_data_dir / LOCAL_KEY_FILE
    secret_file.rename(tmp_path / "encryption.key.backup")

    at.switch_page("pages/settings.py").run()
    _no_exception(at)
    cannot_read = "Your saved OpenAI-compatible API key cannot be read"
    assert cannot_read in _warnings(at) and str(secret_file) in _warnings(at)
    _type_model(at, TYPED_MODEL)
    _save(at)
    assert not errors(at), errors(at)
    at.switch_page("pages/chat.py").run()
    _no_exception(at)
    assert cannot_read in _warnings(at)  # said on Chat too, and the key is not sent
    assert not at.chat_input  # nothing to send it with: no placeholder key, no 401
    assert "with the key" in _replies(at)[-1]  # the conversation on screen stays

    (tmp_path / "encryption.key.backup").replace(secret_file)
    at.run()
    _no_exception(at)
    assert cannot_read not in _warnings(at)
    send(at, "the key is back")
    assert not errors(at), errors(at)
    assert "the key is back" in _replies(at)[-1]
    assert at.selectbox(key="chat:model").value.startswith(TYPED_MODEL)  # the save counted


def test_a_damaged_secret_file_shows_one_error_page_naming_it_and_no_other_page(
        isolated_data_dir, katan_server):
    use_server(katan_server)
    at = send(open_app(timeout=60), "before the damage")
    secret_file = isolated_data_dir / LOCAL_KEY_FILE
    good = secret_file.read_text()
    secret_file.write_text("half-a-secret")

    at.run()
    _no_exception(at)
    assert [t.value for t in at.title] == ["Switchboard"]
    assert_for_the_user(_page_errors(at), f"The encryption secret file {secret_file} is damaged")
    assert not at.chat_message and not at.chat_input
    assert not at.get("page_link")  # no way to any page
    with pytest.raises(ValueError, match=r"Known pages: \['Switchboard'\]"):
        at.switch_page("pages/settings.py")  # only the error page is registered: no pages/
    assert secret_file.read_text() == "half-a-secret"  # left as it is

    secret_file.write_text(good)  # put back from a backup
    at.run()
    _no_exception(at)
    assert [t.value for t in at.title] == ["Chat"]
    assert navigation(at) == ["Chat", "Settings"]
    assert "before the damage" in _replies(at)[-1]  # nothing on screen was lost


# ---- a model server killed mid-reply ---------------------------------------------------------

# llmock echoes it back (its first 120 characters), one word every 100 ms
SLOW_REPLY = " ".join(f"word{i}" for i in range(14))


def _kill_once_text_arrives(conversation, process) -> threading.Thread:
    """SIGKILL the server as soon as part of the reply in flight has arrived."""

    def watch() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            live = conversation.live_turn()
            job = live and REPLIES.find(live.id, LOCAL_USER_ID)
            if job and job.pieces:
                os.kill(process.pid, signal.SIGKILL)
                return
            time.sleep(0.02)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    return watcher


def test_a_server_killed_mid_reply_keeps_the_partial_reply_and_retry_completes_once_it_is_back(
        own_llmock):
    options = ("--response-style echo", "--stream-chunk-delay-ms 100")
    server, process = own_llmock(*options)
    use_server(server)
    at = open_app(timeout=60)
    watcher = _kill_once_text_arrives(at.session_state["conversation"], process)
    send(at, SLOW_REPLY)
    watcher.join()
    assert process.wait(timeout=10) == -signal.SIGKILL

    (reply,) = [m for m in at.chat_message if m.name == "assistant"]
    partial = "\n".join(md.value for md in reply.markdown)
    assert partial and "word13" not in partial  # part of it, kept
    assert "Interrupted" in reply.caption[0].value
    dropped = f"The connection to {server.base_url} dropped in the middle of the reply"
    assert any(dropped in e for e in errors(at)), errors(at)

    _no_exception(at.button(key="chat:retry").click().run())  # the server is still down
    (reply,) = [m for m in at.chat_message if m.name == "assistant"]
    assert "\n".join(md.value for md in reply.markdown) == partial  # still kept
    assert any("the connection was refused" in e for e in errors(at)), errors(at)

    own_llmock(*options, server=server)  # started again on the same port
    _no_exception(at.button(key="chat:retry").click().run())
    (reply,) = [m for m in at.chat_message if m.name == "assistant"]
    assert "word13" in "\n".join(md.value for md in reply.markdown)
    assert not errors(at), errors(at)
