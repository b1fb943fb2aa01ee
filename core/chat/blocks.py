"""A streamed reply as Markdown blocks: a finished block is drawn once, only the one in progress
is updated (re-rendering the whole reply on each update froze the browser). A block ends at a
blank line before a new left-margin start, and around a fenced code block. A reply that grows
past what is drawn whole shows only its latest characters below, and a code block too big to
highlight stays plain, while it streams and once finished."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import chain, count

TEXT = "text"  # more Markdown for the block in progress
CUT = "cut"  # the block in progress is finished: it is drawn once more, whole, and never again
FENCE = "fence"  # a fenced code block opens (its opening line); its body streams as CODE
CODE = "code"  # more of the open fence's body, raw text (shown plainly while it grows)
CLOSED = "closed"  # the fence closed: its whole Markdown, to draw once, highlighted

_FENCE_OPEN = re.compile(r"(`{3,}|~{3,})([^`]*)$")
_LIST_ITEM = re.compile(r"([-*+]|\d{1,9}[.)])(\s|$)")
_LINE = re.compile(r"[^\n]*\n|[^\n]+")  # a piece of text up to a newline ("\n" only), or its end
_DECIDES = 12  # characters of a line enough to tell what it starts (a list marker, a fence)


def _kind(line: str) -> str:
    if line.startswith(">"):
        return "quote"
    if _LIST_ITEM.match(line):
        return "list"
    if line.startswith("|"):
        return "table"
    return "other"


def _joined(pieces: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """The steps, each run of TEXT (or of CODE) joined into one step: one update each."""
    runs: list[tuple[str, list[str]]] = []
    for kind, text in pieces:
        if runs and kind in (TEXT, CODE) and runs[-1][0] == kind:
            runs[-1][1].append(text)
        else:
            runs.append((kind, [text]))
    return [(kind, "".join(texts)) for kind, texts in runs]


class BlockSplitter:
    """Streamed text as steps: (TEXT, s), (CUT, ""), (FENCE, line), (CODE, s), (CLOSED, md);
    TEXT and CLOSED joined in order (plus a FENCE and CODE left open) give the text back."""

    def __init__(self) -> None:
        self._line = ""  # the line being received, held back until it says what it starts
        self._decided = False  # the line's start is known: the rest is passed on as it comes
        self._blank = True  # the line passed on so far is blank
        self._fence = ""  # the open fence's marker (```` or ~~~), "" when none is open
        self._fence_text: list[str] = []  # the open fence's Markdown so far
        self._math = False  # inside a $$ block
        self._after_blank = False  # the last complete line was blank
        self._block_kind = ""  # what the block in progress started with ("" while empty)
        self.tail_size = 0  # characters of the block in progress (or open fence): one update
        self.highlighted = 0  # characters of the closed fences the stream draws highlighted
        self.closed_code = 0  # characters of every closed fence (drawn whole: all highlighted)
        self.passed = 0  # characters passed on so far (the rest is held back, not yet drawn)

    def feed(self, text: str) -> list[tuple[str, str]]:
        pieces = (match.group() for match in _LINE.finditer(text))
        return _joined(step for piece in pieces for step in self._piece(piece))

    def flush(self) -> list[tuple[str, str]]:
        """The end of the reply: what is held back goes out; an open fence stays as it is."""
        line, self._line = self._line, ""
        return _joined(self._start_of_line(line)) if line else []

    # ---- one piece of a line at a time (a piece ends at a newline or at the text's end)

    def _piece(self, piece: str) -> Iterator[tuple[str, str]]:
        ends_line = piece.endswith("\n")
        if self._decided:  # the rest of a line whose start was already passed on
            self._blank = self._blank and not piece.strip()
            yield from (self._code(piece) if self._fence else self._text(piece))
            if ends_line:
                self._end_line(self._blank)
            return
        self._line += piece
        if not ends_line and (len(self._line) < _DECIDES or self._undecided(self._line)):
            return  # too little of the line to tell what it starts
        line, self._line = self._line, ""
        yield from self._start_of_line(line)
        if ends_line:
            self._end_line(not line.strip())
        else:
            self._decided, self._blank = True, not line.strip()

    def _undecided(self, line: str) -> bool:
        """Only the whole line can tell: it may open or close a fence, or toggle math."""
        if self._fence:
            return set(line.strip()) <= {self._fence[0]}
        return line.strip() in ("", "$$") or (not self._math and bool(_FENCE_OPEN.match(line)))

    def _end_line(self, blank: bool) -> None:
        self._decided = False
        if not self._fence:
            self._after_blank = blank

    def _start_of_line(self, line: str) -> Iterator[tuple[str, str]]:
        if self._fence:
            if line.endswith("\n") and self._closes_fence(line):
                yield from self._close_fence(line)
            else:
                yield from self._code(line)
            return
        opening = _FENCE_OPEN.match(line.rstrip("\n"))
        if opening and not self._math and line.endswith("\n"):
            if self._block_kind:
                yield from self._cut()
            self._fence = opening.group(1)
            self._fence_text = [line]
            self.tail_size = len(line)
            self.passed += len(line)
            yield FENCE, line
            return
        if (self._after_blank and self._block_kind and not self._math and line.strip()
                and self._starts_new_block(line)):
            yield from self._cut()
        if line.strip() == "$$":
            self._math = not self._math
        yield from self._text(line)

    def _starts_new_block(self, line: str) -> bool:
        if line[0] in " \t":  # indented: a list item's next paragraph, or indented code
            return False
        kind = _kind(line)
        return not (kind in ("list", "quote") and kind == self._block_kind)

    def _closes_fence(self, line: str) -> bool:
        stripped = line.strip()
        return (line[:1] == self._fence[0] and set(stripped) == {self._fence[0]}
                and len(stripped) >= len(self._fence))

    # ---- steps

    def _text(self, text: str) -> Iterator[tuple[str, str]]:
        if not self._block_kind and text.strip():
            self._block_kind = _kind(text)
        self.tail_size += len(text)
        self.passed += len(text)
        yield TEXT, text

    def _code(self, text: str) -> Iterator[tuple[str, str]]:
        self._fence_text.append(text)
        self.tail_size += len(text)
        self.passed += len(text)
        yield CODE, text

    def _cut(self) -> Iterator[tuple[str, str]]:
        self._block_kind, self.tail_size = "", 0
        yield CUT, ""

    def _close_fence(self, line: str) -> Iterator[tuple[str, str]]:
        self._fence_text.append(line)
        fenced = "".join(self._fence_text)
        self._fence, self._fence_text = "", []
        self._block_kind, self.tail_size, self._after_blank = "", 0, False
        self.closed_code += len(fenced)
        if highlights_when_closed(fenced):
            self.highlighted += len(fenced)
        yield CLOSED, fenced


# A message of the user's longer than this is drawn as typed, not as Markdown: a pasted 80-200 KB
# file took the browser 0.3 to 1 s to draw, and its code was highlighted again on every update.
PLAIN_MESSAGE_OVER = 20_000


def drawn_plain(role: str, text: str) -> bool:
    return role == "user" and len(text) > PLAIN_MESSAGE_OVER


def highlighted_on_page(turns: Iterable) -> int:
    """Characters of code the browser keeps highlighted for these turns (objects with
    `role`, `content` and `reasoning`): their fences small enough to highlight, except in a
    message drawn as typed."""
    return sum(
        (0 if drawn_plain(turn.role, turn.content) else _highlighted_when_drawn(turn.content))
        + _highlighted_when_drawn(turn.reasoning or "")
        for turn in turns
    )


# A code block is highlighted (when it closes mid-reply, and in the finished message) only up
# to this size; a bigger one is drawn plain, without a language. Highlighting is one task of
# the browser's main thread, during which the page is frozen: measured here 91 ms for 8 KB,
# 165 ms for 16 KB, 1.5 to 2.5 s for 200 KB. This keeps one block's task near 150 ms.
HIGHLIGHT_WHEN_CLOSED_MAX = 15_000


def highlights_when_closed(fenced: str) -> bool:
    return len(fenced) <= HIGHLIGHT_WHEN_CLOSED_MAX


def highlighted_size(markdown: str) -> int:
    """Characters in fenced code blocks (closed or left open): the browser re-highlights them
    on every page update (bench/README.md), so a reply's pace counts them."""
    if "```" not in markdown and "~~~" not in markdown:
        return 0
    splitter = BlockSplitter()
    splitter.feed(markdown)
    splitter.flush()
    return splitter.closed_code + sum(map(len, splitter._fence_text))


