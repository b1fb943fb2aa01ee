"""Bulk writes paced under the hosted store's per-user write-rate bound.

The database lets each user write WRITE_BURST new chats and messages at once, then WRITE_RATE
a second (core.store.errors), and refuses a statement beyond that whole. An import of
150,000 messages is far beyond it: its requests are paced to the rate, and one refused anyway
(the user's other sessions wrote meanwhile) is sent again once the room for it has grown back.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from core.store.errors import WRITE_BURST, WRITE_RATE, WritesTooFast

T = TypeVar("T")
MAX_REFUSALS = 5  # in a row for one write: then the refusal is said to the user
MARGIN = 0.01  # seconds waited beyond the exact room: the database's sum rounds too


class WritePace:
    """A token bucket mirroring the database's allowance: full at first, WRITE_RATE rows a
    second back, at most WRITE_BURST."""

    def __init__(self, rate: float = WRITE_RATE, burst: int = WRITE_BURST,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.rate, self.burst, self.clock, self.sleep = rate, burst, clock, sleep
        self.room, self.at = float(burst), clock()

    def _grown(self) -> None:
        now = self.clock()
        self.room = min(self.burst, self.room + (now - self.at) * self.rate)
        self.at = now

    def write(self, rows: int, send: Callable[[], T]) -> T:
        """`send()` (a write of `rows` new rows) once there is room for them; sent again
        after a wait when the database refused it for the rate."""
        refusals = 0
        while True:
            self._grown()
            if self.room < rows:  # wait for the missing room
                self.sleep((rows - self.room) / self.rate + MARGIN)
                self._grown()
            self.room -= rows
            try:
                return send()
            except WritesTooFast:
                refusals += 1
                if refusals > MAX_REFUSALS:
                    raise
                self.room = 0.0  # the database had less room than this bucket thought
