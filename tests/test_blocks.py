"""A streamed reply is cut into Markdown blocks: each finished block is drawn once, only the
block in progress is updated, and a growing code fence is plain text until it closes."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from core.chat.call import coalesce

from core.chat.blocks import (
    CLOSED,
    CODE,
    CUT,
    FENCE,
    HIGHLIGHT_WEIGHT,
    TEXT,
    BlockSplitter,
    UpdateCost,
    highlighted_size,
)


def steps_of(pieces: list[str]) -> list[tuple[str, str]]:
    splitter = BlockSplitter()
    steps: list[tuple[str, str]] = []
    for piece in pieces:
        steps += splitter.feed(piece)
    return steps + splitter.flush()


def blocks_of(steps: list[tuple[str, str]]) -> list[str]:
    """What is drawn, block by block: each run of text between cuts, each fence as it ends."""
    blocks, current = [], []

    def end_block() -> None:
        if "".join(current):
            blocks.append("".join(current))
        current.clear()

    for kind, text in steps:
        if kind in (CUT, FENCE):
            end_block()
        if kind == CLOSED:
            current.clear()
            blocks.append(text)
        elif kind != CUT:
            current.append(text)
    end_block()
    return blocks


def drawn_text(steps: list[tuple[str, str]]) -> str:
    """The text the steps draw: each fence as it closed (or as it streamed, if it never did)."""
    return "".join(blocks_of(steps))


def split_at(text: str, cuts: list[int]) -> list[str]:
    points = sorted({0, len(text), *(c % (len(text) + 1) for c in cuts)})
    return [text[a:b] for a, b in zip(points, points[1:])]


# Lines that reach every branch: paragraphs, blank lines, lists, quotes, tables, indented
# lines, fences of both kinds with and without a language, closing fences, math blocks.
LINES = st.sampled_from([
    "A paragraph with **bold** and `code`.", "", "", "- an item", "* another item",
    "1. first", "12) twelfth", "> a quote", "| a | b |", "|---|---|", "    indented code",
    "  continued item text", "```", "```python", "~~~", "~~~~ text", "````", "$$", "x^2 + y^2",
    "# A heading", "Text with ``` inside", "a line that is long enough to be decided early",
])
MARKDOWN = st.lists(LINES, max_size=40).map("\n".join)


@settings(max_examples=300)
@given(MARKDOWN, st.lists(st.integers(min_value=0, max_value=2000), max_size=30))
def test_the_text_drawn_is_the_text_received_however_it_is_chunked(text, cuts):
    """Property: the blocks drawn, joined, are exactly the text streamed."""
    assert drawn_text(steps_of(split_at(text, cuts))) == text


@settings(max_examples=300)
@given(MARKDOWN, st.lists(st.integers(min_value=0, max_value=2000), max_size=30))
def test_where_blocks_end_depends_on_the_text_not_on_how_it_arrived(text, cuts):
    """Property: the blocks drawn are the same whether the text came in one piece, in random
    pieces, or one character at a time."""
    whole = blocks_of(steps_of([text]))
    assert blocks_of(steps_of(split_at(text, cuts))) == whole
    assert blocks_of(steps_of(list(text))) == whole


@settings(max_examples=200)
@given(MARKDOWN, st.lists(st.integers(min_value=0, max_value=2000), max_size=30))
def test_a_closed_fence_is_drawn_once_as_the_markdown_that_streamed(text, cuts):
    """Property: each CLOSED is exactly its FENCE line, the CODE after it and one closing line
    of the fence's own marker; nothing between a FENCE and its CLOSED is Markdown text."""
    opened: list[str] | None = None
    for kind, piece in steps_of(split_at(text, cuts)):
        if kind == FENCE:
            assert opened is None
            opened = [piece]
        elif kind == CODE:
            opened.append(piece)
        elif kind == CLOSED:
            streamed = "".join(opened)
            closing = piece.removeprefix(streamed)
            assert piece.startswith(streamed) and closing.endswith("\n")
            assert closing.strip() and set(closing.strip()) == {opened[0][0]}
            opened = None
        else:
            assert opened is None


