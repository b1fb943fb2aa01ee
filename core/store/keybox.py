"""Provider keys and other secrets encrypted at rest in front of any profile or connection store,
each sealed with AES-256-GCM for its place (table, column, row id): copied elsewhere, it reads as
a secret no current encryption secret opens. The encryption secrets are Fernet keys
(SWITCHBOARD_ENCRYPTION_KEYS, or the local `encryption.key`), the AES keys derived with HKDF.
Plain Fernet tokens bound to no place (the older format) still open, and are bound when saved."""

from __future__ import annotations

import base64
import binascii
import errno
import fcntl
import json
import logging
import os
import secrets
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from core.config import Settings
from core.failures import Misconfigured, UserFacingError
from core.providers.connections import Connection, is_quirk, connection_problems, secret_fields
from core.providers.profile import FIELD_LABELS, PROFILE_FIELDS, Profile
from core.providers.seed import KEY_FIELDS, validate_profile
from core.store.contracts import ConnectionStore, ProfileStore
from core.store.errors import ConnectionChanged

LOCAL_KEY_FILE = "encryption.key"
BOUND_PREFIX = "sb1."  # a sealed secret bound to its place; Fernet tokens start with "gAAAA"
PROFILES, CONNECTIONS = "profiles", "connections"  # the tables holding secrets
_NONCE_BYTES = 12
_TAG_BYTES = 16
_AES_KEY_INFO = b"switchboard: secrets at rest, AES-256-GCM, bound to their place, v1"

logger = logging.getLogger(__name__)


class MissingEncryptionSecret(Misconfigured):
    """Supabase mode without SWITCHBOARD_ENCRYPTION_KEYS: the app must not start."""


class LocalSecretUnavailable(UserFacingError):
    """The local `encryption.key` cannot be made or read, or is damaged: the text says which,
    names the file or folder, and says what to do. Nothing was changed on disk."""


@dataclass(frozen=True)
class Place:
    """Where a secret is stored: its table, its column, and its row's id."""

    table: str
    column: str
    row: str

    def associated_data(self) -> bytes:
        """What the ciphertext is bound to: it opens only where this is the same."""
        if not (self.table and self.column and self.row):
            raise ValueError(f"a secret must be bound to a whole place, got {self!r}")
        return json.dumps(["switchboard", BOUND_PREFIX, self.table, self.column, self.row],
                          separators=(",", ":")).encode()


def _aes_key(secret: str) -> bytes:
    """The AES-256 key of one encryption secret (a Fernet key: 32 url-safe base64 bytes)."""
    material = base64.urlsafe_b64decode(secret.encode())
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=_AES_KEY_INFO).derive(material)


class KeyBox:
    """Seals with the first secret, opens with any: add a new one first to rotate. A sealed
    secret opens only at its `Place`; an unbound Fernet token opens anywhere."""

    def __init__(self, secrets: list[str] | tuple[str, ...]):
        try:
            self._legacy = MultiFernet([Fernet(s.encode()) for s in secrets])
            self._aeads = [AESGCM(_aes_key(s)) for s in secrets]
        except ValueError as exc:  # what Fernet says of a key that is not one
            raise Misconfigured(
                "SWITCHBOARD_ENCRYPTION_KEYS must be Fernet keys (32 url-safe base64 bytes), "
                "comma-separated."
            ) from exc

    def encrypt(self, plain: str, place: Place) -> str:
        """`plain` sealed with the first secret, bound to `place`; '' stays ''."""
        if not plain:
            return ""
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aeads[0].encrypt(nonce, plain.encode(), place.associated_data())
        return BOUND_PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode("ascii")

    def decrypt(self, token: str, place: Place) -> str | None:
        """The plain text of a secret stored at `place`, or None when no current secret opens
        it there (sealed with a secret since removed, or for another place)."""
        if not token:
            return ""
        if self.is_legacy(token):  # an unbound Fernet token
            try:
                return self._legacy.decrypt(token.encode()).decode()
            except (InvalidToken, UnicodeError):
                return None
        try:
            raw = base64.urlsafe_b64decode(token.removeprefix(BOUND_PREFIX).encode("ascii"))
        except (binascii.Error, UnicodeError, ValueError):
            return None
        if len(raw) < _NONCE_BYTES + _TAG_BYTES:
            return None
        nonce, sealed = raw[:_NONCE_BYTES], raw[_NONCE_BYTES:]
        data = place.associated_data()
        for aead in self._aeads:
            try:
                return aead.decrypt(nonce, sealed, data).decode()
            except InvalidTag:
                continue
            except UnicodeError:
                return None
        return None

    @staticmethod
    def is_legacy(token: str) -> bool:
        """True for a stored secret bound to no place (an unbound Fernet token)."""
        return bool(token) and not token.startswith(BOUND_PREFIX)


