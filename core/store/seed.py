"""The seed's two providers as connections kept in the profile's columns (through the
encrypting profile store), with the calls of every connection store, so Settings and Chat use
one path. A connection's `version` is the profile row it was read from: a save compares each
changed column with it, and a field changed elsewhere meanwhile raises ProfileChanged."""

from __future__ import annotations

from collections.abc import Collection, Mapping

from core.providers.connections import Connection, is_quirk
from core.providers.seed import column_changes, provider_of, seed_connection, seed_connections
from core.store.errors import ProfileChanged
from core.store.keybox import EncryptedProfileStore


class SeedConnectionStore:
    """The seed's providers of one user's profile, as connections."""

    def __init__(self, profiles: EncryptedProfileStore, server_keys: Mapping[str, str]):
        self.profiles = profiles
        self.server_keys = server_keys

    def list(self) -> list[Connection]:
        """Both seed connections, read fresh."""
        profile = self.profiles.load()
        return seed_connections(profile, self.server_keys, self.profiles.unreadable_keys,
                                version=self.profiles.base)

    def update(self, connection_id: str, changes: Mapping[str, object], version: object,
               *, remove_secrets: Collection[str] = ()) -> Connection:
        """Write `changes` (connection field -> plain value) to the provider's columns, each
        only while the store still holds it as `version` (the row read) had it."""
        provider = provider_of(connection_id)
        if version is None:  # no row read: compare with the row as it is now
            self.profiles.load()
            version = self.profiles.base
        wanted = self.profiles.open(version).with_changes(**column_changes(provider, changes))
        removed = tuple(provider.columns[name] for name in remove_secrets)
        saved = self.profiles.save(wanted, base=version, remove_keys=removed)
        return seed_connection(provider, saved, self.server_keys, self.profiles.unreadable_keys,
                               version=self.profiles.base)

    def learn(self, connection_id: str, quirk: str) -> None:
        """Add a quirk to the provider's column; the seed's OpenAI keeps none (what it learns
        is kept for this process only)."""
        if not is_quirk(quirk):
            raise ValueError(f"unknown quirk: {quirk!r}")
        provider = provider_of(connection_id)
        if "quirks" not in provider.columns:
            return
        for attempt in range(2):  # once more if another tab saved the same column meanwhile
            current = next(c for c in self.list() if c.id == connection_id)
            if quirk in current.quirks:
                return
            try:
                self.update(connection_id, {"quirks": current.quirks | {quirk}}, current.version)
                return
            except ProfileChanged:
                if attempt:
                    raise
