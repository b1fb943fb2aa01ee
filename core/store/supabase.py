"""The Supabase stores (profile, connections, chats): the signed-in user's rows, read and
written as that user. Row-level security decides what the user may touch; these classes never
use a service key."""

from __future__ import annotations

import base64
import json
import logging
import uuid
from functools import partial
from collections.abc import Callable, Mapping
from collections.abc import Sequence
from datetime import datetime, timezone

from postgrest.exceptions import APIError
from postgrest.types import CountMethod, ReturnMethod

from core.failures import UserFacingError
from core.history.model import (
    MAX_CONTENT_LENGTH,
    MAX_DOCUMENT_CHARS,
    MAX_IMAGE_BYTES,
    MAX_REASONING_LENGTH,
    REPLY_LEASE_SECONDS,
    Chat,
    Comparison,
    Found,
    Message,
    ReplyState,
)
from core.providers.connections import Connection
from core.providers.profile import PROFILE_FIELDS, Profile
from core.store.contracts import UsageTotal
from core.store.contracts import WholeChat
from core.store.errors import (
    CHAT_GONE,
    UNIQUE_SQLSTATE,
    ConnectionChanged,
    ProfileChanged,
    backend_failure,
    chat_failure,
    chat_value_refused,
    connection_failure,
)
from core.store.pace import WritePace
from core.store.sqlite import (
    ATTACHMENT_COLUMNS,
    CHAT_COLUMNS,
    COMPARISON_COLUMNS,
    CONNECTION_COLUMNS,
    MESSAGE_COLUMNS,
    attachment_rows,
    chat_from_row,
    chat_writes,
    comparison_from_row,
    comparison_writes,
    connection_columns,
    connection_from_row,
    given_time,
    message_changes,
    message_from_row,
    message_writes,
    offset,
    reply_state,
    search_words,
    storable_text,
    stored_columns,
    with_attachments,
)

logger = logging.getLogger(__name__)

TABLE = "profiles"
VERSION = "updated_at"  # set by a trigger on every update
# Compares and writes the user's profile in one call, its values in the request body
# (supabase/migrations/20261207063200_save_profile_in_one_call.sql).
UPDATE_PROFILE = "update_own_profile"


class _SignedIn:
    """`client` is this browser session's supabase-py client, signed in as `user_id`."""

    failure = staticmethod(backend_failure)  # what a failed call raises (core.store.errors)

    def __init__(self, client, user_id: str):
        self.client = client
        self.user_id = user_id

    def _execute(self, query, *about: str):
        try:
            return query.execute()
        except Exception as exc:  # sorted by type (core.store.errors): anything else is ours
            raise self.failure(exc, *about) from exc

    def _rows(self, query, *about: str) -> list[dict]:
        return self._execute(query, *about).data or []


def _profile(rows: list[dict]) -> Profile:
    return Profile.from_row(rows[0]) if rows else Profile()


class SupabaseProfileStore(_SignedIn):
    """The user's row of `profiles`. See ProfileStore."""

    def _read(self) -> list[dict]:
        return self._rows(self.client.table(TABLE).select(",".join(PROFILE_FIELDS))
                          .eq("user_id", self.user_id))

    def load(self) -> Profile:
        return _profile(self._read())

    def update(self, changes: Mapping[str, str], expected: Mapping[str, str] | None) -> Profile:
        """Write `changes` if each changed column still holds its `expected` value; `expected`
        None writes unconditionally. The database compares and writes in one call whose
        values travel in the request body: no value, and so no key's ciphertext, is ever part
        of a request's URL (where the app's, PostgREST's and proxies' logs would keep it)."""
        if not changes:
            return self.load()
        unchanged = {} if expected is None else {c: expected[c] for c in changes}
        rows = self._rows(self.client.rpc(UPDATE_PROFILE, {"changes": dict(changes),
                                                            "expected": unchanged}))
        if rows:
            return _profile(rows)
        if self._read():  # the row is there, but not as it was read: changed elsewhere
            raise ProfileChanged()
        if expected is not None and any(expected.values()):
            raise ProfileChanged()  # read with values, now gone (deleted elsewhere)
        # The sign-up trigger never made the row (or it was deleted): a new user's profile.
        return _profile(self._rows(self.client.table(TABLE)
                                   .insert({"user_id": self.user_id, **changes})))


