"""The tally of blind verdicts (core.history.compare): examples, and its properties."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from core.history.compare import Tally, tally
from core.history.model import MAX_COMPARED, MIN_COMPARED, Comparison

LABELS = ["alpha · s", "beta · s", "gamma · s", "delta · s", "épsilon · s"]


def judged(labels: list[str], picked: int | None = None, tie: bool = False,
           blind: bool = True) -> Comparison:
    replies = tuple(str(uuid.uuid4()) for _ in labels)
    return Comparison(chat_id="c", message_id="m", reply_ids=replies, labels=tuple(labels),
                      blind=blind, picked_id=None if picked is None else replies[picked],
                      tie=tie)


def test_each_column_wins_loses_or_ties_most_wins_first():
    verdicts = [judged(["b", "a"], picked=0), judged(["a", "b", "c"], picked=1),
                judged(["a", "c"], tie=True), judged(["c", "a"], picked=1)]

    assert tally(verdicts) == [Tally("b", 2, 0, 0), Tally("a", 1, 2, 1), Tally("c", 0, 2, 1)]


def test_a_comparison_not_blind_or_not_decided_counts_nothing():
    assert tally([judged(["a", "b"], picked=0, blind=False), judged(["a", "b"])]) == []


def test_equal_wins_are_ordered_by_label():
    assert [t.label for t in tally([judged(["z", "y"], picked=0),
                                    judged(["y", "x"], picked=0)])] == ["y", "z", "x"]


@st.composite
def verdicts(draw) -> Comparison:
    columns = draw(st.integers(MIN_COMPARED, MAX_COMPARED))
    labels = draw(st.lists(st.sampled_from(LABELS), min_size=columns, max_size=columns))
    tie = draw(st.booleans())
    picked = None if tie else draw(st.integers(0, columns - 1))
    return judged(labels, picked=picked, tie=tie)


@given(st.lists(verdicts(), max_size=30))
def test_every_column_counts_once_and_each_pick_is_one_win(comparisons):
    """Property: for each decided blind comparison, wins + losses + ties over its labels equal
    its number of columns; over many, the wins total the verdicts that are not ties."""
    for comparison in comparisons:
        counted = tally([comparison])
        assert sum(t.wins + t.losses + t.ties for t in counted) == len(comparison.labels)
    total = tally(comparisons)
    assert sum(t.wins for t in total) == sum(not c.tie for c in comparisons)
    assert sum(t.wins + t.losses + t.ties for t in total) == sum(
        len(c.labels) for c in comparisons)
    assert [(-t.wins, t.label) for t in total] == sorted((-t.wins, t.label) for t in total)
