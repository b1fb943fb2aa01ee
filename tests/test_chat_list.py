"""The sidebar list's pure parts: pinned first, the true count said in words, matches marked
in HTML that nothing typed can inject into, and titles shown as typed in Markdown labels."""

from __future__ import annotations

import html
import re
import string
from datetime import datetime, timezone

from hypothesis import given
from hypothesis import strategies as st

from core.history.listing import (
    LABEL_MARKUP,
    PINNED,
    folder_name,
    found_count,
    marked_html,
    plain_label,
    sidebar_groups,
    with_marks,
)
from core.history.model import SNIPPET_MARKS, Chat

START, END = SNIPPET_MARKS
texts = st.text(st.characters(blacklist_categories=("Cs",)), max_size=60)
marked_texts = st.lists(st.one_of(texts, st.sampled_from(SNIPPET_MARKS)), max_size=8).map("".join)


def test_pinned_chats_come_first_in_their_own_group():
    now = datetime(2026, 12, 7, 12, tzinfo=timezone.utc)
    pinned = [Chat(title="p", updated_at="2025-01-01T00:00:00Z", pinned=True)]
    others = [Chat(title="t", updated_at="2026-12-07T10:00:00Z")]
    assert [(label, [c.title for c in g]) for label, g in sidebar_groups(pinned, others, now)] \
        == [(PINNED, ["p"]), ("Today", ["t"])]
    assert [label for label, _ in sidebar_groups([], others, now)] == ["Today"]


def test_the_count_says_every_chat_found():
    assert found_count(0) == "Nothing found."
    assert found_count(1) == "1 chat"
    assert found_count(11_500) == "11,500 chats"


@given(marked_texts)
def test_marked_html_escapes_everything_and_marks_only_the_runs(text):
    """Property: the HTML holds no tag but balanced <mark> pairs, and read back as text it is
    the input without its marks."""
    shown = marked_html(text)
    tags = re.findall(r"<[^>]*>", shown)
    assert set(tags) <= {"<mark>", "</mark>"}
    assert "".join(tags) == "<mark></mark>" * (len(tags) // 2)
    assert html.unescape(re.sub(r"</?mark>", "", shown)) == \
        text.replace(START, "").replace(END, "")


def test_marked_html_marks_the_words_between_the_marks():
    assert marked_html(f"a {START}<b>{END} c") == "a <mark>&lt;b&gt;</mark> c"
    assert marked_html(f"open {START}end") == "open <mark>end</mark>"
    assert marked_html(f"stray{END} end") == "stray end"


@given(texts, texts)
def test_with_marks_only_adds_marks(title, query):
    """Property: removing the marks gives the title back (marks it held are dropped)."""
    marked = with_marks(title, query)
    assert marked.replace(START, "").replace(END, "") == \
        title.replace(START, "").replace(END, "")


def test_with_marks_marks_typed_words_where_words_start_ignoring_case():
    assert with_marks("Trip to Lisbon", "lis TRI") == f"{START}Tri{END}p to {START}Lis{END}bon"
    assert with_marks("Crisis", "is") == "Crisis"
    assert with_marks("anything", "  ") == "anything"


@given(texts)
def test_plain_label_escapes_every_markdown_character(title):
    """Property: every character a label reads as Markdown comes after a backslash, and
    removing the escapes gives the title with its runs of spaces made one."""
    label = plain_label(title)
    assert re.sub(r"\\(.)", r"\1", label) == " ".join(title.split())
    at = 0
    while at < len(label):  # each escape is a backslash and one ASCII punctuation character
        if label[at] == "\\":
            assert label[at + 1] in string.punctuation
            at += 2
        else:
            assert label[at] not in LABEL_MARKUP
            at += 1
    assert not re.match(r"(#|>|[-+]|\d+[.)])", label)  # no block at the start


def test_plain_label_leaves_plain_punctuation_readable():
    assert plain_label("What's 2+2? Ask, then see.") == "What's 2+2? Ask, then see."
    assert plain_label("**Bold** <b>x</b>") == "\\*\\*Bold\\*\\* \\<b\\>x\\</b\\>"
    assert plain_label("# Plan") == "\\# Plan"
    assert plain_label("12. Notes") == "12\\. Notes"
    assert plain_label("- item") == "\\- item"


def test_a_folder_name_is_trimmed():
    assert folder_name("  Work   notes ") == "Work notes"
    assert folder_name(None) == "" and folder_name("   ") == ""
