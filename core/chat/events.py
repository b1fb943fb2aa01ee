"""Pieces of a streamed reply: its server-sent events, a watchdog for stalls, a <think> splitter."""

from __future__ import annotations

import codecs
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx2

from core.chat.errors import MalformedReply, ServerReportedError

_FOREVER = float("inf")


class StreamEnd:
    """How an event stream ended: only `data: [DONE]` (`saw_done`) marks a finished stream."""

    saw_done = False
    _head = b""

    @property
    def head(self) -> str:
        """The start of the body's text, to say what came when no event did."""
        return self._head.decode("utf-8", "replace")[:_HEAD_CHARS]

    def keep_head(self, data: bytes) -> None:
        if len(self._head) < _HEAD_BYTES:
            self._head += data[: _HEAD_BYTES - len(self._head)]


_HEAD_CHARS = 8192
_HEAD_BYTES = 4 * _HEAD_CHARS  # UTF-8 takes at most 4 bytes a character
COMMENT = None  # what EventParser.feed gives for a comment line (`: keep-alive`)


class EventParser:
    """Server-sent events from the bytes of a body as they arrive, read as the event-stream
    format says (lines end in CRLF, LF or CR; `data` lines join with a newline; an empty line
    ends an event), working on bytes so a chunk that arrives alone costs one split."""

    def __init__(self) -> None:
        self._line: list[bytes] = []  # the start of a line that has not ended yet
        self._after_cr = False  # the last bytes ended a line with CR: a LF next belongs to it
        self._event = b""
        self._data: list[bytes] = []
        self._id = b""  # kept across events, as the format says
        self._retry: int | None = None

    def feed(self, data: bytes) -> list[tuple[str, str] | None]:
        """The (event type, data) of each event completed by `data`, and COMMENT for each
        comment line, in the order they came."""
        if self._after_cr and data:
            self._after_cr = False
            if data[:1] == b"\n":
                data = data[1:]
        if not data:
            return []
        self._after_cr = data[-1:] == b"\r"
        if b"\r" in data:
            data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        lines = data.split(b"\n")
        if self._line:
            self._line.append(lines[0])
            if len(lines) == 1:
                return []
            lines[0] = b"".join(self._line)
            self._line = []
        rest = lines.pop()
        if rest:
            self._line.append(rest)
        seen: list[tuple[str, str] | None] = []
        for line in lines:  # one loop, no call per line: most reads hold one short event
            if not line:
                if self._event or self._data or self._id or self._retry is not None:
                    seen.append((self._event.decode("utf-8", "replace"),
                                 b"\n".join(self._data).decode("utf-8", "replace")))
                    self._event, self._data, self._retry = b"", [], None
                continue
            if line[:1] == b":":
                seen.append(COMMENT)
                continue
            name, _, value = line.partition(b":")
            if value[:1] == b" ":
                value = value[1:]
            if name == b"data":
                self._data.append(value)
            elif name == b"event":
                self._event = value
            elif name == b"id" and b"\0" not in value:
                self._id = value
            elif name == b"retry":
                try:
                    self._retry = int(value)
                except ValueError:
                    pass
        return seen


def _as_utf8(response: httpx2.Response) -> Iterator[bytes]:
    """The body's bytes as UTF-8, whatever charset the server named."""
    encoding = response.encoding or "utf-8"
    if codecs.lookup(encoding).name == "utf-8":
        yield from response.iter_bytes()
        return
    decoder = codecs.getincrementaldecoder(encoding)("replace")
    for data in response.iter_bytes():
        yield decoder.decode(data).encode()
    yield decoder.decode(b"", True).encode()


def read_events(response: httpx2.Response, end: StreamEnd,
                on_comment: Callable[[], None]) -> Iterator[dict]:
    """Each JSON chunk ({} for an event without data), read as events whatever the content type
    (some servers stream them as text/plain); a comment line (`: keep-alive`) calls
    `on_comment`. An `error` event or chunk raises ServerReportedError; data that is not a JSON
    object raises MalformedReply."""
    parser = EventParser()
    for data in _as_utf8(response):
        end.keep_head(data)
        for event in parser.feed(data):
            if event is COMMENT:
                on_comment()
                continue
            kind, text = event
            if text.startswith("[DONE]"):
                end.saw_done = True
                return
            if kind == "error":
                raise ServerReportedError(text)  # its text, JSON or not, is read for a message
            chunk = _decode(text) if text.strip() else {}
            if chunk.get("error"):
                raise ServerReportedError(chunk["error"])
            yield chunk


def _decode(data: str) -> dict:
    try:
        chunk = json.loads(data)
    except ValueError:
        raise MalformedReply(f"not JSON: {data[:80]!r}") from None
    if not isinstance(chunk, dict):
        raise MalformedReply(f"not a JSON object: {data[:80]!r}")
    return chunk


@dataclass(frozen=True, slots=True)
class Thinking:
    """Yielded by a reply stream when reasoning text arrived; the text is in `reply.reasoning`."""

    text: str