CONNECTIONS = "connections"
CONNECTION_FIELDS = ",".join(("id", *CONNECTION_COLUMNS, VERSION))
LEARN_ATTEMPTS = 5  # quirks written by other sessions meanwhile: read and try again


class SupabaseConnectionStore(_SignedIn):
    """The user's connections in their stored form (secret fields already encrypted by
    core.store.keybox). See ConnectionStore."""

    failure = staticmethod(connection_failure)

    def _table(self):
        return self.client.table(CONNECTIONS)

    def _get(self, connection_id: str, columns: str = CONNECTION_FIELDS) -> dict | None:
        rows = self._rows(self._table().select(columns).eq("id", connection_id)
                          .eq("user_id", self.user_id))
        return rows[0] if rows else None

    def list(self) -> list[Connection]:
        rows = self._rows(self._table().select(CONNECTION_FIELDS).eq("user_id", self.user_id)
                          .order("created_at").order("id"))
        return [connection_from_row(row) for row in rows]

    def add(self, connection: Connection) -> Connection:
        row = {**stored_columns(connection), "user_id": self.user_id}
        rows = self._rows(self._table().insert(row), connection.name)
        return connection_from_row(rows[0])

    def update(self, connection_id: str, changes: Mapping[str, object],
               version: str | None) -> Connection:
        """Write `changes` if the row is still at `version` (PostgREST filters on the update
        itself, so nothing can come between the compare and the write)."""
        columns = connection_columns(changes)
        name = str(changes.get("name") or "")
        table = self._table()
        query = table.update(columns) if columns else table.select(CONNECTION_FIELDS)
        query = query.eq("id", connection_id).eq("user_id", self.user_id)
        if version is not None:
            query = query.eq(VERSION, version)
        rows = self._rows(query, name)
        if rows:
            return connection_from_row(rows[0])
        current = self._get(connection_id, "name")
        if current is None:
            raise ConnectionChanged(name or "This connection", gone=True)
        raise ConnectionChanged(current["name"])

    def delete(self, connection_id: str) -> None:
        self._rows(self._table().delete().eq("id", connection_id).eq("user_id", self.user_id))

    def learn(self, connection_id: str, quirk: str) -> None:
        """Add `quirk` (the table's trigger leaves `updated_at` as it is) if the quirks are still
        as read, so two sessions learning at once keep both."""
        for _ in range(LEARN_ATTEMPTS):
            row = self._get(connection_id, "quirks")
            if row is None or quirk in row["quirks"]:
                return
            rows = self._rows(
                self._table().update({"quirks": sorted({*row["quirks"], quirk})})
                .eq("id", connection_id).eq("user_id", self.user_id)
                .eq("quirks", json.dumps(row["quirks"]))
            )
            if rows:
                return


CHATS, MESSAGES = "chats", "messages"
CHAT_FIELDS = ",".join(CHAT_COLUMNS)  # never the search vector: it is the server's alone
MESSAGE_FIELDS = ",".join(MESSAGE_COLUMNS)
MESSAGES_PER_REQUEST = 1000  # a hosted project answers at most 1000 rows per request
# The calls of supabase/migrations/20261207111500_keep_long_messages_and_reply_leases.sql.
PIECES = "message_pieces"
ADD_IN_PIECES, UPDATE_IN_PIECES = "add_message_in_pieces", "update_message_in_pieces"
APPEND_REPLY, READ_REPLY, SETTLE_ABANDONED = "append_reply", "read_reply", "settle_abandoned"
# No request body is larger: gateways and proxies in front of a project refuse large ones,
# so a longer message is sent in pieces of text, then written whole by one call.
MAX_REQUEST_BYTES = 1_000_000
PIECE_BYTES = MAX_REQUEST_BYTES - 200  # a piece's text, beside its upload id and number
TEXT_LIMITS = {"content": MAX_CONTENT_LENGTH, "reasoning": MAX_REASONING_LENGTH}
# The calls of supabase/migrations/20261207150000_keep_attachments_and_reply_room.sql.
ATTACHMENTS, ADD_WITH_ATTACHMENTS, USAGE_TOTALS = (
    "attachments", "add_message_with_attachments", "usage_totals")
