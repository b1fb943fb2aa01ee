"""The pieces of a streamed reply: <think> splitting, coalescing, the stall watchdog."""

from __future__ import annotations

import socket
import time

from hypothesis import given
from hypothesis import strategies as st

from core.chat import coalesce
from core.streaming import ThinkSplitter, Watchdog

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


def test_watchdog_cuts_a_stalled_read():
    server, client = socket.socketpair()
    try:
        dog = Watchdog(poll=0.01)
        dog.watch(client, 0.2, "idle")
        started = time.monotonic()
        assert client.recv(10) == b""  # unblocked by the shutdown, not by data
        assert 0.15 < time.monotonic() - started < 2
        assert dog.fired == "idle"
    finally:
        server.close()
        client.close()


def test_watchdog_rearmed_in_time_never_fires():
    server, client = socket.socketpair()
    try:
        dog = Watchdog(poll=0.01)
        dog.watch(client, 0.2, "idle")
        for _ in range(5):
            time.sleep(0.05)
            dog.arm(0.2, "idle")
        dog.close()
        assert dog.fired == ""
    finally:
        server.close()
        client.close()


def test_coalesce_updates_less_often_as_the_reply_grows():
    """Each update re-renders the whole reply: long replies get fewer, larger updates."""

    def chunks():
        for _ in range(200):
            time.sleep(0.001)
            yield "x" * 1000

    unbounded = list(coalesce(chunks(), interval=0.0, render_rate=1e12))
    bounded = list(coalesce(chunks(), interval=0.0, render_rate=100_000))
    assert "".join(bounded) == "x" * 200_000
    assert len(unbounded) > 150  # without the bound: an update per chunk
    assert len(bounded) < 30  # re-rendering at most ~100,000 characters a second
    assert bounded[0] == "x" * 1000  # the first chunk still goes out at once
