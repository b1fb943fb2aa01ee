"""Pieces of a streamed reply: a watchdog for stalls, and a <think> splitter."""

from __future__ import annotations

import socket
import threading
import time

_FOREVER = float("inf")


class Watchdog:
    """Cuts a stalled stream: when the deadline passes, it shuts the socket down.

    A blocked read then returns at once; `fired` says which limit it was. Updating the
    deadline is one float assignment, so it costs nothing per chunk.
    """

    def __init__(self, poll: float = 0.05):
        self.deadline = _FOREVER
        self.reason = ""
        self.fired = ""
        self._sock: socket.socket | None = None
        self._stop = threading.Event()
        self._poll = poll
        self._thread = threading.Thread(target=self._run, name="reply-watchdog", daemon=True)

    def watch(self, sock: socket.socket | None, seconds: float, reason: str) -> None:
        self._sock = sock
        self.arm(seconds, reason)
        if sock is not None:
            self._thread.start()

    def arm(self, seconds: float, reason: str) -> None:
        self.reason = reason
        self.deadline = time.monotonic() + seconds

    def _run(self) -> None:
        while not self._stop.wait(self._poll):
            if time.monotonic() >= self.deadline:
                self.fired = self.reason
                try:
                    self._sock.shutdown(socket.SHUT_RDWR)
                except OSError:  # already closed: nothing left to cut
                    pass
                return

    def close(self) -> None:
        self._stop.set()


class ThinkSplitter:
    """Separates `<think>...</think>` text from the answer, across chunk boundaries."""

    OPEN, CLOSE = "<think>", "</think>"

    def __init__(self) -> None:
        self.inside = False
        self._held = ""  # a tail that may be the start of a tag

    def feed(self, text: str) -> tuple[str, str]:
        """(answer, thought) parts of `text`."""
        if not self.inside and not self._held and "<" not in text:
            return text, ""  # the common case, kept cheap
        text = self._held + text
        self._held = ""
        answer: list[str] = []
        thought: list[str] = []
        while text:
            tag = self.CLOSE if self.inside else self.OPEN
            out = thought if self.inside else answer
            index = text.find(tag)
            if index >= 0:
                out.append(text[:index])
                text = text[index + len(tag) :]
                self.inside = not self.inside
                continue
            keep = _partial_tag_tail(text, tag)
            out.append(text[: len(text) - keep])
            self._held = text[len(text) - keep :]
            break
        return "".join(answer), "".join(thought)

    def flush(self) -> tuple[str, str]:
        """Whatever was held back at the end of the stream."""
        held, self._held = self._held, ""
        return ("", held) if self.inside else (held, "")


def _partial_tag_tail(text: str, tag: str) -> int:
    """Length of the longest end of `text` that is a proper start of `tag`."""
    for size in range(min(len(tag) - 1, len(text)), 0, -1):
        if text.endswith(tag[:size]):
            return size
    return 0
