"""A long finished message, a page at a time: the browser draws one page of it, never megabytes
(a 5 MB reply drawn whole froze the page for seconds, and again on every rerun)."""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass

from core.chat.blocks import block_spans

# A message longer than this is shown in pages of at most about this size: the browser draws
# a page in one task (100 KB of Markdown took it 150 to 300 ms here, 5 MB seconds).
PAGE_CHARS = 100_000
# The same for text shown as typed (a user's pasted file): the browser breaks its lines
# itself, which costs more (100 KB: 240 ms, 200 KB: 1 s here; 50 KB drawn as the reply starts
# arriving took 250-380 ms, 30 KB at most 120 ms: bench/stream.py cases b and c).
PLAIN_PAGE_CHARS = 30_000

_MARKER = re.compile(r"`{3,}|~{3,}")
_MATH_LINE = re.compile(r"^[ \t]*\$\$[ \t]*$", re.MULTILINE)  # opens or closes a $$ block


@dataclass(frozen=True)
class Page:
    """One page: `text` is drawn; the message's own characters on it are [start, end)."""

    text: str
    start: int
    end: int


def plain_pages(text: str, size: int = PLAIN_PAGE_CHARS) -> list[Page]:
    """`text` (shown as typed) in pages of at most `size` characters, each ending at a line end
    when one is in its last quarter, else at a space, else anywhere."""
    pages, start = [], 0
    while len(text) - start > size:
        end = _cut(text, start, start + size)
        pages.append(Page(text[start:end], start, end))
        start = end
    pages.append(Page(text[start:], start, len(text)))
    return pages


def markdown_pages(text: str, size: int = PAGE_CHARS) -> list[Page]:
    """`text` (Markdown) in pages of about `size` characters, each Markdown of its own: a page
    ends between blocks when a block starts in its last quarter, else inside a block (at a
    line end when it can). A code block cut by a page's end is closed there and opened again,
    with the same opening line, at the next page's start."""
    if len(text) <= size:
        return [Page(text, 0, len(text))]
    spans = block_spans(text)
    starts = [span.start for span in spans]
    pages, start, reopen = [], 0, ""
    while len(text) - start + len(reopen) > size:
        limit = start + size - len(reopen)  # the message's text that fits on this page
        span = spans[bisect_right(starts, limit - 1) - 1]  # the block the page's end falls in
        close = _closing_line(span.opening)
        if span.start >= start + size * 3 // 4 or (
                span.opening and start < span.start and limit - len(close) <= span.body_start):
            end, inside = span.start, False  # between blocks
        elif span.opening:  # a code block: cut at a line end (a line longer than a quarter
            # page is cut anywhere, and the closing line then goes on a line of its own)
            end = _cut(text, max(start, span.body_start),
                       min(limit - len(close) - 1, span.body_end), separators="\n")
            if end == span.body_end:  # the whole body fits: its closing line comes along
                end = span.end
            inside = end < span.end
            close = close if text[end - 1] == "\n" else "\n" + close
        else:
            end, inside = _out_of_math(text, max(start, span.start), _cut(text, start, limit)), False
        pages.append(Page(reopen + text[start:end] + (close if inside else ""), start, end))
        start, reopen = end, span.opening if inside else ""
    pages.append(Page(reopen + text[start:], start, len(text)))
    return pages


def _cut(text: str, start: int, limit: int, separators: str = "\n ") -> int:
    """Where to end a page that may hold text[start:limit]: after the last line end in its last
    quarter, else after its last space there (of `separators`), else at `limit`; always past
    `start`."""
    if limit <= start:
        return start + 1
    floor = start + (limit - start) * 3 // 4
    for separator in separators:
        found = text.rfind(separator, floor, limit)
        if found >= 0:
            return found + 1
    return limit


def _out_of_math(text: str, start: int, end: int) -> int:
    """`end`, or the start of the $$ math block it would cut (when that leaves a page)."""
    toggles = [found.start() for found in _MATH_LINE.finditer(text, start, end)]
    return toggles[-1] if len(toggles) % 2 and toggles[-1] > start else end


def _closing_line(opening: str) -> str:
    """The line that closes a fence opened by `opening` ("" for a text block)."""
    marker = _MARKER.match(opening)
    return marker.group() + "\n" if marker else ""
