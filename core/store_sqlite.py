"""The embedded profile store of the local default: one SQLite file in the data folder."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

from core.errors import UserFacingError
from core.profiles import FIELD_LABELS, PROFILE_FIELDS, Profile

DB_FILENAME = "switchboard.db"
LOCAL_USER_ID = "local"


def _create_profiles(db: sqlite3.Connection) -> None:
    db.execute(
        """
        create table profiles (
            user_id text primary key,
            created_at text not null default (datetime('now')),
            updated_at text not null default (datetime('now')),
            display_name text not null default '' check (length(display_name) <= 1000),
            openai_api_key text not null default '' check (length(openai_api_key) <= 1000),
            openai_organization_id text not null default ''
                check (length(openai_organization_id) <= 1000)
        )
        """
    )


def _add_openai_compatible(db: sqlite3.Connection) -> None:
    for column in (
        "openai_compatible_api_key",
        "openai_compatible_base_url",
        "openai_compatible_model_name",
    ):
        db.execute(
            f"alter table profiles add column {column} text not null default '' "
            f"check (length({column}) <= 1000)"
        )


# Applied in order, each once, recorded by name: never edit or reorder a shipped entry.
MIGRATIONS: tuple[tuple[str, Callable[[sqlite3.Connection], None]], ...] = (
    ("001_create_profiles", _create_profiles),
    ("002_add_openai_compatible", _add_openai_compatible),
)


def migrate(db: sqlite3.Connection) -> list[str]:
    """Apply the migrations this database lacks; return their names."""
    db.execute("create table if not exists schema_migrations (name text primary key)")
    done = {row[0] for row in db.execute("select name from schema_migrations")}
    applied = []
    for name, step in MIGRATIONS:
        if name in done:
            continue
        with db:  # each migration and its record commit together
            step(db)
            db.execute("insert into schema_migrations (name) values (?)", (name,))
        applied.append(name)
    return applied


class SQLiteProfileStore:
    """The single local user's profile in `data_dir/switchboard.db`."""

    def __init__(self, data_dir: Path, user_id: str = LOCAL_USER_ID):
        self.path = Path(data_dir) / DB_FILENAME
        self.user_id = user_id
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            self.path.touch(mode=0o600, exist_ok=True)  # holds (encrypted) keys: owner only
            with closing(self._connect()) as db:
                migrate(db)
        except (OSError, sqlite3.Error) as exc:
            raise UserFacingError(
                f"Cannot open the local data folder {self.path.parent}: {exc}"
            ) from exc

    def _connect(self) -> sqlite3.Connection:
        # A short-lived connection per call: Streamlit runs each session on its own thread.
        db = sqlite3.connect(self.path, timeout=10)
        db.row_factory = sqlite3.Row
        return db

    def load(self) -> Profile:
        with closing(self._connect()) as db:
            row = db.execute(
                "select * from profiles where user_id = ?", (self.user_id,)
            ).fetchone()
        return Profile.from_row(dict(row)) if row else Profile()

    def save(self, profile: Profile) -> Profile:
        """Store the profile as given (validation and encryption happen in front of it)."""
        values = profile.as_dict()
        columns = ", ".join(PROFILE_FIELDS)
        marks = ", ".join("?" for _ in PROFILE_FIELDS)
        updates = ", ".join(f"{c} = excluded.{c}" for c in PROFILE_FIELDS)
        try:
            with closing(self._connect()) as db, db:
                db.execute(
                    f"insert into profiles (user_id, {columns}) values (?, {marks}) "
                    f"on conflict (user_id) do update set {updates}, "
                    "updated_at = datetime('now')",
                    (self.user_id, *(values[c] for c in PROFILE_FIELDS)),
                )
        except sqlite3.IntegrityError as exc:
            raise UserFacingError(_refusal(str(exc))) from exc
        except sqlite3.Error as exc:
            raise UserFacingError(f"Could not save the settings locally: {exc}") from exc
        return self.load()


def _refusal(detail: str) -> str:
    """The database's CHECK refusal, said for the user."""
    for column, label in FIELD_LABELS.items():
        if column in detail:
            return f"{label} is too long: the store keeps at most 1000 characters. Nothing was saved."
    return "The settings were refused by the store (a value is too long). Nothing was saved."
