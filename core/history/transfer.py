"""Export as Markdown or versioned JSON; import that JSON or ChatGPT's conversations.json, checked
whole first, a failed write undone. Imported ids are uuid5 of the file's and the user's, so a
second import is recognised and one cut off by an outage can finish."""

from __future__ import annotations

import base64
import binascii
import json
import logging
import math
import re
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timezone
from types import MappingProxyType
from typing import NamedTuple

from core.attachments.wire import fence_for
from core.failures import UserFacingError
from core.history.model import (
    ATTACHMENT_KINDS,
    MAX_ATTACHMENT_NAME_LENGTH,
    MAX_ATTACHMENTS,
    MAX_COMPARED,
    MAX_CONTENT_LENGTH,
    MAX_DOCUMENT_CHARS,
    MAX_ERROR_LENGTH,
    MAX_FOLDER_LENGTH,
    MAX_IMAGE_BYTES,
    MAX_MODEL_LABEL_LENGTH,
    MAX_REASONING_LENGTH,
    MAX_SYSTEM_PROMPT_LENGTH,
    MAX_TITLE_LENGTH,
    MIN_COMPARED,
    ROLES,
    STATUS_NOTES,
    STATUSES,
    Attachment,
    Chat,
    Comparison,
    Message,
)
from core.store.errors import MAX_CONTEXT_WINDOW, MAX_REPLY_TOKENS
from core.store.contracts import ChatStore
from core.history.thread import Thread, parents_first, title_from

logger = logging.getLogger(__name__)

FORMAT = "switchboard.chats"
VERSION = 1
MAX_FILE_BYTES = 200 * 1024 * 1024  # what Streamlit's uploader accepts by default
MAX_MESSAGES_PER_CHAT = 100_000
MAX_ID_LENGTH = 200
MAX_LABEL_LENGTH = 1_000  # connection ids, model names and labels: short by nature
MAX_FILE_SIZE = 10_000_000_000  # an attached file's size as the user attached it, in bytes
MAX_IMAGE_SIDE = 100_000  # pixels
# Fixed namespace of imported ids; never change it, or second imports stop being recognised.
_IMPORTED_IDS = uuid.UUID("5b0e7a52-3c4d-4f8e-9a61-2d1f0c9e7b34")

Pair = tuple[Chat, list[Message]]
# A chat's comparisons by its id (a chat with none need not be named).
Compared = Mapping[str, Sequence[Comparison]]


class Reading(NamedTuple):
    chats: list[Pair]
    skipped: int = 0  # ChatGPT messages or parts left out
    source: str = FORMAT  # whose format: FORMAT or "chatgpt" (it salts the imported ids)
    comparisons: Compared = MappingProxyType({})  # by the chat's id in the file


@dataclass(frozen=True)
class ImportReport:
    imported: int
    already_there: int
    skipped: int = 0  # ChatGPT messages or parts left out (system, tool, hidden, not text)
    chat_ids: Mapping[str, str] = field(default_factory=dict)  # id in the file -> in the store

    @property
    def summary(self) -> str:
        text = f"{self.imported} imported, {self.already_there} already there."
        if self.skipped:
            text += f" {self.skipped} system, tool or non-text parts were left out."
        return text


class _Refused(Exception):
    """Why and where a file cannot be imported."""


# ---- Markdown: the branch on screen, for reading ----


def to_markdown(chat: Chat, messages: Sequence[Message],
                comparisons: Sequence[Comparison] = ()) -> str:
    """Each text sits in a fence longer than its backtick runs, so its code cannot break out.
    A compared message's other replies follow the branch's reply to it, each under its
    column's label; the branch's reply says when it was the one picked."""
    lines = [f"# {_inline(chat.title) or 'Untitled chat'}", ""]
    if chat.system_prompt:
        lines += _details("System prompt", chat.system_prompt)
    branch = Thread(messages).branch(chat.current_id)
    by_id = {message.id: message for message in messages}
    of_message = {c.message_id: c for c in comparisons}
    for index, message in enumerate(branch):
        asked = of_message.get(message.parent_id) if message.role == "assistant" else None
        picked = asked is not None and asked.picked_id == message.id
        lines += _message_markdown(message, " (picked)" if picked else "")
        unanswered = message.id in of_message and index + 1 == len(branch)
        if asked is not None or unanswered:
            lines += _also_compared(asked or of_message[message.id], message.id, by_id)
    return "\n".join(lines)


