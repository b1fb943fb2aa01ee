"""A store that makes the app wait is said quickly: a locked SQLite file and a stopped
PostgreSQL cost one bounded wait per page run (about 2 s), said once, and never freeze a
streaming reply.

Real faults: another connection holding every lock of the real data file; the fault stack's
PostgreSQL stopped under a signed-in session.
"""

from __future__ import annotations

import threading
import time


from core.history.conversation import Conversation
from core.store.sqlite import SQLiteChatStore
from tests.apptest import compatible, open_app
from tests.chatting import errors, send, use_server
from tests.fixtures.faults import another_window_writing
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


class _Paced:
    """A stream of words, one every `gap` seconds, recording the longest pause seen."""

    def __init__(self, words: int, gap: float):
        self.words, self.gap, self.longest = words, gap, 0.0

    def __iter__(self):
        last = time.monotonic()
        for i in range(self.words):
            time.sleep(self.gap)
            yield f"w{i} "
            now = time.monotonic()
            self.longest = max(self.longest, now - last - self.gap)
            last = now


def test_a_streaming_reply_is_never_frozen_by_a_periodic_save_to_a_locked_file(tmp_path):
    store = SQLiteChatStore(tmp_path)
    conversation = Conversation(store=store)
    conversation.add_user("hello")
    reply = conversation.begin_reply()
    paced = _Paced(words=30, gap=0.05)

    def streamed():
        for piece in paced:
            reply.add_answer(piece)
            yield piece

    locker_ready, release = threading.Event(), threading.Event()

    def lock():
        with another_window_writing(tmp_path, "exclusive"):
            locker_ready.set()
            release.wait(10)

    locker = threading.Thread(target=lock, daemon=True)
    locker.start()
    locker_ready.wait(5)
    try:
        for _ in conversation.keeping_partial(streamed(), reply, every=0.2):
            pass
    finally:
        release.set()
        locker.join()
    assert paced.longest < STREAM_PAUSE, paced.longest
    conversation.finish_reply(reply)
    assert conversation.turns[-1].content == reply.text


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
