"""The Supabase profile store: the signed-in user's row, read and written as that user.

Row-level security decides what the user may touch; this class never uses a service key.
"""

from __future__ import annotations

from core.errors import UserFacingError, describe_backend_error
from core.profiles import PROFILE_FIELDS, Profile

TABLE = "profiles"


class SupabaseProfileStore:
    """`client` is this browser session's supabase-py client, signed in as `user_id`."""

    def __init__(self, client, user_id: str):
        self.client = client
        self.user_id = user_id

    def _rows(self, query) -> list[dict]:
        try:
            return query.execute().data or []
        except Exception as exc:  # PostgREST, auth and transport failures alike
            raise UserFacingError(describe_backend_error(exc)) from exc

    def load(self) -> Profile:
        table = self.client.table(TABLE)
        rows = self._rows(table.select(",".join(PROFILE_FIELDS)).eq("user_id", self.user_id))
        return Profile.from_row(rows[0]) if rows else Profile()

    def save(self, profile: Profile) -> Profile:
        """Update the user's row; create it if the sign-up trigger never did."""
        values = profile.as_dict()
        table = self.client.table(TABLE)
        rows = self._rows(table.update(values).eq("user_id", self.user_id))
        if not rows:
            rows = self._rows(table.insert({"user_id": self.user_id, **values}))
        return Profile.from_row(rows[0])