def test_paragraphs_are_blocks_lists_and_indented_lines_stay_with_their_block():
    text = ("First paragraph\nstill first.\n\nSecond paragraph.\n\n- one\n- two\n\n- three\n"
            "\n  more of three\n\n> quote\n\n> more quote\n\nLast.")
    assert blocks_of(steps_of([text])) == [
        "First paragraph\nstill first.\n\n",
        "Second paragraph.\n\n",
        "- one\n- two\n\n- three\n\n  more of three\n\n",
        "> quote\n\n> more quote\n\n",
        "Last.",
    ]


def test_a_fence_is_its_own_block_plain_while_open_and_whole_when_closed():
    steps = steps_of(["Here:\n```py", "thon\n", "def f(x):\n", "\n    return x\n",
                      "```\nAfter.\n"])
    assert steps == [
        (TEXT, "Here:\n"), (CUT, ""), (FENCE, "```python\n"), (CODE, "def f(x):\n"),
        (CODE, "\n    return x\n"), (CLOSED, "```python\ndef f(x):\n\n    return x\n```\n"),
        (TEXT, "After.\n"),
    ]


def test_a_shorter_or_different_marker_does_not_close_a_fence_and_an_open_one_stays_code():
    text = "````\n```\n~~~\nstill code"
    steps = steps_of([text])
    assert {kind for kind, _ in steps[1:]} == {CODE}
    assert "".join(piece for _, piece in steps[1:]) == "```\n~~~\nstill code"


def test_a_math_block_with_blank_lines_is_one_block():
    text = "Before.\n\n$$\na\n\nb\n$$\n\nAfter."
    assert blocks_of(steps_of(list(text))) == ["Before.\n\n", "$$\na\n\nb\n$$\n\n", "After."]


def test_an_update_costs_the_block_in_progress_not_the_whole_reply():
    splitter = BlockSplitter()
    splitter.feed("A long first paragraph. " * 100 + "\n\n")
    splitter.feed("Second")
    splitter.feed(" paragraph, just begun.")
    assert splitter.tail_size == len("Second paragraph, just begun.")
    splitter.feed("\n\n```\n" + "x = 1\n" * 50)
    assert splitter.tail_size == len("```\n" + "x = 1\n" * 50)


# A document of paragraphs and fenced code blocks, and how many of its characters are code:
# the fences drawn highlighted, whole (opening and closing lines included), and a last fence
# that is never closed (Markdown draws it as code to the end).
PARAGRAPH = st.sampled_from(["Some text.", "- an item", "> a quote", "| a | b |", "# Title",
                             "Inline ``` is not a fence here", "    indented code"])
# Body lines that look like fences but close nothing (text after the marker, or too short).
CODE_LINES = st.lists(st.sampled_from(["x = 1", "", "    return x", "`` tick", "~~ tilde",
                                       "````not a close", "```python"]), max_size=6)


@st.composite
def document(draw) -> tuple[str, int]:
    parts, code = [], 0
    for _ in range(draw(st.integers(0, 6))):
        if draw(st.booleans()):
            parts.append(draw(PARAGRAPH) + "\n\n")
            continue
        marker = draw(st.sampled_from(["```", "~~~", "````"]))
        body = "".join(line + "\n" for line in draw(CODE_LINES))
        fence = f"{marker}{draw(st.sampled_from(['', 'python', 'js']))}\n{body}{marker}\n"
        parts.append(fence + "\n")
        code += len(fence)
    if draw(st.booleans()):  # a fence left open at the end
        tail = "```python\n" + "".join(line + "\n" for line in draw(CODE_LINES))
        parts.append(tail)
        code += len(tail)
    return "".join(parts), code


@settings(max_examples=300)
@given(document())
def test_highlighted_size_counts_the_characters_of_every_fence_and_nothing_else(doc):
    """Property: highlighted_size is the length of the fenced code blocks, closed or left
    open at the end; paragraphs, inline backticks and indented code count nothing."""
    text, code = doc
    assert highlighted_size(text) == code


