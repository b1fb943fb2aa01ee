"""The user's own tally of blind comparisons: per model label, how often its reply was picked,
passed over, or judged equal to the others."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from core.history.model import Comparison


@dataclass(frozen=True)
class Tally:
    label: str  # the model's label, as the selector named it
    wins: int  # its reply picked
    losses: int  # another column's reply picked
    ties: int  # judged equal


def tally(verdicts: Iterable[Comparison]) -> list[Tally]:
    """Each column of each decided blind comparison counts once for its label: a win if its
    reply was picked, a tie if the verdict was a tie, else a loss. Most wins first, then by
    label; a comparison not blind or not decided counts nothing."""
    wins, losses, ties = Counter(), Counter(), Counter()
    for comparison in verdicts:
        if not (comparison.blind and comparison.decided):
            continue
        for reply_id, label in zip(comparison.reply_ids, comparison.labels):
            if comparison.tie:
                ties[label] += 1
            elif reply_id == comparison.picked_id:
                wins[label] += 1
            else:
                losses[label] += 1
    labels = wins.keys() | losses.keys() | ties.keys()
    return sorted((Tally(label, wins[label], losses[label], ties[label]) for label in labels),
                  key=lambda t: (-t.wins, t.label))
