"""Imports run in the background against the real stores: progress with counts, Cancel leaves
nothing of the import, the same file twice adds nothing, one import at a time per user."""

from __future__ import annotations

import threading
import uuid

import pytest

import core.history.transfer as transfer
from core.failures import UserFacingError
from core.history.importing import (
    CANCELLED,
    DONE,
    FAILED,
    ImportRunning,
    NoFileChosen,
    current_import,
    forget_import,
    start_import,
)
from core.history.model import Chat, Message
from core.store.sqlite import given_time
from tests.chatgpt_exports import export
from tests.test_history_store import sqlite_backend, supabase_backend


@pytest.fixture(params=["sqlite", "supabase"])
def backend(request, tmp_path):
    if request.param == "sqlite":
        return sqlite_backend(tmp_path)
    return supabase_backend(request.getfixturevalue("supabase_stack"))


class Paused:
    """The store, pausing after each batch of chats it writes until the test lets it go on."""

    def __init__(self, store):
        self.store = store
        self.written = threading.Event()
        self.go_on = threading.Event()

    def add_whole_chats(self, whole):
        added = self.store.add_whole_chats(whole)
        self.written.set()
        assert self.go_on.wait(30)
        return added

    def __getattr__(self, name):
        return getattr(self.store, name)


def _owner() -> str:
    return f"owner-{uuid.uuid4().hex[:8]}"


def test_an_import_reports_its_progress_and_its_summary(backend):
    owner = _owner()
    job = start_import(export(30, seed=1, turns=3, words=10), backend.store, owner)
    progress = job.wait(120)
    assert progress.state == DONE, progress.problem
    assert (progress.done, progress.total, progress.fraction) == (30, 30, 1.0)
    assert progress.report.imported == 30
    assert progress.words.startswith("Imported 30 chats with ")
    assert len(backend.store().list_chats(limit=100)) == 30
    assert current_import(owner) is job
    forget_import(owner, job)
    assert current_import(owner) is None


def test_cancel_leaves_nothing_of_the_import(backend, monkeypatch):
    monkeypatch.setattr(transfer, "BATCH_CHATS", 4)
    store = backend.store()
    earlier = transfer.import_chats(store, export(2, seed=99, turns=2, words=5), owner="x")
    assert earlier.imported == 2  # chats of the user's own before the import: kept
    paused = Paused(backend.store())
    job = start_import(export(12, seed=2, turns=3, words=10), lambda: paused, _owner())
    assert paused.written.wait(60)
    during = job.progress()
    assert (during.state, during.total) == ("writing", 12)
    assert len(store.list_chats(limit=100)) == 2 + 4  # the first batch, each chat whole
    job.cancel()
    paused.go_on.set()
    progress = job.wait(120)
    assert progress.state == CANCELLED
    assert progress.words == "The import was cancelled; nothing of it was kept."
    assert len(store.list_chats(limit=100)) == 2
    assert backend.stored_messages() == sum(
        len(store.messages(c.id)) for c in store.list_chats(limit=100))


def test_the_same_file_twice_in_the_background_adds_nothing(backend):
    data, owner = export(8, seed=3, turns=3, words=10), _owner()
    first = start_import(data, backend.store, owner).wait(120)
    messages = backend.stored_messages()
    second = start_import(data, backend.store, owner).wait(120)
    assert (first.report.imported, second.report.imported) == (8, 0)
    assert second.report.already_there == 8
    assert second.words == ("Nothing new was imported. 8 chats were already here (left as "
                            "they were).")
    assert backend.stored_messages() == messages


def test_one_import_at_a_time_per_user_and_none_without_a_file(tmp_path):
    backend, owner = sqlite_backend(tmp_path), _owner()
    with pytest.raises(NoFileChosen, match="Choose a file to import first"):
        start_import(None, backend.store, owner)
    paused = Paused(backend.store())
    job = start_import(export(3, seed=4, turns=2, words=5), lambda: paused, owner)
    assert paused.written.wait(60)
    with pytest.raises(ImportRunning):
        start_import(export(1), backend.store, owner)
    other = start_import(export(1, seed=5), backend.store, _owner())  # another user's: runs
    paused.go_on.set()
    assert job.wait(60).state == DONE and other.wait(60).state == DONE


