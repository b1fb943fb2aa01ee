"""The Supabase profile store: the signed-in user's row, read and written as that user.

Row-level security decides what the user may touch; this class never uses a service key.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote

from core.errors import backend_failure
from core.profiles import PROFILE_FIELDS, Profile, ProfileChanged

TABLE = "profiles"
VERSION = "updated_at"  # set by a trigger on every update
# Old values are compared in the query string; past this many characters (quoted), the row's
# version is compared instead, so the request line stays within what proxies accept.
MAX_FILTER_LENGTH = 4000


class SupabaseProfileStore:
    """`client` is this browser session's supabase-py client, signed in as `user_id`."""

    def __init__(self, client, user_id: str):
        self.client = client
        self.user_id = user_id
        self.version: str | None = None  # `updated_at` of the row last read or written

    def _rows(self, query) -> list[dict]:
        try:
            return query.execute().data or []
        except Exception as exc:  # PostgREST, auth and transport failures alike
            raise backend_failure(exc) from exc

    def _read(self) -> list[dict]:
        columns = ",".join((*PROFILE_FIELDS, VERSION))
        return self._rows(self.client.table(TABLE).select(columns).eq("user_id", self.user_id))

    def _kept(self, rows: list[dict]) -> Profile:
        self.version = rows[0].get(VERSION) if rows else None
        return Profile.from_row(rows[0]) if rows else Profile()

    def load(self) -> Profile:
        return self._kept(self._read())

    def update(self, changes: Mapping[str, str], expected: Mapping[str, str] | None) -> Profile:
        """Write `changes` if each changed column still holds its `expected` value (PostgREST
        filters on the update itself); `expected` None writes unconditionally."""
        if not changes:
            return self.load()
        query = self.client.table(TABLE).update(dict(changes)).eq("user_id", self.user_id)
        if expected is not None:
            query = self._unchanged_since_read(query, {c: expected[c] for c in changes})
        rows = self._rows(query)
        if rows:
            return self._kept(rows)
        if self._read():  # the row is there, but not as it was read: changed elsewhere
            raise ProfileChanged()
        if expected is not None and any(expected.values()):
            raise ProfileChanged()  # read with values, now gone (deleted elsewhere)
        # The sign-up trigger never made the row (or it was deleted): a new user's profile.
        return self._kept(self._rows(
            self.client.table(TABLE).insert({"user_id": self.user_id, **changes})
        ))

    def _unchanged_since_read(self, query, expected: dict[str, str]):
        if sum(len(quote(value, safe="")) for value in expected.values()) > MAX_FILTER_LENGTH \
                and self.version is not None:
            return query.eq(VERSION, self.version)  # stricter: any change since read refuses
        for column, value in expected.items():
            query = query.eq(column, value)
        return query

    def save(self, profile: Profile) -> Profile:
        """Store every field as given, whatever is stored (validation and encryption happen
        in front of it); create the row if the sign-up trigger never did."""
        return self.update(profile.as_dict(), None)
