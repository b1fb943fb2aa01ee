"""What every store promises its callers, whichever backend (SQLite, Supabase) keeps the data.

Each store is bound to one user. Every method raises StoreUnavailable (core.store.errors) when
the store cannot be reached or used, and a UserFacingError said for the user when it refuses a
value; nothing is half-written. The shared contract tests run every backend through these calls.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Protocol

from core.history.model import REPLY_LEASE_SECONDS, Chat, Comparison, Found, Message, ReplyState
from core.providers.connections import Connection
from core.providers.profile import Profile
from collections.abc import Sequence

# A chat to import whole: the chat (its own times), its messages (each after its parent, with
# their own times) and its comparisons.
WholeChat = tuple[Chat, Sequence[Message], Sequence[Comparison]]


@dataclass(frozen=True)
class UsageTotal:
    """What the user's replies from one model (its label, as the footer showed it) used."""

    model_label: str
    replies: int  # the assistant's messages with that label, with or without usage
    prompt_tokens: int  # summed over the replies whose usage says it
    completion_tokens: int


class ProfileStore(Protocol):
    """One user's profile."""

    def load(self) -> Profile:
        """The stored profile, or an empty one if nothing was saved yet."""

    def update(self, changes: Mapping[str, str], expected: Mapping[str, str]) -> Profile:
        """Write `changes` (column -> new value) only if each of those columns still holds
        its `expected` value (what was read), all at once; return the row as stored.

        Raises ProfileChanged when one of them was changed since. No change writes nothing.
        """


class ConnectionStore(Protocol):
    """One user's connections (origin "user"). Stores hold secret fields encrypted: the plain
    `Connection`s here are what core.store.keybox gives and takes. Refused: a name another of
    the user's connections has, more than MAX_CONNECTIONS, a value too long."""

    def list(self) -> list[Connection]:
        """The user's connections, oldest first."""

    def add(self, connection: Connection) -> Connection:
        """Store a new connection (its id and origin are ignored); return it as stored."""

    def update(self, connection_id: str, changes: Mapping[str, object],
               version: str | None, *, remove_secrets: Collection[str] = ()) -> Connection:
        """Write `changes` (field -> new value) if the row is still at `version` (None: any);
        raise ConnectionChanged when it moved on or is gone. A secret field named in
        `remove_secrets` is emptied even when no current encryption secret opens it."""

    def delete(self, connection_id: str) -> None:
        """Delete it; deleting one that is already gone is not an error."""

    def learn(self, connection_id: str, quirk: str) -> None:
        """Add a quirk without moving the row's version (a chat learning something must not
        make an open Settings form's save fail); a gone connection is ignored."""


