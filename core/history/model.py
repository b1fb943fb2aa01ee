"""Chats and their messages as a tree, `Chat.current_id` the leaf on screen. Ids come from the
app (uuid4), not the store: a reply is written before it ends, and tabs never clash."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace


MAX_TITLE_LENGTH = 200
# A message's text and its reasoning, in characters: a pasted file or a reply of 20 MB fits.
MAX_CONTENT_LENGTH = 32_000_000
MAX_REASONING_LENGTH = MAX_CONTENT_LENGTH
MAX_ERROR_LENGTH = 10_000
MAX_MODEL_LABEL_LENGTH = 500
MAX_SYSTEM_PROMPT_LENGTH = 100_000
MAX_FOLDER_LENGTH = 100  # a folder's name, in characters
# Around each matched word of a search snippet, as the stores write it: private-use characters,
# which no keyboard types, so text that looks like markup stays text.
SNIPPET_MARKS = ("\ue000", "\ue001")
# Seconds a streaming reply may go without a write before a reader takes its writer for gone.
REPLY_LEASE_SECONDS = 15.0
ROLES = ("user", "assistant")
# "streaming" until the reply ends (kept if the process dies), then as Reply.status says.
STATUSES = ("streaming", "complete", "stopped", "interrupted", "incomplete", "failed")
# Said with a reply that did not end normally, on the page and in an export.
STATUS_NOTES = {
    "streaming": "Still arriving, or cut off when the page that asked for it closed",
    "stopped": "Stopped",
    "interrupted": "Interrupted",
    "incomplete": "Possibly incomplete",
    "failed": "Failed",
}


def new_id() -> str:
    return str(uuid.uuid4())


# Attachments (core.attachments reads them): what one message and one user may hold.
ATTACHMENT_KINDS = ("image", "document")
MAX_ATTACHMENTS = 10  # per message
MAX_IMAGE_BYTES = 2_000_000  # an image as stored: downscaled and re-encoded
MAX_DOCUMENT_CHARS = 8_000_000  # a document's text
MAX_ATTACHMENT_NAME_LENGTH = 255


@dataclass(frozen=True)
class Attachment:
    """A file sent with a message: an image (downscaled, re-encoded; the original is not kept)
    or a document read to text. It belongs to its message and goes with it."""

    name: str  # the file's name as attached: shown on its chip, fences a document's text
    kind: str  # "image" | "document"
    mime: str  # of `data` for an image (image/jpeg, image/png); of the file for a document
    data: bytes = field(default=b"", repr=False)  # an image's bytes
    text: str = field(default="", repr=False)  # a document's text
    size: int = 0  # bytes of the file as the user attached it
    width: int = 0  # an image's, as sent
    height: int = 0
    id: str = field(default_factory=new_id)


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
    # What the server said it used (prompt_tokens, completion_tokens, total_tokens), and the
    # app's own measures: first_token_ms and reply_ms (from the request), cut_at_length (1).
    usage: Mapping[str, int] | None = None
    created_at: str = ""  # set by the store (ISO 8601, UTC), ordering siblings; an import gives it
    attachments: tuple[Attachment, ...] = ()  # a user message's files, stored with it

    def with_changes(self, **changes) -> "Message":
        return replace(self, **changes)


@dataclass(frozen=True)
class ReplyState:
    """Where a stored reply stands, for its writer and for a page tailing it."""

    status: str  # the message's status now
    content_length: int  # characters stored
    reasoning_length: int
    stop_requested: bool
    alive: bool  # written (or created) within the lease, by the database's clock


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
    max_tokens: int | None = None  # room kept for each reply (None: the server's default)
    context_window: int | None = None  # typed by the user when the server does not say it
    created_at: str = ""  # set by the store; an import gives it
    updated_at: str = ""  # set by the store on every change to the chat or a newer message
    folder: str = ""  # the one folder the user filed it in ("": none)

    def with_changes(self, **changes) -> "Chat":
        return replace(self, **changes)


# Compare (R10): one message to several models at once; each column's reply is a version.
MIN_COMPARED, MAX_COMPARED = 2, 4


@dataclass(frozen=True)
class Comparison:
    """One user message sent to 2-4 models at once. Its replies are siblings (versions) of one
    another, in column order; `labels` names the model asked in each column, as the selector
    labels it. The first verdict is kept: `picked_id` the reply the user chose (in blind mode,
    the one judged best), or `tie` (blind mode: judged equal). A later "continue with" another
    reply moves only the chat's branch on screen."""

    chat_id: str
    message_id: str  # the user message every model was asked
    reply_ids: tuple[str, ...]
    labels: tuple[str, ...]
    blind: bool = False  # model names hidden until the verdict
    picked_id: str | None = None
    tie: bool = False
    id: str = field(default_factory=new_id)
    created_at: str = ""  # set by the store; an import gives it
    decided_at: str = ""  # set by the store when the verdict is first stored

    @property
    def decided(self) -> bool:
        return self.picked_id is not None or self.tie

    def with_changes(self, **changes) -> "Comparison":
        return replace(self, **changes)


@dataclass(frozen=True)
class Found:
    chat: Chat
    snippet: str  # search_page's: each matched word between SNIPPET_MARKS
    message_id: str | None = None  # the matching message the snippet is from (None: the title)


