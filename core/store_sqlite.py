"""The embedded profile store of the local default: one SQLite file in the data folder."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

from core.errors import UserFacingError
from core.profiles import FIELD_LABELS, PROFILE_FIELDS, Profile

DB_FILENAME = "switchboard.db"
LOCAL_USER_ID = "local"


@dataclass(frozen=True)
class Migration:
    name: str  # recorded in schema_migrations: never rename a shipped one
    apply: Callable[[sqlite3.Connection], None]


MIGRATIONS: list[Migration] = []  # applied in order, each once


def migration(step: Callable[[sqlite3.Connection], None]) -> Callable:
    """Register `step`, named mNNN_what: recorded as NNN_what, as before this decorator."""
    MIGRATIONS.append(Migration(step.__name__.removeprefix("m"), step))
    return step


@migration
def m001_create_profiles(db: sqlite3.Connection) -> None:
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


@migration
def m002_add_openai_compatible(db: sqlite3.Connection) -> None:
    for column in (
        "openai_compatible_api_key",
        "openai_compatible_base_url",
        "openai_compatible_model_name",
    ):
        db.execute(
            f"alter table profiles add column {column} text not null default '' "
            f"check (length({column}) <= 1000)"
        )


@contextmanager
def _immediate(db: sqlite3.Connection) -> Iterator[None]:
    """One real transaction, DDL included, holding the write lock from its start, so sessions
    starting together queue up. The connection is in autocommit mode: Python's sqlite3 then
    neither opens nor commits a transaction on its own."""
    db.execute("begin immediate")
    try:
        yield
    except BaseException:
        db.execute("rollback")
        raise
    db.execute("commit")


def _recorded(db: sqlite3.Connection) -> set[str]:
    return {row[0] for row in db.execute("select name from schema_migrations")}


def _record_is_current(db: sqlite3.Connection) -> bool:
    columns = {row[1] for row in db.execute("pragma table_info(schema_migrations)")}
    return "applied_at" in columns


def _prepare_record(db: sqlite3.Connection) -> None:
    """The table of applied migrations; files made before 'applied_at' existed gain it."""
    db.execute("create table if not exists schema_migrations (name text primary key)")
    if not _record_is_current(db):  # re-checked under the lock: another session may have
        db.execute("alter table schema_migrations add column applied_at text")


def migrate(db: sqlite3.Connection) -> list[str]:
    """Apply the migrations this database lacks, each in its own transaction; return their
    names. `db` must be in autocommit mode (isolation_level=None).

    Two processes may start at once: each migration is re-checked under the write lock.
    """
    if not _record_is_current(db):
        with _immediate(db):
            _prepare_record(db)
    done = _recorded(db)  # read without the write lock: an up-to-date file is never written
    applied = []
    for step in MIGRATIONS:
        if step.name in done:
            continue
        with _immediate(db):
            if step.name in _recorded(db):  # another session applied it meanwhile
                continue
            step.apply(db)
            db.execute(
                "insert into schema_migrations (name, applied_at) values (?, datetime('now'))",
                (step.name,),
            )
        applied.append(step.name)
    return applied


class SQLiteProfileStore:
    """The single local user's profile in `data_dir/switchboard.db`."""

    def __init__(self, data_dir: Path, user_id: str = LOCAL_USER_ID):
        self.path = Path(data_dir) / DB_FILENAME
        self.user_id = user_id
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            self.path.touch(mode=0o600, exist_ok=True)  # holds (encrypted) keys: owner only
            with closing(self._connect(autocommit=True)) as db:
                migrate(db)
        except (OSError, sqlite3.Error) as exc:
            raise UserFacingError(
                f"Cannot open the local data folder {self.path.parent}: {exc}"
            ) from exc

    def _connect(self, autocommit: bool = False) -> sqlite3.Connection:
        # A short-lived connection per call: Streamlit runs each session on its own thread.
        db = sqlite3.connect(self.path, timeout=10, isolation_level=None if autocommit else "")
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
