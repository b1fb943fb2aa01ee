"""Keys encrypted at rest: the local secret file, ciphertext in the store, rotation."""

from __future__ import annotations

import sqlite3
import stat
import subprocess
import sys
import time

import pytest
from cryptography.fernet import Fernet

from core.config import Settings
from core.store.keybox import (
    BOUND_PREFIX,
    EncryptedProfileStore,
    KeyBox,
    MissingEncryptionSecret,
    Place,
    describe_unreadable_key,
    keybox_for,
    local_secret,
)
from core.providers.profile import MAX_KEY_LENGTH, MAX_TEXT_LENGTH, Profile
from core.providers.seed import field_problem
from core.store.sqlite import DB_FILENAME, SQLiteProfileStore
from tests.fixtures.common import REPO

KEY = "sk-proj-abcdefghijklmnopqrstuvwxyz0123"
PLACE = Place("profiles", "openai_compatible_api_key", "6f1c2b9e-8a3d-4e5f-9b7c-0d1e2f3a4b5c")


def test_the_local_secret_is_made_once_with_mode_600(tmp_path):
    first = local_secret(tmp_path)
    assert local_secret(tmp_path) == first
    assert stat.S_IMODE((tmp_path / "encryption.key").stat().st_mode) == 0o600
    SQLiteProfileStore(tmp_path)
    assert stat.S_IMODE((tmp_path / DB_FILENAME).stat().st_mode) == 0o600


def test_the_sqlite_file_holds_ciphertext_only(tmp_path):
    store = EncryptedProfileStore(SQLiteProfileStore(tmp_path), KeyBox([local_secret(tmp_path)]))
    store.save(Profile(openai_compatible_api_key=KEY, openai_api_key=KEY[::-1]))
    raw = sqlite3.connect(tmp_path / DB_FILENAME).execute(
        "select openai_compatible_api_key, openai_api_key from profiles"
    ).fetchone()
    assert KEY not in "".join(raw) and KEY[::-1] not in "".join(raw)
    assert all(value.startswith(BOUND_PREFIX) for value in raw)  # sealed, bound to their place
    assert KEY.encode() not in (tmp_path / DB_FILENAME).read_bytes()
    assert store.load().openai_compatible_api_key == KEY


def test_a_new_secret_in_front_still_reads_old_keys(tmp_path):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    EncryptedProfileStore(SQLiteProfileStore(tmp_path), KeyBox([old])).save(
        Profile(openai_api_key=KEY)
    )
    rotated = EncryptedProfileStore(SQLiteProfileStore(tmp_path), KeyBox([new, old]))
    assert rotated.load().openai_api_key == KEY


def test_a_key_no_secret_opens_reads_as_missing_and_is_reported(tmp_path):
    EncryptedProfileStore(SQLiteProfileStore(tmp_path), KeyBox([Fernet.generate_key().decode()])).save(
        Profile(openai_api_key=KEY, display_name="Ada")
    )
    other = EncryptedProfileStore(SQLiteProfileStore(tmp_path), KeyBox([Fernet.generate_key().decode()]))
    profile = other.load()
    assert profile.openai_api_key == "" and profile.display_name == "Ada"
    assert other.unreadable_keys == ("openai_api_key",)


def test_supabase_mode_refuses_to_run_without_a_secret(tmp_path):
    settings = Settings(supabase_url="http://x", supabase_anon_key="anon", data_dir=tmp_path)
    with pytest.raises(MissingEncryptionSecret) as refused:
        keybox_for(settings)
    assert "SWITCHBOARD_ENCRYPTION_KEYS" in str(refused.value)


def test_a_malformed_secret_gets_a_clear_message():
    with pytest.raises(Exception) as refused:
        KeyBox(["not-a-fernet-key"])
    assert "Fernet keys" in str(refused.value)


def test_the_database_itself_refuses_over_long_values(tmp_path):
    """Bypassing the app's validation, the CHECK constraint still holds (and says which)."""
    backend = SQLiteProfileStore(tmp_path)
    backend.update({"display_name": "kept"}, None)
    with pytest.raises(Exception) as refused:
        backend.update({"openai_compatible_model_name": "m" * 1001}, None)
    assert "OpenAI-compatible model name is too long" in str(refused.value)
    assert backend.load().display_name == "kept"


def test_the_longest_key_the_form_accepts_encrypts_within_the_database_limit(tmp_path):
    """Keys are printable ASCII, so MAX_KEY_LENGTH characters are as many bytes, and the sealed
    token of the longest one still fits the 1000-character CHECK of every key column."""
    longest = "~" * MAX_KEY_LENGTH
    assert field_problem("openai_compatible_api_key", longest) is None
    token = KeyBox([local_secret(tmp_path)]).encrypt(longest, PLACE)
    assert len(token) <= MAX_TEXT_LENGTH
    assert field_problem("openai_compatible_api_key", "é" * MAX_KEY_LENGTH) is not None


def test_an_empty_secret_file_left_by_an_older_version_is_replaced(tmp_path):
    """An older version could leave encryption.key empty (a full disk while writing it); an
    empty secret never encrypted anything, so a new one takes its place."""
    (tmp_path / "encryption.key").touch(mode=0o600)
    box = keybox_for(Settings(data_dir=tmp_path))
    secret = (tmp_path / "encryption.key").read_text()
    assert Fernet(secret.encode()) and box.decrypt(KeyBox([secret]).encrypt(KEY, PLACE), PLACE) == KEY
    assert stat.S_IMODE((tmp_path / "encryption.key").stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["encryption.key"]  # no temp file


def test_processes_starting_together_agree_on_one_secret(tmp_path):
    """Real processes racing to make the secret all end with the one that was kept."""
    start = time.time() + 1.5
    probe = ("import sys, time\nfrom pathlib import Path\nfrom core.store.keybox import local_secret\n"
             f"time.sleep(max(0, {start} - time.time()))\n"
             "print(local_secret(Path(sys.argv[1])))\n")
    racers = [subprocess.Popen([sys.executable, "-c", probe, str(tmp_path / "data")],
                               stdout=subprocess.PIPE, text=True, cwd=REPO) for _ in range(6)]
    secrets = {racer.communicate(timeout=60)[0].strip() for racer in racers}
    assert secrets == {(tmp_path / "data" / "encryption.key").read_text()}


def test_the_unreadable_key_message_names_the_local_file_or_the_administrator(tmp_path, caplog):
    local = describe_unreadable_key("openai_api_key", Settings(data_dir=tmp_path))
    assert str(tmp_path / "encryption.key") in local and "OpenAI API key" in local
    hosted = describe_unreadable_key(
        "openai_api_key",
        Settings(supabase_url="http://x", supabase_anon_key="a", encryption_keys=("k",)))
    assert "administrator" in hosted and "encryption.key" not in hosted
    assert "SWITCHBOARD_ENCRYPTION_KEYS" not in hosted  # users get no setting names...
    assert "SWITCHBOARD_ENCRYPTION_KEYS" in caplog.text  # ...the operator's log does
