"""The sidebar's list of chats: grouped by day, newest first."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta, timezone, tzinfo

from core.history.model import Chat


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