def test_highlighted_size_of_plain_text_is_zero_and_a_reply_s_closed_fences_add_up():
    assert highlighted_size("Just words, *emphasis* and `inline code`.\n\nMore.") == 0
    splitter = BlockSplitter()
    splitter.feed("Intro.\n\n```python\nx = 1\n")
    assert splitter.highlighted == 0  # still open: plain text while it grows
    splitter.feed("```\n\nAfter.")
    assert splitter.highlighted == len("```python\nx = 1\n```\n")
    # An update costs the paragraph in progress and every highlighted character on the page;
    # text held back (not yet drawn) costs nothing.
    cost = UpdateCost(splitter, 1_000)
    assert cost() == splitter.tail_size + HIGHLIGHT_WEIGHT * (1_000 + 20)
    assert cost() == 0  # nothing passed on since
    splitter.feed(" More")  # a short line start: held back until it says what it starts
    assert cost() == 0
    splitter.feed(" words, enough to tell.")
    assert cost() == splitter.tail_size + HIGHLIGHT_WEIGHT * (1_000 + 20)


def test_the_first_words_of_a_reply_are_not_held_up_by_code_on_the_page():
    """The reply's first chunk is too short for the splitter to pass on: nothing is sent, so
    the next chunk goes out at the base interval, not after a heavy page's long wait."""
    now = [0.0]  # the test's clock, moved by hand
    splitter = BlockSplitter()

    def chunks():
        for piece in ["[ech", "o] model=x ", "and then the reply goes on"] + ["word "] * 200:
            now[0] = round(now[0] + 0.06, 2)
            yield piece

    drawn = []
    for piece in coalesce(chunks(), interval=0.05, clock=lambda: now[0], crowd=lambda: 1.0,
                          rendered=UpdateCost(splitter, 200_000)):
        drawn.append((now[0], splitter.feed(piece)))
    # The first chunk is held back; the second goes out 60 ms later and is drawn.
    assert drawn[0][1] == [] and drawn[1][0] == 0.12 and drawn[1][1]
    # From then on the page's 200 KB of code paces the updates: one each 2 s at most (the
    # stream lasts 12.2 s), then the rest when it ends.
    assert len(drawn) <= 2 + 6 + 1


class Element:
    """One element the fake page holds: what it shows, and how many times it was sent."""

    def __init__(self) -> None:
        self.kind, self.text, self.sends, self.children = "", "", 0, None

    def show(self, kind: str, text: str) -> None:
        self.kind, self.text, self.sends = kind, text, self.sends + 1

    # the Streamlit methods GrowingCode uses on a placeholder
    def code(self, body: str, language=None) -> None:
        assert language is None  # plain while it grows: nothing to highlight on each update
        self.show("code", body)

    def markdown(self, body: str) -> None:
        self.children = None
        self.show("markdown", body)

    def container(self, key: str, gap=None) -> "Page":
        assert gap is None
        self.children = Page()
        return self.children


class Page:
    """A container that records its elements; write_stream as documented: the streamed
    strings, joined, are one Markdown element, updated as they come."""

    def __init__(self) -> None:
        self.elements: list[Element] = []
        self.streams = 0
        self.warmed: list[tuple[str, str]] = []  # (key, Markdown) of the highlighter warm-ups

    def container(self, key: str, gap=None) -> "Page":
        """The hidden container the highlighter warm-up is drawn in."""
        assert gap is None
        page = self

        class Hidden:
            def markdown(self, body: str) -> None:
                page.warmed.append((key, body))

        return Hidden()

    def empty(self) -> Element:
        self.elements.append(Element())
        return self.elements[-1]

    def write_stream(self, stream) -> str:
        self.streams += 1
        element, text = self.empty(), ""
        for piece in stream:
            assert isinstance(piece, str)
            text += piece
            element.show("markdown", text)
        return text


