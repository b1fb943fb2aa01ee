"""A store that makes the app wait is said quickly: a locked SQLite file and a stopped
PostgreSQL cost one bounded wait per page run (about 2 s), said once, and never freeze a
streaming reply.

Real faults: another connection holding every lock of the real data file; the fault stack's
PostgreSQL stopped under a signed-in session.
"""

from __future__ import annotations

import time

from core.history.conversation import Conversation
from core.history.replies import Replies
from core.store.sqlite import SQLiteChatStore
from tests.apptest import compatible, open_app
from tests.chatting import errors, send, use_server
from tests.fixtures.faults import another_window_writing
from tests.fixtures.llm_servers import FORTY_WORDS
from tests.replying import TimedJob, ask, show_ended, wait
from tests.test_faults_pages_supabase import _save as _save_hosted
from tests.test_faults_pages_supabase import _signed_up_and_chatting, assert_outage, hosted  # noqa: F401

QUICK = 3.0  # seconds until the right message
STREAM_PAUSE = 0.5  # the longest a streaming reply may stop while a store write waits


def _timed(action):
    start = time.monotonic()
    result = action()
    return result, time.monotonic() - start


def _busy_boxes(at) -> list[str]:
    return [e for e in errors(at) if "busy" in e]


def test_a_locked_file_is_said_once_and_quickly_on_save_and_in_a_new_tab(
        isolated_data_dir, katan_server):
    use_server(katan_server)
    at = send(open_app(timeout=60), "before the lock")
    at.switch_page("pages/settings.py").run()
    at.text_input(key=compatible("model")).set_value("typed-while-locked").run()
    with another_window_writing(isolated_data_dir, "exclusive"):
        at, took = _timed(lambda: at.button(key=compatible("save")).click().run())
        assert not at.exception, at.exception
        assert len(_busy_boxes(at)) == 1, errors(at)
        assert took < QUICK, took

        fresh, took = _timed(lambda: open_app(timeout=60))
        assert not fresh.exception, fresh.exception
        assert _busy_boxes(fresh), errors(fresh)
        assert took < QUICK, took


def test_a_streaming_reply_is_never_paused_by_a_locked_file_and_its_end_is_stored_after(
        tmp_path, canned_server):
    store = SQLiteChatStore(tmp_path)
    conversation = Conversation(store=store)
    conversation.add_user("hello")
    pace = 0.1
    paced = canned_server(200, FORTY_WORDS, chunked=True, pace=pace)  # about 4 s
    replies = Replies(workers=1, writers=1, save_every=0.2)
    with another_window_writing(tmp_path, "exclusive"):
        job = ask(replies, conversation, paced, job=TimedJob)
        wait(lambda: job.done)
        assert not job.added  # every save waited for the lock and gave up
    gaps = [later - earlier for earlier, later in zip(job.received, job.received[1:])]
    assert len(gaps) == 39 and max(gaps) - pace < STREAM_PAUSE, gaps

    turn = show_ended(conversation, job)  # stored by its worker once the file is free
    assert job.stored and (turn.status, turn.content) == ("complete", job.final.content)
    stored = store.read_reply(job.id)[0]
    assert (stored.status, stored.content) == ("complete", turn.content)
    assert "word39" in stored.content
    assert conversation.unsaved is None
    assert store.get_chat(conversation.chat.id).current_id == turn.id


def test_a_stopped_database_is_said_quickly_on_settings_save_and_send(hosted, katan_server):
    at, _email = _signed_up_and_chatting(katan_server)
    at.switch_page("pages/settings.py").run()
    at.text_input(key=compatible("model")).set_value("typed-while-down").run()
    hosted.stop_postgres()
    try:
        at, took = _timed(lambda: at.switch_page("pages/settings.py").run())
        assert not at.exception, at.exception
        assert_outage("\n".join(errors(at)))
        assert took < QUICK, took

        at, took = _timed(lambda: _save_hosted(at))
        assert_outage("\n".join(errors(at)))
        assert took < QUICK, took

        at.switch_page("pages/chat.py").run()
        at, took = _timed(lambda: send(at, "while the database is down"))
        assert not at.exception, at.exception
        assert_outage("\n".join(errors(at)))
        assert took < QUICK + 1, took  # the model's reply itself takes its own time
    finally:
        hosted.start_postgres()
