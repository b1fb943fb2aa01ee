"""Block splitting pinned exactly: the splitter's counts after every piece, when a line's start
is decided, the size limits at their boundaries, and what the page is sent."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from core.chat.blocks import (
    CLOSED,
    CODE,
    CUT,
    FENCE,
    HIGHLIGHT_WHEN_CLOSED_MAX,
    PLAIN_MESSAGE_OVER,
    TEXT,
    WARM_FENCE,
    WARM_KEY,
    BlockSplitter,
    GrowingCode,
    draw_blocks,
    drawn_plain,
    highlighted_size,
    highlights_when_closed,
)

LINES = st.sampled_from([
    "A paragraph with **bold**.", "", "", "- an item", "1. first", "> a quote", "| a | b |",
    "    indented", "```", "```python", "~~~", "````", "$$", "x^2", "# Heading",
    "Xylophone line", "Text with ``` inside", "a line that is long enough to be decided early",
])
MARKDOWN = st.lists(LINES, max_size=30).map("\n".join)


def split_at(text: str, cuts: list[int]) -> list[str]:
    points = sorted({0, len(text), *(c % (len(text) + 1) for c in cuts)})
    return [text[a:b] for a, b in zip(points, points[1:])]


@settings(max_examples=200)
@given(MARKDOWN, st.lists(st.integers(min_value=0, max_value=2000), max_size=20))
def test_the_splitter_s_counts_follow_the_steps_it_made(text, cuts):
    """Property: after every piece, `passed` is the length of every TEXT, FENCE and CODE step
    so far; `tail_size` the length of the block in progress (since the last CUT or CLOSED,
    a FENCE starting a new one); `closed_code` and `highlighted` the length of the CLOSED
    fences (all of them, and those small enough to highlight mid-reply)."""
    splitter = BlockSplitter()
    passed = tail = closed = highlighted = 0
    for piece in [*split_at(text, cuts), None]:
        steps = splitter.feed(piece) if piece is not None else splitter.flush()
        for kind, part in steps:
            if kind in (TEXT, FENCE, CODE):
                passed += len(part)
            if kind in (CUT, CLOSED):
                tail = 0
            elif kind == FENCE:
                tail = len(part)
            else:
                tail += len(part)
            if kind == CLOSED:
                closed += len(part)
                highlighted += len(part) if len(part) <= HIGHLIGHT_WHEN_CLOSED_MAX else 0
        assert (splitter.passed, splitter.tail_size) == (passed, tail)
        assert (splitter.closed_code, splitter.highlighted) == (closed, highlighted)


def test_a_line_start_is_decided_at_twelve_characters():
    splitter = BlockSplitter()
    assert splitter.feed("abcdefghijk") == []  # 11 characters: held back
    assert splitter.feed("l") == [(TEXT, "abcdefghijkl")]
    assert BlockSplitter().feed("abcdefghijkl") == [(TEXT, "abcdefghijkl")]


def test_a_line_that_may_open_or_close_a_fence_or_toggle_math_waits_for_its_end():
    opening = BlockSplitter()
    assert opening.feed("```pythonwithalonginfo") == []  # may open a fence
    assert opening.feed("\n") == [(FENCE, "```pythonwithalonginfo\n")]

    closing = BlockSplitter()
    assert closing.feed("```\n") == [(FENCE, "```\n")]
    assert closing.feed("`" * 12) == []  # may close the fence
    assert closing.feed("\n") == [(CLOSED, "```\n" + "`" * 12 + "\n")]

    math = BlockSplitter()
    assert math.feed("$$" + " " * 10) == []
    assert math.feed("\n") == [(TEXT, "$$" + " " * 10 + "\n")]
    # Inside math a fence marker opens nothing, so the line goes out at once.
    assert math.feed("```pythonwithalonginfo") == [(TEXT, "```pythonwithalonginfo")]

    blank = BlockSplitter()
    assert blank.feed(" " * 12) == []


def test_a_blank_line_then_a_line_at_the_margin_starts_a_new_block():
    steps = BlockSplitter().feed("para\n\nXylophone and more words\n")
    assert steps == [(TEXT, "para\n\n"), (CUT, ""), (TEXT, "Xylophone and more words\n")]


def test_a_line_passed_on_before_its_end_stays_one_line():
    splitter = BlockSplitter()
    assert splitter.feed("Some paragraph text") == [(TEXT, "Some paragraph text")]
    # The rest of that line: a fence marker in it opens nothing...
    assert splitter.feed(" ```not a fence") == [(TEXT, " ```not a fence")]
    # ...and a line that ends, blank or not, is not a blank line: no new block follows.
    assert splitter.feed("\n") == [(TEXT, "\n")]
    assert splitter.feed("Next line at the margin\n") == [(TEXT, "Next line at the margin\n")]
    assert splitter.feed("A third line, long enough") == [(TEXT, "A third line, long enough")]
    assert splitter.feed(" and its end\n- an item\n") == [(TEXT, " and its end\n- an item\n")]


def test_after_flush_nothing_is_held_back():
    splitter = BlockSplitter()
    splitter.feed("short")
    assert splitter.flush() == [(TEXT, "short")]
    assert splitter.flush() == []


def test_the_closed_fences_of_a_reply_add_up():
    splitter = BlockSplitter()
    splitter.feed("```\na\n```\n\nText.\n\n~~~\nbb\n~~~\n\n")
    assert splitter.highlighted == splitter.closed_code == len("```\na\n```\n~~~\nbb\n~~~\n")
    big = "```\n" + "x" * HIGHLIGHT_WHEN_CLOSED_MAX + "\n```\n"
    splitter.feed(big)
    assert splitter.highlighted == len("```\na\n```\n~~~\nbb\n~~~\n")
    assert splitter.closed_code == splitter.highlighted + len(big)


def test_inline_backticks_open_no_fence():
    assert highlighted_size("a ``` b, and ~~~ too") == 0


def test_the_plain_and_highlight_limits_at_their_boundaries():
    assert drawn_plain("user", "x" * PLAIN_MESSAGE_OVER) is False
    assert drawn_plain("user", "x" * (PLAIN_MESSAGE_OVER + 1)) is True
    assert drawn_plain("assistant", "x" * (PLAIN_MESSAGE_OVER + 1)) is False
    assert highlights_when_closed("x" * HIGHLIGHT_WHEN_CLOSED_MAX) is True
    assert highlights_when_closed("x" * (HIGHLIGHT_WHEN_CLOSED_MAX + 1)) is False


# ---- what the page is sent: a fake with Streamlit's own defaults (gap "small", language
# "python"), so leaving an argument out shows


class Element:
    def __init__(self, page: "Page", key: str | None = None, gap: object = None) -> None:
        self.page, self.key, self.gap = page, key, gap
        self.kind, self.text, self.language, self.sends = "", "", None, 0
        self.children: Page | None = None

    def code(self, body: str, language: object = "python") -> None:
        self.kind, self.text, self.language, self.sends = "code", body, language, self.sends + 1

    def markdown(self, body: str) -> None:
        self.kind, self.text, self.sends = "markdown", body, self.sends + 1

    def container(self, key: str | None = None, gap: object = "small") -> "Page":
        self.children = Page(key=key, gap=gap)
        return self.children


class Page:
    def __init__(self, key: str | None = None, gap: object = "small") -> None:
        self.key, self.gap = key, gap
        self.elements: list[Element] = []
        self.hidden: list[Element] = []

    def empty(self) -> Element:
        self.elements.append(Element(self))
        return self.elements[-1]

    def container(self, key: str | None = None, gap: object = "small") -> Element:
        self.hidden.append(Element(self, key, gap))
        return self.hidden[-1]

    def write_stream(self, stream) -> str:
        element = self.empty()
        element.markdown("".join(stream))
        return element.text


def test_each_fence_gets_its_own_keyed_container_and_a_reply_may_end_with_a_fence():
    text = "Intro.\n\n```\na = 1\n```\n\nMiddle.\n\n~~~\nb = 2\n~~~\n"
    page = Page()
    draw_blocks([text[i:i + 5] for i in range(0, len(text), 5)], BlockSplitter(), page)
    intro, first, middle, second = page.elements
    assert [(e.kind, e.text) for e in (intro, middle)] == [
        ("markdown", "Intro.\n\n"), ("markdown", "\nMiddle.\n\n")]
    assert [(e.children.key, e.children.gap) for e in (first, second)] == [
        ("chat-code-0", None), ("chat-code-1", None)]
    assert (first.kind, first.text) == ("markdown", "```\na = 1\n```\n")
    assert (second.kind, second.text) == ("markdown", "~~~\nb = 2\n~~~\n")
    [warm] = page.hidden  # the highlighter is warmed once, in a hidden container without gap
    assert (warm.key, warm.gap, warm.kind, warm.text) == (WARM_KEY, None, "markdown", WARM_FENCE)


def test_a_growing_fence_is_plain_text_in_segments_of_eight_thousand_characters():
    def segments(*pieces: str) -> list[str]:
        page = Page()
        code = GrowingCode(page, "chat-code-7")
        for piece in pieces:
            code.add(piece)
        (place,) = page.elements
        assert (place.children.key, place.children.gap) == ("chat-code-7", None)
        shown = place.children.elements
        assert all(e.language is None for e in shown)
        return [e.text for e in shown]

    size = GrowingCode.SEGMENT
    below = "x" * (size - 2) + "\n"  # one character short of a full segment
    full = "x" * (size - 1) + "\n"
    assert segments(below, "y\n") == [below + "y\n"]
    assert segments(full, "y\n") == [full, "y\n"]
    assert segments("a\n", "x" * (size - 3) + "\n", "y\n") == ["a\n" + "x" * (size - 3) + "\n",
                                                                "y\n"]
    assert segments(full, below, "z\n") == [full, below + "z\n"]
    assert segments(full, full, "z\n") == [full, full, "z\n"]
    assert segments("x" * size, "y\n", "z\n") == ["x" * size + "y\n", "z\n"]  # mid-line: waits