ATTACHMENT_FIELDS = ",".join(("message_id", "position", *ATTACHMENT_COLUMNS))
# Attachments read per request: a chat's are read in one request unless it holds more (an
# image's row is up to 2.7 MB of base64).
ATTACHMENTS_PER_REQUEST = 100
# The table and call of supabase/migrations/20261207180000_keep_comparisons.sql.
COMPARISONS, SAVE_COMPARISON = "comparisons", "save_comparison"
COMPARISON_FIELDS = ",".join(COMPARISON_COLUMNS)
# The calls of supabase/migrations/20261207190000_file_chats_and_search_as_typed.sql.
CHAT_FOLDERS, COUNT_FOUND, SEARCH_PAGE = "chat_folders", "count_found", "search_chats_page"


def attachment_as_sent(row: Mapping[str, object]) -> dict[str, object]:
    """An attachment row (core.store.sqlite.attachment_rows) as the database keeps it: an
    image's bytes as base64 text (see the migration for why not bytea)."""
    return {**row, "data": base64.b64encode(row["data"]).decode("ascii")}


def attachment_as_read(row: Mapping[str, object]) -> dict[str, object]:
    return {**row, "data": base64.b64decode(row["data"] or "")}


def _payload(row: Mapping[str, object]) -> tuple[str, str]:
    """The column holding an attachment row's long text (base64 data or document text)."""
    return ("data", row["data"]) if row["kind"] == "image" else ("text", row["text"])


