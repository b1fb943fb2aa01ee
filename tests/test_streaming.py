"""The pieces of a streamed reply: <think> splitting, coalescing, the stall watchdog."""

from __future__ import annotations

import socket
import threading
import time

from hypothesis import given
from hypothesis import strategies as st

from core.chat.call import MAX_UPDATE_SECONDS, Reply, Thinking, coalesce
from core.chat.events import ThinkSplitter, Watchdog, Watchman

_piece = st.text(alphabet="ab <>/thinkTHINK\n", max_size=12)


def _split_all(text: str, cuts: list[int]) -> tuple[str, str]:
    splitter = ThinkSplitter()
    answer, thought, last = [], [], 0
    for cut in sorted(c % (len(text) + 1) for c in cuts) + [len(text)]:
        a, t = splitter.feed(text[last:cut])
        answer.append(a)
        thought.append(t)
        last = cut
    a, t = splitter.flush()
    return "".join(answer) + a, "".join(thought) + t


@given(before=_piece, inside=_piece, after=_piece, cuts=st.lists(st.integers(0, 200), max_size=8))
def test_think_text_is_split_the_same_however_the_stream_is_chunked(before, inside, after, cuts):
    """Tags split across chunk boundaries are still recognised."""
    text = f"{before}<think>{inside}</think>{after}"
    assert _split_all(text, cuts) == _split_all(text, [])


def test_think_block_goes_to_reasoning():
    assert _split_all("<think>plan it</think>The answer.", [3, 9, 20]) == ("The answer.", "plan it")


def test_text_without_tags_passes_straight_through():
    assert ThinkSplitter().feed("plain a < b") == ("plain a < b", "")


def test_coalesce_sends_the_first_chunk_at_once_and_joins_the_rest():
    def chunks():
        yield "first"
        for i in range(1000):
            yield "x"

    out = list(coalesce(chunks(), interval=10))
    assert out[0] == "first"
    assert "".join(out) == "first" + "x" * 1000
    assert len(out) == 2


