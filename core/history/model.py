"""Chats and their messages as a tree, `Chat.current_id` the leaf on screen. Ids come from the
app (uuid4), not the store: a reply is written before it ends, and tabs never clash."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace


MAX_TITLE_LENGTH = 200
MAX_CONTENT_LENGTH = 1_000_000
MAX_SYSTEM_PROMPT_LENGTH = 100_000
ROLES = ("user", "assistant")
# "streaming" until the reply ends (kept if the process dies), then as Reply.status says.
STATUSES = ("streaming", "complete", "stopped", "interrupted", "incomplete", "failed")
# Said with a reply that did not end normally, on the page and in an export.
STATUS_NOTES = {
    "streaming": "Still arriving",
    "stopped": "Stopped",
    "interrupted": "Interrupted",
    "incomplete": "Possibly incomplete",
    "failed": "Failed",
}


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
class ReplyState:
    """A streaming reply as the store holds it (core.store.contracts.ChatStore.append_reply)."""

    status: str
    content_length: int
    reasoning_length: int
    stop_requested: bool
    alive: bool


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


@dataclass(frozen=True)
class Found:
    chat: Chat
    snippet: str


