"""Where a user's saved prompts are kept: the local SQLite file or Supabase, the same calls.

Every call raises StoreUnavailable when the store cannot be reached, and a UserFacingError
said for the user when it refuses a prompt (a name the user has, too many, a value too long);
nothing is half-written: `add_many` stores all its prompts or none.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Mapping, Sequence
from typing import Protocol

from postgrest.exceptions import APIError

from core.failures import UserFacingError
from core.prompts.library import SavedPrompt, checked, name_taken, too_many_prompts
from core.store.errors import CHECK_SQLSTATE, UNIQUE_SQLSTATE, backend_failure
from core.store.sqlite import _LocalFile, _next_version
from core.store.supabase import _SignedIn

PROMPT_COLUMNS = ("name", "text", "model", "system_prompt", "temperature")
PROMPTS_LIMIT_SQLSTATE = "SB071"  # raised by the prompts table's limit trigger
_LIMITS = {  # the start of each constraint's name (both backends), said for the user
    "prompts_name": "A prompt's name must be 1 to 100 characters.",
    "prompts_text": "A prompt's text must be 1 to 100,000 characters.",
    "prompts_model": "The model's name is too long to store with the prompt.",
    "prompts_system_prompt": "The system prompt is too long: at most 100,000 characters.",
    "prompts_temperature": "The temperature must be between 0 and 2.",
}


class PromptStore(Protocol):
    """One user's saved prompts (origin "user")."""

    def list(self) -> list[SavedPrompt]:
        """The user's prompts by name (regardless of case)."""

    def add(self, prompt: SavedPrompt) -> SavedPrompt:
        """Store a new prompt (its id is ignored); return it as stored."""

    def add_many(self, prompts: Sequence[SavedPrompt]) -> list[SavedPrompt]:
        """Store them all in one transaction, or none."""

    def update(self, prompt_id: str, prompt: SavedPrompt) -> SavedPrompt:
        """Replace every field of the user's prompt `prompt_id`; UserFacingError when gone."""

    def delete(self, prompt_id: str) -> None:
        """Delete it; one already gone is not an error."""


def prompt_from_row(row: Mapping) -> SavedPrompt:
    temperature = row["temperature"]
    return SavedPrompt(name=row["name"], text=row["text"], model=row["model"] or "",
                       system_prompt=row["system_prompt"] or "",
                       temperature=None if temperature is None else float(temperature),
                       id=str(row["id"]))


def prompt_columns(prompt: SavedPrompt) -> dict[str, object]:
    prompt = checked(prompt)
    return {column: getattr(prompt, column) for column in PROMPT_COLUMNS}


def prompt_value_refused(detail: str) -> str:
    said = next((text for name, text in _LIMITS.items() if name in detail),
                "A value of the prompt is longer than the store allows.")
    return f"{said} Nothing was saved."


NAMES_TAKEN = ("You already have a prompt with one of these names (names are compared without "
               "regard to case). Nothing was saved.")
GONE = "This prompt no longer exists (it may have been deleted in another tab). Nothing was saved."


# ---------------------------------------------------------------- local