def _also_compared(comparison: Comparison, shown: str, by_id: Mapping[str, Message]
                   ) -> list[str]:
    """The comparison's stored replies but `shown`, in column order, each under its label."""
    lines = []
    for reply_id, label in zip(comparison.reply_ids, comparison.labels):
        if reply_id != shown and reply_id in by_id:
            picked = " (picked)" if comparison.picked_id == reply_id else ""
            lines += _message_markdown(by_id[reply_id], picked,
                                       f"### Also compared · {_inline(label)}")
    return lines


def _message_markdown(message: Message, suffix: str = "", heading: str = "") -> list[str]:
    if not heading:
        heading = "## " + ("You" if message.role == "user" else "Assistant")
        if message.model_label:
            heading += f" · {_inline(message.model_label)}"
    lines = [heading + suffix, ""]
    if message.reasoning:
        lines += _details("Reasoning", message.reasoning)
    lines += [*_fenced(message.content, "markdown"), ""]
    for kind, label in (("image", "Images"), ("document", "Documents")):
        names = [_inline(a.name) for a in message.attachments if a.kind == kind]
        if names:  # by name only: a document's text would drown the conversation
            lines += [f"*{label} attached: {', '.join(names)}*", ""]
    note = STATUS_NOTES.get(message.status, "")
    if note or message.error:
        lines += [f"> *{': '.join(_inline(p) for p in (note, message.error) if p)}*", ""]
    return lines


def _details(summary: str, text: str) -> list[str]:
    return [f"<details><summary>{summary}</summary>", "", *_fenced(text, "text"), "",
            "</details>", ""]


def _fenced(text: str, info: str) -> list[str]:
    fence = fence_for(text)
    body = text[:-1] if text.endswith("\n") else text
    return [fence + info, body, fence] if text else [fence + info, fence]


def _inline(text: str) -> str:
    """One line of plain text in Markdown: whitespace collapsed, punctuation escaped."""
    return re.sub(r"([!-/:-@\[-`{-~])", r"\\\1", " ".join(text.split()))


# ---- JSON: every chat and message, lossless ----


def to_json(chats: Iterable[Pair], now: Callable[[], datetime] | None = None,
            comparisons: Compared | None = None) -> str:
    """Every field of every chat and message, all branches, and each chat's comparisons."""
    exported_at = (now or (lambda: datetime.now(timezone.utc)))().isoformat()
    compared = comparisons or {}
    document = {"format": FORMAT, "version": VERSION, "exported_at": exported_at,
                "chats": [_chat_record(chat, messages, compared.get(chat.id, ()))
                          for chat, messages in chats]}
    return json.dumps(document, ensure_ascii=False, indent=1)


def _chat_record(chat: Chat, messages: Iterable[Message],
                 comparisons: Iterable[Comparison] = ()) -> dict:
    record = {f.name: getattr(chat, f.name) for f in fields(Chat)}
    record["messages"] = [_message_record(m) for m in messages]
    record["comparisons"] = [{f.name: getattr(c, f.name) for f in fields(Comparison)}
                             for c in comparisons]  # its tuples written as lists
    return record


def _message_record(message: Message) -> dict:
    record = {f.name: getattr(message, f.name) for f in fields(Message)}
    record["usage"] = None if message.usage is None else dict(message.usage)
    record["attachments"] = [_attachment_record(a) for a in message.attachments]
    return record


def _attachment_record(attachment: Attachment) -> dict:
    record = {f.name: getattr(attachment, f.name) for f in fields(Attachment)}
    record["data"] = base64.b64encode(attachment.data).decode("ascii")  # JSON holds no bytes
    return record


# ---- checking what a file holds, field by field (limits from core.history.model) ----


def _text(limit: int) -> Callable[[object], str]:
    def check(value: object) -> str:
        if not isinstance(value, str):
            raise _Refused("must be text")
        if len(value) > limit:
            raise _Refused(f"is longer than {limit:,} characters")
        if re.search("[\ud800-\udfff]", value):
            raise _Refused("holds a broken character")
        return value
    return check


_id_text = _text(MAX_ID_LENGTH)
_label_text = _text(MAX_LABEL_LENGTH)


