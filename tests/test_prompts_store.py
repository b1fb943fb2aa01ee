"""The saved prompts' store contract, the same tests on both backends (SQLite and Supabase):
a prompt kept field for field, names unique per user whatever their case, many stored all or
none, each user's bounded, and one user never sees another's."""

from __future__ import annotations

import sqlite3
import uuid
from contextlib import closing
from dataclasses import dataclass, replace
from typing import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from postgrest.exceptions import APIError

from core.auth import SupabaseAuth
from core.config import Settings
from core.failures import UserFacingError
from core.prompts.library import MAX_PROMPTS, SavedPrompt
from core.prompts.stores import SQLitePromptStore, SupabasePromptStore, prompt_failure
from core.store.sqlite import DB_FILENAME

PASSWORD = "correct horse battery"


@dataclass
class Backend:
    store: Callable[[], object]  # a new session of the same user
    other_user: Callable[[], object]
    fill_to: Callable[[int], None]  # the user's prompts made up to n, below the store


def sqlite_backend(tmp_path) -> Backend:
    folder = tmp_path / "store"
    SQLitePromptStore(folder)

    def fill_to(count: int) -> None:
        with closing(sqlite3.connect(folder / DB_FILENAME)) as db, db:
            db.executemany("insert into prompts (id, user_id, name, text) values (?, ?, ?, ?)",
                           [(str(uuid.uuid4()), "local", f"filler {i}", "t")
                            for i in range(count)])

    return Backend(lambda: SQLitePromptStore(folder),
                   lambda: SQLitePromptStore(folder, user_id="someone-else"), fill_to)


def supabase_backend(stack) -> Backend:
    settings_ = Settings(supabase_url=stack.url, supabase_anon_key=stack.anon_key)

    def signed_up() -> str:
        email = f"prompts-{uuid.uuid4().hex[:12]}@example.com"
        SupabaseAuth(settings_).sign_up(email, PASSWORD)
        return email

    def store_for(email: str) -> SupabasePromptStore:
        auth = SupabaseAuth(settings_)
        user = auth.sign_in(email, PASSWORD)
        return SupabasePromptStore(auth.client, user.id)

    email = signed_up()

    def fill_to(count: int) -> None:
        user_id = store_for(email).user_id
        stack.sql("insert into public.prompts (user_id, name, text) select %s, 'filler ' || i, 't'"
                  " from generate_series(1, %s) as i", user_id, count)

    return Backend(lambda: store_for(email), lambda: store_for(signed_up()), fill_to)


@pytest.fixture(params=["sqlite", "supabase"])
def backend(request, tmp_path) -> Backend:
    if request.param == "sqlite":
        return sqlite_backend(tmp_path)
    return supabase_backend(request.getfixturevalue("supabase_stack"))


FULL = SavedPrompt(name="Code review", text="Review {{code}} for {{ concern }}.",
                   model="qwen · Team server", system_prompt="You are terse.", temperature=0.3)


def same(stored: SavedPrompt, prompt: SavedPrompt) -> bool:
    return stored == replace(prompt, id=stored.id)


def test_a_prompt_is_kept_field_for_field_and_listed_by_name(backend):
    store = backend.store()
    assert store.list() == []
    added = store.add(FULL)
    plain = store.add(SavedPrompt(name="apply", text="Just text"))
    assert added.id and plain.id and added.id != plain.id
    assert same(added, FULL) and plain.temperature is None and plain.model == ""
    assert backend.store().list() == [plain, added]  # another session; by name, any case
    assert added.variables == ["code", "concern"]


def test_a_prompt_is_edited_and_deleted(backend):
    store = backend.store()
    added = store.add(FULL)
    changed = store.update(added.id, replace(FULL, name="Review", temperature=None, model=""))
    assert changed.id == added.id and (changed.name, changed.temperature, changed.model) == (
        "Review", None, "")
    assert backend.store().list() == [changed]
    store.delete(added.id)
    store.delete(added.id)  # gone already: not an error
    assert backend.store().list() == []
    with pytest.raises(UserFacingError, match="no longer exists"):
        store.update(added.id, FULL)


