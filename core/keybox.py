"""Provider keys encrypted at rest (Fernet), in front of any profile store."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from core.config import Settings
from core.errors import UserFacingError
from core.profiles import KEY_FIELDS, Profile, ProfileStore, validate_profile

LOCAL_KEY_FILE = "encryption.key"


class MissingEncryptionSecret(UserFacingError):
    """Supabase mode without SWITCHBOARD_ENCRYPTION_KEYS: the app must not start."""


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


def local_secret(data_dir: Path) -> str:
    """The local default's secret: made once in the data folder, readable by its owner only."""
    path = Path(data_dir) / LOCAL_KEY_FILE
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(Fernet.generate_key().decode())
    return path.read_text().strip()


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


class EncryptedProfileStore:
    """A ProfileStore that validates plain values and keeps key fields encrypted inside."""

    def __init__(self, inner: ProfileStore, box: KeyBox):
        self.inner = inner
        self.box = box
        self.unreadable_keys: tuple[str, ...] = ()  # saved keys no current secret opens

    def _open(self, stored: Profile) -> Profile:
        opened = {name: self.box.decrypt(getattr(stored, name)) for name in KEY_FIELDS}
        self.unreadable_keys = tuple(name for name, value in opened.items() if value is None)
        return stored.with_changes(**{k: v or "" for k, v in opened.items()})

    def load(self) -> Profile:
        return self._open(self.inner.load())

    def save(self, profile: Profile) -> Profile:
        validate_profile(profile)
        sealed = profile.with_changes(
            **{name: self.box.encrypt(getattr(profile, name)) for name in KEY_FIELDS}
        )
        return self._open(self.inner.save(sealed))