@dataclass(frozen=True)
class Span:
    """Where one block of a finished message lies: text[start:end]. A fenced code block also
    has its opening line, and `body_end`, where its closing line starts (`end` if left open)."""

    start: int
    end: int
    opening: str = ""
    body_end: int = 0

    @property
    def body_start(self) -> int:
        return self.start + len(self.opening)

    @property
    def highlighted(self) -> bool:
        """A code block drawn highlighted: one small enough."""
        return bool(self.opening) and self.end - self.start <= HIGHLIGHT_WHEN_CLOSED_MAX


def block_spans(text: str) -> list[Span]:
    """The blocks of `text` as the splitter finds them while it streams, in order, covering it."""
    spans: list[Span] = []
    position = 0
    text_start: int | None = None  # the text block in progress
    fence: tuple[int, str] | None = None  # the open fence's start and opening line
    splitter = BlockSplitter()
    for kind, part in chain(splitter.feed(text), splitter.flush()):
        if kind in (CUT, FENCE) and text_start is not None:
            spans.append(Span(text_start, position))
            text_start = None
        if kind == TEXT and text_start is None:
            text_start = position
        if kind == FENCE:
            fence = (position, part)
        if kind == CLOSED:  # the whole fence; all but its closing line was passed already
            start, opening = fence
            spans.append(Span(start, start + len(part), opening, body_end=position))
            position, fence = start + len(part), None
        elif kind != CUT:
            position += len(part)
    if text_start is not None:
        spans.append(Span(text_start, position))
    if fence is not None:  # left open: code to the end
        spans.append(Span(fence[0], position, fence[1], body_end=position))
    return spans


