"""A finished message's text on the chat page: whole when it is short enough, else a page at a
time with a page picker, so that the browser never draws megabytes in one element. A reply's
Copy takes the whole reply in one click when it is short; a long one is downloaded whole or
copied a page at a time."""

import html
from collections.abc import Callable

import streamlit as st

from core.chat.blocks import MARKDOWN, drawn_parts, drawn_plain
from core.chat.paging import PAGE_CHARS, PLAIN_PAGE_CHARS, Page, markdown_pages, plain_pages
from pages.sections.scripts import script


def draw_reply_body(text: str, key: str) -> None:
    """An assistant's finished reply, as Markdown; a code block too big to highlight is plain.
    `key` names this message's widgets (unique on the page)."""
    if len(text) <= PAGE_CHARS:
        _draw_markdown(text)
        return
    page = _picked_page(text, key, markdown_pages, "A long reply")
    _draw_markdown(page.text)


def draw_copy(text: str, key: str) -> None:
    """The reply's Copy: one click puts its Markdown on the clipboard (a toast says so). A long
    reply's Copy is a popover: a download of the whole, and the page on screen to copy."""
    if len(text) <= PAGE_CHARS:
        st.html(f'<button type="button" class="sb-copy" title="Copy this reply '
                f'(Markdown) to the clipboard">📋 Copy</button><textarea class="sb-copy-text" '
                f'hidden readonly>{html.escape(text)}</textarea>'
                f'<script>{script("copy.js")}</script>', unsafe_allow_javascript=True)
        return
    with st.popover("Copy", icon="📋", width="stretch"):
        st.download_button("Download", data=lambda: text, file_name="reply.md",
                           mime="text/markdown", on_click="ignore", key=f"{key}:download",
                           icon=":material/download:", width="stretch",
                           help="The whole reply, as a Markdown file.")
        pages = _pages(text, key, markdown_pages)
        page = pages[min(_page_number(key), len(pages)) - 1]
        st.caption(f"Too long to copy at once ({len(text):,} characters): download it, or "
                   f"copy the page on screen (characters {page.start + 1:,} to {page.end:,}).")
        st.code(text[page.start:page.end], language=None, wrap_lines=True)


def draw_user_text(text: str, key: str) -> None:
    """A message of the user's: Markdown, or as typed when it is long (a pasted file), a page
    at a time when it is very long."""
    if not drawn_plain("user", text):
        st.markdown(text)
        return
    if len(text) <= PLAIN_PAGE_CHARS:
        st.text(text)
    else:
        st.text(_picked_page(text, key, plain_pages, "A long message").text)
    st.caption("A long message: shown as typed, without Markdown.")


Paginate = Callable[[str], list[Page]]


def _draw_markdown(text: str) -> None:
    for kind, part in drawn_parts(text):
        if kind != MARKDOWN:
            st.code(part, language=None)
        elif part.strip():
            st.markdown(part)


def _pages(text: str, key: str, paginate: Paginate) -> list[Page]:
    """The pages of `text`, cut once per session (cutting 5 MB of code takes about a second)."""
    kept = st.session_state.get(f"{key}:pages")
    if kept is None or kept[0] != text:
        kept = st.session_state[f"{key}:pages"] = (text, paginate(text))
    return kept[1]


def _picked_page(text: str, key: str, paginate: Paginate, what: str) -> Page:
    pages = _pages(text, key, paginate)
    page = pages[st.pagination(len(pages), key=f"{key}:page") - 1]
    st.caption(f"{what} ({len(text):,} characters), a page at a time: this page holds"
               f" characters {page.start + 1:,} to {page.end:,}.")
    return page


def _page_number(key: str) -> int:
    """The page picked (from 1), as the picker drawn above it in this run has it."""
    return st.session_state.get(f"{key}:page", 1)