class SQLitePromptStore(_LocalFile):
    """The local user's prompts in `data_dir/switchboard.db`."""

    def _refusal(self, detail: str) -> str:
        if "prompts_limit" in detail:
            return too_many_prompts()
        return prompt_value_refused(detail)

    def _refuse_taken_names(self, db: sqlite3.Connection, names: list[str],
                            own_id: str = "") -> None:
        """Names are unique per user whatever their case (SQLite's lower() folds ASCII only):
        checked under the write lock, so the unique index never refuses one."""
        taken = {other.lower() for other_id, other in db.execute(
            "select id, name from prompts where user_id = ?", (self.user_id,))
            if other_id != own_id}
        for name in names:
            if name.lower() in taken:
                raise UserFacingError(name_taken(name))
            taken.add(name.lower())

    def _get(self, db: sqlite3.Connection, prompt_id: str) -> SavedPrompt | None:
        row = db.execute("select * from prompts where id = ? and user_id = ?",
                         (prompt_id, self.user_id)).fetchone()
        return prompt_from_row(row) if row else None

    def list(self) -> list[SavedPrompt]:
        with self._opened("read") as db:
            rows = db.execute("select * from prompts where user_id = ?", (self.user_id,))
            return sorted(map(prompt_from_row, rows), key=lambda p: p.name.casefold())

    def add(self, prompt: SavedPrompt) -> SavedPrompt:
        return self.add_many([prompt])[0]

    def add_many(self, prompts: Sequence[SavedPrompt]) -> list[SavedPrompt]:
        rows = [prompt_columns(prompt) for prompt in prompts]
        ids = [str(uuid.uuid4()) for _ in rows]
        now = _next_version(None)
        with self._writing() as db:
            self._refuse_taken_names(db, [str(row["name"]) for row in rows])
            for prompt_id, row in zip(ids, rows):
                values = {**row, "id": prompt_id, "user_id": self.user_id,
                          "created_at": now, "updated_at": now}
                db.execute(f"insert into prompts ({', '.join(values)}) "
                           f"values ({', '.join('?' for _ in values)})", tuple(values.values()))
            return [self._get(db, prompt_id) for prompt_id in ids]

    def update(self, prompt_id: str, prompt: SavedPrompt) -> SavedPrompt:
        row = prompt_columns(prompt)
        with self._writing() as db:
            if self._get(db, prompt_id) is None:
                raise UserFacingError(GONE)
            self._refuse_taken_names(db, [str(row["name"])], prompt_id)
            db.execute(f"update prompts set {', '.join(f'{c} = ?' for c in row)}, "
                       "updated_at = ? where id = ? and user_id = ?",
                       (*row.values(), _next_version(None), prompt_id, self.user_id))
            return self._get(db, prompt_id)

    def delete(self, prompt_id: str) -> None:
        with self._opened("save") as db:
            db.execute("delete from prompts where id = ? and user_id = ?",
                       (prompt_id, self.user_id))


# ---------------------------------------------------------------- Supabase

PROMPTS = "prompts"
PROMPT_FIELDS = ",".join(("id", *PROMPT_COLUMNS))


def prompt_failure(exc: BaseException, name: str = "") -> UserFacingError:
    """`backend_failure` for a call on the prompts table."""
    code = exc.code if isinstance(exc, APIError) else None  # the rest: backend_failure
    if code == UNIQUE_SQLSTATE:
        return UserFacingError(name_taken(name) if name else NAMES_TAKEN)
    if code == PROMPTS_LIMIT_SQLSTATE:
        return UserFacingError(too_many_prompts())
    detail = f"{getattr(exc, 'message', '')} {getattr(exc, 'details', '')}"
    if code == CHECK_SQLSTATE and "prompts_" in detail:
        return UserFacingError(prompt_value_refused(detail))
    return backend_failure(exc)


class SupabasePromptStore(_SignedIn):
    """The signed-in user's rows of `prompts`; row-level security keeps them theirs."""

    failure = staticmethod(prompt_failure)

    def _table(self):
        return self.client.table(PROMPTS)

    def list(self) -> list[SavedPrompt]:
        rows = self._rows(self._table().select(PROMPT_FIELDS).eq("user_id", self.user_id))
        return sorted(map(prompt_from_row, rows), key=lambda p: p.name.casefold())

    def add(self, prompt: SavedPrompt) -> SavedPrompt:
        return self.add_many([prompt])[0]

    def add_many(self, prompts: Sequence[SavedPrompt]) -> list[SavedPrompt]:
        """One request, one statement: PostgreSQL stores every row or none."""
        rows = [{**prompt_columns(prompt), "user_id": self.user_id} for prompt in prompts]
        if not rows:
            return []
        taken = rows[0]["name"] if len(rows) == 1 else ""
        return [prompt_from_row(row) for row in self._rows(self._table().insert(rows), taken)]

    def update(self, prompt_id: str, prompt: SavedPrompt) -> SavedPrompt:
        row = prompt_columns(prompt)
        rows = self._rows(self._table().update(row).eq("id", prompt_id)
                          .eq("user_id", self.user_id), row["name"])
        if not rows:
            raise UserFacingError(GONE)
        return prompt_from_row(rows[0])

    def delete(self, prompt_id: str) -> None:
        self._rows(self._table().delete().eq("id", prompt_id).eq("user_id", self.user_id))
