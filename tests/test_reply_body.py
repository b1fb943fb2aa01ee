"""A finished message on the chat page: a short reply is one Markdown element with a Copy that
holds it whole; a code block too big to highlight is drawn plain; a huge reply or message is
drawn a page at a time (a page picker, never one element of megabytes), with a Download of the
whole reply and the page on screen to copy."""

from __future__ import annotations

import html
import re
import textwrap

import pytest
from streamlit.testing.v1 import AppTest

from core.chat.blocks import drawn_parts
from core.chat.paging import PAGE_CHARS, PLAIN_PAGE_CHARS, markdown_pages, plain_pages
from tests.apptest import outside_popovers


def _message_app() -> None:
    import streamlit as st

    from pages.sections.reply_body import draw_copy, draw_reply_body, draw_user_text

    text = st.session_state["text"]
    if st.session_state["role"] == "assistant":
        draw_reply_body(text, key="chat-text-1")
        draw_copy(text, key="chat-text-1")
    else:
        draw_user_text(text, key="chat-text-1")


def _shown(role: str, text: str) -> AppTest:
    at = AppTest.from_function(_message_app, default_timeout=30)
    at.session_state["role"], at.session_state["text"] = role, text
    at.run()
    assert not at.exception, at.exception
    return at


def _sent(kind: str, text: str) -> tuple[str, str]:
    """What st.markdown and st.text send of `text` (dedented and stripped), or st.code (one
    newline at each end dropped): Streamlit's own cleaning."""
    if kind == "code":
        return kind, text.removeprefix("\n").removesuffix("\n")
    return kind, textwrap.dedent(text).strip()


def _drawn(at: AppTest) -> list[tuple[str, str]]:
    """(kind, value) of the message's Markdown, code and plain text, in order, outside the
    Copy popover."""
    kinds = ("markdown", "code", "text")
    found = [e for kind in kinds for e in outside_popovers(at.main, kind)]
    order = {id(e): i for i, e in enumerate(_in_order(at.main))}
    return [(e.type, e.value) for e in sorted(found, key=lambda e: order[id(e)])]


def _in_order(block) -> list:
    out = []
    for child in block.children.values():
        out += _in_order(child) if hasattr(child, "children") else [child]
    return out


def _popover_code(at: AppTest):
    (popover,) = [b for b in _blocks(at.main) if b.type == "popover"]
    (code,) = popover.code
    return popover, code


def _blocks(block) -> list:
    found = []
    for child in block.children.values():
        if hasattr(child, "children"):
            found += [child, *_blocks(child)]
    return found


def _largest_element(at: AppTest) -> int:
    """The largest element or container the page sends, in bytes."""
    return max(node.proto.ByteSize() for node in at if getattr(node, "proto", None) is not None)


CODE = "".join(f"value_{i} = compute({i}, limit={i * 3})\n" for i in range(2_000))  # 70 KB
SOME_CODE = CODE[:CODE.index("\n", 30_000) + 1]  # 30 KB of whole lines


def test_a_short_reply_is_one_markdown_element_and_copy_holds_it_whole():
    text = "# Title\n\nSome **bold** words.\n\n```python\nx = 1\n```\n\nThe end."
    at = _shown("assistant", text)
    assert _drawn(at) == [("markdown", text)]
    assert not at.pagination
    assert _copied(at) == text
    assert not [b for b in _blocks(at.main) if b.type == "popover"]  # one click, no popover


def _copied(at: AppTest) -> str:
    """What the one-click Copy puts on the clipboard: the text its script reads, unescaped."""
    (element,) = at.get("html")
    body = element.proto.body
    assert '<button type="button" class="sb-copy"' in body
    found = re.search(r'<textarea class="sb-copy-text" hidden readonly>(.*?)</textarea>', body,
                      re.S)
    return html.unescape(found.group(1))


def test_copy_holds_a_reply_whose_text_is_html_as_text():
    """Markup in a reply cannot close the copy's store of it and run as the page's."""
    text = 'Try </textarea><script>alert(1)</script> & <b>this</b>'
    at = _shown("assistant", text)
    assert _copied(at) == text
    assert "<script>alert(1)" not in at.get("html")[0].proto.body


def test_a_code_block_too_big_to_highlight_is_drawn_plain_between_the_markdown():
    text = f"Here it is:\n\n```python\n{SOME_CODE}```\n\nThat is all."
    at = _shown("assistant", text)
    assert _drawn(at) == [("markdown", "Here it is:"), ("code", SOME_CODE.removesuffix("\n")),
                          ("markdown", "That is all.")]
    assert outside_popovers(at.main, "code")[0].language == "plaintext"
    assert _copied(at) == text  # copied whole


@pytest.mark.parametrize("picked", [1, 2, "last"])
def test_a_huge_reply_is_drawn_a_page_at_a_time(picked):
    text = "".join(f"Paragraph {i}: " + "lorem ipsum dolor " * 30 + "\n\n" for i in range(800))
    text += f"```python\n{CODE * 3}```\n\nThe end."  # 670 KB, a code block cut across pages
    pages = markdown_pages(text)
    assert any(p.text.startswith("```python\nvalue_") for p in pages[1:])
    at = _shown("assistant", text)
    (picker,) = at.pagination
    assert picker.num_pages == len(pages) > 5
    number = len(pages) if picked == "last" else picked
    if number != 1:
        picker.set_value(number).run()
    page = pages[number - 1]
    expected = [_sent("markdown" if kind == "markdown" else "code", part)
                for kind, part in drawn_parts(page.text) if part.strip()]
    assert _drawn(at) == expected
    assert at.caption[0].value == (
        f"A long reply ({len(text):,} characters), a page at a time: this page holds"
        f" characters {page.start + 1:,} to {page.end:,}.")
    popover, code = _popover_code(at)
    assert (code.value, code.language) == (_sent("code", text[page.start:page.end])[1], "plaintext")
    (download,) = popover.get("download_button")
    assert download.proto.label == "Download"
    assert _largest_element(at) < PAGE_CHARS + 2_000


def test_a_huge_user_message_is_shown_as_typed_a_page_at_a_time():
    text = "".join(f"line {i}: " + "pasted text " * 8 + "\n" for i in range(6_000))  # 640 KB
    pages = plain_pages(text)
    at = _shown("user", text)
    (picker,) = at.pagination
    assert picker.num_pages == len(pages)
    picker.set_value(3).run()
    assert _drawn(at) == [_sent("text", pages[2].text)]
    assert [c.value for c in at.caption] == [
        f"A long message ({len(text):,} characters), a page at a time: this page holds"
        f" characters {pages[2].start + 1:,} to {pages[2].end:,}.",
        "A long message: shown as typed, without Markdown."]
    assert _largest_element(at) < PAGE_CHARS + 2_000


def test_a_long_user_message_within_a_page_is_shown_whole_and_a_short_one_as_markdown():
    pasted = "x = 1  # **not bold**\n" * 1_200  # 26 KB
    assert len(pasted) <= PLAIN_PAGE_CHARS
    at = _shown("user", pasted)
    assert _drawn(at) == [_sent("text", pasted)] and not at.pagination
    at = _shown("user", "Some **bold** text")
    assert _drawn(at) == [("markdown", "Some **bold** text")]


def test_megabytes_never_go_to_the_browser_in_one_element():
    reply = "word " * 1_000_000  # 5 MB on one line
    for role in ("assistant", "user"):
        at = _shown(role, reply)
        assert _largest_element(at) < PAGE_CHARS + 2_000
