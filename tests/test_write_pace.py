"""Bulk writes paced under the hosted store's write-rate bound (core.store.pace): against a
simulation of the database's allowance (the formula of 20261207063100_bound_each_user.sql),
then once for real: an import beyond the burst on the stand-in stack."""

from __future__ import annotations

import time

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from core.store.errors import WRITE_BURST, WRITE_RATE, WritesTooFast
from core.history.model import Chat, Message
from core.history.transfer import import_chats, to_json
from core.store.pace import MARGIN, MAX_REFUSALS, WritePace
from tests.test_history_rls import app_store
from tests.test_rls import new_account


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.slept.append(seconds)
        self.now += seconds


class Allowance:
    """The database's side: WRITE_BURST at first, WRITE_RATE a second back, a statement
    beyond it refused whole (nothing of it counted)."""

    def __init__(self, clock: Clock, start: float = WRITE_BURST) -> None:
        self.clock, self.left, self.at = clock, start, clock()
        self.written = self.refused = 0

    def insert(self, rows: int) -> int:
        now = self.clock()
        left = min(WRITE_BURST, self.left + WRITE_RATE * max(now - self.at, 0)) - rows
        if left < 0:
            self.refused += 1
            raise WritesTooFast("Too many chats and messages were saved in a short time.")
        self.left, self.at = left, max(self.at, now)
        self.written += rows
        return rows


writes = st.lists(st.tuples(st.integers(1, 1000), st.floats(0, 20)), min_size=1, max_size=40)


@settings(max_examples=500)
@example(writes=[(1, 0.0), (1000, 0.0), (1000, 0.0), (1, 0.0)])  # 999 + 200 * 0.005 < 1000
@example(writes=[(1000, 0.0), (1000, 0.0), (1000, 5.0)])  # the room exactly enough: no wait
@given(writes=writes)
def test_paced_writes_are_never_refused_and_wait_only_for_missing_room(writes):
    """Property: however large the writes (up to a request's 1,000 rows) and however far
    apart, the database never refuses one, and the pace waits only when the room it keeps
    falls short: a write finding room is sent at once."""
    clock = Clock()
    database, pace = Allowance(clock), WritePace(clock=clock, sleep=clock.sleep)
    for rows, idle in writes:
        clock.now += idle
        slept = len(clock.slept)
        room = min(WRITE_BURST, database.left + WRITE_RATE * (clock() - database.at))
        assert pace.write(rows, lambda: database.insert(rows)) == rows
        assert (len(clock.slept) > slept) == (room < rows - 1e-6)
        if room < rows - 1e-6:  # for exactly the missing room (and the margin)
            assert sum(clock.slept[slept:]) == pytest.approx((rows - room) / WRITE_RATE + MARGIN)
    assert database.refused == 0
    assert database.written == sum(rows for rows, _ in writes)


@settings(max_examples=100)
@given(spent=st.floats(0, WRITE_BURST), rows=st.integers(1, 1000))
def test_a_write_refused_for_the_rate_is_sent_again_once_its_room_is_back(spent, rows):
    """Property: when the user's other writes spent the allowance unseen by this pace, the
    refused write waits for its room (rows / rate) and then passes: one refusal, not more."""
    clock = Clock()
    database = Allowance(clock, start=WRITE_BURST - spent)
    pace = WritePace(clock=clock, sleep=clock.sleep)
    assert pace.write(rows, lambda: database.insert(rows)) == rows
    assert database.refused == (1 if WRITE_BURST - spent < rows else 0)
    if database.refused:
        assert clock.slept == [pytest.approx(rows / WRITE_RATE + MARGIN)]


def test_a_write_refused_again_and_again_is_said_to_the_user():
    clock = Clock()
    pace, tries = WritePace(clock=clock, sleep=clock.sleep), []

    def refused() -> None:
        tries.append(clock())
        raise WritesTooFast("Too many chats and messages were saved in a short time.")

    with pytest.raises(WritesTooFast):
        pace.write(500, refused)
    assert len(tries) == MAX_REFUSALS + 1
    assert all(b - a == pytest.approx(500 / WRITE_RATE + MARGIN)
               for a, b in zip(tries, tries[1:]))


def test_an_import_beyond_the_burst_is_paced_and_kept_whole_on_the_stand_in(supabase_stack):
    """For real: 2,600 messages in 40 chats, more than the 2,000 written at once, imported
    through the app's Supabase store: every row kept, nothing refused, the wait about what
    the rate asks for the rows past the burst."""
    chats = []
    for n in range(40):
        chat = Chat(title=f"imported {n}")
        messages, parent = [], None
        for m in range(65):
            message = Message(chat_id=chat.id, role=("user", "assistant")[m % 2],
                              content=f"message {m} of chat {n}", parent_id=parent)
            messages.append(message)
            parent = message.id
        chats.append((chat.with_changes(current_id=parent), messages))
    account = new_account(supabase_stack)
    store = app_store(supabase_stack, account)
    started = time.monotonic()
    report = import_chats(store, to_json(chats), account.id)
    took = time.monotonic() - started
    rows = 40 + 40 * 65
    assert report.imported == 40
    [totals] = supabase_stack.sql("select chats, messages from public.user_totals"
                                  " where user_id = %s", account.id)
    assert (totals["chats"], totals["messages"]) == (40, 40 * 65)
    assert took >= (rows - WRITE_BURST) / WRITE_RATE * 0.9  # paced, not refused
