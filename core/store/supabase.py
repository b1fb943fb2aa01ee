"""The Supabase stores (profile, connections): the signed-in user's rows, read and written as
that user.

Row-level security decides what the user may touch; these classes never use a service key.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from urllib.parse import quote

from core.errors import backend_failure
from core.store.refusals import connection_failure
from core.profiles import PROFILE_FIELDS, Profile, ProfileChanged
from core.providers.connections import Connection, ConnectionChanged
from core.store.sqlite import (
    CONNECTION_COLUMNS,
    connection_columns,
    connection_from_row,
    stored_columns,
)

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


CONNECTIONS = "connections"
CONNECTION_FIELDS = ",".join(("id", *CONNECTION_COLUMNS, VERSION))
LEARN_ATTEMPTS = 5  # quirks written by other sessions meanwhile: read and try again


class SupabaseConnectionStore:
    """The user's connections in the `connections` table, in their stored form (secret fields
    already encrypted by core.store.keybox), through `client`: this browser session's
    supabase-py client, signed in as `user_id`. See ConnectionStore."""

    def __init__(self, client, user_id: str):
        self.client = client
        self.user_id = user_id

    def _table(self):
        return self.client.table(CONNECTIONS)

    def _rows(self, query, name: str = "") -> list[dict]:
        try:
            return query.execute().data or []
        except Exception as exc:  # PostgREST, auth and transport failures alike
            raise connection_failure(exc, name) from exc

    def _get(self, connection_id: str, columns: str = CONNECTION_FIELDS) -> dict | None:
        rows = self._rows(self._table().select(columns).eq("id", connection_id)
                          .eq("user_id", self.user_id))
        return rows[0] if rows else None

    def list(self) -> list[Connection]:
        rows = self._rows(self._table().select(CONNECTION_FIELDS).eq("user_id", self.user_id)
                          .order("created_at").order("id"))
        return [connection_from_row(row) for row in rows]

    def add(self, connection: Connection) -> Connection:
        row = {**stored_columns(connection), "user_id": self.user_id}
        rows = self._rows(self._table().insert(row), connection.name)
        return connection_from_row(rows[0])

    def update(self, connection_id: str, changes: Mapping[str, object],
               version: str | None) -> Connection:
        """Write `changes` if the row is still at `version` (PostgREST filters on the update
        itself, so nothing can come between the compare and the write)."""
        columns = connection_columns(changes)
        name = str(changes.get("name") or "")
        if not columns:
            query = self._table().select(CONNECTION_FIELDS)
        else:
            query = self._table().update(columns)
        query = query.eq("id", connection_id).eq("user_id", self.user_id)
        if version is not None:
            query = query.eq(VERSION, version)
        rows = self._rows(query, name)
        if rows:
            return connection_from_row(rows[0])
        current = self._get(connection_id, "name")
        if current is None:
            raise ConnectionChanged(name or "This connection", gone=True)
        raise ConnectionChanged(current["name"])

    def delete(self, connection_id: str) -> None:
        self._rows(self._table().delete().eq("id", connection_id).eq("user_id", self.user_id))

    def learn(self, connection_id: str, quirk: str) -> None:
        """Add `quirk`; the table's trigger leaves `updated_at` as it is when only the quirks
        change. Written only if the quirks are still as read, so two sessions learning at
        once keep both."""
        for _ in range(LEARN_ATTEMPTS):
            row = self._get(connection_id, "quirks")
            if row is None or quirk in row["quirks"]:
                return
            rows = self._rows(
                self._table().update({"quirks": sorted({*row["quirks"], quirk})})
                .eq("id", connection_id).eq("user_id", self.user_id)
                .eq("quirks", json.dumps(row["quirks"]))
            )
            if rows:
                return
