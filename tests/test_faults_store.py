"""Faults of the local store, injected for real: a read-only or full disk (tmpfs mounts), a
lock held by another connection, a corrupt file, the encryption secret removed and restored.

Each test checks the message the user gets (no traceback, no raw "[Errno ...]"), that nothing
saved is lost, and that the store works again once the fault is gone. Mounting needs root:
without it these tests skip, and under CI=true they fail.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from contextlib import closing
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from core.config import Settings
from core.store.errors import ProfileChanged, StoreUnavailable
from core.failures import UserFacingError
from core.store.keybox import (
    LOCAL_KEY_FILE,
    LocalSecretUnavailable,
    describe_unreadable_key,
    local_secret,
)
from core.providers.profile import Profile
from core.store.sqlite import DB_FILENAME, SQLiteProfileStore
from tests.fixtures.common import REPO, missing
from tests.fixtures.faults import (
    another_window_writing,
    assert_for_the_user,
    damage_pages,
    full_disk,
    local_store,
    read_only,
    tmpfs,
)

KEY = "sk-local-0123456789abcdef"
SAVED = Profile(
    openai_api_key="sk-openai-fedcba9876543210",
    openai_compatible_api_key=KEY,
    openai_compatible_base_url="http://localhost:1234/v1",
    openai_compatible_model_name="qwen2.5:7b",
)


# ---- read-only ------------------------------------------------------------------------------


def test_a_read_only_data_folder_is_still_read_and_a_save_says_why_it_failed(tmp_path):
    with tmpfs(tmp_path / "disk") as disk:
        folder = disk / "data"
        local_store(folder).save(SAVED)
        with read_only(disk):
            store = local_store(folder)  # opening an up-to-date file writes nothing
            assert store.load() == SAVED
            with pytest.raises(StoreUnavailable) as refused:
                store.save(SAVED.with_changes(openai_compatible_model_name="llama3"))
            assert refused.value.kind == "read_only"
            assert_for_the_user(str(refused.value), str(folder), "read-only", "Nothing was saved")
            assert store.load() == SAVED
        # Recovery: the same session saves once the folder is writable again.
        store.save(SAVED.with_changes(openai_compatible_model_name="llama3"))
        assert local_store(folder).load().openai_compatible_model_name == "llama3"


def test_no_secret_can_be_made_in_a_read_only_folder_and_nothing_is_left_behind(tmp_path):
    with tmpfs(tmp_path / "disk") as disk:
        with read_only(disk):
            with pytest.raises(LocalSecretUnavailable) as refused:
                local_secret(disk)
            assert_for_the_user(str(refused.value), str(disk), "read-only", "reload")
        assert os.listdir(disk) == []  # no empty encryption.key, no temporary file
        secret = local_secret(disk)  # recovery: made once the folder is writable
        assert secret == (disk / LOCAL_KEY_FILE).read_text()
        assert stat.S_IMODE((disk / LOCAL_KEY_FILE).stat().st_mode) == 0o600


def test_a_data_file_the_app_may_not_use_is_named_with_what_to_do(tmp_path):
    """Root bypasses file permissions: the check runs without the capabilities that do."""
    folder = tmp_path / "data"
    local_store(folder).save(SAVED)
    (folder / DB_FILENAME).chmod(0o000)
    probe = (
        "import sys\n"
        "from core.store.sqlite import SQLiteProfileStore\n"
        "from core.store.errors import StoreUnavailable\n"
        "try:\n"
        "    SQLiteProfileStore(sys.argv[1]).load()\n"
        "except StoreUnavailable as exc:\n"
        "    print(exc.kind); print(exc)\n"
    )
    if os.geteuid() == 0:
        prefix = ["setpriv", "--inh-caps=-dac_override,-dac_read_search",
                  "--bounding-set=-dac_override,-dac_read_search"]
    else:
        prefix = []
    result = subprocess.run([*prefix, sys.executable, "-c", probe, str(folder)],
                            capture_output=True, text=True, cwd=REPO)
    if result.returncode != 0 and "setpriv" in result.stderr:
        missing(f"setpriv ({result.stderr.strip()})")
    assert result.returncode == 0, result.stderr
    kind, message = result.stdout.split("\n", 1)
    assert kind == "no_access"
    assert_for_the_user(message, str(folder / DB_FILENAME), "permissions")
    (folder / DB_FILENAME).chmod(0o600)
    assert local_store(folder).load() == SAVED


# ---- full disk ------------------------------------------------------------------------------


def test_a_full_disk_refuses_a_save_with_a_message_and_keeps_what_was_saved(tmp_path):
    with tmpfs(tmp_path / "disk", size="512k") as disk:
        folder = disk / "data"
        store = local_store(folder)
        store.save(SAVED)
        changed = SAVED.with_changes(display_name="Ada " * 200,
                                     openai_compatible_model_name="m" * 900)
        with full_disk(disk):
            with pytest.raises(StoreUnavailable) as refused:
                store.save(changed)
            assert refused.value.kind == "full"
            assert_for_the_user(str(refused.value), str(folder), "full", "Free some space")
            assert local_store(folder).load() == SAVED
        store.save(changed)  # recovery
        assert local_store(folder).load() == changed


def test_no_secret_is_made_on_a_full_disk_and_no_empty_file_is_left(tmp_path):
    with tmpfs(tmp_path / "disk", size="64k") as disk:
        folder = disk / "data"
        folder.mkdir()
        with full_disk(disk):
            with pytest.raises(LocalSecretUnavailable) as refused:
                local_secret(folder)
            assert_for_the_user(str(refused.value), str(folder), "full", "Free some space")
        assert os.listdir(folder) == []  # no empty encryption.key that would block later starts
        assert Fernet(local_secret(folder).encode())  # recovery


# ---- locks ----------------------------------------------------------------------------------


def test_a_save_waits_a_bounded_time_for_a_lock_then_says_the_data_is_busy(tmp_path):
    folder = tmp_path / "data"
    store = local_store(folder, busy_timeout=0.5)
    store.save(SAVED)
    with another_window_writing(folder):
        started = time.monotonic()
        with pytest.raises(StoreUnavailable) as refused:
            store.save(SAVED.with_changes(openai_compatible_model_name="llama3"))
        assert time.monotonic() - started < 5  # bounded, not the old 10 s per attempt
        assert refused.value.kind == "busy"
        assert_for_the_user(str(refused.value), "Your data is busy (another window is saving)",
                            "Nothing was saved", "try again")
        assert store.load() == SAVED  # an IMMEDIATE lock still lets readers in
    store.save(SAVED.with_changes(openai_compatible_model_name="llama3"))  # recovery
    assert local_store(folder).load().openai_compatible_model_name == "llama3"


def test_reading_and_opening_under_an_exclusive_lock_say_the_data_is_busy(tmp_path):
    folder = tmp_path / "data"
    local_store(folder).save(SAVED)
    store = local_store(folder, busy_timeout=0.3)
    with another_window_writing(folder, "exclusive"):
        with pytest.raises(StoreUnavailable) as on_read:
            store.load()
        with pytest.raises(StoreUnavailable) as on_open:
            SQLiteProfileStore(folder, busy_timeout=0.3)
    assert on_read.value.kind == on_open.value.kind == "busy"
    assert_for_the_user(str(on_read.value), "Your data is busy", "try again")
    assert_for_the_user(str(on_open.value), "Your data is busy", "try again")
    assert store.load() == SAVED


OPENAI_FORM = {"openai_api_key": "sk-openai-newnewnewnew0001", "openai_organization_id": "org-9"}
COMPATIBLE_FORM = {"openai_compatible_base_url": "http://127.0.0.1:8080/v1",
                   "openai_compatible_model_name": "smollm2"}


@pytest.mark.parametrize("hold", [0.3, 2.0], ids=["lock-released-in-time", "lock-outlasts-wait"])
def test_two_sessions_saving_different_providers_behind_a_write_lock_lose_nothing(tmp_path, hold):
    """Acceptance 3: both changes kept, or one refused with a message; never a silent loss.

    Two sessions (each its own store, as two tabs) read the profile, then save different
    providers at the same moment while a third connection holds the write lock for `hold`
    seconds; they wait at most 1 s.
    """
    folder = tmp_path / "data"
    local_store(folder).save(SAVED)
    sessions = {"openai": local_store(folder, busy_timeout=1.0),
                "compatible": local_store(folder, busy_timeout=1.0)}
    forms = {"openai": OPENAI_FORM, "compatible": COMPATIBLE_FORM}
    shown = {name: store.load() for name, store in sessions.items()}  # each page as drawn
    outcomes: dict[str, object] = {}
    together = threading.Barrier(3)

    def save(name: str) -> None:
        together.wait()
        try:
            outcomes[name] = sessions[name].save(shown[name].with_changes(**forms[name]))
        except UserFacingError as exc:
            outcomes[name] = exc

    with another_window_writing(folder):
        threads = [threading.Thread(target=save, args=(name,)) for name in sessions]
        for thread in threads:
            thread.start()
        together.wait()
        time.sleep(hold)
    for thread in threads:
        thread.join(timeout=30)

    stored = local_store(folder).load()
    for name, outcome in outcomes.items():
        if isinstance(outcome, Profile):  # saved: its change is in the store
            assert all(getattr(stored, f) == v for f, v in forms[name].items()), name
        else:  # refused: with a message, and nothing of it written
            assert isinstance(outcome, StoreUnavailable) and outcome.kind == "busy", outcome
            assert_for_the_user(str(outcome), "Your data is busy", "Nothing was saved")
            assert all(getattr(stored, f) == getattr(SAVED, f) for f in forms[name]), name
    assert set(outcomes) == {"openai", "compatible"}
    if hold < 1.0:
        assert all(isinstance(o, Profile) for o in outcomes.values()), outcomes
    # Whoever was refused saves again, as the message says: now both changes are there.
    for name, outcome in outcomes.items():
        if not isinstance(outcome, Profile):
            sessions[name].save(shown[name].with_changes(**forms[name]))
    assert local_store(folder).load() == SAVED.with_changes(**OPENAI_FORM, **COMPATIBLE_FORM)


def test_the_same_field_saved_in_two_sessions_refuses_the_second_with_a_message(tmp_path):
    folder = tmp_path / "data"
    local_store(folder).save(SAVED)
    first, second = local_store(folder), local_store(folder)
    first_form, second_form = first.load(), second.load()
    first.save(first_form.with_changes(openai_compatible_model_name="from-first"))
    with pytest.raises(ProfileChanged) as refused:
        second.save(second_form.with_changes(openai_compatible_model_name="from-second"))
    assert_for_the_user(str(refused.value), "another tab or session",
                        "still in the form", "press Save again")
    assert local_store(folder).load().openai_compatible_model_name == "from-first"
    second.load()  # reload, then save again: now it is the user's deliberate choice
    second.save(second_form.with_changes(openai_compatible_model_name="from-second"))
    assert local_store(folder).load().openai_compatible_model_name == "from-second"


# ---- a corrupt file -------------------------------------------------------------------------


@pytest.mark.parametrize("damage", ["not-a-database", "damaged-pages"])
def test_a_corrupt_data_file_is_reported_left_as_it_is_and_the_app_recovers(tmp_path, damage):
    folder = tmp_path / "data"
    local_store(folder).save(SAVED)
    path = folder / DB_FILENAME
    if damage == "not-a-database":
        path.write_bytes(b"this is not a database, it was overwritten " * 100)
        damaged = path.read_bytes()
    else:
        damaged = damage_pages(path)
    with pytest.raises(StoreUnavailable) as refused:
        local_store(folder).load()
    assert refused.value.kind == "damaged"
    assert_for_the_user(str(refused.value), f"The data file {path} is damaged",
                        "left as it is", "backup", "move it elsewhere")
    assert path.read_bytes() == damaged  # kept for the user to recover
    shutil.move(path, folder / "switchboard.db.damaged")  # what the message says to do
    fresh = local_store(folder)
    assert fresh.load() == Profile()
    fresh.save(SAVED)
    assert local_store(folder).load() == SAVED


# ---- the encryption secret ------------------------------------------------------------------


def _stored_key(folder: Path) -> str:
    with closing(sqlite3.connect(folder / DB_FILENAME)) as db:
        return db.execute("select openai_compatible_api_key from profiles").fetchone()[0]


def test_a_key_survives_its_secret_being_removed_and_works_once_it_is_restored(tmp_path):
    """Acceptance 2, local mode: key saved, secret removed, model name saved, secret restored:
    the key works again."""
    folder = tmp_path / "data"
    local_store(folder).save(SAVED)
    ciphertext = _stored_key(folder)
    (folder / LOCAL_KEY_FILE).rename(tmp_path / "encryption.key.backup")

    store = local_store(folder)  # a new secret is made; the saved keys no longer open
    shown = store.load()
    assert shown.openai_compatible_api_key == ""
    assert set(store.unreadable_keys) == {"openai_api_key", "openai_compatible_api_key"}
    message = describe_unreadable_key("openai_compatible_api_key", Settings(data_dir=folder))
    assert_for_the_user(message, "Your saved OpenAI-compatible API key cannot be read",
                        str(folder / LOCAL_KEY_FILE), "kept")
    store.save(shown.with_changes(openai_compatible_model_name="llama3"))
    assert _stored_key(folder) == ciphertext  # untouched

    (tmp_path / "encryption.key.backup").replace(folder / LOCAL_KEY_FILE)
    restored = local_store(folder)
    assert restored.load() == SAVED.with_changes(openai_compatible_model_name="llama3")
    assert restored.unreadable_keys == ()


def test_a_damaged_secret_file_is_reported_as_that_file_and_left_as_it_is(tmp_path):
    folder = tmp_path / "data"
    local_store(folder).save(SAVED)
    secret_file = folder / LOCAL_KEY_FILE
    secret_file.write_text("half-a-secret")
    with pytest.raises(LocalSecretUnavailable) as refused:
        local_store(folder)
    assert_for_the_user(str(refused.value), str(secret_file), "damaged", "backup")
    assert "SWITCHBOARD_ENCRYPTION_KEYS" not in str(refused.value)
    assert secret_file.read_text() == "half-a-secret"