class FakeClock:
    """A clock the test moves by hand: no test waits on real time against a deadline."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def every_ms(clock: FakeClock, count: int, text: str):
    """`count` chunks of `text`, one per millisecond of `clock`."""
    for _ in range(count):
        clock.advance(0.001)
        yield text


def test_watchdog_cuts_a_stalled_read():
    server, client = socket.socketpair()
    client.settimeout(30)  # a safety net only: the test never relies on it
    clock = FakeClock()
    dog = Watchdog(clock=clock, watchman=Watchman(poll=0.01))
    try:
        dog.watch(client, 30, "idle")
        clock.advance(31)
        assert client.recv(10) == b""  # unblocked by the shutdown, not by data
        assert dog.fired == "idle"
    finally:
        dog.close()
        server.close()
        client.close()


def test_watchdog_rearmed_in_time_never_fires_and_fires_once_left_alone():
    server, client = socket.socketpair()
    clock = FakeClock()
    dog = Watchdog(clock=clock, watchman=Watchman(poll=0.01))
    try:
        dog.watch(client, 30, "first_token")
        for _ in range(20):  # 20 gaps of 20 s: 400 s in all, each gap under the limit
            clock.advance(20)
            dog.arm(30, "idle")
            time.sleep(0.02)  # let the watchdog look at the clock between gaps
        assert dog.fired == ""
        clock.advance(30)
        client.settimeout(30)
        assert client.recv(10) == b""
        assert dog.fired == "idle"
    finally:
        dog.close()
        server.close()
        client.close()


def test_coalesce_updates_less_often_as_the_reply_grows():
    """Each update re-renders the whole reply: long replies get fewer, larger updates."""
    clock = FakeClock()

    def chunks():
        return every_ms(clock, 200, "x" * 1000)

    unbounded = list(coalesce(chunks(), interval=0.0, render_rate=1e12, clock=clock))
    bounded = list(coalesce(chunks(), interval=0.0, render_rate=100_000, clock=clock))
    assert "".join(bounded) == "x" * 200_000
    assert len(unbounded) == 200  # without the bound: an update per chunk
    assert len(bounded) < 30  # re-rendering at most ~100,000 characters a second
    assert bounded[0] == "x" * 1000  # the first chunk still goes out at once


def test_coalesce_paces_by_the_block_in_progress_when_the_page_says_what_it_redraws():
    """A page that draws finished blocks once re-renders only the block in progress: a long
    reply made of short blocks keeps its fast updates."""
    clock = FakeClock()

    def chunks():
        return every_ms(clock, 200, "x" * 1000)

    by_block = list(coalesce(chunks(), interval=0.0, render_rate=100_000, clock=clock,
                             rendered=lambda: 2_000))  # a 2,000-character block in progress
    by_reply = list(coalesce(chunks(), interval=0.0, render_rate=100_000, clock=clock))
    assert "".join(by_block) == "x" * 200_000
    assert len(by_block) >= 9  # an update each 20 ms (2,000 characters at 100,000 a second)
    assert len(by_reply) <= 5  # the whole reply: ever fewer


def test_coalesce_updates_at_least_every_two_seconds_however_heavy_the_page():
    """A page full of highlighted code slows the updates down, never to a standstill."""
    clock = FakeClock()

    def chunks():
        return every_ms(clock, 10_000, "ab")

    heavy = list(coalesce(chunks(), interval=0.05, clock=clock, crowd=lambda: 1.0,
                          rendered=lambda: 10_000_000))  # 100 s of re-rendering at 100,000/s
    assert "".join(heavy) == "ab" * 10_000
    assert MAX_UPDATE_SECONDS == 2.0
    assert 5 <= len(heavy) <= 7  # the first chunk at once, then one every 2 s, then the rest


def test_coalesce_updates_less_often_while_many_replies_stream():
    clock = FakeClock()

    def chunks():
        return every_ms(clock, 1000, "ab")

    alone = list(coalesce(chunks(), interval=0.05, clock=clock, crowd=lambda: 1.0))
    crowded = list(coalesce(chunks(), interval=0.05, clock=clock, crowd=lambda: 5.0))
    assert "".join(crowded) == "ab" * 1000
    assert 18 <= len(alone) <= 22  # every 50 ms
    assert 4 <= len(crowded) <= 6  # every 250 ms


def test_the_crowding_grows_with_the_replies_streaming_and_stops_growing():
    """Property-like check over every count from 0 to 200 replies streaming at once."""
    from core.chat.call import Streaming

    streaming = Streaming()
    seen = []
    for _ in range(200):
        seen.append(streaming.crowding())
        streaming.__enter__()
    assert seen[0] == seen[Streaming.CROWD] == 1.0
    assert seen == sorted(seen) and seen[-1] == Streaming.MOST
    for _ in range(200):
        streaming.__exit__(None, None, None)
    assert streaming.now == 0 and streaming.crowding() == 1.0


def test_coalesce_never_passes_thinking_on_and_redraws_it_at_most_once_per_interval():
    clock = FakeClock()
    redraws: list[float] = []

    def chunks():
        for _ in range(100):  # 100 reasoning pieces over one second
            clock.advance(0.01)
            yield Thinking("hm ")
        yield "The answer."

    out = list(coalesce(chunks(), interval=0.1, on_thinking=lambda: redraws.append(clock()),
                        clock=clock))
    assert out == ["The answer."]
    assert 9 <= len(redraws) <= 12  # about one redraw per 0.1 s, plus one at the end
    assert all(b - a >= 0.1 - 1e-9 for a, b in zip(redraws, redraws[1:-1]))


def test_coalesce_redraws_the_last_reasoning_at_the_end():
    clock = FakeClock()
    redraws = []
    pieces = [Thinking("a"), Thinking("b")]  # both within one interval
    list(coalesce(iter(pieces), interval=10, on_thinking=lambda: redraws.append(1), clock=clock))
    assert redraws == [1, 1]  # the first at once, the second when the stream ends


def test_thinking_time_runs_while_reasoning_and_freezes_when_the_answer_starts():
    clock = FakeClock()
    reply = Reply(clock=clock)
    assert reply.thinking_seconds is None
    clock.advance(2)
    reply.add_reasoning("let me see")
    clock.advance(5)
    assert reply.thinking_seconds == 5
    reply.add_answer("Hello")
    clock.advance(100)
    assert reply.thinking_seconds == 5
    assert reply.first_token_seconds == 7


def test_one_thread_watches_every_reply_and_cuts_each_stalled_one():
    """A thread per reply woke 20 times a second each; one watchman serves them all."""
    watchman = Watchman(poll=0.01)
    clock = FakeClock()
    pairs = [socket.socketpair() for _ in range(20)]
    threads_before = threading.active_count()
    dogs = [Watchdog(clock=clock, watchman=watchman) for _ in pairs]
    try:
        for dog, (_, client) in zip(dogs, pairs):
            dog.watch(client, 30, "idle")
        assert threading.active_count() == threads_before + 1
        dogs[0].close()  # a reply that ended in time is never cut
        clock.advance(31)
        for _, client in pairs[1:]:
            client.settimeout(30)
            assert client.recv(10) == b""
        assert [dog.fired for dog in dogs] == [""] + ["idle"] * 19
    finally:
        for dog in dogs:
            dog.close()
        for server, client in pairs:
            server.close()
            client.close()
