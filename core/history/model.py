"""Conversations that last (SPEC R7): chats and their messages, as stored.

A chat's messages form a tree: each message names its parent (None for the first), so a
regenerated reply or an edited message is a sibling of the one it replaces, and every version
stays reachable. `Chat.current_id` is the leaf of the branch on screen.

Ids are made by the app (uuid4 text), not by the store: a message can be written before the
reply it belongs to ends, two tabs never overwrite each other's messages, and an import can
be told apart from what is already there.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Protocol

from core.errors import UserFacingError

MAX_TITLE_LENGTH = 200
MAX_CONTENT_LENGTH = 1_000_000
MAX_SYSTEM_PROMPT_LENGTH = 100_000
ROLES = ("user", "assistant")
# How a message ended: "streaming" while its reply is still arriving (kept if the process
# dies), then complete | stopped | interrupted | incomplete | failed (core.chat.Reply.status).
STATUSES = ("streaming", "complete", "stopped", "interrupted", "incomplete", "failed")


def new_id() -> str:
    return str(uuid.uuid4())


@dataclass(frozen=True)
class Message:
    chat_id: str
    role: str
    content: str
    parent_id: str | None = None
    id: str = field(default_factory=new_id)
    model_label: str = ""  # "model · connection" of the reply, as the footer showed it
    status: str = "complete"
    error: str = ""
    reasoning: str = ""
    usage: Mapping[str, int] | None = None
    created_at: str = ""  # set by the store (ISO 8601, UTC), ordering siblings; an import gives it

    def with_changes(self, **changes) -> "Message":
        return replace(self, **changes)


@dataclass(frozen=True)
class Chat:
    title: str = ""
    id: str = field(default_factory=new_id)
    connection_id: str = ""  # core.providers.connections.Connection.id it was last used with
    model: str = ""  # the model picked, as the selector labels it
    system_prompt: str = ""
    temperature: float | None = None  # None: the server's default
    current_id: str | None = None  # the leaf message of the branch on screen
    pinned: bool = False
    created_at: str = ""  # set by the store; an import gives it
    updated_at: str = ""  # set by the store on every change to the chat or a newer message

    def with_changes(self, **changes) -> "Chat":
        return replace(self, **changes)


class ChatGone(UserFacingError):
    def __init__(self) -> None:
        super().__init__("That chat was deleted (in another tab or session).")


@dataclass(frozen=True)
class Found:
    """A search hit: the chat, and a short piece of the text that matched."""

    chat: Chat
    snippet: str


class ChatStore(Protocol):
    """One user's chats and messages, wherever they live; bound to that user.

    Every method raises StoreUnavailable when the store cannot be reached, and UserFacingError
    (said for the user) when it refuses a value. Nothing is half-written: a chat and its
    messages are written in one transaction where a method takes both.
    """

    def list_chats(self, limit: int = 50, before: tuple[str, str] | None = None) -> list[Chat]:
        """Newest first (updated_at, then id), at most `limit`, those strictly before the
        (updated_at, id) cursor when given: the next page after the last one shown."""
        ...

    def get_chat(self, chat_id: str) -> Chat | None:
        ...

    def messages(self, chat_id: str) -> list[Message]:
        """Every message of the chat, every branch, oldest first ([] for another user's)."""
        ...

    def save_chat(self, chat: Chat) -> Chat:
        """Create the chat, or update its title, model, options, current_id, pinned; moves
        updated_at. Returns it as stored."""
        ...

    def add_message(self, message: Message) -> Message:
        """Store a new message (its id is kept); moves its chat's updated_at. Adding an id
        that is already there changes nothing and returns the stored one."""
        ...

    def update_message(self, message_id: str, changes: Mapping[str, object]) -> Message:
        """Change content, status, error, reasoning, usage or model_label of a message (a reply
        as it streams, then as it ended)."""
        ...

    def delete_chat(self, chat_id: str) -> None:
        """Delete the chat and all its messages; one already gone is not an error."""
        ...

    def delete_all(self) -> int:
        """Delete every chat of the user (and their messages); return how many."""
        ...

    def search(self, query: str, limit: int = 20) -> list[Found]:
        """Chats whose title or any message matches `query` (full text, every word must
        match, in any order; punctuation in `query` is plain text), best or newest first."""
        ...