def _highlighted_when_drawn(markdown: str) -> int:
    if "```" not in markdown and "~~~" not in markdown:
        return 0
    return sum(span.end - span.start for span in block_spans(markdown) if span.highlighted)


MARKDOWN = "markdown"  # a part of a finished message drawn as Markdown
PLAIN_CODE = "plain code"  # the body of a code block too big to highlight, drawn plain


def drawn_parts(markdown: str) -> list[tuple[str, str]]:
    """A finished message as it is drawn, in order: Markdown, except that each code block too
    big to highlight is a PLAIN_CODE part of its own (its body, without the fence lines)."""
    parts, start = [], 0
    if "```" in markdown or "~~~" in markdown:
        for span in block_spans(markdown):
            if span.opening and not span.highlighted:
                if span.start > start:
                    parts.append((MARKDOWN, markdown[start:span.start]))
                parts.append((PLAIN_CODE, markdown[span.body_start:span.body_end]))
                start = span.end
    if start < len(markdown):
        parts.append((MARKDOWN, markdown[start:]))
    return parts


# Re-highlighting a character costs the browser about what re-rendering one costs; counted
# twice, so that a page full of code spends at most about half its time on it.
HIGHLIGHT_WEIGHT = 2

# A streaming reply is drawn as it comes up to this many characters; past it the page keeps
# what it drew and shows only the latest LIVE_TAIL characters below, plainly, replaced on each
# update (a page that grew to 5 MB showed a reply's end 15 s late, frozen up to 5 s at a time;
# a paragraph in progress is Markdown parsed again on each update: 100 KB of it took 100 to
# 150 ms a time here).
LIVE_WHOLE_MAX = 50_000
LIVE_TAIL = 40_000


def shows_tail(splitter: BlockSplitter) -> bool:
    """The reply has grown past what is drawn whole while it streams."""
    return splitter.passed > LIVE_WHOLE_MAX


