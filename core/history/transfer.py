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
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timezone
from types import MappingProxyType
from typing import NamedTuple

import ijson

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
from core.store.contracts import ChatStore, WholeChat
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
    skipped: int = 0  # ChatGPT messages left out (see Tally.left_out)
    source: str = FORMAT  # whose format: FORMAT or "chatgpt" (it salts the imported ids)
    comparisons: Compared = MappingProxyType({})  # by the chat's id in the file
    tally: Tally | None = None  # a ChatGPT file's: what was kept, marked and left out


@dataclass(frozen=True)
class ImportReport:
    imported: int
    already_there: int
    skipped: int = 0  # ChatGPT messages left out (hidden setup, empty, trailing tool steps)
    chat_ids: Mapping[str, str] = field(default_factory=dict)  # id in the file -> in the store
    tally: Tally | None = None  # a ChatGPT file's: what was kept, marked and left out

    @property
    def summary(self) -> str:
        """What was imported and what was left out and why, in plain words."""
        return " ".join(_summary_lines(self))


def _count(number: int, one: str, many: str | None = None) -> str:
    return f"{number:,} {one if number == 1 else many or one + 's'}"


def _summary_lines(report: ImportReport) -> list[str]:
    tally = report.tally
    if not report.imported:
        lines = ["Nothing new was imported."]
    elif tally is None:
        lines = [f"Imported {_count(report.imported, 'chat')}."]
    else:
        versions = _count(tally.versions, "is another version", "are other versions")
        versions = (f", of which {versions} (a regenerated reply or an edited message, "
                    "under ◀ ▶)") if tally.versions else ""
        lines = [f"Imported {_count(report.imported, 'chat')} with "
                 f"{_count(tally.messages, 'message')}{versions}."]
    if report.already_there:
        lines.append(_count(report.already_there, "chat was already here (left as it was).",
                            "chats were already here (left as they were)."))
    if tally is None:
        return lines
    said = {
        HIDDEN: ("hidden system message was", "hidden system messages were",
                 "skipped (ChatGPT's own setup, not your words)"),
        EMPTY: ("empty message was", "empty messages were", "skipped (they held no text)"),
        TOOL_LEFT: ("tool step was", "tool steps were",
                    "left out (ChatGPT's work at the end of a branch, with no answer after it)"),
    }
    for why, (one, many, because) in said.items():
        if tally.left_out.get(why):
            lines.append(f"{_count(tally.left_out[why], one, many)} {because}.")
    marked = {
        FILE: ("image or file is marked in the text where it was",
               "images or files are marked in the text where they were",
               " (the export does not hold the files)"),
        TOOL: ("tool step (code ChatGPT ran, a search) is marked in the message after it",
               "tool steps (code ChatGPT ran, searches) are marked in the message after them",
               ""),
    }
    for why, (one, many, why_so) in marked.items():
        if tally.marked.get(why):
            lines.append(f"{_count(tally.marked[why], one, many)}{why_so}.")
    return lines


class _Refused(Exception):
    """Why and where a file cannot be imported."""


# ---- Markdown: the branch on screen, as a document to read ----