def _secret_problem(exc: OSError, folder: Path) -> str:
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
    """The secret in `path`; None when the file is missing or empty (a full disk can leave it
    empty; an empty secret never encrypted anything)."""
    try:
        text = path.read_text(encoding="ascii", errors="replace").strip()
    except FileNotFoundError:
        return None
    if not text:
        return None
    try:
        Fernet(text.encode())
    except ValueError:
        raise LocalSecretUnavailable(
            f"The encryption secret file {path} is damaged (it does not hold a valid secret); "
            "it was left as it is. Put back a copy of it from a backup, then reload the page. "
            "If you have none, move it elsewhere and reload: a new secret is made, and the "
            "API keys saved with the old one must be entered again."
        ) from None
    return text


def _make_secret(path: Path, folder: int) -> None:
    """Write a new secret to `path` atomically (temporary file, fsync, rename), mode 600; the
    caller holds the lock on its folder (`folder`, open) and saw no usable secret there."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(Fernet.generate_key().decode())
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
        os.fsync(folder)  # the new name survives a power cut
    finally:
        temporary.unlink(missing_ok=True)


def local_secret(data_dir: Path) -> str:
    """The local default's secret: made once in the data folder, readable by its owner only.
    Raises LocalSecretUnavailable (never an OSError) when the folder cannot hold it, or when
    `encryption.key` is damaged; a damaged file is never replaced."""
    folder = Path(data_dir)
    path = folder / LOCAL_KEY_FILE
    try:
        secret = _read_secret(path)
        if secret is not None:
            return secret
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        lock = os.open(folder, os.O_RDONLY)  # one process at a time makes it: all keep that one
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            secret = _read_secret(path)  # another process may have made it meanwhile
            if secret is None:
                _make_secret(path, lock)
                secret = _read_secret(path)
        finally:
            os.close(lock)  # closing releases the lock
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
    """What Settings and Chat say about a saved key that no current secret opens. Local mode
    names the `encryption.key` file (the user runs the app); otherwise the secret is the
    operator's, so the setting's name goes to the log, not to the user."""
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
    """A ProfileStore that validates plain values and keeps key fields encrypted inside, each
    bound to its column of the inner store's user's row.

    A save writes only the fields that differ from the stored row last read or written
    (`base`), and only while the store still holds them as read: two tabs saving different
    fields keep both, and a key no secret opens is kept as stored."""

    def __init__(self, inner: ProfileStore, box: KeyBox):
        self.inner = inner
        self.box = box
        self.user_id = str(inner.user_id)
        self.base: Profile | None = None  # the stored (encrypted) row last read or written
        self.unreadable_keys: tuple[str, ...] = ()  # saved keys no current secret opens

    def _place(self, name: str) -> Place:
        return Place(PROFILES, name, self.user_id)

    def _plain(self, stored: Profile, name: str) -> str | None:
        return self.box.decrypt(getattr(stored, name), self._place(name))

    def open(self, stored: Profile) -> Profile:
        """A stored row with its keys decrypted; a key no secret opens reads as ''."""
        opened = {name: self._plain(stored, name) or "" for name in KEY_FIELDS}
        return stored.with_changes(**opened)

    def _based_on(self, stored: Profile) -> Profile:
        self.base = stored
        self.unreadable_keys = tuple(name for name in KEY_FIELDS
                                     if self._plain(stored, name) is None)
        return self.open(stored)

    def load(self) -> Profile:
        return self._based_on(self.inner.load())

    def save(self, profile: Profile, *, base: Profile | None = None,
             remove_keys: Collection[str] = ()) -> Profile:
        """Write what `profile` changes from `base` (default: the row last read or written).

        A key field in `remove_keys` is emptied even when no secret opens it; an unreadable
        key given as '' is left as stored. Raises ProfileChanged when a changed field was
        changed elsewhere since `base` was read; nothing is written then."""
        validate_profile(profile)
        if base is None:
            base = self.base if self.base is not None else self.inner.load()
        changes = {}  # stored column -> new stored value, for each field `profile` changes
        for name in PROFILE_FIELDS:
            was, wanted = getattr(base, name), getattr(profile, name)
            if name not in KEY_FIELDS:
                if wanted != was:
                    changes[name] = wanted
            elif name in remove_keys:
                if was:
                    changes[name] = ""
            elif wanted != (self._plain(base, name) or ""):  # unreadable and '': kept
                changes[name] = self.box.encrypt(wanted, self._place(name))
        stored = self.inner.update(changes, {name: getattr(base, name) for name in changes})
        if changes:
            stored = self._bind_legacy_keys(stored)
        return self._based_on(stored)

    def _bind_legacy_keys(self, stored: Profile) -> Profile:
        """`stored` with its readable unbound keys sealed again for their column, each while
        the store still holds it as read: a write of its own after the save, so a key changed
        elsewhere meanwhile never fails the save; if it fails, the next save tries again."""
        bound = {}
        for name in KEY_FIELDS:
            token = getattr(stored, name)
            if self.box.is_legacy(token) and (plain := self._plain(stored, name)) is not None:
                bound[name] = self.box.encrypt(plain, self._place(name))
        if not bound:
            return stored
        try:
            return self.inner.update(bound, {name: getattr(stored, name) for name in bound})
        except UserFacingError as exc:  # changed elsewhere meanwhile, or the store is away
            logger.info("Saved unbound keys were left as they are for now: %s",
                        type(exc).__name__)
            return stored


class EncryptedConnectionStore:
    """A ConnectionStore for plain connections in front of one that keeps them as stored: it
    validates what is written, and encrypts the fields `secret_fields()` declares (headers as
    the JSON of their pairs), each bound to its column of the connection's row.

    A secret no current encryption secret opens reads as empty, is named in
    `Connection.unreadable`, and is kept as stored unless the caller replaces or removes it."""

    def __init__(self, inner: ConnectionStore, box: KeyBox):
        self.inner = inner
        self.box = box

    def _seal(self, name: str, value, connection_id: str) -> str:
        place = Place(CONNECTIONS, name, connection_id)
        if name == "headers":
            return self.box.encrypt(json.dumps([list(p) for p in value]), place) if value else ""
        return self.box.encrypt(value, place)

    def _unseal(self, name: str, token: str, connection_id: str):
        """The plain value of a stored secret field; None when no current secret opens it
        in this column of this row."""
        plain = self.box.decrypt(token or "", Place(CONNECTIONS, name, connection_id))
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
            plain = self._unseal(name, getattr(stored, name), stored.id)
            if plain is None:
                unreadable.add(name)
                plain = () if name == "headers" else ""
            opened[name] = plain
        return stored.with_changes(**opened, unreadable=frozenset(unreadable))

    def list(self) -> list[Connection]:
        return [self.open(stored) for stored in self.inner.list()]

    def add(self, connection: Connection) -> Connection:
        """Store a new connection. Its row is made first, without secrets: they are bound to
        the row's id, which the store gives. If they cannot be written, the row is removed."""
        _validate(connection)
        secret = {name: getattr(connection, name) for name in secret_fields()
                  if getattr(connection, name)}
        stored = self.inner.add(connection.with_changes(**{name: "" for name in secret_fields()}))
        if secret:
            try:
                stored = self.inner.update(
                    stored.id, {name: self._seal(name, value, stored.id)
                                for name, value in secret.items()}, stored.version)
            except BaseException:
                self._remove_half_made(stored)
                raise
        return self.open(stored)

    def _remove_half_made(self, stored: Connection) -> None:
        try:
            self.inner.delete(stored.id)
        except UserFacingError as exc:  # the first failure is the one to report
            logger.warning("A connection added without its key and headers could not be "
                           "removed again (%s); it stays, with neither.", type(exc).__name__)

    def update(self, connection_id: str, changes: Mapping[str, object], version: str | None,
               *, remove_secrets: Collection[str] = ()) -> Connection:
        """Write `changes` (plain values) if the row is still at `version`, the connection as
        it would be validated first. A secret field given as it reads (an unreadable one as
        empty) is left as stored; one in `remove_secrets` is emptied even when unreadable. A
        readable unbound secret is written again, bound, with the changes."""
        stored_now = next((c for c in self.inner.list() if c.id == connection_id), None)
        if stored_now is None:
            raise ConnectionChanged(str(changes.get("name") or "This connection"), gone=True)
        current = self.open(stored_now)
        _validate(current.with_changes(**changes))
        stored = {}
        for name, value in changes.items():
            if name == "headers":
                value = tuple(tuple(pair) for pair in value)
            if name not in secret_fields():
                stored[name] = value
            elif value != getattr(current, name):  # same as read, or '' for unreadable: kept
                stored[name] = self._seal(name, value, connection_id)
        stored.update(dict.fromkeys(remove_secrets, ""))  # emptied even when unreadable
        if stored and version is not None:  # the version guards these too
            for name in secret_fields():
                if (name not in stored and name not in current.unreadable
                        and self.box.is_legacy(getattr(stored_now, name))):
                    stored[name] = self._seal(name, getattr(current, name), connection_id)
        return self.open(self.inner.update(connection_id, stored, version))

    def delete(self, connection_id: str) -> None:
        self.inner.delete(connection_id)

    def learn(self, connection_id: str, quirk: str) -> None:
        if not is_quirk(quirk):
            raise ValueError(f"unknown quirk: {quirk!r}")
        self.inner.learn(connection_id, quirk)


def _validate(connection: Connection) -> None:
    problems = connection_problems(connection)
    if problems:
        raise UserFacingError(" ".join(problems))
