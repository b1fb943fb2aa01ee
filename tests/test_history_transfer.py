"""Export and import of chats (issue 11, acceptance 5): Markdown of the branch on screen, the
lossless JSON round trip, a second import that adds nothing, broken files that import nothing,
and a ChatGPT conversations.json.

Most tests use MemoryChatStore, an in-memory fake of the ChatStore contract (pure unit tests);
one runs against the real SQLite store.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import json
import re
import uuid
from collections import defaultdict
from dataclasses import astuple, fields
from datetime import datetime, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.store.errors import StoreUnavailable
from core.failures import UserFacingError
from core.history.model import (
    MAX_ATTACHMENTS,
    MAX_CONTENT_LENGTH,
    MAX_IMAGE_BYTES,
    MAX_TITLE_LENGTH,
    ROLES,
    STATUSES,
    Attachment,
    Chat,
    Comparison,
    Message,
)
from core.store.sqlite import SQLiteChatStore
from core.history.transfer import (
    CHAT_FIELDS,
    MAX_FILE_BYTES,
    MAX_MESSAGES_PER_CHAT,
    MESSAGE_FIELDS,
    every_chat,
    every_comparison,
    import_chats,
    read_chats,
    to_json,
    to_markdown,
)


class MemoryChatStore:
    """An in-memory ChatStore for one user: stamps created_at and updated_at itself (the real
    stores keep an import's own times: tested against SQLite below), refuses a message whose
    chat or parent is missing."""

    def __init__(self):
        self.chats: dict[str, Chat] = {}
        self.stored: dict[str, list[Message]] = defaultdict(list)
        self.compared: dict[str, list[Comparison]] = defaultdict(list)
        self.ticks = 0

    def _now(self) -> str:
        self.ticks += 1
        return datetime.fromtimestamp(4_000_000_000 + self.ticks, timezone.utc).isoformat()

    def list_chats(self, limit=50, before=None):
        newest = sorted(self.chats.values(), key=lambda c: (c.updated_at, c.id), reverse=True)
        return [c for c in newest if before is None or (c.updated_at, c.id) < before][:limit]

    def get_chat(self, chat_id):
        return self.chats.get(chat_id)

    def messages(self, chat_id):
        return list(self.stored.get(chat_id, []))  # stamped as added: oldest first

    def save_chat(self, chat):  # current_id may name a message added next (as the stores)
        old = self.chats.get(chat.id)
        created = old.created_at if old else self._now()
        self.chats[chat.id] = chat.with_changes(created_at=created, updated_at=self._now())
        return self.chats[chat.id]

    def add_message(self, message):
        for stored in self.stored.get(message.chat_id, []):
            if stored.id == message.id:
                return stored
        known = self._ids(message.chat_id)
        if message.chat_id not in self.chats or message.parent_id not in known | {None}:
            raise UserFacingError("That message has nowhere to go.")
        message = message.with_changes(created_at=self._now())
        self.stored[message.chat_id].append(message)
        chat = self.chats[message.chat_id]
        self.chats[chat.id] = chat.with_changes(updated_at=self._now())
        return message

    def update_message(self, message_id, changes):
        raise NotImplementedError

    def save_comparison(self, comparison):  # new ones only: imports never decide
        if comparison.chat_id not in self.chats:
            raise UserFacingError("That comparison has nowhere to go.")
        if all(c.id != comparison.id for c in self.compared[comparison.chat_id]):
            self.compared[comparison.chat_id].append(comparison)
        return comparison

    def comparisons(self, chat_id):
        return list(self.compared.get(chat_id, []))

    def delete_chat(self, chat_id):
        self.chats.pop(chat_id, None)
        self.stored.pop(chat_id, None)
        self.compared.pop(chat_id, None)

    def add_whole_chats(self, whole):
        """As the real stores: the chats not stored yet, whole, all or nothing (an undo that
        fails, in an outage, leaves what was written)."""
        new = [item for item in whole if item[0].id not in self.chats]
        try:
            for chat, messages, comparisons in new:
                self.save_chat(chat)
                for message in messages:
                    self.add_message(message)
                for comparison in comparisons:
                    self.save_comparison(comparison)
        except Exception:
            for chat, _, _ in new:
                with contextlib.suppress(Exception):
                    self.delete_chat(chat.id)
            raise
        return [chat.id for chat, _, _ in new]

    def delete_all(self):
        count = len(self.chats)
        self.chats.clear()
        self.stored.clear()
        return count

    def search(self, query, limit=20):
        raise NotImplementedError

    def _ids(self, chat_id):
        return {m.id for m in self.stored.get(chat_id, [])}

    def everything(self):
        return [(c, self.messages(c.id)) for c in self.list_chats(limit=10**9)]


# ---- generated chats ----

printable = st.characters(blacklist_categories=("Cs", "Cc"))
SPECIAL_TEXTS = [
    "", "שלום עולם", "مرحبا بالعالم", "\u202eflipped\u202c", "👩‍👩‍👧‍👦 🏳️‍🌈 👍🏽",
    "e\u0301\u0302\u0323 a\u0308", "```python\nprint('hi')\n```", "`````\nunclosed", "~~~\n",
    "line\r\nbreaks\rhere\n", "# not a heading\n## You\n", "<details>\n", "\n",
]
short_texts = st.one_of(st.text(printable, max_size=30), st.sampled_from(SPECIAL_TEXTS))


LONG_CONTENT = 1_000_000  # characters; the longest a message holds is tested on its own


@st.composite
def contents(draw):
    """Mostly short texts; about one in ten a long message (several would pass the file's
    limit at the longest a message may be)."""
    if draw(st.integers(0, 9)) == 9:
        return (draw(st.sampled_from(["a", "`", "é", "😀", "ab\n"])) * LONG_CONTENT)[
            :LONG_CONTENT]
    return draw(short_texts)


file_names = st.text(printable, min_size=1, max_size=30)
attachments = st.one_of(
    st.builds(Attachment, name=file_names, kind=st.just("image"),
              mime=st.sampled_from(["image/png", "image/jpeg"]), data=st.binary(max_size=300),
              size=st.integers(0, 10**9), width=st.integers(0, 4000),
              height=st.integers(0, 4000), id=st.uuids(version=4).map(str)),
    st.builds(Attachment, name=file_names, kind=st.just("document"),
              mime=st.sampled_from(["text/plain", "application/pdf"]), text=short_texts,
              size=st.integers(0, 10**9), id=st.uuids(version=4).map(str)),
)

timestamps = st.datetimes(min_value=datetime(2001, 1, 1), max_value=datetime(2099, 1, 1),
                          timezones=st.just(timezone.utc)).map(datetime.isoformat)


@st.composite
def chats_with_messages(draw, max_messages=7):
    """A chat whose messages form a tree (regenerated replies and edits are siblings), with
    the branch on screen at any message or unset."""
    chat_id = str(draw(st.uuids(version=4)))
    count = draw(st.integers(0, max_messages))
    ids = [str(u) for u in draw(st.lists(st.uuids(version=4), min_size=count,
                                         max_size=count, unique=True))]
    times = sorted(draw(st.lists(timestamps, min_size=count, max_size=count, unique=True)))
    messages = [Message(
        chat_id=chat_id, id=ids[i], created_at=times[i],
        parent_id=draw(st.none() | st.sampled_from(ids[:i])) if i else None,
        role=draw(st.sampled_from(ROLES)), content=draw(contents()),
        model_label=draw(short_texts), status=draw(st.sampled_from(STATUSES)),
        error=draw(short_texts), reasoning=draw(short_texts),
        usage=draw(st.none() | st.dictionaries(st.text(printable, max_size=8),
                                               st.integers(0, 10**12), max_size=3)),
        attachments=tuple(draw(st.lists(attachments, max_size=3, unique_by=lambda a: a.id))),
    ) for i in range(count)]
    chat = Chat(
        id=chat_id, title=draw(st.text(printable, max_size=MAX_TITLE_LENGTH)),
        connection_id=draw(short_texts), model=draw(short_texts),
        system_prompt=draw(short_texts),
        temperature=draw(st.none() | st.floats(allow_nan=False, allow_infinity=False)),
        current_id=draw(st.none() | st.sampled_from(ids)) if ids else None,
        pinned=draw(st.booleans()), created_at=draw(timestamps), updated_at=draw(timestamps),
        max_tokens=draw(st.none() | st.integers(1, 10**6)),
        context_window=draw(st.none() | st.integers(1, 10**7)),
    )
    return chat, messages


chat_sets = st.lists(chats_with_messages(), max_size=3, unique_by=lambda pair: pair[0].id)


def canonical(chat: Chat, messages: list[Message]) -> tuple:
    """The chat and its message tree without ids and the times a store stamps (what must
    survive an import): every other field, which message is on screen, and each message's
    replies in order (the order of its versions)."""
    replies = defaultdict(list)
    for message in messages:
        replies[message.parent_id].append(message)

    def tree(parent_id):
        return tuple(
            (tuple(_comparable(getattr(m, f.name)) for f in fields(Message)
                   if f.name not in ("id", "chat_id", "parent_id", "created_at")),
             m.id == chat.current_id, tree(m.id))
            for m in replies[parent_id])

    kept = tuple(getattr(chat, f.name) for f in fields(Chat)
                 if f.name not in ("id", "current_id", "created_at", "updated_at"))
    return kept, chat.current_id is None, tree(None)


def _comparable(value):
    if isinstance(value, dict):
        return ("map", tuple(sorted(value.items())))
    if isinstance(value, tuple):  # attachments: every field but the id (new on import)
        return tuple(astuple(a)[:-1] for a in value)
    return value


def same_chats(left, right) -> bool:
    return sorted(map(repr, (canonical(*p) for p in left))) == \
        sorted(map(repr, (canonical(*p) for p in right)))


SLOW = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@SLOW
@given(chat_sets)
def test_export_import_export_round_trips(pairs):
    """Property: export -> import into a fresh store -> export gives the same chats and
    messages, every field but ids (new, mapped consistently) and the times the store
    stamps; replies keep their order."""
    store = MemoryChatStore()
    report = import_chats(store, to_json(pairs))
    assert (report.imported, report.already_there) == (len(pairs), 0)
    again = read_chats(to_json(store.everything())).chats
    assert same_chats(again, pairs)
    old_ids = {c.id for c, _ in pairs} | {m.id for _, ms in pairs for m in ms}
    new_ids = {c.id for c, _ in again} | {m.id for _, ms in again for m in ms}
    assert not old_ids & new_ids
    assert all(uuid.UUID(i) for i in new_ids)
    assert sorted(report.chat_ids.values()) == sorted(c.id for c, _ in again)


@SLOW
@given(chat_sets)
def test_importing_the_same_file_twice_imports_nothing_new(pairs):
    """Property: a second import of the same file adds no chat and no message."""
    store, text = MemoryChatStore(), to_json(pairs)
    import_chats(store, text)
    before = store.everything()
    report = import_chats(store, text)
    assert (report.imported, report.already_there) == (0, len(pairs))
    assert store.everything() == before


@SLOW
@given(chat_sets)
def test_reading_an_export_gives_back_every_field(pairs):
    """Property: read_chats(to_json(chats)).chats is exactly the chats, ids included."""
    assert read_chats(to_json(pairs)).chats == pairs


def test_an_export_of_this_account_imported_back_duplicates_nothing():
    store = MemoryChatStore()
    import_chats(store, to_json([_small_chat("Trip")]))
    mine = store.everything()
    report = import_chats(store, to_json(mine))
    assert (report.imported, report.already_there) == (0, 1)
    assert store.everything() == mine


def test_two_users_importing_one_file_get_different_ids():
    text = to_json([_small_chat("Shared")])
    first, second = MemoryChatStore(), MemoryChatStore()
    import_chats(first, text, owner="user-a")
    import_chats(second, text, owner="user-b")
    assert {c.id for c, _ in first.everything()}.isdisjoint(c.id for c, _ in second.everything())


# ---- broken files import nothing ----


def _small_chat(title: str, count: int = 3) -> tuple[Chat, list[Message]]:
    chat = Chat(title=title, model="m", temperature=0.5)
    messages, parent = [], None
    for i in range(count):
        message = Message(chat_id=chat.id, role=ROLES[i % 2], content=f"{title} {i}",
                          parent_id=parent, created_at=f"2024-01-01T00:00:0{i}+00:00")
        messages.append(message)
        parent = message.id
    return chat.with_changes(current_id=parent), messages


def _file(**changes) -> dict:
    """An attachment's record as an export holds it."""
    return {"name": "a.png", "kind": "image", "mime": "image/png", "data": "iVBORw0K",
            "text": "", "size": 6, "width": 1, "height": 1, "id": str(uuid.uuid4()),
            **changes}


def _valid_document() -> dict:
    return json.loads(to_json([_small_chat("First"), _small_chat("Second")]))


def _second(document):
    return document["chats"][1]


def _message(document, index):
    return _second(document)["messages"][index]


def _set(path, value):
    def change(document):
        target = document
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    return change


def _set_message(index, name, value):
    return lambda d: _message(d, index).__setitem__(name, value)


def _loop(document):
    first, second = _message(document, 0), _message(document, 1)
    first["parent_id"] = second["id"]


def _same_chat_id(document):
    _second(document)["id"] = document["chats"][0]["id"]
    for message in _second(document)["messages"]:
        message["chat_id"] = document["chats"][0]["id"]


BROKEN = [  # (what is wrong, the file or a change to a valid one, what the message must say)
    ("not JSON", "{chats: [", "not JSON (line 1, column 2)"),
    ("empty", "", "not JSON"),
    ("not UTF-8", b"\xff\xfe\xfd{", "not JSON"),
    ("NaN", json.dumps(_valid_document()).replace("0.5", "NaN"), "not JSON"),
    ("a number", "42", "not a Switchboard chats export"),
    ("another format", _set(["format"], "other.chats"), "not a Switchboard chats export"),
    ("newer version", _set(["version"], 2), "format version"),
    ("version true", _set(["version"], True), "format version"),
    ("chats not a list", _set(["chats"], {"a": 1}), "no list of chats"),
    ("chat not object", _set(["chats", 1], "x"), "chat 2: it is not an object"),
    ("missing field", lambda d: _second(d).pop("title"),
     "chat 2: the field “title” is missing"),
    ("unknown field", _set(["chats", 1, "colour"], "red"), "chat 2 (“Second”): there is an "
     "unknown field “colour”"),
    ("title too long", _set(["chats", 1, "title"], "t" * 201), "title is longer than 200"),
    ("title a number", _set(["chats", 1, "title"], 7), "chat 2: its title must be text"),
    ("temperature text", _set(["chats", 1, "temperature"], "hot"), "temperature must be a number"),
    ("temperature bool", _set(["chats", 1, "temperature"], True), "temperature must be a number"),
    ("pinned text", _set(["chats", 1, "pinned"], "yes"), "pinned must be true or false"),
    ("bad date", _set(["chats", 1, "created_at"], "yesterday"), "created_at is not a date"),
    ("messages not list", _set(["chats", 1, "messages"], None), "messages are not a list"),
    ("message not object", _set(["chats", 1, "messages", 2], []), "message 3: it is not an obj"),
    ("system role", _set_message(1, "role", "system"), "message 2: its role must be one of user"),
    ("unknown status", _set_message(1, "status", "done"), "message 2: its status must be one of"),
    ("content too long", _set_message(2, "content", "x" * (MAX_CONTENT_LENGTH + 1)),
     "message 3: its content is longer than 32,000,000 characters"),
    # What the stores keep of a message's error and label: refused before anything is written.
    ("error too long", _set_message(1, "error", "e" * 10_001),
     "message 2: its error is longer than 10,000 characters"),
    ("label too long", _set_message(1, "model_label", "m" * 501),
     "message 2: its model_label is longer than 500 characters"),
    ("content null", _set_message(0, "content", None), "message 1: its content must be text"),
    ("broken character", _set_message(0, "content", "a\ud800b"), "broken character"),
    ("usage text", _set_message(1, "usage", {"tokens": "many"}), "usage must map names"),
    ("usage negative", _set_message(1, "usage", {"tokens": -1}), "usage must map names"),
    ("empty id", _set_message(1, "id", ""), "message 2: its id is empty"),
    ("other chat's message", _set_message(0, "chat_id", str(uuid.uuid4())), "chat_id is not"),
    ("parent elsewhere", lambda d: _message(d, 1).__setitem__(
        "parent_id", d["chats"][0]["messages"][0]["id"]), "message 2 answers a message that is"),
    ("own parent", lambda d: _message(d, 0).__setitem__("parent_id", _message(d, 0)["id"]),
     "message 1 is part of a loop"),
    ("loop", _loop, "message 1 is part of a loop"),
    ("same message id", lambda d: _message(d, 2).__setitem__("id", _message(d, 0)["id"]),
     "message 3 has the same id as message 1"),
    ("same chat id", _same_chat_id, "chat 2 has the same id as chat 1"),
    ("current elsewhere", lambda d: _second(d).__setitem__("current_id", str(uuid.uuid4())),
     "the message it shows is not in this chat"),
    ("ChatGPT without tree", "[{\"title\": \"x\"}]", "conversation 1 (“x”): it has no message"),
    ("max_tokens zero", _set(["chats", 1, "max_tokens"], 0),
     "chat 2 (“Second”): its max_tokens must be a whole number from 1 to"),
    ("context window text", _set(["chats", 1, "context_window"], "big"),
     "its context_window must be a whole number from 1 to"),
    ("attachments not list", _set_message(0, "attachments", {}),
     "message 1: its attachments are not a list"),
    ("too many attachments", _set_message(0, "attachments", [_file()] * (MAX_ATTACHMENTS + 1)),
     f"its attachments are {MAX_ATTACHMENTS + 1} files, more than the {MAX_ATTACHMENTS}"),
    ("unknown kind", _set_message(0, "attachments", [_file(kind="video")]),
     "message 1: its attachments are refused: file 1 (“a.png”): its kind must be one of "
     "image,"),
    ("data not base64", _set_message(0, "attachments", [_file(data="not base64!")]),
     "file 1 (“a.png”): its data is not base64 text"),
    ("image too big", _set_message(0, "attachments", [_file(data=base64.b64encode(
        b"x" * (MAX_IMAGE_BYTES + 1)).decode())]), "its data is more than 2,000,000 bytes"),
    ("document with data", _set_message(0, "attachments", [_file(kind="document")]),
     "file 1 (“a.png”): only an image has data"),
    ("empty file name", _set_message(0, "attachments", [_file(name="")]),
     "file 1: its name is empty"),
    ("negative width", _set_message(0, "attachments", [_file(width=-1)]),
     "its width must be a whole number from 0 to"),
    ("file without id", _set_message(0, "attachments", [{k: v for k, v in _file().items()
                                                         if k != "id"}]),
     "file 1 (“a.png”): the field “id” is missing"),
    ("same file twice", _set_message(0, "attachments", [_file(id="x")] * 2),
     "its attachments hold two files with the same id"),
]


def _broken_text(change) -> str | bytes:
    if isinstance(change, (str, bytes)):
        return change
    document = _valid_document()
    change(document)
    return json.dumps(document, ensure_ascii=False)


@pytest.mark.parametrize("change, says", [(c, s) for _, c, s in BROKEN],
                         ids=[name for name, _, _ in BROKEN])
def test_a_broken_file_imports_nothing_and_says_why(change, says):
    store = MemoryChatStore()
    with pytest.raises(UserFacingError) as refused:
        import_chats(store, _broken_text(change))
    assert says in str(refused.value)
    assert str(refused.value).startswith("Nothing was imported: ")
    assert store.everything() == []


def test_the_valid_file_behind_the_broken_ones_imports():
    """The table's cases are broken by their change alone."""
    report = import_chats(MemoryChatStore(), json.dumps(_valid_document()))
    assert report.imported == 2


def test_a_file_over_the_size_limit_is_refused_before_parsing():
    store = MemoryChatStore()
    with pytest.raises(UserFacingError, match="bigger than 200 MB"):
        import_chats(store, b" " * (MAX_FILE_BYTES + 1))  # would parse as "not JSON"
    assert store.everything() == []


def test_a_chat_with_too_many_messages_is_refused():
    document = _valid_document()
    filler = _message(document, 0)
    _second(document)["messages"] = [filler] * (MAX_MESSAGES_PER_CHAT + 1)
    store = MemoryChatStore()
    with pytest.raises(UserFacingError, match="chat 2 .*100,001 messages, more than the 100,000"):
        import_chats(store, json.dumps(document))
    assert store.everything() == []


class RefusingStore(MemoryChatStore):
    """Refuses one message's content, as a store refuses a value it cannot keep."""

    def add_message(self, message):
        if message.content == "poison":
            raise UserFacingError("This message cannot be stored.")
        return super().add_message(message)


def test_a_write_refused_half_way_is_undone():
    chat, messages = _small_chat("Second")
    poisoned = [*messages[:2], messages[2].with_changes(content="poison")]
    store = RefusingStore()
    with pytest.raises(UserFacingError, match="cannot be stored"):
        import_chats(store, to_json([_small_chat("First"), (chat, poisoned)]))
    assert store.everything() == []


class OutageStore(MemoryChatStore):
    """Goes down at the `fails_at`-th message written and stays down (undo fails too)."""

    def __init__(self, fails_at):
        super().__init__()
        self.writes, self.fails_at = 0, fails_at

    def add_message(self, message):
        self.writes += 1
        if self.writes >= self.fails_at:
            raise StoreUnavailable("The chats cannot be reached right now.", "outage")
        return super().add_message(message)

    def delete_chat(self, chat_id):
        if self.writes >= self.fails_at:
            raise StoreUnavailable("The chats cannot be reached right now.", "outage")
        super().delete_chat(chat_id)


def test_an_import_cut_by_an_outage_finishes_on_the_next_try_without_duplicates():
    pairs = [_small_chat("First"), _small_chat("Second")]
    store = OutageStore(fails_at=5)  # chat 1 whole, chat 2 cut after its first message
    with pytest.raises(StoreUnavailable):
        import_chats(store, to_json(pairs))
    store.fails_at = 10**9  # back up
    report = import_chats(store, to_json(pairs))
    assert (report.imported, report.already_there) == (1, 1)
    assert same_chats(store.everything(), pairs)
    assert sum(len(ms) for _, ms in store.everything()) == 6


def test_the_schema_checks_every_field_of_the_model():
    assert set(CHAT_FIELDS) == {f.name for f in fields(Chat)}
    assert set(MESSAGE_FIELDS) == {f.name for f in fields(Message)}


# ---- Markdown ----


def fenced_blocks(markdown: str) -> list[tuple[str, str]]:
    """(info, text) of each fenced code block, by CommonMark's rules for backtick fences: it
    closes at the first line of at least as many backticks and nothing else."""
    blocks, lines, i = [], re.split(r"\r\n|\r|\n", markdown), 0
    while i < len(lines):
        opening = re.fullmatch(r" {0,3}(`{3,})([^`]*)", lines[i])
        i += 1
        if not opening:
            continue
        body = []
        while i < len(lines) and not re.fullmatch(
                r" {0,3}`{%d,}[ \t]*" % len(opening.group(1)), lines[i]):
            body.append(lines[i])
            i += 1
        i += 1
        blocks.append((opening.group(2).strip(), "".join(line + "\n" for line in body)))
    return blocks


def _as_fenced(text: str) -> str:
    text = re.sub(r"\r\n|\r", "\n", text)
    return text if text.endswith("\n") or not text else text + "\n"


def _walk_up(messages, leaf_id):
    by_id = {m.id: m for m in messages}
    branch = []
    while leaf_id is not None:
        branch.append(by_id[leaf_id])
        leaf_id = by_id[leaf_id].parent_id
    return branch[::-1]


def _document_text(text: str) -> str:
    """A message's text as the document holds it: plain line ends, no trailing blank lines."""
    return "\n".join(re.split(r"\r\n|\r|\n", text.rstrip("\r\n")))


@SLOW
@given(chats_with_messages())
def test_markdown_holds_exactly_the_branch_on_screen_in_order(pair):
    """Property: the Markdown is the title, then for each message of the branch from the root
    to current_id, in order, its heading and its text as it is (not in a code block of ours;
    a fence it leaves open is closed right after it), then its notes; nothing else."""
    chat, messages = pair
    chat = chat.with_changes(system_prompt="")
    if chat.current_id is None and messages:
        chat = chat.with_changes(current_id=messages[-1].id)
    markdown = to_markdown(chat, messages)
    at = markdown.index("\n") + 2  # after the title and its blank line
    for message in _walk_up(messages, chat.current_id):
        assert markdown.startswith("## You\n" if message.role == "user" else "## ", at)
        end = markdown.find("\n\n", at)  # none after the last heading of an empty message
        at = len(markdown) if end < 0 else end + 2
        if message.reasoning:
            at = markdown.index("</details>\n\n", at) + len("</details>\n\n")
        if text := _document_text(message.content):
            assert markdown.startswith(text + "\n", at)
            at += len(text) + 1
            if fence := re.match(r"(`{3,}|~{3,})\n", markdown[at:]):
                at += fence.end()
            at += 1  # the blank line after it
        while markdown.startswith(("*Images", "*Documents", "> *"), at):
            end = markdown.find("\n\n", at)
            at = len(markdown) if end < 0 else end + 2
    assert at >= len(markdown)


def test_markdown_shows_roles_labels_reasoning_and_how_a_reply_ended():
    chat, messages = _small_chat("Code `review`", count=2)
    reply = messages[1].with_changes(model_label="gpt-x · Work", reasoning="think ```",
                                     status="failed", error="The server stopped.")
    markdown = to_markdown(chat, [messages[0], reply])
    assert markdown.startswith("# Code \\`review\\`\n")
    assert "## You\n" in markdown and "## gpt\\-x · Work\n" in markdown
    assert "<details><summary>Reasoning</summary>\n\nthink ```\n\n</details>" in markdown
    assert "> *Failed: The server stopped\\.*" in markdown


def test_markdown_lists_attachments_by_name_without_a_documents_text():
    chat, (question, answer) = _small_chat("Files", count=2)
    question = question.with_changes(attachments=(
        Attachment(name="photo [1].jpg", kind="image", mime="image/jpeg", data=b"\xff"),
        Attachment(name="notes.md", kind="document", mime="text/markdown",
                   text="SECRET-DOCUMENT-TEXT"),
        Attachment(name="plan.pdf", kind="document", mime="application/pdf", text="plan")))
    markdown = to_markdown(chat.with_changes(current_id=answer.id), [question, answer])
    assert "*Images attached: photo \\[1\\]\\.jpg*" in markdown
    assert "*Documents attached: notes\\.md, plan\\.pdf*" in markdown
    assert "SECRET-DOCUMENT-TEXT" not in markdown
    assert markdown.count("attached:") == 2


def test_an_export_without_the_newer_fields_still_imports():
    """A file written before attachments and the reply options existed."""
    document = _valid_document()
    for chat in document["chats"]:
        del chat["max_tokens"], chat["context_window"]
        for message in chat["messages"]:
            del message["attachments"]
    store = MemoryChatStore()
    assert import_chats(store, json.dumps(document)).imported == 2
    assert all(m.attachments == () for _, ms in store.everything() for m in ms)


def test_markdown_without_a_current_message_shows_the_newest_branch():
    chat, (question, first) = _small_chat("Versions", count=2)
    second = first.with_changes(id=str(uuid.uuid4()), content="second answer")
    markdown = to_markdown(chat.with_changes(current_id=None), [question, first, second])
    assert markdown.endswith("## You\n\nVersions 0\n\n## Assistant\n\nsecond answer\n")
    assert first.content not in markdown


# ---- ChatGPT's conversations.json ----


def _node(node_id, parent, children, role=None, parts=(), content_type="text", **extra):
    message = None if role is None else {
        "id": node_id, "author": {"role": role, "name": None, "metadata": {}},
        "create_time": 1_700_000_000.5, "update_time": None,
        "content": {"content_type": content_type, "parts": list(parts)},
        "status": "finished_successfully", "end_turn": None, "weight": 1.0,
        "metadata": extra.pop("metadata", {}), "recipient": extra.pop("recipient", "all"),
    }
    return {"id": node_id, "message": message, "parent": parent, "children": children}


IMAGE = {"content_type": "image_asset_pointer", "asset_pointer": "file-service://file-abc",
         "size_bytes": 31_472, "width": 512, "height": 512, "fovea": None, "metadata": None}
CHATGPT_EXPORT = [{
    "title": "Cats and code", "create_time": 1_700_000_000.0, "update_time": 1_700_000_500.0,
    "id": "6f1c2b3a-0000-4000-8000-000000000001",
    "conversation_id": "6f1c2b3a-0000-4000-8000-000000000001",
    "current_node": "n8", "moderation_results": [], "plugin_ids": None, "is_archived": False,
    "mapping": {
        "root": _node("root", None, ["n1"]),
        "n1": _node("n1", "root", ["h1"], "system", [""],
                    metadata={"is_visually_hidden_from_conversation": True}),
        "h1": _node("h1", "n1", ["n2"], "user", ["About me: hidden context"],
                    metadata={"is_visually_hidden_from_conversation": True}),
        "n2": _node("n2", "h1", ["n3", "n4"], "user", ["Hello ```"]),
        "n3": _node("n3", "n2", [], "assistant", ["First try (regenerated away)"]),
        "n4": _node("n4", "n2", ["n5"], "assistant", ["Hi! 👋"],
                    metadata={"model_slug": "gpt-4o"}),
        "n5": _node("n5", "n4", ["n6"], "user", [IMAGE, "What is in this picture?"],
                    content_type="multimodal_text"),
        "n6": _node("n6", "n5", ["n7"], "assistant", ["print(1)"], content_type="code",
                    recipient="python"),
        "n7": _node("n7", "n6", ["n8"], "tool", ["1"], content_type="execution_output"),
        "n8": _node("n8", "n7", [], "assistant", ["A cat."], metadata={"model_slug": "gpt-4o"}),
    },
}]


def test_a_chatgpt_export_imports_every_branch_as_versions():
    text = json.dumps(CHATGPT_EXPORT)
    reading = read_chats(text)
    assert reading.skipped == 2  # the hidden system node and the hidden context
    store = MemoryChatStore()
    report = import_chats(store, text)
    assert (report.imported, report.already_there, report.skipped) == (1, 0, 2)
    assert report.summary == (
        "Imported 1 chat with 5 messages, of which 1 is another version (a regenerated reply "
        "or an edited message, under ◀ ▶). 2 hidden system messages were skipped (ChatGPT's "
        "own setup, not your words). 1 image or file is marked in the text where it was (the "
        "export does not hold the files). 2 tool steps (code ChatGPT ran, searches) are "
        "marked in the message after them.")
    [(chat, messages)] = store.everything()
    assert chat.title == "Cats and code"
    assert reading.chats[0][0].created_at == "2023-11-14T22:13:20+00:00"
    assert [(m.role, m.content, m.model_label) for m in _walk_up(messages, chat.current_id)] == [
        ("user", "Hello ```", ""), ("assistant", "Hi! 👋", "gpt-4o"),
        ("user", "[Image: file-abc was attached in ChatGPT; not imported]\n"
                 "What is in this picture?", ""),
        ("assistant", "[Tool step in ChatGPT (python); not imported]\n"
                      "[Tool step in ChatGPT (execution_output); not imported]\nA cat.",
         "gpt-4o")]
    question = _walk_up(messages, chat.current_id)[0]
    assert sorted(m.content for m in messages if m.parent_id == question.id) == [
        "First try (regenerated away)", "Hi! 👋"]  # the regenerated reply: a version
    again = import_chats(store, text)
    assert (again.imported, again.already_there) == (0, 1)
    assert again.summary == "Nothing new was imported. 1 chat was already here (left as it was)."
    assert len(store.everything()[0][1]) == 5


def test_a_chatgpt_conversation_with_a_broken_tree_imports_nothing():
    broken = copy.deepcopy(CHATGPT_EXPORT)
    broken[0]["mapping"]["n2"]["parent"] = "n8"  # a loop
    store = MemoryChatStore()
    fine = CHATGPT_EXPORT[0] | {"id": "other", "conversation_id": "other"}
    with pytest.raises(UserFacingError, match="conversation 2 .*broken"):
        import_chats(store, json.dumps([fine, *broken]))
    assert store.everything() == []


# ---- the real SQLite store ----


def test_round_trip_through_the_sqlite_store(tmp_path):
    pairs = [_small_chat("First"), _branched_chat()]
    pairs = [(chat.with_changes(created_at="2024-01-01T00:00:00+00:00",
                                updated_at=f"2024-01-0{n + 2}T00:00:00+00:00"), messages)
             for n, (chat, messages) in enumerate(pairs)]
    store = SQLiteChatStore(tmp_path)
    report = import_chats(store, to_json(pairs), owner="local")
    assert (report.imported, report.already_there) == (2, 0)
    stored = [(c, store.messages(c.id)) for c in store.list_chats(limit=100)]
    assert same_chats(read_chats(to_json(stored)).chats, pairs)
    moment = lambda text: datetime.fromisoformat(text.replace("Z", "+00:00"))  # noqa: E731
    assert [(c.title, moment(c.created_at), moment(c.updated_at)) for c, _ in stored] == [
        (c.title, moment(c.created_at), moment(c.updated_at)) for c, _ in reversed(pairs)]
    assert sorted(moment(m.created_at) for _, ms in stored for m in ms) == sorted(
        moment(m.created_at) for _, ms in pairs for m in ms)  # every message keeps its time
    assert import_chats(store, to_json(pairs), owner="local").imported == 0
    assert import_chats(store, to_json(stored), owner="local").imported == 0


def _branched_chat():
    chat, messages = _small_chat("Branches 🌳 שלום", count=3)
    edited = messages[1].with_changes(id=str(uuid.uuid4()), content="x" * MAX_CONTENT_LENGTH,
                                      created_at="2024-01-01T00:00:05+00:00", reasoning="why",
                                      status="stopped", usage={"prompt_tokens": 3})
    return chat.with_changes(current_id=edited.id, temperature=None), [*messages, edited]


# ---- comparisons: exported, checked, imported, and shown in Markdown ----


def _compared_chat(title: str = "Compared", picked: int | None = 1, tie: bool = False,
                   blind: bool = True):
    """A question sent to three models, the branch on screen through the second reply."""
    chat, [question] = _small_chat(title, count=1)
    replies = [Message(chat_id=chat.id, role="assistant", content=f"reply {n}",
                       parent_id=question.id, model_label=f"model-{n} · s",
                       created_at=f"2024-01-01T00:00:1{n}+00:00") for n in range(3)]
    comparison = Comparison(
        chat_id=chat.id, message_id=question.id, reply_ids=tuple(r.id for r in replies),
        labels=tuple(r.model_label for r in replies), blind=blind,
        picked_id=None if picked is None else replies[picked].id, tie=tie,
        created_at="2024-01-01T00:00:10+00:00",
        decided_at="" if picked is None and not tie else "2024-01-01T00:01:00+00:00")
    return chat.with_changes(current_id=replies[1].id), [question, *replies], comparison


def test_comparisons_round_trip_through_json():
    chat, messages, comparison = _compared_chat()
    other = _small_chat("Plain")

    reading = read_chats(to_json([(chat, messages), other],
                                 comparisons={chat.id: [comparison]}))

    assert reading.chats == [(chat, messages), other]
    assert reading.comparisons == {chat.id: [comparison]}


def test_an_import_remaps_a_comparisons_ids_with_its_messages_and_adds_nothing_twice():
    chat, messages, comparison = _compared_chat()
    text = to_json([(chat, messages)], comparisons={chat.id: [comparison]})
    store = MemoryChatStore()

    assert import_chats(store, text).imported == 1
    [(stored_chat, stored_messages)] = store.everything()
    [stored] = store.comparisons(stored_chat.id)
    new_ids = {m.content: m.id for m in stored_messages}
    old_ids = {m.content: m.id for m in messages}
    assert stored.chat_id == stored_chat.id != chat.id
    assert stored.message_id == new_ids["Compared 0"]
    assert stored.reply_ids == tuple(new_ids[f"reply {n}"] for n in range(3))
    assert stored.picked_id == new_ids["reply 1"]
    assert stored.id != comparison.id and not set(stored.reply_ids) & set(old_ids.values())
    assert (stored.labels, stored.blind, stored.tie, stored.created_at, stored.decided_at) == (
        comparison.labels, True, False, comparison.created_at, comparison.decided_at)

    assert import_chats(store, text).imported == 0
    assert store.comparisons(stored_chat.id) == [stored]


def test_an_import_cut_off_before_its_comparisons_is_finished_by_the_next():
    chat, messages, comparison = _compared_chat()
    store = MemoryChatStore()
    import_chats(store, to_json([(chat, messages)]))  # as if cut off before the comparison
    [(stored_chat, _)] = store.everything()

    report = import_chats(store, to_json([(chat, messages)],
                                         comparisons={chat.id: [comparison]}))

    assert (report.imported, report.already_there) == (1, 0)
    assert len(store.comparisons(stored_chat.id)) == 1


def test_a_file_exported_before_comparisons_imports_with_none():
    document = _valid_document()
    for chat in document["chats"]:
        del chat["comparisons"]
    reading = read_chats(json.dumps(document))
    assert reading.comparisons == {} and len(reading.chats) == 2


def _document_with_comparison() -> dict:
    chat, messages, comparison = _compared_chat()
    return json.loads(to_json([_small_chat("First"), (chat, messages)],
                              comparisons={chat.id: [comparison]}))


def _set_comparison(name, value):
    return lambda d: _second(d)["comparisons"][0].__setitem__(name, value)


@pytest.mark.parametrize("change, words", [
    (_set_comparison("reply_ids", ["x"]), "comparison 1: its reply_ids must list 2 to 4 ids"),
    (_set_comparison("reply_ids", list("abcde")), "its reply_ids must list 2 to 4 ids"),
    (lambda d: _second(d)["comparisons"][0]["reply_ids"].__setitem__(0, "elsewhere"),
     "comparison 1: it names a message that is not in this chat"),
    (_set_comparison("message_id", "elsewhere"), "names a message that is not in this chat"),
    (_set_comparison("picked_id", "elsewhere"), "the reply picked is not one of its replies"),
    (_set_comparison("tie", True), "it is both a tie and a pick"),
    (_set_comparison("labels", ["a", "b"]), "it does not have one label for each reply"),
    (lambda d: _second(d)["comparisons"][0]["labels"].__setitem__(0, "x" * 501),
     "its labels is longer than 500 characters"),
    (_set_comparison("chat_id", "another"), "its chat_id is not this chat's id"),
    (_set_comparison("blind", "yes"), "its blind must be true or false"),
    (_set_comparison("verdict", "mine"), "there is an unknown field “verdict”"),
    (lambda d: _second(d)["comparisons"].append(_second(d)["comparisons"][0]),
     "comparison 2 has the same id as comparison 1"),
    (_set(["chats", 1, "comparisons"], {}), "its comparisons are not a list"),
])
def test_a_comparison_out_of_its_bounds_refuses_the_file(change, words):
    document = _document_with_comparison()
    change(document)
    store = MemoryChatStore()

    with pytest.raises(UserFacingError, match=re.escape(words)):
        import_chats(store, json.dumps(document))
    assert store.everything() == []


def test_markdown_marks_the_reply_picked_and_adds_the_others_compared_after_it():
    chat, messages, comparison = _compared_chat()

    markdown = to_markdown(chat, messages, [comparison])

    headings = re.findall(r"(?m)^#+ .*$", markdown)
    assert headings == ["# Compared", "## You", "## model\\-1 · s (picked)",
                        "### Also compared · model\\-0 · s",
                        "### Also compared · model\\-2 · s"]
    assert [t for t in markdown.split("\n\n") if not t.startswith("#")] == [
        "Compared 0", "reply 1", "reply 0", "reply 2\n"]


def test_markdown_names_the_picked_reply_among_the_others_when_the_branch_shows_another():
    chat, messages, comparison = _compared_chat(picked=2)

    headings = re.findall(r"(?m)^#+ .*$", to_markdown(chat, messages, [comparison]))

    assert headings[2:] == ["## model\\-1 · s", "### Also compared · model\\-0 · s",
                            "### Also compared · model\\-2 · s (picked)"]


def test_markdown_of_a_tie_or_undecided_comparison_picks_nothing():
    for tie in (True, False):
        chat, messages, comparison = _compared_chat(picked=None, tie=tie)
        markdown = to_markdown(chat, messages, [comparison])
        assert "(picked)" not in markdown and markdown.count("### Also compared") == 2


def test_markdown_of_a_chat_without_comparisons_is_as_before():
    chat, messages, _ = _compared_chat()
    assert to_markdown(chat, messages, []) == to_markdown(chat, messages)
    assert "Also compared" not in to_markdown(chat, messages)


def test_comparisons_travel_through_the_sqlite_store_to_another_user(tmp_path):
    chat, messages, comparison = _compared_chat()
    mine, theirs = SQLiteChatStore(tmp_path), SQLiteChatStore(tmp_path, user_id="other")
    import_chats(mine, to_json([(chat, messages)], comparisons={chat.id: [comparison]}),
                 owner="local")
    pairs = every_chat(mine)
    exported = to_json(pairs, comparisons=every_comparison(mine, pairs))

    assert import_chats(theirs, exported, owner="other").imported == 1
    assert import_chats(theirs, exported, owner="other").imported == 0
    [(their_chat, their_messages)] = every_chat(theirs)
    [theirs_compared] = theirs.comparisons(their_chat.id)
    by_id = {m.id: m.content for m in their_messages}
    assert [by_id[r] for r in theirs_compared.reply_ids] == ["reply 0", "reply 1", "reply 2"]
    assert by_id[theirs_compared.picked_id] == "reply 1"
    assert theirs.blind_verdicts() == [theirs_compared]
    assert mine.comparisons(their_chat.id) == []