class ChunkReader:
    """Applies chunks to a reply; a non-streamed reply's `message` is read as one big delta."""

    def __init__(self, reply) -> None:
        self.reply = reply
        self.splitter = ThinkSplitter()

    def chunk(self, chunk: dict) -> Iterator[str | Thinking]:
        reply = self.reply
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            reply.usage = {k: v for k, v in usage.items() if v is not None}
        choices = chunk.get("choices")
        if not choices:
            if "message" in chunk and not usage:  # an error event some servers send as a chunk
                raise ServerReportedError(chunk)
            return
        choice = choices[0] if isinstance(choices, list) else None
        if not isinstance(choice, dict):
            raise MalformedReply("a choice that is not an object")
        delta = choice.get("delta") or choice.get("message")
        if isinstance(delta, dict):
            yield from self._delta(delta)
        elif delta is not None:
            raise MalformedReply("a delta that is not an object")
        finish = choice.get("finish_reason")
        if finish:
            reply.finish_reason = str(finish)

    def _delta(self, delta: dict) -> Iterator[str | Thinking]:
        thought = delta.get("reasoning_content") or delta.get("reasoning")
        if thought and isinstance(thought, str):
            self.reply.add_reasoning(thought)
            yield Thinking(thought)
        text = delta.get("content")
        if text and isinstance(text, str):
            yield from self._text(*self.splitter.feed(text))

    def _text(self, answer: str, thought: str) -> Iterator[str | Thinking]:
        reply = self.reply
        if thought:
            reply.add_reasoning(thought)
            yield Thinking(thought)
        if answer:
            reply.add_answer(answer)
            yield answer

    def flush(self) -> Iterator[str | Thinking]:
        """What the <think> splitter held back, at the end of the reply."""
        yield from self._text(*self.splitter.flush())


class Watchman:
    """One thread for every reply's Watchdog, asleep while none streams: a thread per reply,
    each waking 20 times a second, cost a busy server a share of its one Python core."""

    def __init__(self, poll: float = 0.05) -> None:
        self.poll = poll
        self._watched: set[Watchdog] = set()
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None

    def watch(self, dog: "Watchdog") -> None:
        with self._changed:
            self._watched.add(dog)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="reply-watchman", daemon=True)
                self._thread.start()
            self._changed.notify()

    def forget(self, dog: "Watchdog") -> bool:
        """Stop watching `dog`; False if it was not watched (already cut, or closed)."""
        with self._changed:
            watched = dog in self._watched
            self._watched.discard(dog)
            return watched

    def _run(self) -> None:
        while True:
            with self._changed:
                while not self._watched:
                    self._changed.wait()
                dogs = list(self._watched)
            for dog in dogs:
                if dog.due() and self.forget(dog):  # not closed meanwhile
                    dog.cut()
            time.sleep(self.poll)


WATCHMAN = Watchman()  # the process's one watcher (it holds sockets in flight, no user data)


class Watchdog:
    """Cuts a stalled stream: when the deadline passes, it shuts the socket down, so a blocked
    read returns at once; `fired` says which limit it was. Arming costs nothing per chunk."""

    def __init__(self, clock: Callable[[], float] = time.monotonic,
                 watchman: Watchman = WATCHMAN):
        self.deadline = _FOREVER
        self.reason = ""
        self.fired = ""
        self.halted = False
        self.clock = clock
        self._sock: socket.socket | None = None
        self._watchman = watchman

    def watch(self, sock: socket.socket | None, seconds: float, reason: str) -> None:
        self._sock = sock
        self.arm(seconds, reason)
        if sock is not None:
            self._watchman.watch(self)

    def arm(self, seconds: float, reason: str) -> None:
        self.reason = reason
        self.deadline = self.clock() + seconds if not self.halted else 0.0

    def halt(self) -> None:
        """From any thread: cut the stream at once (within one watch), whenever it is watched."""
        self.halted = True
        self.deadline = 0.0

    def due(self) -> bool:
        return not self.fired and self.clock() >= self.deadline

    def cut(self) -> None:
        self.fired = self.reason
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:  # already closed: nothing left to cut
            pass

    def close(self) -> None:
        self._watchman.forget(self)


class ThinkSplitter:
    """Separates `<think>...</think>` text from the answer, across chunk boundaries."""

    OPEN, CLOSE = "<think>", "</think>"

    def __init__(self) -> None:
        self.inside = False
        self._held = ""  # a tail that may be the start of a tag

    def feed(self, text: str) -> tuple[str, str]:
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
            # Held back: the longest end of the text that may be the start of the tag.
            keep = next((n for n in range(len(tag) - 1, 0, -1) if text.endswith(tag[:n])), 0)
            out.append(text[: len(text) - keep])
            self._held = text[len(text) - keep :]
            break
        return "".join(answer), "".join(thought)

    def flush(self) -> tuple[str, str]:
        held, self._held = self._held, ""
        return ("", held) if self.inside else (held, "")
