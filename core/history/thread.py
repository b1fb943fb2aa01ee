"""A chat's messages as a tree: a regenerated reply or an edited message is a sibling of the
one it replaces; switching version shows the newest branch under it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from core.history.model import Message


@dataclass(frozen=True)
class Version:
    """Where a message stands among its siblings: "◀ index / count ▶" (1-based)."""

    index: int
    count: int
    previous_id: str | None
    next_id: str | None


class Thread:
    def __init__(self, messages: Iterable[Message]):
        self.by_id: dict[str, Message] = {}
        self.children: dict[str | None, list[Message]] = {}
        for message in messages:  # oldest first: children stay in the order they were made
            self.by_id[message.id] = message
            self.children.setdefault(message.parent_id, []).append(message)

    def branch(self, leaf_id: str | None) -> list[Message]:
        """Root to `leaf_id`; the newest branch when `leaf_id` is None or unknown."""
        if leaf_id not in self.by_id:
            leaf_id = self.newest_leaf(None)
        path = []
        seen = set()
        while leaf_id is not None and leaf_id in self.by_id and leaf_id not in seen:
            seen.add(leaf_id)
            message = self.by_id[leaf_id]
            path.append(message)
            leaf_id = message.parent_id
        return path[::-1]

    def newest_leaf(self, start_id: str | None) -> str | None:
        """Following the newest child from `start_id` (None: the roots)."""
        current, children = start_id, self.children.get(start_id, [])
        while children:
            current = children[-1].id
            children = self.children.get(current, [])
        return current

    def version(self, message: Message) -> Version:
        siblings = self.children.get(message.parent_id, [message])
        index = next(i for i, m in enumerate(siblings) if m.id == message.id)
        return Version(
            index + 1, len(siblings),
            siblings[index - 1].id if index > 0 else None,
            siblings[index + 1].id if index + 1 < len(siblings) else None,
        )


def parents_first(messages: Iterable[Message]) -> list[Message]:
    """Each after its parent (an absent one counts as placed), else as given; loops left out."""
    messages = list(messages)
    present = {m.id for m in messages}
    waiting: dict[str, list[Message]] = {}
    placed: set[str] = set()
    ordered: list[Message] = []
    for message in messages:
        if message.parent_id in present and message.parent_id not in placed:
            waiting.setdefault(message.parent_id, []).append(message)
            continue
        stack = [message]
        while stack:
            current = stack.pop()
            ordered.append(current)
            placed.add(current.id)
            stack.extend(reversed(waiting.pop(current.id, [])))
    return ordered


def title_from(text: str, limit: int = 60) -> str:
    """One line, trimmed, cut at a word."""
    line = " ".join(text.split())
    if len(line) <= limit:
        return line or "New chat"
    cut = line[:limit].rsplit(" ", 1)[0] if " " in line[:limit] else line[:limit]
    return cut.rstrip(" ,.;:") + "…"
