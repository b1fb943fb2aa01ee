"""Replies run by the server process (core/history/replies.py): a worker streams from a real
server on loopback to the end whatever its viewers do, keeps the reply in the store as it grows
(with its heartbeat), stops when asked from this process or through the store, and tells a
refusal beside the reply. The store here is the real SQLite store; the Supabase one runs the
same contract in tests/test_store_contract.py and the browser tests."""

from __future__ import annotations

import threading
import time

import pytest

from core.config import load_settings
from core.history.model import Chat, Message
from core.failures import UserFacingError
from core.history.replies import Ask, Job, Replies, Tail, save, shown_final
from core.providers.kinds import Target
from core.store.sqlite import SQLiteChatStore
from tests.fixtures.llm_servers import FORTY_WORDS, sse_chunk

SETTINGS = load_settings(environ={}, dotenv_path=None)


def _target(server) -> Target:
    return Target("openai-compatible", "Compatible", server.base_url, "k", "m")


def _chat(store) -> tuple[Chat, Message]:
    chat = store.save_chat(Chat(title="t"))
    question = store.add_message(Message(chat.id, "user", "hi"))
    return chat, question


def _job(store, chat, question, **options) -> Job:
    return Job(Message(chat.id, "assistant", "", parent_id=question.id, status="streaming"),
               store, "local", **options)


def _ask(server) -> Ask:
    return Ask(SETTINGS, _target(server), [{"role": "user", "content": "hi"}])