def test_each_block_streams_once_into_its_own_element_and_a_fence_is_highlighted_once():
    from core.chat.blocks import draw_blocks

    code = "".join(f"line_{i} = {i}\n" for i in range(1000))  # 14 KB: two plain pieces
    text = f"# Title\n\nA paragraph.\n\n```python\n{code}```\n\nAfter the code."
    page = Page()
    sent_after: dict[int, int] = {}
    pieces = [text[i:i + 37] for i in range(0, len(text), 37)]

    def watched():
        for piece in pieces:  # what each element had been sent when the next piece came
            sent_after[len(sent_after)] = [e.sends for e in page.elements]
            yield piece

    draw_blocks(watched(), BlockSplitter(), page)

    title, paragraph, fence, after = page.elements
    assert [(e.kind, e.text) for e in (title, paragraph, after)] == [
        ("markdown", "# Title\n\n"), ("markdown", "A paragraph.\n\n"),
        ("markdown", "\nAfter the code.")]
    assert (fence.kind, fence.text, fence.children) == (
        "markdown", f"```python\n{code}```\n", None)
    assert fence.sends == 1  # highlighted once, when it closed
    # Streamlit's highlighter is loaded as the first fence opens, in a hidden element.
    assert page.warmed == [("chat-highlighter-warm", "```python\npass\n```")]
    assert page.streams == 3  # one write_stream per Markdown block
    # A finished block is never sent again: its count stops once the next element exists.
    history = list(sent_after.values())
    for index in range(3):
        later = [sends[index] for sends in history if len(sends) > index + 1]
        assert len(set(later)) <= 1


def test_a_growing_fence_is_sent_in_pieces_each_of_them_drawn_no_more_once_full():
    from core.chat.blocks import GrowingCode

    body = Page()
    code = GrowingCode(body, "chat-code-0")
    lines = [f"value_{i} = {i} * {i}\n" for i in range(3000)]
    for line in lines:
        code.add(line)
    (place,) = body.elements
    segments = place.children.elements
    assert "".join(s.text for s in segments) == "".join(lines)
    assert len(segments) > 5
    assert all(len(s.text) <= GrowingCode.SEGMENT + 40 for s in segments)
    assert all(s.text.endswith("\n") for s in segments)
    assert sum(s.sends for s in segments) == len(lines)  # each line sent once to one piece


def test_a_fence_too_big_to_highlight_mid_reply_stays_plain_until_the_reply_is_drawn_whole():
    """Highlighting a 200 KB block froze the browser 1 to 2 s, and again on every later
    update: a fence over the limit stays the plain pieces it streamed as."""
    from core.chat.blocks import HIGHLIGHT_WHEN_CLOSED_MAX, draw_blocks

    code = "".join(f"value_{i} = {i} * {i}\n" for i in range(2000))
    fenced = f"```python\n{code}```\n"
    assert len(fenced) > HIGHLIGHT_WHEN_CLOSED_MAX
    page, splitter = Page(), BlockSplitter()
    draw_blocks([fenced[i:i + 50] for i in range(0, len(fenced), 50)] + ["\nAfter."],
                splitter, page)
    fence, after = page.elements
    assert fence.kind == "" and fence.children is not None  # never replaced by Markdown
    assert "".join(e.text for e in fence.children.elements) == code
    assert after.text == "\nAfter."
    # Nothing highlighted on the page yet; the finished reply's drawing will highlight it.
    assert splitter.highlighted == 0 and splitter.closed_code == len(fenced)
    assert highlighted_size(fenced + "\nAfter.") == len(fenced)


def test_code_in_a_message_drawn_as_typed_is_not_counted_as_highlighted():
    from types import SimpleNamespace as Turn

    from core.chat.blocks import PLAIN_MESSAGE_OVER, highlighted_on_page

    fence = "```python\nx = 1\n```\n"
    pasted = "A file:\n\n" + fence + "y" * PLAIN_MESSAGE_OVER
    turns = [Turn(role="user", content=fence, reasoning=""),
             Turn(role="user", content=pasted, reasoning=""),  # drawn as typed
             Turn(role="assistant", content=pasted, reasoning=fence)]
    assert highlighted_on_page(turns) == len(fence) + len(fence) + len(fence)