class UpdateCost:
    """coalesce's `rendered`: what the last update costs the browser (block in progress, or the
    tail shown, plus highlighted code); 0 when the splitter held the text back, so the next
    piece need not wait."""

    def __init__(self, splitter: BlockSplitter, highlighted_above: int,
                 whole_max: int = LIVE_WHOLE_MAX, tail: int = LIVE_TAIL) -> None:
        self.splitter, self.above, self.seen = splitter, highlighted_above, 0
        self.whole_max, self.tail = whole_max, tail

    def __call__(self) -> int:
        splitter = self.splitter
        if splitter.passed == self.seen:
            return 0
        self.seen = splitter.passed
        drawn = self.tail if splitter.passed > self.whole_max else splitter.tail_size
        return drawn + HIGHLIGHT_WEIGHT * (self.above + splitter.highlighted)


# ---- drawing: `body` is a Streamlit container, duck-typed so core stays free of Streamlit.


def draw_blocks(pieces: Iterable[str], splitter: BlockSplitter, body) -> None:
    """Stream `pieces` into `body`, each Markdown block through a write_stream of its own (once
    finished, never sent again), each fenced code block as a GrowingCode; past LIVE_WHOLE_MAX
    characters, only the latest ones (a LiveTail)."""
    received = _Received(pieces)
    steps = _steps(received, splitter)
    step = next(steps, None)
    code, fences = None, count()
    while step is not None and not shows_tail(splitter):
        kind, text = step
        if kind == TEXT:
            ended: list[tuple[str, str]] = []
            body.write_stream(_one_block(text, steps, ended, splitter, received))
            step = ended[0] if ended else None
            continue
        received.drawn += len(text) if kind != CLOSED else 0
        if kind == FENCE:
            if code is None:
                warm_highlighter(body)
            code = GrowingCode(body, f"chat-code-{next(fences)}")
        elif kind == CODE:
            code.add(text)
        elif kind == CLOSED:
            code.close(text)
        step = next(steps, None)
    if shows_tail(splitter):
        tail = LiveTail(body.empty(), received)
        for piece in received:  # the rest of the reply: the splitter only keeps count
            splitter.feed(piece)
            tail.show()
        splitter.flush()
        tail.show()


class _Received:
    """The reply's pieces as they reach the splitter; keeps the text not yet drawn (the rest
    is on the page) and, once the reply shows only its tail, how much came in all."""

    def __init__(self, pieces: Iterable[str]) -> None:
        self.pieces = iter(pieces)
        self.kept: list[str] = []  # the text received, from `kept_from` on
        self.kept_from = 0
        self.total = 0  # characters received
        self.drawn = 0  # characters drawn as blocks (the rest waits, or shows in the tail)

    def __iter__(self) -> Iterator[str]:
        for piece in self.pieces:
            self.total += len(piece)
            self.kept.append(piece)
            yield piece

    def latest(self, size: int) -> str:
        """The last `size` characters received that are not drawn as blocks."""
        text = "".join(self.kept)
        text = text[max(self.drawn - self.kept_from, len(text) - size, 0):]
        self.kept, self.kept_from = [text], self.total - len(text)
        return text


class LiveTail:
    """A huge reply's latest characters, plain, under the blocks drawn before it grew past
    LIVE_WHOLE_MAX: one placeholder, replaced on each update, so the page stops growing."""

    def __init__(self, place, received: _Received) -> None:
        box = place.container(key="chat-live-tail", gap=None)
        self.caption, self.text, self.received = box.empty(), box.empty(), received

    def show(self) -> None:
        latest = self.received.latest(LIVE_TAIL)
        beginning = "the beginning and " if self.received.drawn else ""
        self.caption.caption(
            f"Showing {beginning}the last {len(latest):,} of {self.received.total:,}"
            " characters while the reply arrives; all of it shows when it ends.")
        self.text.text(latest)


def _steps(pieces: Iterable[str], splitter: BlockSplitter) -> Iterator[tuple[str, str]]:
    for piece in chain(pieces, [None]):
        yield from splitter.feed(piece) if piece is not None else splitter.flush()