def request_bytes(body: object) -> int:
    """The bytes of `body` as the PostgREST client sends it (compact JSON, UTF-8)."""
    return len(json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


def pieces_of(text: str, budget: int) -> list[str]:
    """`text` cut into consecutive pieces, each taking at most `budget` bytes as a JSON string
    (an escaped character takes up to 6)."""
    pieces, start = [], 0
    while start < len(text):
        count = budget  # as many characters as bytes: right for ASCII, else made smaller
        while (size := request_bytes(text[start:start + count])) > budget:
            count = min(count - 1, count * budget // size)
        pieces.append(text[start:start + count])
        start += count
    return pieces


def _fields_but(texts: Mapping[str, str]) -> str:
    """The message's fields to read back after writing `texts`: not those (they are what was
    sent), so a long text does not travel twice."""
    return ",".join(c for c in MESSAGE_COLUMNS if c not in texts)


def _is_uuid(value: str) -> bool:
    """Ids are uuids here; anything else names no row (and PostgreSQL would refuse it)."""
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


def _quoted(value: str) -> str:
    """A value inside PostgREST's or=(...) filter, where "," "." ":" "(" are syntax."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class SupabaseChatStore(_SignedIn):
    """The user's chats and messages. See ChatStore."""

    failure = staticmethod(chat_failure)

    def __init__(self, client, user_id: str):
        super().__init__(client, user_id)
        self._pace = WritePace()  # an import's requests, under the user's write-rate bound

    def _chats(self):
        return self.client.table(CHATS)

    def _messages(self):
        return self.client.table(MESSAGES)

    def _attachments_of(self, messages: list[Message], **which: str) -> list[Message]:
        """`messages` holding their attachments, read by `which` (chat_id or message_id)."""
        if not messages:
            return messages
        (column, value), = which.items()
        rows: list[dict] = []
        while True:  # page by page: one request for a chat of up to 100 attachments
            page = self._rows(
                self.client.table(ATTACHMENTS).select(ATTACHMENT_FIELDS).eq(column, value)
                .eq("user_id", self.user_id).order("message_id").order("position")
                .range(len(rows), len(rows) + ATTACHMENTS_PER_REQUEST - 1))
            rows += page
            if len(page) < ATTACHMENTS_PER_REQUEST:
                return with_attachments(messages, [attachment_as_read(row) for row in rows])

    def _holding_attachments(self, row: Mapping) -> Message:
        """A stored message from its row, with its attachments when it is the user's (a
        reply has none: no request for it)."""
        message = message_from_row(row)
        if message.role != "user":
            return message
        return self._attachments_of([message], message_id=message.id)[0]

    def list_chats(self, limit: int = 50, before: tuple[str, str] | None = None, *,
                   pinned: bool | None = None, folder: str | None = None) -> list[Chat]:
        query = self._chats().select(CHAT_FIELDS).eq("user_id", self.user_id)
        if pinned is not None:
            query = query.eq("pinned", pinned)
        if folder is not None:
            query = query.eq("folder", folder)
        if before is not None:
            updated_at, chat_id = (_quoted(str(v)) for v in before)
            query = query.or_(f"updated_at.lt.{updated_at},"
                              f"and(updated_at.eq.{updated_at},id.lt.{chat_id})")
        query = query.order("updated_at", desc=True).order("id", desc=True).limit(limit)
        return [chat_from_row(row) for row in self._rows(query)]

    def get_chat(self, chat_id: str) -> Chat | None:
        if not _is_uuid(chat_id):
            return None
        rows = self._rows(self._chats().select(CHAT_FIELDS).eq("id", chat_id)
                          .eq("user_id", self.user_id))
        return chat_from_row(rows[0]) if rows else None

    def messages(self, chat_id: str) -> list[Message]:
        if not _is_uuid(chat_id):
            return []
        found: list[Message] = []
        while True:  # page by page: a long chat may hold more than one request's rows
            rows = self._rows(
                self._messages().select(MESSAGE_FIELDS).eq("chat_id", chat_id)
                .eq("user_id", self.user_id).order("created_at").order("id")
                .range(len(found), len(found) + MESSAGES_PER_REQUEST - 1)
            )
            found += [message_from_row(row) for row in rows]
            if len(rows) < MESSAGES_PER_REQUEST:
                return self._attachments_of(found, chat_id=chat_id)

    def save_chat(self, chat: Chat) -> Chat:
        """Update the chat if it is there, else create it (an upsert would also write the id
        and owner, which users may not update)."""
        values = chat_writes(chat)
        updated = self._rows(self._chats().update(values).eq("id", chat.id)
                             .eq("user_id", self.user_id))
        if updated:
            return chat_from_row(updated[0])
        given = {name: time for name in ("created_at", "updated_at")
                 if (time := given_time(getattr(chat, name)))}  # an import keeps its times
        # An id already stored is another user's: chat_failure refuses it.
        created = self._rows(self._chats().insert({**values, **given, "id": chat.id,
                                                   "user_id": self.user_id}))
        return chat_from_row(created[0])

    def _stored_message(self, message_id: str) -> list[dict]:
        return self._rows(self._messages().select(MESSAGE_FIELDS).eq("id", message_id)
                          .eq("user_id", self.user_id))

    def _in_pieces(self, texts: Mapping[str, str], write: Callable[[dict], list[dict]]
                   ) -> list[dict]:
        """Stage `texts` (column -> text) as pieces that each fit one request, then `write`
        them whole, given the arguments naming them; on any failure the pieces sent are
        removed again (a process ended midway leaves them to the database's own clean-up)."""
        upload, seq = str(uuid.uuid4()), 0
        try:
            for column, text in texts.items():
                if len(text) > TEXT_LIMITS[column]:  # refused before sending it all
                    raise UserFacingError(chat_value_refused(f"messages_{column}"))
                for piece in pieces_of(text, PIECE_BYTES):
                    self._rows(self.client.table(PIECES).insert(
                        {"upload_id": upload, "seq": seq, column: piece},
                        returning=ReturnMethod.minimal))
                    seq += 1
            return write({"upload": upload, "pieces": seq})
        except BaseException:
            if seq:
                self._forget_pieces(upload)
            raise

    def _forget_pieces(self, upload: str) -> None:
        try:
            self.client.table(PIECES).delete(returning=ReturnMethod.minimal) \
                .eq("upload_id", upload).eq("user_id", self.user_id).execute()
        except Exception:  # what it failed for is being raised already
            logger.warning("Could not remove the staged pieces of upload %s", upload,
                           exc_info=True)

    def add_message(self, message: Message) -> Message:
        """Insert the message; its id already stored (a retry, another tab) changes nothing.
        A message longer than one request is staged in pieces and written by one call; so is
        a message with attachments, with them."""
        row = {**message_writes(message), "user_id": self.user_id}
        if time := given_time(message.created_at):  # an import keeps its times
            row["created_at"] = time
        if message.attachments:
            return self._with_attachments(message, row)
        if request_bytes(row) <= MAX_REQUEST_BYTES:
            return self._inserted(message.id, lambda: self._messages().insert(row)
                                  .execute().data)
        if stored := self._stored_message(message.id):  # a retry need not send it again
            return message_from_row(stored[0])
        texts = {"content": row["content"], "reasoning": row["reasoning"]}
        rest = {**row, "content": "", "reasoning": ""}
        return self._inserted(message.id, lambda: self._in_pieces(texts, lambda staged: [
            {**written, **texts} for written in self.client.rpc(ADD_IN_PIECES, {
                "message": rest, **staged}).select(_fields_but(texts)).execute().data]))

    def _with_attachments(self, message: Message, row: dict) -> Message:
        """The message and its attachments by one call (all or nothing). Texts that would make
        the request too big (the message's, each attachment's payload) are staged first."""
        files = attachment_rows(message)
        for file in files:  # refused before sending a byte of it
            if len(file["data"]) > MAX_IMAGE_BYTES:
                raise UserFacingError(chat_value_refused("attachments_data"))
            if len(file["text"]) > MAX_DOCUMENT_CHARS:
                raise UserFacingError(chat_value_refused("attachments_text"))
        files = [attachment_as_sent(file) for file in files]
        arguments = {"message": row, "files": files}
        if request_bytes(arguments) <= MAX_REQUEST_BYTES:
            return self._inserted(message.id, lambda: self.client.rpc(
                ADD_WITH_ATTACHMENTS, arguments).select(MESSAGE_FIELDS).execute().data,
                message)
        if stored := self._stored_message(message.id):  # a retry need not send it again
            return self._holding_attachments(stored[0])
        texts = {"content": row["content"], "reasoning": row["reasoning"]}
        uploads: list[str] = []

        def staged_and_written() -> list[dict]:
            staged = self._staged(texts, uploads)
            sent = []
            for file in files:
                column, text = _payload(file)
                sent.append({**file, column: "", **self._staged({"content": text}, uploads)})
            return [{**written, **texts} for written in self.client.rpc(ADD_WITH_ATTACHMENTS, {
                "message": {**row, "content": "", "reasoning": ""}, "files": sent, **staged})
                .select(_fields_but(texts)).execute().data]

        try:
            return self._inserted(message.id, staged_and_written, message)
        except BaseException:
            for upload in uploads:
                self._forget_pieces(upload)
            raise

    def _staged(self, texts: Mapping[str, str], uploads: list[str]) -> dict[str, object]:
        """`texts` (column -> text) staged as pieces under a new upload, listed in `uploads`;
        the arguments naming them."""
        upload, seq = str(uuid.uuid4()), 0
        uploads.append(upload)
        for column, text in texts.items():
            for piece in pieces_of(text, PIECE_BYTES):
                self._rows(self.client.table(PIECES).insert(
                    {"upload_id": upload, "seq": seq, column: piece},
                    returning=ReturnMethod.minimal))
                seq += 1
        return {"upload": upload, "pieces": seq}

    def _inserted(self, message_id: str, insert: Callable[[], list[dict]],
                  message: Message | None = None) -> Message:
        """The message `insert` stored (holding `message`'s attachments, as written), or the
        one already stored under its id."""
        try:
            rows = insert()
        except UserFacingError:  # already said (a piece refused)
            raise
        except Exception as exc:  # sorted by type, as in _rows
            if not (isinstance(exc, APIError) and exc.code == UNIQUE_SQLSTATE):
                raise chat_failure(exc) from exc
            rows = self._stored_message(message_id)
            if not rows and "attachments_pkey" in exc.message:  # a file's id, not the message's
                raise UserFacingError(chat_value_refused("attachments_pkey")) from exc
            if not rows:  # the id is another user's
                raise UserFacingError(chat_value_refused(CHAT_GONE)) from exc
            return self._holding_attachments(rows[0])
        stored = message_from_row(rows[0])
        if message is None or not message.attachments:
            return stored
        return with_attachments([stored], attachment_rows(message))[0]

    def update_message(self, message_id: str, changes: Mapping[str, object]) -> Message:
        """See ChatStore; a content or reasoning longer than one request is staged in pieces
        and the change written by one call."""
        values = message_changes(changes)
        if not _is_uuid(message_id):
            rows = []
        elif not values:
            rows = self._stored_message(message_id)
        elif request_bytes(values) <= MAX_REQUEST_BYTES:
            rows = self._rows(self._messages().update(values).eq("id", message_id)
                              .eq("user_id", self.user_id))
        else:
            texts = {c: values[c] for c in ("content", "reasoning") if c in values}
            rest = {**values, **dict.fromkeys(texts, "")}
            rows = self._in_pieces(texts, lambda staged: [
                {**written, **texts} for written in self._rows(self.client.rpc(
                    UPDATE_IN_PIECES, {"message_id": message_id, "changes": rest, **staged})
                    .select(_fields_but(texts)))])
        if not rows:
            raise UserFacingError(chat_value_refused(CHAT_GONE))
        return self._holding_attachments(rows[0])

    def append_reply(self, message_id: str, content_at: int, content: str,
                     reasoning_at: int, reasoning: str) -> ReplyState | None:
        """One call (append_reply in the database) for pieces that fit one request; longer
        ones are staged first, and the same call appends them whole."""
        if not _is_uuid(message_id):
            return None
        texts = {"content": storable_text(content), "reasoning": storable_text(reasoning)}
        arguments = {"message_id": message_id, "content_at": int(content_at),
                     "reasoning_at": int(reasoning_at), **texts}
        if request_bytes(arguments) <= MAX_REQUEST_BYTES:
            rows = self._rows(self.client.rpc(APPEND_REPLY, arguments))
        else:
            rows = self._in_pieces(texts, lambda staged: self._rows(self.client.rpc(
                APPEND_REPLY, {**arguments, "content": "", "reasoning": "", **staged})))
        return reply_state(rows[0], REPLY_LEASE_SECONDS) if rows else None

    def read_reply(self, message_id: str, content_at: int = 0, reasoning_at: int = 0,
                   lease_seconds: float = REPLY_LEASE_SECONDS
                   ) -> tuple[Message, ReplyState] | None:
        if not _is_uuid(message_id):
            return None
        rows = self._rows(self.client.rpc(READ_REPLY, {
            "message_id": message_id, "content_at": offset(content_at),
            "reasoning_at": offset(reasoning_at)}))
        if not rows:
            return None
        return message_from_row(rows[0]), reply_state(rows[0], lease_seconds)

    def request_stop(self, message_id: str) -> None:
        if _is_uuid(message_id):  # the heartbeat stays: asking is not the writer being there
            self._rows(self._messages().update({"stop_requested": True},
                                               returning=ReturnMethod.minimal)
                       .eq("id", message_id).eq("user_id", self.user_id))

    def settle_abandoned(self, chat_id: str, lease_seconds: float) -> list[str]:
        if not _is_uuid(chat_id):
            return []
        rows = self._rows(self.client.rpc(SETTLE_ABANDONED, {
            "chat_id": chat_id, "lease_seconds": max(float(lease_seconds), 0.0)}))
        return [str(row["id"]) for row in rows]

    def delete_chat(self, chat_id: str) -> None:
        if _is_uuid(chat_id):  # its messages go with it (on delete cascade)
            self._rows(self._chats().delete(returning=ReturnMethod.minimal).eq("id", chat_id)
                       .eq("user_id", self.user_id))

    def delete_all(self) -> int:
        return self._execute(self._chats().delete(count=CountMethod.exact,
                                                  returning=ReturnMethod.minimal)
                             .eq("user_id", self.user_id)).count or 0

    def search(self, query: str, limit: int = 20) -> list[Found]:
        """One call to search_chats (supabase/migrations/20261126050000_create_chats.sql),
        which runs as the user: row-level security keeps it to their own chats."""
        words = search_words(query)
        if not words or limit <= 0:
            return []
        rows = self._rows(self.client.rpc("search_chats",
                                          {"query": " ".join(words), "max": limit}))
        return [Found(chat_from_row({**row, "user_id": self.user_id}), row["snippet"])
                for row in rows]

    # ---- folders, and search as the user types: the calls of
    # supabase/migrations/20261207190000_file_chats_and_search_as_typed.sql, which run as the
    # user (row-level security keeps them to their own chats)

    def folders(self) -> list[tuple[str, int]]:
        return [(row["folder"], row["chats"])
                for row in self._rows(self.client.rpc(CHAT_FOLDERS, {}))]

    def move_folder(self, name: str, to: str) -> int:
        values = chat_writes(Chat(folder=to))
        return self._execute(self._chats().update({"folder": values["folder"]},
                                                  count=CountMethod.exact,
                                                  returning=ReturnMethod.minimal)
                             .eq("user_id", self.user_id).eq("folder", name)).count or 0

    def count_found(self, query: str) -> int:
        if not (words := search_words(query)):
            return 0
        return int(self._execute(self.client.rpc(COUNT_FOUND, {"words": words})).data or 0)

    def search_page(self, query: str, limit: int = 20, offset: int = 0) -> list[Found]:
        if not (words := search_words(query)) or limit <= 0:
            return []
        rows = self._rows(self.client.rpc(SEARCH_PAGE, {"words": words, "max": limit,
                                                        "skip": max(offset, 0)}))
        return [Found(chat_from_row({**row, "user_id": self.user_id}), row["snippet"],
                      None if row["message_id"] is None else str(row["message_id"]))
                for row in rows]

    def usage_totals(self) -> list[UsageTotal]:
        """One call to usage_totals, which runs as the user: row-level security keeps it to
        their own replies."""
        return [UsageTotal(**row) for row in self._rows(self.client.rpc(USAGE_TOTALS, {}))]

    def save_comparison(self, comparison: Comparison) -> Comparison:
        """One call (save_comparison in the database): inserts it, or writes its verdict while
        the stored one has none; nothing back means the id is another user's."""
        row = {**comparison_writes(comparison), "user_id": self.user_id}
        if not _is_uuid(comparison.chat_id):
            raise UserFacingError(chat_value_refused(CHAT_GONE))
        for name in ("created_at", "decided_at"):  # an import keeps its times
            if time := given_time(getattr(comparison, name)):
                row[name] = time
        rows = self._rows(self.client.rpc(SAVE_COMPARISON, {"comparison": row}))
        if not rows:
            raise UserFacingError(chat_value_refused(CHAT_GONE))
        return comparison_from_row(rows[0])

    def _comparison_rows(self, decided: bool = False, **equal: object) -> list[Comparison]:
        """The user's comparisons whose columns hold `equal` (only the decided ones when
        `decided`), oldest first."""
        found: list[Comparison] = []
        while True:  # page by page: a hosted project answers at most 1000 rows per request
            query = self.client.table(COMPARISONS).select(COMPARISON_FIELDS) \
                .eq("user_id", self.user_id)
            for column, value in equal.items():
                query = query.eq(column, value)
            if decided:
                query = query.or_("picked_id.not.is.null,tie.is.true")
            rows = self._rows(query.order("created_at").order("id").range(
                len(found), len(found) + MESSAGES_PER_REQUEST - 1))
            found += [comparison_from_row(row) for row in rows]
            if len(rows) < MESSAGES_PER_REQUEST:
                return found

    def comparisons(self, chat_id: str) -> list[Comparison]:
        return self._comparison_rows(chat_id=chat_id) if _is_uuid(chat_id) else []

    def blind_verdicts(self) -> list[Comparison]:
        return self._comparison_rows(blind=True, decided=True)

    def add_whole_chats(self, whole: Sequence[WholeChat]) -> list[str]:
        """See ChatStore: the chats not stored yet by one request, then their messages in
        requests of up to MESSAGES_PER_REQUEST rows and MAX_REQUEST_BYTES, parents first (a
        message that needs a request of its own, long or with files, goes by add_message)."""
        ids = [chat.id for chat, _, _ in whole]
        if not all(_is_uuid(chat_id) for chat_id in ids):
            raise UserFacingError(chat_value_refused(CHAT_GONE))
        stored = {row["id"] for row in self._rows(
            self._chats().select("id").in_("id", ids).eq("user_id", self.user_id))} \
            if ids else set()
        new = [item for item in whole if item[0].id not in stored]
        if not new:
            return []
        now = given_time(datetime.now(timezone.utc).isoformat())
        chats = [{**chat_writes(chat), "id": chat.id, "user_id": self.user_id,
                  "created_at": given_time(chat.created_at) or now,
                  "updated_at": given_time(chat.updated_at) or now} for chat, _, _ in new]
        self._pace.write(len(chats), lambda: self._rows(
            self._chats().insert(chats, returning=ReturnMethod.minimal)))
        try:
            batch: list[dict] = []
            size = 0  # the batch's bytes as sent, near enough (a comma per row)
            for chat, messages, _ in new:
                for message in messages:
                    row = {**message_writes(message), "user_id": self.user_id,
                           "created_at": given_time(message.created_at) or now}
                    row_bytes = request_bytes(row) + 1
                    if message.attachments or row_bytes > MAX_REQUEST_BYTES // 2:
                        self._insert_all(batch)
                        size = 0
                        # paced like the batches (a retry of it changes nothing)
                        self._pace.write(1, partial(self.add_message, message))
                        continue
                    if len(batch) == MESSAGES_PER_REQUEST or size + row_bytes > MAX_REQUEST_BYTES:
                        self._insert_all(batch)
                        size = 0
                    batch.append(row)
                    size += row_bytes
            self._insert_all(batch)
            for _, _, comparisons in new:
                for comparison in comparisons:
                    self.save_comparison(comparison)
        except BaseException:  # all or nothing: the chats just created go again
            self._forget_chats([chat.id for chat, _, _ in new])
            raise
        return [chat.id for chat, _, _ in new]

    def _forget_chats(self, chat_ids: list[str]) -> None:
        try:
            self._chats().delete(returning=ReturnMethod.minimal).in_("id", chat_ids) \
                .eq("user_id", self.user_id).execute()
        except Exception:  # what it failed for is being raised already
            logger.warning("Could not remove %d chats of a failed import", len(chat_ids),
                           exc_info=True)

    def _insert_all(self, rows: list[dict]) -> None:
        """Insert `rows` (messages) by one request, paced, and empty the list."""
        if rows:
            sent = list(rows)
            self._pace.write(len(sent), lambda: self._rows(
                self._messages().insert(sent, returning=ReturnMethod.minimal)))
            rows.clear()
