"""Provider keys and other secrets encrypted at rest (Fernet), in front of any profile or
connection store."""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import secrets
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from core.config import Settings
from core.failures import UserFacingError
from core.providers.connections import QUIRKS, Connection, connection_problems, secret_fields
from core.store.errors import ConnectionChanged
from core.store.contracts import ConnectionStore
from core.providers.profile import (
    FIELD_LABELS,
    KEY_FIELDS,
    PROFILE_FIELDS,
    Profile,
    validate_profile,
)
from core.store.contracts import ProfileStore

LOCAL_KEY_FILE = "encryption.key"

logger = logging.getLogger(__name__)


class MissingEncryptionSecret(UserFacingError):
    """Supabase mode without SWITCHBOARD_ENCRYPTION_KEYS: the app must not start."""


class LocalSecretUnavailable(UserFacingError):
    """The local `encryption.key` cannot be made or read, or is damaged: the text says which,
    names the file or folder, and says what to do. Nothing was changed on disk."""


class KeyBox:
    """Encrypts with the first secret, decrypts with any: add a new one first to rotate."""

    def __init__(self, secrets: list[str] | tuple[str, ...]):
        try:
            self._fernet = MultiFernet([Fernet(s.encode()) for s in secrets])
        except (ValueError, TypeError) as exc:
            raise UserFacingError(
                "SWITCHBOARD_ENCRYPTION_KEYS must be Fernet keys (32 url-safe base64 bytes), "
                "comma-separated."
            ) from exc

    def encrypt(self, plain: str) -> str:
        return self._fernet.encrypt(plain.encode()).decode() if plain else ""

    def decrypt(self, token: str) -> str | None:
        """The plain text, or None when no current secret opens it."""
        if not token:
            return ""
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            return None

    def rotate(self, token: str) -> str:
        return self._fernet.rotate(token.encode()).decode() if token else ""


def _is_fernet_key(text: str) -> bool:
    try:
        Fernet(text.encode())
    except (ValueError, TypeError):
        return False
    return True