def _wait(predicate, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.fixture
def replies():
    return Replies(workers=4, writers=2, save_every=0.2)


@pytest.fixture
def store(tmp_path):
    return SQLiteChatStore(tmp_path)


def test_a_reply_nobody_watches_is_streamed_to_its_end_and_stored_whole(
        replies, store, canned_server):
    slow = canned_server(200, FORTY_WORDS, chunked=True, pace=0.01)
    chat, question = _chat(store)
    job = replies.start(_job(store, chat, question), _ask(slow))
    _wait(lambda: job.stored)
    stored = {m.id: m for m in store.messages(chat.id)}[job.id]
    assert (stored.content, stored.status) == (job.final.content, "complete")
    assert stored.content.startswith("word0 ") and "word39" in stored.content


def test_viewers_that_come_and_go_see_the_whole_reply_and_never_stop_it(
        replies, store, canned_server):
    slow = canned_server(200, FORTY_WORDS, chunked=True, pace=0.02)
    chat, question = _chat(store)
    job = replies.start(_job(store, chat, question), _ask(slow))
    first = job.follow(interval=0.01)
    next(first)  # a page shows the start, then the user leaves (its run ends)
    first.close()
    late = "".join(p for p in job.follow(interval=0.01) if isinstance(p, str))
    assert job.done and job.final.status == "complete"
    assert late == job.final.content and "word39" in late


def test_the_store_holds_the_reply_as_it_grows_with_a_heartbeat(replies, store, canned_server):
    slow = canned_server(200, FORTY_WORDS, chunked=True, pace=0.05)  # about 2 s
    chat, question = _chat(store)
    job = replies.start(_job(store, chat, question), _ask(slow))
    _wait(lambda: "word5" in "".join(job.pieces))
    _wait(lambda: (store.read_reply(job.id) or (None,))[0] is not None
          and "word3" in store.read_reply(job.id)[0].content)
    message, state = store.read_reply(job.id)
    assert message.status == "streaming" and state.alive
    _wait(lambda: job.stored)
    assert store.read_reply(job.id)[0].status == "complete"


def test_stop_in_this_process_cuts_a_silent_stream_at_once(replies, store, canned_server):
    silent = canned_server(200, [sse_chunk({"role": "assistant", "content": "Hel"})] * 1
                           + [": waiting\n\n"] * 400, chunked=True, pace=0.1)
    chat, question = _chat(store)
    job = replies.start(_job(store, chat, question), _ask(silent))
    _wait(lambda: job.pieces)
    asked = time.monotonic()
    job.stop()
    _wait(lambda: job.done, seconds=5)
    assert time.monotonic() - asked < 1.0
    _wait(lambda: job.stored)
    stored = store.read_reply(job.id)[0]
    assert (stored.status, stored.content, stored.error) == ("stopped", "Hel", "")


def test_stop_asked_through_the_store_reaches_the_worker(replies, store, canned_server):
    slow = canned_server(200, FORTY_WORDS, chunked=True, pace=0.2)  # about 8 s
    chat, question = _chat(store)
    job = replies.start(_job(store, chat, question), _ask(slow))
    _wait(lambda: job.added)
    SQLiteChatStore(store.path.parent).request_stop(job.id)  # another process's page
    _wait(lambda: job.done, seconds=5)
    assert job.final.status == "stopped" and "word39" not in job.final.content


def test_a_follower_through_the_store_sees_the_reply_grow_and_end(replies, store, canned_server):
    slow = canned_server(200, FORTY_WORDS, chunked=True, pace=0.05)
    chat, question = _chat(store)
    job = replies.start(_job(store, chat, question), _ask(slow))
    _wait(lambda: job.added)
    message, _ = store.read_reply(job.id)
    tail = Tail(SQLiteChatStore(store.path.parent), message, every=0.1)
    pieces = list(tail.follow())
    text = "".join(p for p in pieces if isinstance(p, str))
    assert len([p for p in pieces if isinstance(p, str)]) > 1  # it grew, not all at the end
    _wait(lambda: job.stored)
    assert text == job.final.content


def test_a_retry_that_gets_nothing_is_never_stored(replies, store, canned_server):
    refusing = canned_server(500, {"error": {"message": "overloaded"}})
    chat, question = _chat(store)
    job = replies.start(_job(store, chat, question, add_when_text=True), _ask(refusing))
    _wait(lambda: job.stored)
    assert job.final.status == "failed" and "overloaded" in job.final.error
    assert [m.role for m in store.messages(chat.id)] == ["user"]


class Refusing(SQLiteChatStore):
    def append_reply(self, *args):
        raise UserFacingError("This reply is larger than the store takes.")


def test_a_reply_the_store_refuses_is_said_beside_it_and_still_shown(
        replies, tmp_path, canned_server):
    store = Refusing(tmp_path)
    slow = canned_server(200, FORTY_WORDS, chunked=True, pace=0.01)
    chat, question = _chat(store)
    job = replies.start(_job(store, chat, question), _ask(slow))
    _wait(lambda: job.done and job.problem is not None)
    shown = shown_final(job)
    assert "word39" in shown.content
    assert "larger than the store takes" in shown.notice


def test_save_resends_from_what_the_store_holds_after_a_lost_answer(store):
    """An append whose answer was lost (a timeout after the commit) is not written twice."""
    chat, question = _chat(store)
    job = _job(store, chat, question)
    job.pieces.extend(["one ", "two "])
    save(job)
    store.append_reply(job.id, 8, "three ", 0, "")  # committed, but the answer never came back
    job.pieces.append("three ")
    save(job)  # offsets disagree: nothing written, the next save starts from the store's
    job.pieces.append("four")
    save(job)
    assert store.read_reply(job.id)[0].content == "one two three four"


def test_the_pool_runs_as_many_at_once_as_it_has_threads_and_queues_the_rest():
    from core.history.replies import Pool
    pool = Pool(3, "test")
    release = threading.Event()
    started = []

    def work(n):
        started.append(n)
        release.wait(10)

    for n in range(5):
        pool.submit(work, n)
    _wait(lambda: len(started) == 3)
    time.sleep(0.2)
    assert len(started) == 3  # bounded: the other two wait for a free thread
    release.set()
    _wait(lambda: len(started) == 5)


def _five_megabytes() -> list[str]:
    """A 5,000,000-character reply in 25,000 events of 200 characters (not all the same)."""
    events = [sse_chunk({"role": "assistant", "content": ""})]
    events += [sse_chunk({"content": f"{i:07d} " + "x" * 191 + "\n"}) for i in range(25_000)]
    return events + [sse_chunk({}, finish_reason="stop"), "data: [DONE]\n\n"]


@pytest.mark.parametrize("kind", ["sqlite", "supabase"])
def test_a_five_megabyte_reply_to_a_two_megabyte_message_is_stored_exported_and_imported_whole(
        kind, tmp_path, canned_server, request):
    """Through the worker, in each store: the reply as the server sent it, character for
    character, and the chat's JSON export imports back whole into a new account."""
    from tests.test_history_store import sqlite_backend, supabase_backend
    from core.history.transfer import import_chats, to_json
    backend = (sqlite_backend(tmp_path) if kind == "sqlite"
               else supabase_backend(request.getfixturevalue("supabase_stack")))
    store = backend.store()
    big = canned_server(200, _five_megabytes(), chunked=True)
    chat = store.save_chat(Chat(title="big"))
    message = "Q" * 2_000_000
    question = store.add_message(Message(chat.id, "user", message))
    replies = Replies(workers=2, writers=2, save_every=0.5)
    job = replies.start(_job(store, chat, question), _ask(big))
    _wait(lambda: job.stored, seconds=120)
    sent = "".join(f"{i:07d} " + "x" * 191 + "\n" for i in range(25_000))
    stored = {m.id: m for m in store.messages(chat.id)}
    assert len(stored[job.id].content) == len(sent) == 5_000_000
    assert stored[job.id].content == sent and stored[job.id].status == "complete"
    assert stored[question.id].content == message

    exported = to_json([(store.get_chat(chat.id), store.messages(chat.id))])
    elsewhere = backend.other_user()
    import_chats(elsewhere, exported)
    (imported,) = elsewhere.list_chats()
    texts = sorted(len(m.content) for m in elsewhere.messages(imported.id))
    assert texts == [2_000_000, 5_000_000]