def test_a_refused_file_imports_nothing_and_says_why(tmp_path):
    backend = sqlite_backend(tmp_path)
    broken = export(3, seed=6).replace(b'"current_node": "', b'"current_node": "gone-', 1)
    progress = start_import(broken, backend.store, _owner()).wait(60)
    assert progress.state == FAILED
    assert progress.words.startswith("Nothing was imported: conversation 1 (")
    assert "current message is not in its message tree" in progress.words
    assert backend.store().list_chats() == []


# ---- the stores' call for an import: add_whole_chats


def _whole(title: str, count: int = 3, created: str = "2024-05-01T10:00:00+00:00"):
    chat = Chat(title=title, id=str(uuid.uuid4()), created_at=created,
                updated_at="2024-05-02T10:00:00+00:00")
    messages, parent = [], None
    for n in range(count):
        message = Message(chat_id=chat.id, role=("user", "assistant")[n % 2],
                          content=f"{title} {n}", parent_id=parent, id=str(uuid.uuid4()),
                          created_at=f"2024-05-01T10:00:0{n}+00:00")
        messages.append(message)
        parent = message.id
    return chat.with_changes(current_id=parent), messages, []


def test_whole_chats_are_stored_with_their_times_and_a_stored_one_is_left_as_it_is(backend):
    store = backend.store()
    first, second = _whole("First"), _whole("Second")
    assert store.add_whole_chats([first]) == [first[0].id]
    changed = (first[0].with_changes(title="Changed"), first[1][:1], [])
    assert store.add_whole_chats([changed, second]) == [second[0].id]
    for chat, messages, _ in (first, second):
        stored = store.get_chat(chat.id)
        assert (stored.title, stored.current_id) == (chat.title, chat.current_id)
        assert given_time(stored.created_at) == given_time(chat.created_at)
        assert [(m.id, m.parent_id, m.content, given_time(m.created_at))
                for m in store.messages(chat.id)] == [
            (m.id, m.parent_id, m.content, given_time(m.created_at)) for m in messages]
    assert backend.other_user().list_chats() == []  # the user's own, under their rules


def test_whole_chats_are_all_or_nothing(backend):
    store = backend.store()
    good, bad = _whole("Good"), _whole("Bad")
    orphan = bad[1][1].with_changes(parent_id=str(uuid.uuid4()))  # answers nothing stored
    with pytest.raises(UserFacingError):
        store.add_whole_chats([good, (bad[0], [bad[1][0], orphan], [])])
    assert store.list_chats() == [] and backend.stored_messages() == 0


def test_while_writing_the_time_left_is_said_at_the_pace_so_far(tmp_path, monkeypatch):
    """After a few seconds of writing, the progress says the time left at the pace so far
    (a hosted store takes an import's rows at its own rate): 4 of 12 chats in 40 s, 80 s
    left; before that, no guess."""
    import core.history.importing as importing

    monkeypatch.setattr(transfer, "BATCH_CHATS", 4)
    clock = [1000.0]
    monkeypatch.setattr(importing.time, "monotonic", lambda: clock[0])
    backend = sqlite_backend(tmp_path)
    paused = Paused(backend.store())
    job = start_import(export(12, seed=5, turns=2, words=5), lambda: paused, _owner())
    assert paused.written.wait(60)
    assert job.progress().words == "Importing: 0 of 12 chats"  # no chat counted yet
    job.done = 4  # as its thread counts them, after the batch
    clock[0] += importing.ESTIMATE_AFTER - 0.5
    assert job.progress().words == "Importing: 4 of 12 chats"  # too early to say
    clock[0] += 40 - importing.ESTIMATE_AFTER + 0.5
    assert job.progress().left_seconds == pytest.approx(80)
    assert job.progress().words == "Importing: 4 of 12 chats, about 2 minutes left"
    job.done = 11
    assert job.progress().words == "Importing: 11 of 12 chats, less than a minute left"
    clock[0] += 1000  # 11 chats in 1,040 s: the last one in about 95 s
    assert job.progress().words == "Importing: 11 of 12 chats, about 2 minutes left"
    paused.go_on.set()
    assert job.wait(60).state == DONE
    assert job.progress().left_seconds is None