def to_markdown(chat: Chat, messages: Sequence[Message],
                comparisons: Sequence[Comparison] = ()) -> str:
    """A heading per turn (You, or the model), each text as the Markdown it is: code is fenced
    only where the text fenced it (a fence left open is closed, so it cannot swallow the next
    turn). A compared message's other replies follow the branch's reply to it, each under its
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
        who = "You" if message.role == "user" else message.model_label or "Assistant"
        heading = "## " + _inline(who)
    lines = [heading + suffix, ""]
    if message.reasoning:
        lines += _details("Reasoning", message.reasoning)
    if text := as_document_text(message.content):
        lines += [text, ""]
    for kind, label in (("image", "Images"), ("document", "Documents")):
        names = [_inline(a.name) for a in message.attachments if a.kind == kind]
        if names:  # by name only: a document's text would drown the conversation
            lines += [f"*{label} attached: {', '.join(names)}*", ""]
    note = STATUS_NOTES.get(message.status, "")
    if note or message.error:
        lines += [f"> *{': '.join(_inline(p) for p in (note, message.error) if p)}*", ""]
    return lines


def _details(summary: str, text: str) -> list[str]:
    return [f"<details><summary>{summary}</summary>", "", as_document_text(text), "",
            "</details>", ""]


_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})(.*)")


def as_document_text(text: str) -> str:
    """`text` as a block of a Markdown document: line ends made plain, no trailing blank lines,
    and a code fence it leaves open closed (by CommonMark's rule: a line of the same character,
    at least as long, and nothing else)."""
    lines = re.split(r"\r\n|\r|\n", text.rstrip("\r\n"))
    opened = None
    for line in lines:
        fence = _FENCE.fullmatch(line)
        if fence is None:
            continue
        run, rest = fence.groups()
        if opened is None and not (run[0] == "`" and "`" in rest):
            opened = run
        elif opened is not None and run[0] == opened[0] and len(run) >= len(opened) \
                and not rest.strip():
            opened = None
    return "\n".join(lines + ([opened] if opened else []))


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
# A list of conversations: `mapping` of node id -> {parent, message}, `current_node` (the leaf of
# the branch on screen), Unix-second times. Every node is kept that a reader of the chat could
# see: a regenerated reply or an edited message is a sibling under the same parent, a version.
# A message has author.role, content {content_type, parts} (a part may be an image or file
# object), recipient ("all" unless it calls a tool) and metadata.model_slug.

# Why a node or part was not imported as text, counted for the summary.
HIDDEN = "hidden"  # ChatGPT's own setup (system prompt, custom instructions): never shown
EMPTY = "empty"  # no text at all (a placeholder node of ChatGPT's)
TOOL_LEFT = "tool left"  # tool steps at the end of a branch: no later message to mark them in
# What was kept as a marked placeholder in a message's text.
FILE = "file"  # an image or file part
TOOL = "tool"  # a tool step (code run, a search, an image made), marked in the next message
_HIDDEN_TYPES = ("user_editable_context", "model_editable_context")
_TEXT_TYPES = ("text", "multimodal_text")


@dataclass
class Tally:
    """What a ChatGPT import kept and left out, and why."""

    messages: int = 0
    versions: int = 0  # messages beside an earlier sibling: a regenerated reply, an edit
    left_out: dict[str, int] = field(default_factory=dict)  # HIDDEN, EMPTY, TOOL_LEFT
    marked: dict[str, int] = field(default_factory=dict)  # FILE, TOOL

    def count(self, into: dict[str, int], why: str, times: int = 1) -> None:
        if times:
            into[why] = into.get(why, 0) + times

    def add(self, other: "Tally") -> None:
        self.messages += other.messages
        self.versions += other.versions
        for mine, theirs in ((self.left_out, other.left_out), (self.marked, other.marked)):
            for why, times in theirs.items():
                self.count(mine, why, times)


def _read_chatgpt(document: list) -> Reading:
    pairs, tally = [], Tally()
    for number, conversation in enumerate(document, 1):
        pair, counted = chatgpt_chat(conversation, number)
        pairs.append(pair)
        tally.add(counted)
    return Reading(pairs, sum(tally.left_out.values()), "chatgpt", tally=tally)


def chatgpt_chat(conversation: object, number: int) -> tuple[Pair, Tally]:
    """One conversation as a chat, checked like our own files; _Refused names it."""
    try:
        pair, tally = _chatgpt_conversation(conversation)
        _read_chat(_chat_record(*pair))  # the same checks and limits as our own files
    except _Refused as why:
        raise _Refused(f"{_where('conversation', number, conversation)}: {why}") from None
    return pair, tally


def _chatgpt_conversation(conversation: object) -> tuple[Pair, Tally]:
    if not isinstance(conversation, dict) or not isinstance(conversation.get("mapping"), dict):
        raise _Refused("it has no message tree")
    mapping = conversation["mapping"]
    _refuse_too_many(len(mapping))
    chat_id = str(conversation.get("conversation_id") or conversation.get("id") or
                  f"{conversation.get('title')}@{conversation.get('create_time')}")
    current = conversation.get("current_node")
    if not isinstance(current, str) or current not in mapping:
        raise _Refused("its current message is not in its message tree")
    tally = Tally()
    messages: list[Message] = []
    shown_as: dict[str, str | None] = {}  # node id -> the message it shows as (itself or above)
    waiting: dict[str, list[str]] = {}  # node id -> tool steps not yet marked in a message
    for node_id, node in _chatgpt_tree(mapping):
        parent = node.get("parent")
        above, marks = shown_as.get(parent), waiting.get(parent, [])
        message, left_out, mark = _chatgpt_message(node, node_id, chat_id, above, marks, tally)
        if message is not None:
            messages.append(message)
            shown_as[node_id], waiting[node_id] = message.id, []
        else:
            shown_as[node_id], waiting[node_id] = above, marks + ([mark] if mark else [])
            if left_out:
                tally.count(tally.left_out, left_out)
    parents = {node.get("parent") for node in mapping.values()}
    for node_id, marks in waiting.items():  # tool steps that no later message came after
        if marks and node_id not in parents:
            tally.count(tally.left_out, TOOL_LEFT, len(marks))
    siblings: dict[str | None, int] = {}
    for message in messages:
        siblings[message.parent_id] = siblings.get(message.parent_id, 0) + 1
    tally.messages = len(messages)
    tally.versions = sum(count - 1 for count in siblings.values())
    title = conversation.get("title") if isinstance(conversation.get("title"), str) else ""
    first_user = next((m.content for m in messages if m.role == "user"), "")
    chat = Chat(
        title=_short(title, MAX_TITLE_LENGTH) or title_from(first_user), id=chat_id,
        current_id=shown_as.get(current),
        created_at=_from_unix(conversation.get("create_time")),
        updated_at=_from_unix(conversation.get("update_time")),
    )
    return (chat, messages), tally


def _chatgpt_tree(mapping: dict) -> list[tuple[str, dict]]:
    """Every node, each after its parent (siblings in the file's order); a parent that is
    missing or a loop is refused."""
    below: dict[str | None, list[str]] = {}
    for node_id, node in mapping.items():
        parent = node.get("parent") if isinstance(node, dict) else None
        if not isinstance(node, dict) or not isinstance(parent, (str, type(None))) or \
                (parent is not None and parent not in mapping):
            raise _Refused("its message tree is broken (a missing message or a loop)")
        below.setdefault(parent, []).append(node_id)
    ordered, stack = [], list(reversed(below.get(None, [])))
    while stack:
        node_id = stack.pop()
        ordered.append((node_id, mapping[node_id]))
        stack += reversed(below.get(node_id, []))
    if len(ordered) < len(mapping):  # a node not under any root sits in a loop
        raise _Refused("its message tree is broken (a missing message or a loop)")
    return ordered


def _chatgpt_message(node: dict, node_id: str, chat_id: str, parent_id: str | None,
                     marks: list[str], tally: Tally) -> tuple[Message | None, str, str]:
    """The message (`marks` before its text), or None, why it was left out (HIDDEN, EMPTY;
    "" for a node that holds nothing, as ChatGPT's root) and a tool step's mark (shown in the
    next message)."""
    message = node.get("message")
    if not isinstance(message, dict):
        return None, "", ""
    role = _dig(message, "author", "role")
    content_type = _dig(message, "content", "content_type")
    if role == "system" or content_type in _HIDDEN_TYPES or \
            _dig(message, "metadata", "is_visually_hidden_from_conversation") is True:
        return None, HIDDEN, ""
    recipient = message.get("recipient")
    if role not in ROLES or recipient not in ("all", None) or \
            (content_type not in _TEXT_TYPES and role == "assistant"):
        tool = next((t for t in (recipient if recipient not in ("all", None) else None,
                                 _dig(message, "author", "name"), content_type)
                     if isinstance(t, str) and t), "a tool")
        return None, "", f"[Tool step in ChatGPT ({_short(tool)}); not imported]"
    pieces, files = _chatgpt_parts(message)
    if not pieces:
        return None, EMPTY, ""
    tally.count(tally.marked, FILE, files)
    tally.count(tally.marked, TOOL, len(marks))
    label = _dig(message, "metadata", "model_slug")
    return Message(
        chat_id=chat_id, role=role, content="\n".join([*marks, *pieces]), parent_id=parent_id,
        id=node_id, model_label=label if isinstance(label, str) else "",
        created_at=_from_unix(message.get("create_time")),
    ), "", ""


def _chatgpt_parts(message: dict) -> tuple[list[str], int]:
    """The message's text pieces, an image or file part as a marked placeholder (the export
    holds no file), and how many such placeholders."""
    parts = _dig(message, "content", "parts")
    text = _dig(message, "content", "text")
    parts = parts if isinstance(parts, list) else [text] if isinstance(text, str) else []
    attached = _dig(message, "metadata", "attachments")
    names = {a["id"]: a["name"] for a in attached if isinstance(a, dict)
             and isinstance(a.get("id"), str) and isinstance(a.get("name"), str)} \
        if isinstance(attached, list) else {}
    pieces, files = [], 0
    for part in parts:
        if isinstance(part, str):
            if part:
                pieces.append(part)
        elif isinstance(part, dict) and isinstance(part.get("text"), str):
            if part["text"]:
                pieces.append(part["text"])  # a transcript of what was said aloud
        elif part is not None:
            pieces.append(_placeholder(part, names))
            files += 1
    return pieces, files


def _placeholder(part: object, names: Mapping[str, str]) -> str:
    """An image or file part that the export does not hold, marked where it was."""
    kind = part.get("content_type") if isinstance(part, dict) else None
    pointer = part.get("asset_pointer") if isinstance(part, dict) else None
    file_id = pointer.split("://", 1)[-1] if isinstance(pointer, str) else ""
    name = names.get(file_id) or file_id
    what = "Image" if kind == "image_asset_pointer" else "File"
    if name:
        return f"[{what}: {_short(name, 120)} was attached in ChatGPT; not imported]"
    return f"[{what}: a part of this message in ChatGPT; not imported]"


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


# ---- import: the file checked whole first, then written a batch of chats at a time ----

BATCH_MESSAGES = 2_000  # messages per store call: a Cancel waits for one batch at most
BATCH_CHATS = 100
One = tuple[Pair, Sequence[Comparison], "Tally | None"]  # a chat of the file, ready to write


class Cancelled(Exception):
    """The import was cancelled; the chats it had stored are removed again."""


@dataclass(frozen=True)
class Checked:
    """A file checked whole. `chats` reads it again, a chat at a time (a big ChatGPT file is
    never held parsed whole)."""

    total: int
    source: str
    chats: Callable[[], Iterator[One]]


def _never() -> bool:
    return False


def check_file(data: str | bytes | memoryview, stop: Callable[[], bool] = _never,
               counted: Callable[[int], None] = lambda n: None) -> Checked:
    """Every chat checked (UserFacingError says what is wrong and where); `counted` hears how
    many so far, `stop` cancels (Cancelled)."""
    try:
        if isinstance(data, str) or _first_byte(data) != b"[":  # parsed whole
            document = _load(bytes(data) if isinstance(data, memoryview) else data)
            if isinstance(document, list):
                ones = [(pair, (), tally) for pair, tally in (
                    chatgpt_chat(conversation, number)
                    for number, conversation in enumerate(document, 1))]
                counted(len(ones))
                return Checked(len(ones), "chatgpt", lambda: iter(ones))
            reading = _read_ours(document)
            counted(len(reading.chats))
            return Checked(len(reading.chats), reading.source, lambda: (
                (pair, reading.comparisons.get(pair[0].id, ()), None) for pair in reading.chats))
        total = 0
        for number, conversation in enumerate(_conversations(data), 1):
            chatgpt_chat(conversation, number)
            total = number
            counted(total)
            if stop():
                raise Cancelled()
    except _Refused as why:
        raise UserFacingError(f"Nothing was imported: {why}.") from None
    return Checked(total, "chatgpt", lambda: _chatgpt_chats(data))


def _chatgpt_chats(data: bytes | memoryview) -> Iterator[One]:
    try:
        for number, conversation in enumerate(_conversations(data), 1):
            pair, tally = chatgpt_chat(conversation, number)
            yield pair, (), tally
    except _Refused as why:  # the file changed since it was checked: never here
        raise UserFacingError(f"Nothing more was imported: {why}.") from None


def _first_byte(data: bytes | memoryview) -> bytes:
    view = memoryview(data)
    start = 0
    while start < len(view) and view[start:start + 1] in (b" ", b"\t", b"\r", b"\n"):
        start += 1
    return bytes(view[start:start + 1])


class _Chunks:
    """`data` read as a file, a chunk at a time (no copy of the whole)."""

    def __init__(self, data: bytes | memoryview):
        self.view, self.at = memoryview(data), 0

    def read(self, size: int = -1) -> bytes:
        end = len(self.view) if size < 0 else self.at + size
        chunk = bytes(self.view[self.at:end])
        self.at += len(chunk)
        return chunk


def _conversations(data: bytes | memoryview) -> Iterator[object]:
    """ChatGPT's list of conversations, parsed one at a time."""
    if len(data) > MAX_FILE_BYTES:
        raise _Refused(f"the file is bigger than {MAX_FILE_BYTES // (1024 * 1024)} MB")
    try:
        yield from ijson.items(_Chunks(data), "item", use_float=True)
    except ijson.JSONError as error:
        raise _Refused(f"the file is not JSON ({_short(str(error), 80)})") from None


def import_chats(store: ChatStore, text: str | bytes, owner: str = "") -> ImportReport:
    """`owner` (the user's id) salts the ids: two users importing one file never share ids."""
    return write_chats(store, check_file(text), owner)


def write_chats(store: ChatStore, checked: Checked, owner: str = "",
                stop: Callable[[], bool] = _never,
                wrote: Callable[[int], None] = lambda n: None) -> ImportReport:
    """Write a checked file's chats; `wrote` hears how many chats are done so far. On `stop`
    (Cancelled) or a failure, the chats this import stored are removed again."""
    namespace = uuid.uuid5(_IMPORTED_IDS, f"{owner}\n{checked.source}")
    created: list[str] = []
    done = _Done(tally=Tally() if checked.source == "chatgpt" else None)
    batch: list[tuple[WholeChat, Tally | None]] = []
    try:
        for (chat, messages), comparisons, tally in checked.chats():
            if stop():
                raise Cancelled()
            if checked.source == FORMAT and _is_uuid(chat.id) and \
                    store.get_chat(chat.id) is not None:
                done.chat_ids[chat.id] = chat.id  # the very chat exported from this account
                done.already_there += 1
                continue
            new_chat, new_messages, new_comparisons = _remapped(chat, messages, namespace,
                                                                comparisons)
            done.chat_ids[chat.id] = new_chat.id
            batch.append(((new_chat, parents_first(new_messages), new_comparisons), tally))
            if len(batch) >= BATCH_CHATS or \
                    sum(len(whole[1]) for whole, _ in batch) >= BATCH_MESSAGES:
                _write_batch(store, batch, created, done)
                wrote(done.imported + done.already_there)
        if stop():
            raise Cancelled()
        _write_batch(store, batch, created, done)
        wrote(done.imported + done.already_there)
    except BaseException:
        _undo(store, created)
        raise
    return done.report()


@dataclass
class _Done:
    imported: int = 0
    already_there: int = 0
    chat_ids: dict[str, str] = field(default_factory=dict)
    tally: Tally | None = None

    def report(self) -> ImportReport:
        skipped = sum(self.tally.left_out.values()) if self.tally else 0
        return ImportReport(self.imported, self.already_there, skipped, self.chat_ids,
                            self.tally)


def _write_batch(store: ChatStore, batch: list[tuple[WholeChat, Tally | None]],
                 created: list[str], done: _Done) -> None:
    """New chats whole, in one call; one already stored is finished when an earlier import
    left it half-written."""
    if not batch:
        return
    added = set(store.add_whole_chats([whole for whole, _ in batch]))
    created += [whole[0].id for whole, _ in batch if whole[0].id in added]
    for (chat, messages, comparisons), tally in batch:
        if chat.id in added or _write_chat(store, chat, messages, created, comparisons):
            done.imported += 1
            if done.tally is not None and tally is not None:
                done.tally.add(tally)
        else:
            done.already_there += 1
    batch.clear()


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