def _secret_problem(exc: OSError, folder: Path) -> str:
    """Why the secret could not be made or read, and what to do, for the user."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return (f"Switchboard cannot create its encryption secret: the disk holding the data "
                f"folder {folder} is full. Free some space, then reload the page.")
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return (f"Switchboard cannot create or read its encryption secret in the data folder "
                f"{folder}: the folder is read-only or not accessible. Make it writable by "
                "the user running Switchboard, then reload the page.")
    return (f"Switchboard cannot create or read its encryption secret in the data folder "
            f"{folder} (a disk error). Check the disk, then reload the page.")


def _read_secret(path: Path) -> str | None:
    """The secret in `path`; None when the file is missing or empty (an older version could
    leave it empty when the disk filled up; an empty secret never encrypted anything)."""
    try:
        text = path.read_text(encoding="ascii", errors="replace").strip()
    except FileNotFoundError:
        return None
    if not text:
        return None
    if not _is_fernet_key(text):
        raise LocalSecretUnavailable(
            f"The encryption secret file {path} is damaged (it does not hold a valid secret); "
            "it was left as it is. Put back a copy of it from a backup, then reload the page. "
            "If you have none, move it elsewhere and reload: a new secret is made, and the "
            "API keys saved with the old one must be entered again."
        )
    return text


@contextmanager
def _folder_lock(folder: Path) -> Iterator[None]:
    """Only one process at a time makes the secret: all agree on the one that is kept."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _make_secret(path: Path) -> None:
    """Write a new secret to `path` atomically (temporary file, fsync, then link or rename),
    mode 600; the caller holds the folder lock and saw no usable secret there."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(Fernet.generate_key().decode())
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temporary, path)  # never replaces a file that exists
        except FileExistsError:  # only an empty one, left by an older version (see caller)
            os.replace(temporary, path)
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)  # the new name survives a power cut
        finally:
            os.close(directory)
    finally:
        temporary.unlink(missing_ok=True)


def local_secret(data_dir: Path) -> str:
    """The local default's secret: made once in the data folder, readable by its owner only.

    Raises LocalSecretUnavailable (never an OSError) when the folder cannot hold it, or when
    `encryption.key` is damaged; a damaged file is never replaced.
    """
    folder = Path(data_dir)
    path = folder / LOCAL_KEY_FILE
    try:
        secret = _read_secret(path)
        if secret is not None:
            return secret
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        with _folder_lock(folder):
            secret = _read_secret(path)  # another process may have made it meanwhile
            if secret is None:
                _make_secret(path)
                secret = _read_secret(path)
    except OSError as exc:
        logger.warning("Cannot make or read the local encryption secret %s: %s", path, exc)
        raise LocalSecretUnavailable(_secret_problem(exc, folder)) from exc
    assert secret is not None  # just written and read back
    return secret


def keybox_for(settings: Settings) -> KeyBox:
    if settings.encryption_keys:
        return KeyBox(settings.encryption_keys)
    if settings.mode == "supabase":
        raise MissingEncryptionSecret(
            "SWITCHBOARD_ENCRYPTION_KEYS is not set. In Supabase mode provider keys are "
            "encrypted with it; generate one with: python -c \"from cryptography.fernet import "
            "Fernet; print(Fernet.generate_key().decode())\""
        )
    return KeyBox([local_secret(settings.data_dir)])


def describe_unreadable_key(field: str, settings: Settings) -> str:
    """What Settings and Chat say about a saved key that no current secret opens.

    Local mode names the `encryption.key` file (the user runs the app); in Supabase mode the
    secret is the operator's, so the setting's name goes to the log, not to the user.
    """
    label = FIELD_LABELS[field]
    if settings.mode == "local" and not settings.encryption_keys:
        secret = f"the file {Path(settings.data_dir) / LOCAL_KEY_FILE}"
        fix = (f"Put back the {LOCAL_KEY_FILE} file it was saved with (from a backup) and "
               "reload: it works again.")
    else:
        logger.warning("A saved %s cannot be decrypted with SWITCHBOARD_ENCRYPTION_KEYS: was "
                       "the secret it was saved with removed from it?", field)
        secret = "the server's encryption secret"
        fix = ("Once the administrator restores the secret it was saved with, it works "
               "again.")
    return (f"Your saved {label} cannot be read with the current encryption secret ({secret}). "
            f"It is kept as it was saved. {fix} Or enter a new key, or remove it.")


class EncryptedProfileStore:
    """A ProfileStore that validates plain values and keeps key fields encrypted inside.

    It remembers the stored row it last read or wrote (`base`): a save writes only the fields
    that differ from it, and only while the store still holds them as read (compare-and-set),
    so two tabs saving different fields keep both, and a key no secret opens is kept as stored.
    """

    def __init__(self, inner: ProfileStore, box: KeyBox):
        self.inner = inner
        self.box = box
        self.base: Profile | None = None  # the stored (encrypted) row last read or written
        self.unreadable_keys: tuple[str, ...] = ()  # saved keys no current secret opens

    def open(self, stored: Profile) -> Profile:
        """A stored row with its keys decrypted; a key no secret opens reads as ''."""
        opened = {name: self.box.decrypt(getattr(stored, name)) or "" for name in KEY_FIELDS}
        return stored.with_changes(**opened)

    def _based_on(self, stored: Profile) -> Profile:
        self.base = stored
        self.unreadable_keys = tuple(
            name for name in KEY_FIELDS if self.box.decrypt(getattr(stored, name)) is None
        )
        return self.open(stored)

    def load(self) -> Profile:
        return self._based_on(self.inner.load())

    def save(self, profile: Profile, *, base: Profile | None = None,
             remove_keys: Collection[str] = ()) -> Profile:
        """Write what `profile` changes from `base` (default: the row last read or written).

        A key field in `remove_keys` is emptied even when no secret opens it; an unreadable
        key given as '' is left as stored. Raises ProfileChanged when a changed field was
        changed elsewhere since `base` was read; nothing is written then.
        """
        validate_profile(profile)
        if base is None:
            base = self.base if self.base is not None else self.inner.load()
        changes = self._changes(base, profile, remove_keys)
        stored = self.inner.update(changes, {name: getattr(base, name) for name in changes})
        return self._based_on(stored)

    def remove_key(self, field: str) -> Profile:
        """Empty one saved key, readable or not, as the user asked."""
        current = self.open(self.base) if self.base is not None else self.load()
        return self.save(current.with_changes(**{field: ""}), remove_keys=(field,))

    def _changes(self, base: Profile, profile: Profile, remove_keys: Collection[str]
                 ) -> dict[str, str]:
        """Stored column -> new stored value, for each field `profile` changes."""
        changes = {}
        for name in PROFILE_FIELDS:
            stored, wanted = getattr(base, name), getattr(profile, name)
            if name not in KEY_FIELDS:
                if wanted != stored:
                    changes[name] = wanted
            elif name in remove_keys:
                if stored:
                    changes[name] = ""
            elif wanted != (self.box.decrypt(stored) or ""):  # unreadable and '': kept
                changes[name] = self.box.encrypt(wanted)
        return changes


class EncryptedConnectionStore:
    """A ConnectionStore for plain connections in front of one that keeps them as stored: it
    validates what is written, and encrypts exactly the fields `secret_fields()` declares
    (headers as the JSON of their pairs) before they reach the inner store.

    A secret no current encryption secret opens reads as empty, is named in
    `Connection.unreadable`, and is kept as stored unless the caller gives a new value (or
    asks for it removed).
    """

    def __init__(self, inner: ConnectionStore, box: KeyBox):
        self.inner = inner
        self.box = box

    # ---- one field at a time, both ways

    def _seal(self, name: str, value) -> str:
        if name == "headers":
            return self.box.encrypt(json.dumps([list(pair) for pair in value])) if value else ""
        return self.box.encrypt(value)

    def _unseal(self, name: str, token: str):
        """The plain value of a stored secret field; None when no current secret opens it."""
        plain = self.box.decrypt(token or "")
        if name != "headers" or plain is None:
            return plain
        if not plain:
            return ()
        try:
            return tuple((str(n), str(v)) for n, v in json.loads(plain))
        except (ValueError, TypeError):  # not the JSON this layer writes: unreadable too
            logger.warning("Stored custom headers are not a list of pairs; read as none.")
            return None

    def open(self, stored: Connection) -> Connection:
        """A stored connection with its secret fields decrypted; unreadable ones read as
        empty and are named in `unreadable`."""
        opened, unreadable = {}, set()
        for name in secret_fields():
            plain = self._unseal(name, getattr(stored, name))
            if plain is None:
                unreadable.add(name)
                plain = () if name == "headers" else ""
            opened[name] = plain
        return stored.with_changes(**opened, unreadable=frozenset(unreadable))

    def _sealed(self, connection: Connection) -> Connection:
        return connection.with_changes(
            **{name: self._seal(name, getattr(connection, name)) for name in secret_fields()})

    # ---- the contract

    def list(self) -> list[Connection]:
        return [self.open(stored) for stored in self.inner.list()]

    def add(self, connection: Connection) -> Connection:
        _validate(connection)
        return self.open(self.inner.add(self._sealed(connection)))

    def update(self, connection_id: str, changes: Mapping[str, object], version: str | None,
               *, remove_secrets: Collection[str] = ()) -> Connection:
        """Write `changes` (plain values) if the row is still at `version`.

        The connection as it would be is validated first. A secret field given as what it
        reads (an unreadable one as empty) is left as stored; one in `remove_secrets` is
        emptied even when no current secret opens it.
        """
        current = next((c for c in self.list() if c.id == connection_id), None)
        if current is None:
            raise ConnectionChanged(str(changes.get("name") or "This connection"), gone=True)
        _validate(current.with_changes(**changes))
        stored = {}
        for name, value in changes.items():
            if name == "headers":
                value = tuple(tuple(pair) for pair in value)
            if name not in secret_fields():
                stored[name] = value
            elif name in remove_secrets:
                stored[name] = ""
            elif value != getattr(current, name):  # same as read, or '' for unreadable: kept
                stored[name] = self._seal(name, value)
        for name in set(remove_secrets) - set(changes):
            stored[name] = ""
        return self.open(self.inner.update(connection_id, stored, version))

    def delete(self, connection_id: str) -> None:
        self.inner.delete(connection_id)

    def learn(self, connection_id: str, quirk: str) -> None:
        if quirk not in QUIRKS:
            raise ValueError(f"unknown quirk: {quirk!r}")
        self.inner.learn(connection_id, quirk)


def _validate(connection: Connection) -> None:
    problems = connection_problems(connection)
    if problems:
        raise UserFacingError(" ".join(problems))