def _one_block(first: str, steps: Iterator[tuple[str, str]], ended: list,
               splitter: BlockSplitter, received: _Received) -> Iterator[str]:
    """The text of one block, for its write_stream; the step that ended it goes to `ended`.
    It ends early, as it is, when the reply grows past what is drawn whole (the piece that
    did it shows in the tail)."""
    received.drawn += len(first)
    yield first
    for kind, text in steps:
        if kind != TEXT:
            ended.append((kind, text))
            return
        if shows_tail(splitter):
            return
        received.drawn += len(text)
        yield text


WARM_KEY = "chat-highlighter-warm"  # the page hides this container (display: none)
WARM_FENCE = "```python\npass\n```"


def warm_highlighter(body) -> None:
    """Loads the highlighter early via a hidden fence: loaded lazily, it showed a finished reply
    as a skeleton for 1-2 s. A Markdown fence, since `st.code` loads it another way."""
    body.container(key=WARM_KEY, gap=None).markdown(WARM_FENCE)


class GrowingCode:
    """A fenced code block as it streams: plain text in segments of about SEGMENT characters,
    each drawn once; when the fence closes, the whole fence as Markdown, highlighted once."""

    SEGMENT = 8_000

    def __init__(self, body, key: str) -> None:
        self.place = body.empty()
        self.pieces = self.place.container(key=key, gap=None)
        self.segment, self.lines, self.size = self.pieces.empty(), [], 0

    def add(self, text: str) -> None:
        if self.size >= self.SEGMENT and self.lines[-1].endswith("\n"):
            self.segment, self.lines, self.size = self.pieces.empty(), [], 0
        self.lines.append(text)
        self.size += len(text)
        self.segment.code("".join(self.lines), language=None)

    def close(self, fenced: str) -> None:
        if highlights_when_closed(fenced):
            self.place.markdown(fenced)


class LiveBlocks:
    """draw_blocks for a reply handed over piece by piece, so that one page run can draw several
    replies in turn (a comparison's columns): each Markdown block in a placeholder of its own,
    updated while it grows and left once finished; code as GrowingCode; past `whole_max`
    characters only the latest `tail` ones, plain, under what was drawn."""

    def __init__(self, body, key: str, whole_max: int = LIVE_WHOLE_MAX,
                 tail: int = LIVE_TAIL) -> None:
        self.body, self.key, self.whole_max, self.tail = body, key, whole_max, tail
        self.splitter = BlockSplitter()
        self._block, self._text = None, []  # the block in progress and its Markdown so far
        self._code: GrowingCode | None = None
        self._fences = count()
        self._latest: list[str] | None = None  # once only the tail shows: what came since
        self._tail_place = None

    def add(self, text: str) -> None:
        if self._latest is None and self.splitter.passed + len(text) > self.whole_max:
            self._latest = []  # from this piece on, the tail
        if self._latest is not None:
            self.splitter.feed(text)  # counts only
            self._latest.append(text)
            return
        self._draw(self.splitter.feed(text))

    def end(self) -> None:
        if self._latest is None:
            self._draw(self.splitter.flush())
        else:
            self.splitter.flush()
        self.show_tail()

    def _draw(self, steps: list[tuple[str, str]]) -> None:
        for kind, text in steps:
            if kind == TEXT:
                if self._block is None:
                    self._block, self._text = self.body.empty(), []
                self._text.append(text)
                self._block.markdown("".join(self._text))
            elif kind == CUT:
                self._block = None
            elif kind == FENCE:
                self._block = None
                self._code = GrowingCode(self.body, f"{self.key}-code-{next(self._fences)}")
            elif kind == CODE:
                self._code.add(text)
            elif kind == CLOSED:
                self._code.close(text)
                self._code = None

    def show_tail(self) -> None:
        """Draw the latest characters, once the reply shows only them (call after `add`s)."""
        if self._latest is None:
            return
        if self._tail_place is None:
            box = self.body.container(key=f"{self.key}-tail", gap=None)
            self._tail_place = (box.empty(), box.empty())
        text = "".join(self._latest)[-self.tail:]
        self._latest = [text]
        caption, place = self._tail_place
        caption.caption(f"Showing the beginning and the last {len(text):,} of "
                        f"{self.splitter.passed:,} characters while the reply arrives; all of "
                        "it shows when it ends.")
        place.text(text)
