"""The sidebar's list of chats: pinned first, then grouped by day, newest first; and what a
search found, its matches marked."""

from __future__ import annotations

import html
import re
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta, timezone, tzinfo

from core.history.model import SNIPPET_MARKS, Chat, Found
from core.store.contracts import ChatStore


def _day(timestamp: str, zone: tzinfo) -> date | None:
    try:
        moment = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(zone).date()


# The newest groups: (at most this many days old, label); older chats are grouped by month.
_RECENT = ((0, "Today"), (1, "Yesterday"), (7, "Previous 7 days"), (30, "Previous 30 days"))


def group_label(day: date | None, today: date) -> str:
    """Today, Yesterday, Previous 7 days, Previous 30 days, then the month ("March 2026")."""
    if day is None:
        return "Older"
    age = (today - day).days
    return next((label for most, label in _RECENT if age <= most), day.strftime("%B %Y"))


def by_day(chats: Iterable[Chat], now: datetime, zone: tzinfo = timezone.utc
           ) -> list[tuple[str, list[Chat]]]:
    today = now.astimezone(zone).date()
    groups: list[tuple[str, list[Chat]]] = []
    for chat in chats:
        label = group_label(_day(chat.updated_at, zone), today)
        if not groups or groups[-1][0] != label:
            groups.append((label, []))
        groups[-1][1].append(chat)
    return groups


def shown_title(chat: Chat) -> str:
    return chat.title.strip() or "New chat"


def safe_file_name(title: str) -> str:
    """Letters, digits and dashes; never empty."""
    kept = "".join(ch if ch.isalnum() else "-" for ch in title.lower())
    return "-".join(part for part in kept.split("-") if part)[:60] or "chat"


PAGE = 50  # chats per page of the list
RECENT_ENOUGH = timedelta(seconds=5)  # another tab's changes show within this, or on navigation


# ---- pins, folders, and search as the user types

PINNED = "Pinned"


def sidebar_groups(pinned: Iterable[Chat], others: Iterable[Chat], now: datetime,
                   zone: tzinfo = timezone.utc) -> list[tuple[str, list[Chat]]]:
    """The pinned chats first, as their own group, then the others by day."""
    pinned = list(pinned)
    return ([(PINNED, pinned)] if pinned else []) + by_day(others, now, zone)


def found_count(count: int) -> str:
    """"Nothing found.", "1 chat", "11,500 chats": every match, not the page shown."""
    if count <= 0:
        return "Nothing found."
    return "1 chat" if count == 1 else f"{count:,} chats"


def marked_html(text: str) -> str:
    """`text` as HTML: every character escaped, each run between SNIPPET_MARKS in <mark>
    (a run left open closes at the end; a stray end mark is dropped)."""
    start, end = SNIPPET_MARKS
    pieces, inside = [], False
    for part in re.split(f"([{start}{end}])", text):
        if part == start and not inside:
            pieces.append("<mark>")
            inside = True
        elif part == end and inside:
            pieces.append("</mark>")
            inside = False
        elif part not in (start, end):
            pieces.append(html.escape(part))
    if inside:
        pieces.append("</mark>")
    return "".join(pieces)


def with_marks(text: str, query: str) -> str:
    """`text` with every place a typed word matches, ignoring case, between SNIPPET_MARKS
    (what the stores do to a snippet, for a title shown whole)."""
    start, end = SNIPPET_MARKS
    text = text.replace(start, "").replace(end, "")
    words = [w.casefold() for w in query.split() if any(c.isalnum() for c in w)]
    folded = text.casefold()
    if not words or len(folded) != len(text):  # a character that folds to several: unmarked
        return text
    marked = [False] * len(text)
    for word in words:
        at = folded.find(word)
        while at >= 0:  # where a word starts, as the stores match it
            if at == 0 or not folded[at - 1].isalnum():
                marked[at:at + len(word)] = [True] * len(word)
            at = folded.find(word, at + 1)
    out, previous = [], False
    for char, now_marked in zip(text, marked):
        if now_marked != previous:
            out.append(start if now_marked else end)
            previous = now_marked
        out.append(char)
    return "".join(out) + (end if previous else "")


# What a widget label reads as Markdown: inline formatting, links, images, LaTeX, icons and
# colours anywhere; a heading, quote or list at the start (a label would show only its text).
LABEL_MARKUP = set("\\*_~`[]$:<>|")
_LEADING_BLOCK = re.compile(r"^(#|>|[-+]|\d+[.)])")


def plain_label(text: str) -> str:
    """`text` for a widget label that reads Markdown: shown as typed (runs of spaces made
    one), never as formatting. Other characters are left as they are, so labels stay
    readable where they are read raw."""
    text = " ".join(text.split())
    escaped = "".join("\\" + char if char in LABEL_MARKUP else char for char in text)
    if (block := _LEADING_BLOCK.match(escaped)) is not None:
        cut = block.end() - 1  # before the mark that makes it a block
        escaped = escaped[:cut] + "\\" + escaped[cut:]
    return escaped


def folder_name(typed: object) -> str:
    """A folder's name as typed, spaces trimmed and runs of them made one ("": no folder)."""
    return " ".join(str(typed or "").split())


def search_found(store: ChatStore, query: str, limit: int) -> tuple[int, list[Found]]:
    """The true count of the chats `query` finds and its first `limit` hits, newest first.

    The count is asked in a thread of its own while the pages are read (a hundred hits at
    most per call, as a hosted project answers): as the user types, a search takes as long as
    the longer of the two, not both. A failure of either is raised here."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="search-count") as pool:
        counting = pool.submit(store.count_found, query)
        hits: list[Found] = []
        while len(hits) < limit:
            wanted = min(100, limit - len(hits))
            page = store.search_page(query, limit=wanted, offset=len(hits))
            hits += page
            if len(page) < wanted:
                break
        return counting.result(), hits