def _identifier(value: object) -> str:
    if not _id_text(value):
        raise _Refused("is empty")
    return value


def _optional_identifier(value: object) -> str | None:
    return None if value is None else _identifier(value)


def _one_of(allowed: Sequence[str]) -> Callable[[object], str]:
    def check(value: object) -> str:
        if value not in allowed or not isinstance(value, str):
            raise _Refused("must be one of " + ", ".join(allowed))
        return value
    return check


def _temperature(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _Refused("must be a number or null")
    return float(value)


def _flag(value: object) -> bool:
    if not isinstance(value, bool):
        raise _Refused("must be true or false")
    return value


def _timestamp(value: object) -> str:
    text = _label_text(value)
    try:
        if text:
            datetime.fromisoformat(text)
    except ValueError:
        raise _Refused("is not a date and time") from None
    return text


def _whole(low: int, high: int) -> Callable[[object], int]:
    def check(value: object) -> int:
        if type(value) is not int or not low <= value <= high:
            raise _Refused(f"must be a whole number from {low:,} to {high:,}")
        return value
    return check


def _optional_whole(low: int, high: int) -> Callable[[object], int | None]:
    whole = _whole(low, high)
    return lambda value: None if value is None else whole(value)


def _image_data(value: object) -> bytes:
    if not isinstance(value, str):
        raise _Refused("must be base64 text")
    if len(value) > (MAX_IMAGE_BYTES + 2) // 3 * 4:  # refused before decoding it
        raise _Refused(f"is more than {MAX_IMAGE_BYTES:,} bytes")
    try:
        data = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise _Refused("is not base64 text") from None
    if len(data) > MAX_IMAGE_BYTES:
        raise _Refused(f"is more than {MAX_IMAGE_BYTES:,} bytes")
    return data


def _name(value: object) -> str:
    if not _text(MAX_ATTACHMENT_NAME_LENGTH)(value):
        raise _Refused("is empty")
    return value


ATTACHMENT_FIELDS: dict[str, Callable[[object], object]] = {
    "name": _name, "kind": _one_of(ATTACHMENT_KINDS), "mime": _text(255),
    "data": _image_data, "text": _text(MAX_DOCUMENT_CHARS), "size": _whole(0, MAX_FILE_SIZE),
    "width": _whole(0, MAX_IMAGE_SIDE), "height": _whole(0, MAX_IMAGE_SIDE), "id": _identifier,
}


def _attachments(value: object) -> tuple[Attachment, ...]:
    if not isinstance(value, list):
        raise _Refused("are not a list")
    if len(value) > MAX_ATTACHMENTS:
        raise _Refused(f"are {len(value)} files, more than the {MAX_ATTACHMENTS} a message "
                       "can carry")
    attachments = []
    for number, record in enumerate(value, 1):
        try:
            attachment = Attachment(**_record_values(record, ATTACHMENT_FIELDS, set()))
            if attachment.kind != "image" and attachment.data:
                raise _Refused("only an image has data")
            if attachment.kind != "document" and attachment.text:
                raise _Refused("only a document has text")
        except _Refused as why:
            raise _Refused(f"are refused: {_where('file', number, record, 'name')}: {why}") \
                from None
        attachments.append(attachment)
    if len({a.id for a in attachments}) < len(attachments):
        raise _Refused("hold two files with the same id")
    return tuple(attachments)


def _usage(value: object) -> dict[str, int] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not all(
            isinstance(k, str) and type(v) is int and v >= 0 for k, v in value.items()):
        raise _Refused("must map names to whole numbers")
    return value


CHAT_FIELDS: dict[str, Callable[[object], object]] = {
    "title": _text(MAX_TITLE_LENGTH), "id": _identifier, "connection_id": _text(MAX_LABEL_LENGTH),
    "model": _text(MAX_LABEL_LENGTH), "system_prompt": _text(MAX_SYSTEM_PROMPT_LENGTH),
    "temperature": _temperature, "current_id": _optional_identifier, "pinned": _flag,
    "max_tokens": _optional_whole(1, MAX_REPLY_TOKENS),
    "context_window": _optional_whole(1, MAX_CONTEXT_WINDOW),
    "created_at": _timestamp, "updated_at": _timestamp,
}
CHAT_FIELDS["folder"] = _text(MAX_FOLDER_LENGTH)  # the folder the user filed it in
MESSAGE_FIELDS: dict[str, Callable[[object], object]] = {
    "chat_id": _identifier, "role": _one_of(ROLES), "content": _text(MAX_CONTENT_LENGTH),
    "parent_id": _optional_identifier, "id": _identifier,
    "model_label": _text(MAX_MODEL_LABEL_LENGTH), "status": _one_of(STATUSES),
    "error": _text(MAX_ERROR_LENGTH), "reasoning": _text(MAX_REASONING_LENGTH), "usage": _usage,
    "created_at": _timestamp, "attachments": _attachments,
}


def _ids(value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not MIN_COMPARED <= len(value) <= MAX_COMPARED:
        raise _Refused(f"must list {MIN_COMPARED} to {MAX_COMPARED} ids")
    ids = tuple(_identifier(item) for item in value)
    if len(set(ids)) < len(ids):
        raise _Refused("name one reply twice")
    return ids


def _labels(value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or len(value) > MAX_COMPARED:
        raise _Refused(f"must list at most {MAX_COMPARED} labels")
    return tuple(_text(MAX_MODEL_LABEL_LENGTH)(item) for item in value)


COMPARISON_FIELDS: dict[str, Callable[[object], object]] = {
    "chat_id": _identifier, "message_id": _identifier, "reply_ids": _ids, "labels": _labels,
    "blind": _flag, "picked_id": _optional_identifier, "tie": _flag, "id": _identifier,
    "created_at": _timestamp, "decided_at": _timestamp,
}
# Fields a file exported before they existed does not hold, and what they then are.
OPTIONAL = {"max_tokens": None, "context_window": None, "attachments": [], "comparisons": []}
OPTIONAL["folder"] = ""


def _record_values(record: object, checks: Mapping[str, Callable], extra: set[str]) -> dict:
    if not isinstance(record, dict):
        raise _Refused("it is not an object")
    record = {**{name: value for name, value in OPTIONAL.items()
                 if name in checks or name in extra}, **record}
    missing = sorted((set(checks) | extra) - set(record))
    unknown = sorted(set(record) - set(checks) - extra)
    if missing:
        raise _Refused(f"the field “{missing[0]}” is missing")
    if unknown:
        raise _Refused(f"there is an unknown field “{_short(unknown[0])}”")
    values = {}
    for name, check in checks.items():
        try:
            values[name] = check(record[name])
        except _Refused as why:
            raise _Refused(f"its {name} {why}") from None
    return values


def _read_chat(record: object) -> Pair:
    """Checked whole; _Refused names the message at fault."""
    chat, messages, _ = _read_chat_and_comparisons(record)
    return chat, messages


def _read_chat_and_comparisons(record: object) -> tuple[Chat, list[Message], list[Comparison]]:
    chat, messages = _read_messages(record)
    raw = record.get("comparisons", OPTIONAL["comparisons"])
    if not isinstance(raw, list):
        raise _Refused("its comparisons are not a list")
    if len(raw) > MAX_MESSAGES_PER_CHAT:
        raise _Refused(f"it has more than {MAX_MESSAGES_PER_CHAT:,} comparisons")
    kept = {m.id for m in messages}
    comparisons, numbers = [], {}
    for number, item in enumerate(raw, 1):
        try:
            comparisons.append(_comparison(item, chat.id, kept))
        except _Refused as why:
            raise _Refused(f"comparison {number}: {why}") from None
        if comparisons[-1].id in numbers:
            raise _Refused(f"comparison {number} has the same id as comparison "
                           f"{numbers[comparisons[-1].id]}")
        numbers[comparisons[-1].id] = number
    return chat, messages, comparisons


def _comparison(record: object, chat_id: str, kept: set[str]) -> Comparison:
    comparison = Comparison(**_record_values(record, COMPARISON_FIELDS, set()))
    if comparison.chat_id != chat_id:
        raise _Refused("its chat_id is not this chat's id")
    if len(comparison.labels) != len(comparison.reply_ids):
        raise _Refused("it does not have one label for each reply")
    if not {comparison.message_id, *comparison.reply_ids} <= kept:
        raise _Refused("it names a message that is not in this chat")
    if comparison.picked_id is not None and comparison.picked_id not in comparison.reply_ids:
        raise _Refused("the reply picked is not one of its replies")
    if comparison.picked_id is not None and comparison.tie:
        raise _Refused("it is both a tie and a pick")
    return comparison


def _read_messages(record: object) -> Pair:
    chat = Chat(**_record_values(record, CHAT_FIELDS, {"messages", "comparisons"}))
    raw = record["messages"]
    if not isinstance(raw, list):
        raise _Refused("its messages are not a list")
    _refuse_too_many(len(raw))
    messages = []
    for number, item in enumerate(raw, 1):
        try:
            messages.append(Message(**_record_values(item, MESSAGE_FIELDS, set())))
            if messages[-1].chat_id != chat.id:
                raise _Refused("its chat_id is not this chat's id")
        except _Refused as why:
            raise _Refused(f"message {number}: {why}") from None
    _check_tree(chat, messages)
    return chat, messages


def _refuse_too_many(count: int) -> None:
    if count > MAX_MESSAGES_PER_CHAT:
        raise _Refused(f"it has {count:,} messages, more than the {MAX_MESSAGES_PER_CHAT:,} "
                       "a chat can hold")


def _check_tree(chat: Chat, messages: list[Message]) -> None:
    numbers: dict[str, int] = {}
    for number, message in enumerate(messages, 1):
        if message.id in numbers:
            raise _Refused(f"message {number} has the same id as message {numbers[message.id]}")
        numbers[message.id] = number
    for number, message in enumerate(messages, 1):
        if message.parent_id is not None and message.parent_id not in numbers:
            raise _Refused(f"message {number} answers a message that is not in this chat")
    if chat.current_id is not None and chat.current_id not in numbers:
        raise _Refused("the message it shows is not in this chat")
    placed = {m.id for m in parents_first(messages)}
    if len(placed) < len(messages):
        looping = next(n for n, m in enumerate(messages, 1) if m.id not in placed)
        raise _Refused(f"message {looping} is part of a loop of replies")


# ---- reading a file: ours, or ChatGPT's ----


def _load(text: str | bytes) -> object:
    """Refused before parsing when the file is too big."""
    if len(text) > MAX_FILE_BYTES or (
            isinstance(text, str) and len(text) * 4 > MAX_FILE_BYTES
            and len(text.encode("utf-8", "surrogatepass")) > MAX_FILE_BYTES):
        raise _Refused(f"the file is bigger than {MAX_FILE_BYTES // (1024 * 1024)} MB")
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as error:
        raise _Refused(f"the file is not JSON (line {error.lineno}, column {error.colno})") \
            from None
    except (ValueError, RecursionError):
        raise _Refused("the file is not JSON text") from None


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number JSON allows")


def read_chats(text: str | bytes) -> Reading:
    """A Switchboard export (every field checked) or ChatGPT's conversations.json (the branch on
    screen of each conversation); UserFacingError says what is wrong and where."""
    try:
        document = _load(text)
        if isinstance(document, list):
            return _read_chatgpt(document)
        return _read_ours(document)
    except _Refused as why:
        raise UserFacingError(f"Nothing was imported: {why}.") from None


def _read_ours(document: object) -> Reading:
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise _Refused("the file is not a Switchboard chats export")
    version = document.get("version")
    if type(version) is not int or version != VERSION:
        raise _Refused(f"the file is in a format version this app does not read "
                       f"({_short(str(version))})")
    records = document.get("chats")
    if not isinstance(records, list):
        raise _Refused("the file has no list of chats")
    pairs, seen, comparisons = [], {}, {}
    for number, record in enumerate(records, 1):
        try:
            chat, messages, compared = _read_chat_and_comparisons(record)
        except _Refused as why:
            raise _Refused(f"{_where('chat', number, record)}: {why}") from None
        if chat.id in seen:
            raise _Refused(f"chat {number} has the same id as chat {seen[chat.id]}")
        seen[chat.id] = number
        pairs.append((chat, messages))
        if compared:
            comparisons[chat.id] = compared
    return Reading(pairs, comparisons=comparisons)


def _where(kind: str, number: int, record: object, named_by: str = "title") -> str:
    title = record.get(named_by) if isinstance(record, dict) else None
    return f"{kind} {number}" + (f" (“{_short(title)}”)" if isinstance(title, str) and
                                 title.strip() else "")


def _short(text: str, limit: int = 40) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


# ---- ChatGPT's conversations.json ----
# A list of conversations: `mapping` of node id -> {parent, message}, `current_node`, Unix-second
# times; a message has author.role, content {content_type, parts} (a "multimodal_text" part may
# be an image object), recipient ("all" unless a tool) and metadata.model_slug.


def _read_chatgpt(document: list) -> Reading:
    pairs, skipped = [], 0
    for number, conversation in enumerate(document, 1):
        try:
            pair, left_out = _chatgpt_conversation(conversation)
            _read_chat(_chat_record(*pair))  # the same checks and limits as our own files
        except _Refused as why:
            raise _Refused(f"{_where('conversation', number, conversation)}: {why}") from None
        pairs.append(pair)
        skipped += left_out
    return Reading(pairs, skipped, "chatgpt")


def _chatgpt_conversation(conversation: object) -> tuple[Pair, int]:
    if not isinstance(conversation, dict) or not isinstance(conversation.get("mapping"), dict):
        raise _Refused("it has no message tree")
    mapping = conversation["mapping"]
    _refuse_too_many(len(mapping))
    chat_id = str(conversation.get("conversation_id") or conversation.get("id") or
                  f"{conversation.get('title')}@{conversation.get('create_time')}")
    messages, skipped = [], 0
    for node_id, node in _chatgpt_branch(mapping, conversation.get("current_node")):
        message, left_out = _chatgpt_message(node, node_id, chat_id,
                                             messages[-1].id if messages else None)
        if message is not None:
            messages.append(message)
        skipped += left_out
    title = conversation.get("title") if isinstance(conversation.get("title"), str) else ""
    first_user = next((m.content for m in messages if m.role == "user"), "")
    chat = Chat(
        title=_short(title, MAX_TITLE_LENGTH) or title_from(first_user), id=chat_id,
        current_id=messages[-1].id if messages else None,
        created_at=_from_unix(conversation.get("create_time")),
        updated_at=_from_unix(conversation.get("update_time")),
    )
    return (chat, messages), skipped


def _chatgpt_branch(mapping: dict, current: object) -> list[tuple[str, dict]]:
    """Root to `current`, following parents up."""
    if not isinstance(current, str) or current not in mapping:
        raise _Refused("its current message is not in its message tree")
    branch, seen = [], set()
    while current is not None:
        node = mapping.get(current)
        if not isinstance(node, dict) or current in seen:
            raise _Refused("its message tree is broken (a missing message or a loop)")
        seen.add(current)
        branch.append((current, node))
        current = node.get("parent")
    return branch[::-1]


def _chatgpt_message(node: dict, node_id: str, chat_id: str,
                     parent_id: str | None) -> tuple[Message | None, int]:
    """The message (None when skipped) and how many messages or parts were left out (none for
    an empty placeholder node)."""
    message = node.get("message")
    if not isinstance(message, dict):
        return None, 0
    role = _dig(message, "author", "role")
    hidden = _dig(message, "metadata", "is_visually_hidden_from_conversation") is True
    to_tool = message.get("recipient") not in ("all", None)
    content_type = _dig(message, "content", "content_type")
    parts = _dig(message, "content", "parts")
    parts = parts if isinstance(parts, list) else []
    text = "\n".join(p for p in parts if isinstance(p, str))
    if role not in ROLES or hidden or to_tool or content_type not in ("text", "multimodal_text") \
            or not text:
        return None, 1
    label = _dig(message, "metadata", "model_slug")
    return Message(
        chat_id=chat_id, role=role, content=text, parent_id=parent_id,
        id=node_id,
        model_label=label if isinstance(label, str) else "",
        created_at=_from_unix(message.get("create_time")),
    ), sum(not isinstance(p, str) for p in parts)


def _dig(value: object, *keys: str) -> object:
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _from_unix(seconds: object) -> str:
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        return ""
    try:
        return datetime.fromtimestamp(seconds, timezone.utc).isoformat()
    except (OverflowError, OSError, ValueError):
        return ""


# ---- import ----


def import_chats(store: ChatStore, text: str | bytes, owner: str = "") -> ImportReport:
    """`owner` (the user's id) salts the ids: two users importing one file never share ids."""
    reading = read_chats(text)
    namespace = uuid.uuid5(_IMPORTED_IDS, f"{owner}\n{reading.source}")
    return _write_all(store, reading, namespace)


def _write_all(store: ChatStore, reading: Reading, namespace: uuid.UUID) -> ImportReport:
    created: list[str] = []
    imported = already_there = 0
    chat_ids: dict[str, str] = {}
    try:
        for chat, messages in reading.chats:
            if _is_uuid(chat.id) and store.get_chat(chat.id) is not None:
                chat_ids[chat.id] = chat.id  # the very chat exported from this account
                already_there += 1
                continue
            new_chat, new_messages, new_comparisons = _remapped(
                chat, messages, namespace, reading.comparisons.get(chat.id, ()))
            chat_ids[chat.id] = new_chat.id
            if _write_chat(store, new_chat, new_messages, created, new_comparisons):
                imported += 1
            else:
                already_there += 1
    except Exception:
        _undo(store, created)
        raise
    return ImportReport(imported, already_there, reading.skipped, chat_ids)


def _remapped(chat: Chat, messages: list[Message], namespace: uuid.UUID,
              comparisons: Iterable[Comparison] = ()
              ) -> tuple[Chat, list[Message], list[Comparison]]:
    chat_uuid = uuid.uuid5(namespace, chat.id)
    ids = {m.id: str(uuid.uuid5(chat_uuid, m.id)) for m in messages}
    new_messages = [m.with_changes(id=ids[m.id], chat_id=str(chat_uuid),
                                   parent_id=ids.get(m.parent_id),
                                   attachments=tuple(
                                       replace(a, id=str(uuid.uuid5(chat_uuid, f"file {a.id}")))
                                       for a in m.attachments)) for m in messages]
    new_comparisons = [c.with_changes(
        id=str(uuid.uuid5(chat_uuid, f"comparison {c.id}")), chat_id=str(chat_uuid),
        message_id=ids[c.message_id], reply_ids=tuple(ids[r] for r in c.reply_ids),
        picked_id=ids.get(c.picked_id)) for c in comparisons]
    return chat.with_changes(id=str(chat_uuid), current_id=ids.get(chat.current_id)), \
        new_messages, new_comparisons


def _write_chat(store: ChatStore, chat: Chat, messages: list[Message],
                created: list[str], comparisons: Sequence[Comparison] = ()) -> bool:
    """False when the chat is already whole; finishes one an earlier import left half-done."""
    stored = store.get_chat(chat.id)
    have = {m.id for m in store.messages(chat.id)} if stored is not None else set()
    compared = ({c.id for c in store.comparisons(chat.id)}
                if stored is not None and comparisons else set())
    if stored is not None and have >= {m.id for m in messages} \
            and compared >= {c.id for c in comparisons}:
        return False
    if stored is None:  # with its own times: saving it again would move them to now
        store.save_chat(chat)
        created.append(chat.id)
    for message in parents_first(messages):
        if message.id not in have:
            store.add_message(message)
    for comparison in comparisons:
        if comparison.id not in compared:
            store.save_comparison(comparison)
    if stored is not None:  # finishing one an earlier import left half-written
        store.save_chat(chat)
    return True


def _undo(store: ChatStore, chat_ids: list[str]) -> None:
    for chat_id in chat_ids:
        try:
            store.delete_chat(chat_id)
        except Exception:  # the next import of the same file finishes these chats instead
            logger.warning("could not undo a half-done import of chat %s", chat_id,
                           exc_info=True)


def _is_uuid(text: str) -> bool:
    try:
        return str(uuid.UUID(text)) == text.lower()
    except ValueError:
        return False


def every_comparison(store: ChatStore, chats: Iterable[Pair]) -> dict[str, list[Comparison]]:
    """The comparisons of `chats` (for "Export all", beside every_chat), by chat id."""
    return {chat.id: found for chat, _ in chats if (found := store.comparisons(chat.id))}


def every_chat(store: ChatStore, page: int = 200) -> list[Pair]:
    """Newest first, with all messages (for "Export all")."""
    pairs: list[Pair] = []
    before = None
    while True:
        chats = store.list_chats(page, before)
        pairs += [(chat, store.messages(chat.id)) for chat in chats]
        if len(chats) < page:
            return pairs
        before = (chats[-1].updated_at, chats[-1].id)