def test_a_name_is_unique_per_user_whatever_its_case(backend):
    store = backend.store()
    first = store.add(FULL)
    other = store.add(SavedPrompt(name="Other", text="t"))
    for taken in ("code REVIEW", "Code review"):
        with pytest.raises(UserFacingError, match="already have a prompt"):
            store.add(SavedPrompt(name=taken, text="again"))
        with pytest.raises(UserFacingError, match="already have a prompt"):
            store.update(other.id, SavedPrompt(name=taken, text="again"))
    assert store.update(first.id, replace(FULL, name="CODE review")).name == "CODE review"
    assert backend.other_user().add(FULL).name == FULL.name  # another user's names are theirs
    assert [p.name for p in store.list()] == ["CODE review", "Other"]


def test_many_are_stored_all_or_none(backend):
    store = backend.store()
    store.add(SavedPrompt(name="kept", text="t"))
    batch = [SavedPrompt(name=f"new {i}", text=f"t {i}") for i in range(3)]
    with pytest.raises(UserFacingError, match="already have a prompt"):
        store.add_many([*batch, SavedPrompt(name="KEPT", text="other")])
    with pytest.raises(UserFacingError, match="temperature"):
        store.add_many([*batch, SavedPrompt(name="hot", text="t", temperature=5)])
    assert [p.name for p in store.list()] == ["kept"]
    stored = store.add_many(batch)
    assert [p.name for p in stored] == [p.name for p in batch]
    assert len(backend.store().list()) == 4


def test_each_user_keeps_at_most_the_bound(backend):
    backend.fill_to(MAX_PROMPTS - 1)
    store = backend.store()
    store.add(SavedPrompt(name="the last one", text="t"))
    for attempt in (lambda: store.add(SavedPrompt(name="one more", text="t")),
                    lambda: store.add_many([SavedPrompt(name="x", text="t")])):
        with pytest.raises(UserFacingError, match=f"most saved prompts .*{MAX_PROMPTS}"):
            attempt()
    assert len(store.list()) == MAX_PROMPTS
    assert backend.other_user().add(FULL).name == FULL.name  # bounded per user


def test_one_user_never_sees_nor_changes_anothers_prompts(backend):
    mine = backend.store().add(FULL)
    theirs = backend.other_user()
    assert theirs.list() == []
    with pytest.raises(UserFacingError, match="no longer exists"):
        theirs.update(mine.id, replace(FULL, text="taken over"))
    theirs.delete(mine.id)
    assert backend.store().list() == [mine]


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"),
                    min_size=1, max_size=300).filter(str.strip),
       name=st.text(st.characters(exclude_categories=("Cs", "Cc")), min_size=1,
                    max_size=100).map(str.strip).filter(bool))
def test_any_text_and_name_come_back_as_written(backend, text, name):
    """Property: a prompt's text (any characters a browser sends) and name come back exactly."""
    store = backend.store()
    for prompt in store.list():
        store.delete(prompt.id)
    stored = store.add(SavedPrompt(name=name, text=text))
    assert (stored.name, stored.text) == (name, text)
    assert backend.store().list() == [stored]


@pytest.mark.parametrize("error, said", [
    ({"code": "23505", "message": "duplicate key value violates unique constraint "
      "\"prompts_user_name_key\""}, "already have a prompt named “Fix”"),
    ({"code": "SB071", "message": "at most 500 saved prompts per user"},
     "most saved prompts Switchboard keeps: 500"),
    ({"code": "23514", "message": "new row for relation \"prompts\" violates check constraint "
      "\"prompts_temperature_range\""}, "temperature must be between 0 and 2"),
    ({"code": "23514", "message": "violates check constraint \"prompts_name_length\""},
     "name must be 1 to 100 characters"),
])
def test_the_databases_refusals_are_said_in_plain_words(error, said):
    failure = prompt_failure(APIError(error), "Fix")
    assert isinstance(failure, UserFacingError) and said in str(failure)
    assert "Nothing was saved" in str(failure) or "nothing was saved" in str(failure)