class ChatStore(Protocol):
    """One user's chats and messages; a method writing both writes them in one transaction."""

    def list_chats(self, limit: int = 50, before: tuple[str, str] | None = None, *,
                   pinned: bool | None = None, folder: str | None = None) -> list[Chat]:
        """Newest first (updated_at, then id), at most `limit`, those strictly before the
        (updated_at, id) cursor when given: the next page after the last one shown. Only the
        pinned (or unpinned) ones when `pinned` is given, only those filed in `folder` when
        it is given ("": in none)."""

    def get_chat(self, chat_id: str) -> Chat | None:
        ...

    def messages(self, chat_id: str) -> list[Message]:
        """Every message of the chat, every branch, oldest first ([] for another user's),
        each with its attachments in their order."""

    def save_chat(self, chat: Chat) -> Chat:
        """Create the chat, or update its title, model, options, current_id, pinned; moves
        updated_at. Returns it as stored."""

    def add_message(self, message: Message) -> Message:
        """Store a new message (its id is kept) with its attachments, all or nothing: an
        attachment refused (a bound) is a UserFacingError and leaves no message behind. Moves
        its chat's updated_at. Adding an id that is already there changes nothing and returns
        the stored one."""

    def update_message(self, message_id: str, changes: Mapping[str, object]) -> Message:
        """Change content, status, error, reasoning, usage or model_label of a message (a reply
        as it streams, then as it ended); its attachments never change."""

    def delete_chat(self, chat_id: str) -> None:
        """Delete the chat and all its messages; one already gone is not an error."""

    def delete_all(self) -> int:
        """Delete every chat of the user (and their messages); return how many."""

    def usage_totals(self) -> list[UsageTotal]:
        """The user's replies and the tokens their usage says, per model label, by label."""

    # ---- comparisons (one message to 2-4 models): deleted with their chat

    def save_comparison(self, comparison: Comparison) -> Comparison:
        """Store a new comparison (its id is kept), or, for one already stored, its verdict:
        `picked_id` and `tie` are written only while the stored one is undecided (the first
        verdict is kept; decided_at is set then). Its chat must be the user's and stored;
        its message and replies may be stored later. Returns it as stored."""

    def comparisons(self, chat_id: str) -> list[Comparison]:
        """The chat's comparisons, oldest first ([] for another user's chat)."""

    def blind_verdicts(self) -> list[Comparison]:
        """Every decided blind comparison of the user, oldest first: the tally's input."""

    def search(self, query: str, limit: int = 20) -> list[Found]:
        """Chats whose title or any message matches `query` (full text, every word must
        match, in any order; punctuation in `query` is plain text), best or newest first.
        A message is searched in its first 100,000 characters."""

    def search_page(self, query: str, limit: int = 20, offset: int = 0) -> list[Found]:
        """As `search` for a query still being typed: its last word also matches as the start
        of a word. Newest first, `limit` chats after the first `offset`; each snippet has its
        matched words between SNIPPET_MARKS, and names the message it is from (None: the
        title matched)."""

    def count_found(self, query: str) -> int:
        """How many chats `search_page` finds for `query`, all pages together."""

    # ---- folders: a chat is in one folder or none (Chat.folder, written by save_chat);
    # a folder exists while a chat is filed in it

    def folders(self) -> list[tuple[str, int]]:
        """The user's folders and how many chats each holds, by name."""

    def move_folder(self, name: str, to: str) -> int:
        """Refile every chat of folder `name` in folder `to` ("": in none), a rename or a
        delete of the folder; return how many. Refused: a name longer than
        MAX_FOLDER_LENGTH."""

    # ---- a reply as it streams: written by one worker, read by any page of any replica.
    # Offsets count characters (code points); a stored "streaming" reply carries a heartbeat
    # that the database's clock sets on each write, and that the lease is measured against.

    def append_reply(self, message_id: str, content_at: int, content: str,
                     reasoning_at: int, reasoning: str) -> ReplyState | None:
        """If the message is 'streaming' and holds exactly `content_at` / `reasoning_at`
        characters, append both pieces (either may be empty: then it is only a heartbeat) and
        move its heartbeat; else write nothing. Returns the state after (None: no such message
        of this user); its `alive` is measured against REPLY_LEASE_SECONDS. All or nothing,
        a piece of any size; one round trip for a piece that fits one request."""

    def read_reply(self, message_id: str, content_at: int = 0, reasoning_at: int = 0,
                   lease_seconds: float = REPLY_LEASE_SECONDS
                   ) -> tuple[Message, ReplyState] | None:
        """The message holding only its content and reasoning after those offsets (for a page
        tailing a reply written elsewhere), and its state: `alive` when its heartbeat (or its
        creation, for a reply written before heartbeats) is within `lease_seconds` by the
        database's clock. None: no such message of this user."""

    def request_stop(self, message_id: str) -> None:
        """Ask the reply's writer to stop (it reads `stop_requested` from append_reply); a
        message that is gone or not the user's is not an error."""

    def settle_abandoned(self, chat_id: str, lease_seconds: float) -> list[str]:
        """Mark 'interrupted' every 'streaming' message of the chat whose heartbeat (or
        creation, for one written before heartbeats) is older than `lease_seconds` by the
        database's clock; return their ids. Of callers at once (two replicas), only one gets
        each id. Its error is left as it was: the caller says why."""

    # ---- imports

    def add_whole_chats(self, whole: Sequence[WholeChat]) -> list[str]:
        """Store each chat whose id is not stored yet, whole, with its own times (a message
        without one is stamped after its chat); return the ids stored. A chat already stored
        is left as it is. Many chats at once, for an import's speed; all or nothing: after a
        failure none of them is stored."""
