"""The embedded profile store of the local default: one SQLite file in the data folder."""

from __future__ import annotations

import errno
import logging
import os
import sqlite3
from collections.abc import Callable, Iterator, Mapping
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

from core.errors import UserFacingError
from core.profiles import (
    FIELD_LABELS,
    PROFILE_FIELDS,
    Profile,
    ProfileChanged,
    StoreUnavailable,
)

DB_FILENAME = "switchboard.db"
BUSY_TIMEOUT = 5.0  # seconds a read or save waits for another window's write to finish
LOCAL_USER_ID = "local"

logger = logging.getLogger(__name__)


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
        if db.in_transaction:  # SQLite rolls back by itself on some errors (a full disk)
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
    """The single local user's profile in `data_dir/switchboard.db`.

    Every open, read and write is guarded: a failure is a StoreUnavailable saying what
    happened and what to do, never a raw sqlite3 or OS error.
    """

    def __init__(self, data_dir: Path, user_id: str = LOCAL_USER_ID,
                 busy_timeout: float = BUSY_TIMEOUT):
        self.path = Path(data_dir) / DB_FILENAME
        self.user_id = user_id
        self.busy_timeout = busy_timeout
        with self._guarded("open"):
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            _create_owner_only(self.path)  # holds (encrypted) keys
            with closing(self._connect()) as db:
                migrate(db)

    def _connect(self) -> sqlite3.Connection:
        # A short-lived connection per call: Streamlit runs each session on its own thread.
        # Autocommit: transactions are opened explicitly (BEGIN IMMEDIATE) where we write.
        db = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None)
        db.row_factory = sqlite3.Row
        return db

    @contextmanager
    def _guarded(self, doing: str) -> Iterator[None]:
        """Turn store failures into messages; `doing` is "open", "read" or "save"."""
        try:
            yield
        except sqlite3.IntegrityError as exc:  # a CHECK constraint
            raise UserFacingError(_refusal(str(exc))) from exc
        except (sqlite3.Error, OSError) as exc:
            if isinstance(exc, (sqlite3.ProgrammingError, sqlite3.InterfaceError)):
                raise  # a bug of ours, not the store's state
            raise store_unavailable(exc, self.path, doing) from exc

    def _row(self, db: sqlite3.Connection) -> Profile:
        row = db.execute("select * from profiles where user_id = ?", (self.user_id,)).fetchone()
        return Profile.from_row(dict(row)) if row else Profile()

    def load(self) -> Profile:
        with self._guarded("read"), closing(self._connect()) as db:
            return self._row(db)

    def update(self, changes: Mapping[str, str], expected: Mapping[str, str] | None) -> Profile:
        """Write `changes` if each changed column still holds its `expected` value, under the
        write lock; `expected` None writes unconditionally. See ProfileStore.update."""
        unknown = set(changes) - set(PROFILE_FIELDS)
        if unknown:  # column names are put into the SQL: only ours
            raise ValueError(f"not profile fields: {sorted(unknown)}")
        if not changes:
            return self.load()
        names = list(changes)
        checks = [] if expected is None else names
        sql = (f"update profiles set {', '.join(f'{c} = ?' for c in names)}, "
               "updated_at = datetime('now') where user_id = ?"
               + "".join(f" and {c} is ?" for c in checks))
        params = (*(changes[c] for c in names), self.user_id,
                  *(expected[c] for c in checks))
        with self._guarded("save"), closing(self._connect()) as db:
            with _immediate(db):
                # The row a new user has: every field empty, as Profile() reads.
                db.execute("insert into profiles (user_id) values (?) "
                           "on conflict (user_id) do nothing", (self.user_id,))
                if db.execute(sql, params).rowcount == 0:
                    raise ProfileChanged()
            return self._row(db)

    def save(self, profile: Profile) -> Profile:
        """Store every field as given, whatever is stored (validation and encryption happen
        in front of it)."""
        return self.update(profile.as_dict(), None)


def _create_owner_only(path: Path) -> None:
    """Create the file readable by its owner only, if it is missing; never touch it else
    (a read-only disk must still be readable)."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass


def _refusal(detail: str) -> str:
    """The database's CHECK refusal, said for the user."""
    for column, label in FIELD_LABELS.items():
        if column in detail:
            return f"{label} is too long: the store keeps at most 1000 characters. Nothing was saved."
    return "The settings were refused by the store (a value is too long). Nothing was saved."


# SQLite's primary result codes (https://sqlite.org/rescode.html) for what can go wrong
# around the file, rather than in our SQL.
_KIND_OF_CODE = {
    sqlite3.SQLITE_BUSY: "busy",
    sqlite3.SQLITE_LOCKED: "busy",
    sqlite3.SQLITE_CORRUPT: "damaged",
    sqlite3.SQLITE_NOTADB: "damaged",
    sqlite3.SQLITE_READONLY: "read_only",
    sqlite3.SQLITE_FULL: "full",
    sqlite3.SQLITE_PERM: "no_access",
    sqlite3.SQLITE_AUTH: "no_access",
}
_KIND_OF_ERRNO = {
    errno.EROFS: "read_only",
    errno.ENOSPC: "full",
    errno.EDQUOT: "full",
    errno.EACCES: "no_access",
    errno.EPERM: "no_access",
}


def _kind(exc: BaseException, folder: Path) -> str:
    """What went wrong: one of StoreUnavailable's kinds, or "disk_error"."""
    if isinstance(exc, sqlite3.Error):
        kind = _KIND_OF_CODE.get((exc.sqlite_errorcode or 0) & 0xFF)
    else:
        kind = _KIND_OF_ERRNO.get(getattr(exc, "errno", None))
    if kind:
        return kind
    # SQLite says only "unable to open" or "disk I/O error": ask the file system itself.
    try:
        if os.statvfs(folder).f_flag & os.ST_RDONLY:
            return "read_only"
    except OSError:
        return "no_access"  # the folder cannot even be looked at
    path = folder / DB_FILENAME
    if not os.access(folder, os.W_OK | os.X_OK) or (
            path.exists() and not os.access(path, os.R_OK | os.W_OK)):
        return "no_access"
    return "disk_error"


def _messages(path: Path, doing: str) -> dict[str, str]:
    folder = path.parent
    failed = {"open": "Switchboard cannot start", "read": "Your settings could not be read",
              "save": "Nothing was saved"}[doing]
    again = "save again" if doing == "save" else "reload the page"
    return {
        "busy": f"Your data is busy (another window is saving). {failed}; "
                "try again in a moment.",
        "damaged": f"The data file {path} is damaged; it was left as it is. {failed}. "
                   "Restore it from a backup, or move it elsewhere and reload to start "
                   "with empty settings.",
        "read_only": f"The data folder {folder} is read-only. {failed}. "
                     f"Make it writable, then {again}.",
        "full": f"The disk holding the data folder {folder} is full. {failed}. "
                f"Free some space, then {again}.",
        "no_access": f"Switchboard is not allowed to use the data file {path}. {failed}. "
                     f"Check the permissions of the file and its folder, then {again}.",
        "disk_error": f"A disk error stopped Switchboard using the data file {path}; it was "
                      f"left as it is. {failed}. Try again; if it keeps failing, check the disk.",
    }


def store_unavailable(exc: BaseException, path: Path, doing: str) -> StoreUnavailable:
    """The message for a failure opening, reading or saving `path`; the raw error is logged."""
    kind = _kind(exc, path.parent)
    logger.warning("Local store %s failed while doing %s (%s): %s", path, doing, kind, exc)
    return StoreUnavailable(_messages(path, doing)[kind], kind)
