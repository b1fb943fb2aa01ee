"""Huge messages stay light for the browser: a finished one is cut into pages that each draw on
their own (a code block cut by a page end is closed and opened again), a code block too big to
highlight is drawn plain, and a reply that grows past what is drawn whole while it streams
shows only its latest characters below what was drawn."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from core.chat.blocks import (
    HIGHLIGHT_WEIGHT,
    HIGHLIGHT_WHEN_CLOSED_MAX,
    LIVE_TAIL,
    LIVE_WHOLE_MAX,
    MARKDOWN,
    PLAIN_CODE,
    BlockSplitter,
    UpdateCost,
    block_spans,
    draw_blocks,
    drawn_parts,
    highlighted_on_page,
)
from core.chat.paging import PAGE_CHARS, markdown_pages, plain_pages

LINES = st.sampled_from([
    "A paragraph with **bold** and `code`.", "", "", "- an item", "1. first", "> a quote",
    "| a | b |", "    indented code", "```", "```python", "~~~", "~~~~ text", "````", "$$",
    "x = compute(y)  # a line of code", "# A heading", "Text with ``` inside",
    "a line that is long enough to be cut somewhere in its middle, with spaces in it",
    "averyveryverylongwordwithoutanyspaceatallthatgoesonandonforquiteawhile",
])
DOCUMENTS = st.lists(LINES, max_size=60).map("\n".join)


def _open_fence_at_end(markdown: str) -> bool:
    spans = block_spans(markdown)
    return bool(spans) and bool(spans[-1].opening) and spans[-1].body_end == spans[-1].end


# ---------------------------------------------------------------- blocks of a finished text


@settings(max_examples=300)
@given(DOCUMENTS)
def test_block_spans_tile_the_text_and_a_fence_span_starts_with_its_opening_line(text):
    spans = block_spans(text)
    assert [s.start for s in spans[1:]] == [s.end for s in spans[:-1]]
    assert (spans[0].start, spans[-1].end) == (0, len(text)) if text else spans == []
    for span in spans:
        assert span.start < span.end
        if span.opening:
            assert text[span.start:span.body_start] == span.opening
            assert span.body_start <= span.body_end <= span.end
            closing = text[span.body_end:span.end]
            assert closing == "" or closing.strip()[0] == span.opening[0]


def test_block_spans_of_paragraphs_and_fences():
    text = "One.\n\nTwo.\n\n```python\nx = 1\n```\nAfter.\n\n~~~\nopen"
    spans = block_spans(text)
    assert [text[s.start:s.end] for s in spans] == [
        "One.\n\n", "Two.\n\n", "```python\nx = 1\n```\n", "After.\n\n", "~~~\nopen"]
    fence, open_fence = spans[2], spans[4]
    assert (fence.opening, text[fence.body_start:fence.body_end]) == ("```python\n", "x = 1\n")
    assert (open_fence.opening, open_fence.body_end) == ("~~~\n", len(text))


def test_a_code_block_over_the_limit_is_drawn_plain_and_the_rest_stays_markdown():
    small = "```python\n" + "x = 1\n" * 10 + "```\n"
    body = "".join(f"value_{i} = {i}\n" for i in range(2_000))
    big = f"```python\n{body}```\n"
    assert len(small) <= HIGHLIGHT_WHEN_CLOSED_MAX < len(big)
    text = f"Intro.\n\n{small}\nMiddle.\n\n{big}\nThe end."
    assert drawn_parts(text) == [
        (MARKDOWN, f"Intro.\n\n{small}\nMiddle.\n\n"), (PLAIN_CODE, body), (MARKDOWN, "\nThe end.")]
    # Left open at the end: plain to the end; nothing after it.
    assert drawn_parts(f"Intro.\n\n```\n{body}") == [(MARKDOWN, "Intro.\n\n"), (PLAIN_CODE, body)]
    assert drawn_parts("Just words.") == [(MARKDOWN, "Just words.")]
    assert drawn_parts("") == []


def test_the_highlight_limit_at_its_boundary_for_a_finished_message():
    def fence_of(size: int) -> str:
        return "```\n" + "x" * (size - len("```\n") - len("\n```\n")) + "\n```\n"

    at_limit, over = fence_of(HIGHLIGHT_WHEN_CLOSED_MAX), fence_of(HIGHLIGHT_WHEN_CLOSED_MAX + 1)
    assert len(at_limit) == HIGHLIGHT_WHEN_CLOSED_MAX
    assert drawn_parts(at_limit) == [(MARKDOWN, at_limit)]
    assert [kind for kind, _ in drawn_parts(over)] == [PLAIN_CODE]


def test_only_code_drawn_highlighted_counts_on_the_page():
    from types import SimpleNamespace as Turn

    small = "```python\nx = 1\n```\n"
    big = "```python\n" + "x = 1\n" * 3_000 + "```\n"
    turns = [Turn(role="assistant", content=small + big, reasoning=small)]
    assert highlighted_on_page(turns) == 2 * len(small)


# ---------------------------------------------------------------- pages


@settings(max_examples=300)
@given(st.text(alphabet="ab \n", max_size=3_000), st.integers(min_value=20, max_value=400))
def test_plain_pages_give_the_text_back_and_end_at_a_line_end_when_one_is_near(text, size):
    pages = plain_pages(text, size)
    assert "".join(p.text for p in pages) == text
    assert [p.start for p in pages[1:]] == [p.end for p in pages[:-1]]
    for page in pages:
        assert page.text == text[page.start:page.end] and len(page.text) <= size
    for page in pages[:-1]:
        last_quarter = text[page.start + size * 3 // 4:page.start + size]
        if "\n" in last_quarter:
            assert page.text.endswith("\n")
        elif " " in last_quarter:
            assert page.text.endswith(" ")
        else:
            assert len(page.text) == size


def _inside_fence(text: str, position: int) -> str:
    """The opening line of the code block `position` falls strictly inside, else ""."""
    for span in block_spans(text):
        if span.opening and span.start < position < span.end:
            return span.opening
    return ""


# Without $$ lines: a math block bigger than a page is cut like any text (see below).
PAGED = st.lists(LINES.filter(lambda line: line != "$$"), max_size=60).map("\n".join)


@settings(max_examples=500)
@given(PAGED, st.integers(min_value=60, max_value=600))
def test_markdown_pages_cover_the_text_and_each_draws_on_its_own(text, size):
    """Property: the pages hold the message's characters in order, each once; a page's text
    is its characters, after the opening line of the code block it starts inside (if any)
    and before a line closing the one it ends inside (if any, on a line of its own); only the
    last page may leave a code block open, when the message does; and a page is at most
    about `size`."""
    pages = markdown_pages(text, size)
    assert (pages[0].start, pages[-1].end) == (0, len(text))
    assert [p.start for p in pages[1:]] == [p.end for p in pages[:-1]]
    for page in pages:
        reopened = _inside_fence(text, page.start)
        ended_inside = _inside_fence(text, page.end)  # its marker closes it on this page
        marker = ended_inside[:len(ended_inside) - len(ended_inside.lstrip(ended_inside[:1]))]
        own = text[page.start:page.end]
        closing = ("" if own.endswith("\n") else "\n") + marker + "\n" if marker else ""
        assert page.text == reopened + own + closing
        assert len(page.text) <= size + 4
        if page is not pages[-1]:
            assert not _open_fence_at_end(page.text), page
    assert _open_fence_at_end(pages[-1].text) == _open_fence_at_end(text)


def test_a_code_block_cut_by_a_page_end_is_closed_and_opened_again():
    code = "".join(f"line_{i} = {i}\n" for i in range(100))
    text = "Intro.\n\n```python\n" + code + "```\n\nAfter."
    first, second, *rest = markdown_pages(text, 600)
    assert first.text.startswith("Intro.\n\n```python\nline_0 = 0\n") and first.text.endswith("\n```\n")
    assert second.text.startswith("```python\n" + text[second.start:second.start + 10])
    assert "".join(text[p.start:p.end] for p in [first, second, *rest]) == text
    assert rest[-1].text.endswith("```\n\nAfter.")


def test_a_page_ends_between_blocks_when_one_starts_in_its_last_quarter():
    text = "word " * 16 + "\n\n" + "Second paragraph goes on. " * 10  # a block starts at 82
    first, *_ = markdown_pages(text, 100)
    assert first.text == "word " * 16 + "\n\n"


def test_a_page_ends_before_a_math_block_it_would_cut():
    text = "Intro line.\n" * 6 + "$$\nx = 1\n" + "y = 2\n" * 10 + "$$\nAfter."
    first, second, *_ = markdown_pages(text, 100)
    assert first.text == "Intro line.\n" * 6 and second.text.startswith("$$\nx = 1\n")


def test_one_huge_paragraph_is_cut_at_spaces_into_pages_of_the_size():
    text = "lorem ipsum " * 100_000  # 1.2 MB on one line
    pages = markdown_pages(text)
    assert len(text) / PAGE_CHARS <= len(pages) <= len(text) / PAGE_CHARS + 1
    assert all(len(p.text) <= PAGE_CHARS for p in pages)
    assert all(p.text.endswith(" ") for p in pages) and "".join(p.text for p in pages) == text
    assert markdown_pages("short") == [markdown_pages("short")[0]] and len(plain_pages("x")) == 1


# ---------------------------------------------------------------- a huge reply while it streams


class Element:
    """An st.empty() placeholder: each call replaces what it shows (`shown`, of `kind`)."""

    def __init__(self) -> None:
        self.kind, self.shown, self.sends, self.children = "", "", 0, None

    def _show(self, kind: str, body: str) -> None:
        self.kind, self.shown, self.sends = kind, body, self.sends + 1

    def code(self, body: str, language=None) -> None:
        self._show("code", body)

    def markdown(self, body: str) -> None:
        self._show("markdown", body)

    def caption(self, body: str) -> None:
        self._show("caption", body)

    def text(self, body: str) -> None:
        self._show("text", body)

    def container(self, key: str, gap=None) -> "Page":
        self.children = Page(key)
        return self.children


class Page:
    """A container: its placeholders in order; write_stream is one Markdown element."""

    def __init__(self, key: str | None = None) -> None:
        self.key, self.elements = key, []

    def container(self, key: str, gap=None) -> Element:  # the hidden highlighter warm-up
        return Element()

    def empty(self) -> Element:
        self.elements.append(Element())
        return self.elements[-1]

    def write_stream(self, stream) -> str:
        element, text = self.empty(), ""
        for piece in stream:
            text += piece
            element.markdown(text)
        return text

    def all(self) -> list[Element]:
        """Every element shown, nested ones included."""
        return [e for element in self.elements
                for e in [element, *(element.children.all() if element.children else [])]]


def _stream(text: str, piece: int) -> list[str]:
    return [text[i:i + piece] for i in range(0, len(text), piece)]


def test_past_the_live_limit_only_the_latest_characters_show_below_what_was_drawn():
    paragraphs = [f"Paragraph {i}: " + "words and more words " * 40 + "\n\n" for i in range(400)]
    text = "".join(paragraphs)  # 340 KB in 400 blocks
    page, splitter = Page(), BlockSplitter()
    updates: list[tuple[int, int]] = []  # (elements on the page, characters they show)

    def watched():
        for piece in _stream(text, 997):
            shown = page.all()
            updates.append((len(shown), sum(len(e.shown) for e in shown)))
            yield piece

    draw_blocks(watched(), splitter, page)
    *blocks, tail = page.elements
    head = "".join(b.shown for b in blocks)
    # The blocks stop before the piece that takes the reply past the limit: it shows below.
    assert text.startswith(head) and LIVE_WHOLE_MAX - 997 - 12 < len(head) <= LIVE_WHOLE_MAX
    box = tail.children
    assert box.key == "chat-live-tail"
    caption, latest = box.elements
    assert latest.shown == text[-LIVE_TAIL:] and latest.kind == "text"
    assert caption.shown == (f"Showing the beginning and the last {LIVE_TAIL:,} of {len(text):,}"
                            " characters while the reply arrives; all of it shows when it ends.")
    # The page stopped growing: never more than the head, the tail and its caption.
    assert max(count for count, _ in updates) <= len(blocks) + 3
    assert max(size for _, size in updates) <= LIVE_WHOLE_MAX + LIVE_TAIL + 200
    assert splitter.passed == len(text)


def test_the_tail_starts_where_the_drawn_blocks_end():
    """Nothing shows twice and nothing is skipped while what follows the blocks fits."""
    text = "word " * (LIVE_WHOLE_MAX // 5 + 100) + "\n\n" + "tail words " * 10  # passed mid-block
    page = Page()
    draw_blocks(_stream(text, 1_000), BlockSplitter(), page)
    head, tail = page.elements
    _, latest = tail.children.elements
    assert head.shown + latest.shown == text


def test_a_fence_open_when_the_reply_grows_past_the_limit_stays_as_it_was_drawn():
    code = "".join(f"value_{i} = {i}\n" for i in range(12_000))  # 190 KB of code
    text = "Intro.\n\n```python\n" + code + "```\n\nThe end."
    page = Page()
    draw_blocks(_stream(text, 4_000), BlockSplitter(), page)
    intro, fence, tail = page.elements
    segments = fence.children.elements
    drawn = "".join(s.shown for s in segments)
    assert code.startswith(drawn) and LIVE_WHOLE_MAX - 8_000 < len(drawn) < LIVE_WHOLE_MAX
    _, latest = tail.children.elements
    assert latest.shown == text[-LIVE_TAIL:] and intro.shown == "Intro.\n\n"


def test_a_reply_past_the_limit_at_its_first_piece_shows_only_its_latest_characters():
    text = "word " * (LIVE_WHOLE_MAX // 4)  # one piece, as a server that does not stream sends
    page = Page()
    draw_blocks([text], BlockSplitter(), page)
    (tail,) = page.elements
    caption, latest = tail.children.elements
    assert latest.shown == text[-LIVE_TAIL:]
    assert caption.shown.startswith(f"Showing the last {LIVE_TAIL:,} of {len(text):,} characters")


def test_an_update_in_the_tail_costs_the_tail():
    splitter = BlockSplitter()
    cost = UpdateCost(splitter, 1_000)
    splitter.feed("word " * (LIVE_WHOLE_MAX // 5))
    assert cost() == LIVE_WHOLE_MAX + HIGHLIGHT_WEIGHT * 1_000  # still drawn whole
    splitter.feed("and more words")
    assert cost() == LIVE_TAIL + HIGHLIGHT_WEIGHT * 1_000
