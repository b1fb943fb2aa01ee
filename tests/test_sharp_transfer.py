"""Chat import and export pinned exactly: every refusal's whole message, the size limits at
their boundaries, how a ChatGPT conversation is read, the ids an import derives, and the exact
Markdown and JSON written."""

from __future__ import annotations

import contextlib
import json
import logging
import uuid
from collections import defaultdict
from datetime import datetime, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

import core.history.transfer as transfer
from core.failures import UserFacingError
from core.history.model import Chat, Message
from core.history.transfer import (
    FORMAT,
    MAX_TITLE_LENGTH,
    _one_of,
    _Refused,
    _text,
    every_chat,
    import_chats,
    parents_first,
    read_chats,
    to_json,
    to_markdown,
)


class Store:
    """A ChatStore in memory, for one user; stamps no times (an import gives them)."""

    def __init__(self) -> None:
        self.chats: dict[str, Chat] = {}
        self.stored: dict[str, list[Message]] = defaultdict(list)

    def list_chats(self, limit=50, before=None):
        newest = sorted(self.chats.values(), key=lambda c: (c.updated_at, c.id), reverse=True)
        return [c for c in newest if before is None or (c.updated_at, c.id) < before][:limit]

    def get_chat(self, chat_id):
        return self.chats.get(chat_id)

    def messages(self, chat_id):
        return list(self.stored.get(chat_id, []))

    def save_chat(self, chat):
        self.chats[chat.id] = chat
        return chat

    def add_message(self, message):
        if all(m.id != message.id for m in self.stored[message.chat_id]):
            self.stored[message.chat_id].append(message)
        return message

    def delete_chat(self, chat_id):
        self.chats.pop(chat_id, None)
        self.stored.pop(chat_id, None)

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


def chat_with(title: str, count: int, chat_id: str | None = None) -> tuple[Chat, list[Message]]:
    chat = Chat(title=title, id=chat_id or str(uuid.uuid4()))
    messages, parent = [], None
    for i in range(count):
        message = Message(chat_id=chat.id, role=("user", "assistant")[i % 2],
                          content=f"{title} {i}", parent_id=parent, id=str(uuid.uuid4()))
        messages.append(message)
        parent = message.id
    return chat.with_changes(current_id=parent), messages


def export_of(*pairs) -> dict:
    return json.loads(to_json(pairs))


def refusal(text) -> str:
    with pytest.raises(UserFacingError) as refused:
        read_chats(text).chats
    with pytest.raises(UserFacingError) as imported:
        import_chats(Store(), text)
    assert str(imported.value) == str(refused.value)
    return str(refused.value)


# ---- field checks ----


def test_a_text_field_check():
    """The field checks are built by _text and _one_of once, when the module loads; these two
    tests build one themselves, so a change to how a check is built shows (a mutation run
    only swaps in a changed function when it is called)."""
    check = _text(1000)
    assert check("x" * 1000) == "x" * 1000
    for value, why in [(7, "must be text"), (None, "must be text"),
                       ("x" * 1001, "is longer than 1,000 characters"),
                       ("a\ud800b", "holds a broken character")]:
        with pytest.raises(_Refused) as refused:
            check(value)
        assert str(refused.value) == why


def test_a_choice_field_check():
    check = _one_of(("user", "assistant"))
    assert check("user") == "user" and check("assistant") == "assistant"
    for value in ["system", "", 1, None]:
        with pytest.raises(_Refused) as refused:
            check(value)
        assert str(refused.value) == "must be one of user, assistant"


# ---- refusals, whole ----


def _export_with(change) -> str:
    document = export_of(chat_with("First", 2), chat_with("Second", 3))
    change(document)
    return json.dumps(document)


def _second(document) -> dict:
    return document["chats"][1]


@pytest.mark.parametrize(
    "text, message",
    [
        ("42", "the file is not a Switchboard chats export"),
        (_export_with(lambda d: d.update(version=2)),
         "the file is in a format version this app does not read (2)"),
        (_export_with(lambda d: d.update(chats={"a": 1})), "the file has no list of chats"),
        ('{"format": "switchboard.chats", "version": 1, "chats": [NaN]}',
         "the file is not JSON text"),
        (_export_with(lambda d: _second(d).update(messages=None)),
         "chat 2 (“Second”): its messages are not a list"),
        (_export_with(lambda d: _second(d)["messages"][1].update(chat_id="elsewhere")),
         "chat 2 (“Second”): message 2: its chat_id is not this chat's id"),
        (_export_with(lambda d: _second(d).update(current_id="elsewhere")),
         "chat 2 (“Second”): the message it shows is not in this chat"),
        (_export_with(lambda d: _second(d)["messages"][0].update(role="system")),
         "chat 2 (“Second”): message 1: its role must be one of user, assistant"),
    ],
)
def test_a_refusal_says_exactly_what_and_where(text, message):
    assert refusal(text) == f"Nothing was imported: {message}."


@pytest.mark.parametrize(
    "title, shown",
    [
        ("t" * 40, "t" * 40),
        ("t" * 41, "t" * 39 + "…"),
        ("  spaced   out\ttitle ", "spaced out title"),
    ],
)
def test_a_chat_is_named_by_its_title_cut_to_forty_characters(title, shown):
    def change(document):
        _second(document)["title"] = title
        _second(document)["messages"] = None
    assert refusal(_export_with(change)) == (
        f"Nothing was imported: chat 2 (“{shown}”): its messages are not a list.")


def test_a_file_is_refused_above_the_size_limit_and_read_at_it(monkeypatch):
    monkeypatch.setattr(transfer, "MAX_FILE_BYTES", 100)
    assert refusal(b" " * 101) == "Nothing was imported: the file is bigger than 0 MB."
    assert refusal(b" " * 100) == "Nothing was imported: the file is not JSON (line 1, column 101)."
    monkeypatch.setattr(transfer, "MAX_FILE_BYTES", 2)
    assert read_chats(b"[]").chats == [] and read_chats("[]").chats == []


def test_a_string_is_measured_in_bytes_before_parsing(monkeypatch):
    monkeypatch.setattr(transfer, "MAX_FILE_BYTES", 100)
    within = '["' + "é" * 48 + '"]'  # 52 characters, 100 bytes
    above = '["' + "é" * 49 + '"]'  # 53 characters, 102 bytes
    with pytest.raises(UserFacingError) as refused:
        read_chats(within)
    assert str(refused.value) == ("Nothing was imported: conversation 1: it has no message "
                                  "tree.")
    with pytest.raises(UserFacingError) as refused:
        read_chats(above)
    assert str(refused.value) == "Nothing was imported: the file is bigger than 0 MB."


def test_a_chat_may_hold_the_most_messages_and_not_one_more(monkeypatch):
    monkeypatch.setattr(transfer, "MAX_MESSAGES_PER_CHAT", 3)
    assert len(read_chats(to_json([chat_with("Full", 3)])).chats[0][1]) == 3
    assert refusal(to_json([chat_with("Over", 4)])) == (
        "Nothing was imported: chat 1 (“Over”): it has 4 messages, more than the 3 a chat can "
        "hold.")


# ---- ChatGPT's conversations.json ----


def node(node_id, parent, role="user", parts=("text",), content_type="text", **message):
    body = {"author": {"role": role}, "content": {"content_type": content_type,
                                                   "parts": list(parts) if parts is not None
                                                   else None},
            "recipient": "all", "create_time": 1_700_000_000, "metadata": {}} | message
    return {"id": node_id, "parent": parent, "message": body}


def conversation(*nodes, **fields) -> dict:
    mapping = {"root": {"id": "root", "parent": None, "message": None}}
    for n in nodes:
        mapping[n["id"]] = n
    return {"title": "A chat", "create_time": 1_700_000_000, "update_time": 1_700_000_600,
            "current_node": nodes[-1]["id"] if nodes else "root", "mapping": mapping} | fields


def chatgpt_refusal(document) -> str:
    with pytest.raises(UserFacingError) as refused:
        read_chats(json.dumps(document))
    return str(refused.value)


def test_a_chatgpt_file_must_be_a_list_with_sound_trees():
    assert chatgpt_refusal({"conversations": []}) == (  # not a list: read as ours, refused
        "Nothing was imported: the file is not a Switchboard chats export.")
    missing = conversation(node("a", "root"), current_node="gone")
    assert chatgpt_refusal([missing]) == ("Nothing was imported: conversation 1 (“A chat”): its "
                                          "current message is not in its message tree.")
    broken = conversation(node("a", "nowhere"))
    assert chatgpt_refusal([broken]) == (
        "Nothing was imported: conversation 1 (“A chat”): its message tree is broken (a "
        "missing message or a loop).")


@pytest.mark.parametrize(
    "fields, chat_id",
    [
        ({"conversation_id": "conv-1", "id": "id-1"}, "conv-1"),
        ({"id": "id-1"}, "id-1"),
        ({"conversation_id": None, "id": "id-1"}, "id-1"),
        ({"title": "Cats", "create_time": 1_700_000_000.5}, "Cats@1700000000.5"),
    ],
)
def test_a_chatgpt_conversation_keeps_its_id(fields, chat_id):
    [(chat, _)] = read_chats(json.dumps([conversation(node("a", "root"), **fields)])).chats
    assert chat.id == chat_id


def test_a_chatgpt_conversation_is_read_with_its_titles_and_times():
    a = node("a", "root", "user", ["Question about cats"], create_time=1_700_000_001)
    b = node("b", "a", "assistant", ["First part", {"image": 1}, "second part"],
             content_type="multimodal_text", metadata=None, create_time=1_700_000_002.5)
    c = node("c", "b", "user", ["x"], create_time=True)
    d = node("d", "c", "assistant", ["y"], create_time="1700000000")
    e = node("e", "d", "assistant", ["z"], create_time=10.0 ** 20)
    reading = read_chats(json.dumps([conversation(a, b, c, d, e, title=None)]))
    [(chat, messages)] = reading.chats
    assert (chat.title, chat.current_id) == ("Question about cats", "e")
    assert (chat.created_at, chat.updated_at) == ("2023-11-14T22:13:20+00:00",
                                                  "2023-11-14T22:23:20+00:00")
    assert [(m.id, m.parent_id, m.role, m.content, m.model_label, m.created_at)
            for m in messages] == [
        ("a", None, "user", "Question about cats", "", "2023-11-14T22:13:21+00:00"),
        ("b", "a", "assistant",
         "First part\n[File: a part of this message in ChatGPT; not imported]\nsecond part", "",
         "2023-11-14T22:13:22.500000+00:00"),
        ("c", "b", "user", "x", "", ""),
        ("d", "c", "assistant", "y", "", ""),
        ("e", "d", "assistant", "z", "", ""),
    ]
    assert reading.skipped == 0  # the part that is not text is marked where it was
    assert reading.tally.marked == {"file": 1}


def test_a_chatgpt_title_is_kept_up_to_the_longest_a_title_may_be():
    long = "word " * 30  # 150 characters, collapsed to 149
    [(chat, _)] = read_chats(json.dumps([conversation(node("a", "root"), title=long,
                                                        id="1")])).chats
    assert chat.title == " ".join(long.split())
    longer = "w" * (MAX_TITLE_LENGTH + 5)
    [(chat, _)] = read_chats(json.dumps([conversation(node("a", "root"), title=longer,
                                                        id="2")])).chats
    assert chat.title == "w" * (MAX_TITLE_LENGTH - 1) + "…"


def test_an_untitled_chatgpt_conversation_is_named_by_its_first_user_message():
    answer = node("a", "root", "assistant", ["An answer first"])
    question = node("q", "a", "user", ["The question"])
    [(chat, _)] = read_chats(json.dumps([conversation(answer, question, title="")])).chats
    assert chat.title == "The question"
    [(chat, _)] = read_chats(json.dumps([conversation(answer, title="")])).chats
    assert chat.title == "New chat"


@pytest.mark.parametrize(
    "left_out",
    [
        node("t", "root", "assistant", ["search(cats)"], recipient="browser"),
        node("t", "root", "assistant", ["print(1)"], content_type="code"),
        node("t", "root", "assistant", [""]),
        node("t", "root", "assistant", None),
        node("t", "root", "tool", ["output"]),
        node("t", "root", "user", ["hidden"],
             metadata={"is_visually_hidden_from_conversation": True}),
    ],
)
def test_what_a_chatgpt_reader_would_not_see_is_left_out(left_out):
    reading = read_chats(json.dumps([conversation(left_out), conversation(left_out, id="2")]))
    assert [(chat.current_id, messages) for chat, messages in reading.chats] == [(None, [])] * 2
    assert reading.skipped == 2


# ---- importing ----


class UuidStore(Store):
    """Refuses to look up an id that is not a uuid, as a uuid column does."""

    def get_chat(self, chat_id):
        uuid.UUID(chat_id)
        return super().get_chat(chat_id)


def test_a_chat_id_that_is_not_a_uuid_is_never_looked_up_as_it_is():
    text = json.dumps([conversation(node("a", "root"), id="not-a-uuid")])
    report = import_chats(UuidStore(), text)
    assert report.imported == 1 and report.chat_ids["not-a-uuid"] != "not-a-uuid"


def test_chats_exported_from_this_account_are_already_there_and_keep_their_ids():
    store = Store()
    first, second, new = chat_with("First", 2), chat_with("Second", 2), chat_with("New", 2)
    for chat, messages in (first, second):
        store.save_chat(chat)
        for message in messages:
            store.add_message(message)
    report = import_chats(store, to_json([first, second, new]))
    assert (report.imported, report.already_there) == (1, 2)
    assert report.chat_ids[first[0].id] == first[0].id
    assert report.chat_ids[second[0].id] == second[0].id
    assert report.chat_ids[new[0].id] in store.chats


def test_imported_ids_are_derived_from_the_owner_the_source_and_the_file_s_ids():
    """The same file always gives the same ids (so a second import is recognised, also after
    an upgrade); a ChatGPT conversation and a chat of ours with the same id are two chats."""
    ours = to_json([chat_with("Ours", 1, chat_id="shared-id")])
    theirs = json.dumps([conversation(node("a", "root"), id="shared-id")])
    store = Store()
    first = import_chats(store, ours, owner="user-1")
    second = import_chats(store, theirs, owner="user-1")
    assert (first.imported, second.imported) == (1, 1)
    assert first.chat_ids == {"shared-id": "7a3b4bd6-ff5d-516b-b4e4-307c626ed87d"}
    assert second.chat_ids == {"shared-id": "cb31df1e-b1c4-5a96-9378-d23a8ae96a64"}
    assert import_chats(Store(), theirs).chat_ids == import_chats(Store(), theirs, owner="").chat_ids


class FailingStore(Store):
    def add_message(self, message):
        if message.content.endswith(" 1"):
            raise UserFacingError("This message cannot be stored.")
        return super().add_message(message)

    def delete_chat(self, chat_id):
        raise OSError("down")


def test_an_undo_that_fails_is_logged_with_its_cause(caplog, monkeypatch):
    monkeypatch.setattr(transfer, "BATCH_CHATS", 1)  # the first chat is written on its own
    whole, half = chat_with("Whole", 1), chat_with("Half", 2)
    store = FailingStore()
    with caplog.at_level(logging.WARNING, logger="core.history.transfer"):
        with pytest.raises(UserFacingError):
            import_chats(store, to_json([whole, half]))
    [record] = caplog.records
    [written] = [chat.id for chat in store.chats.values() if chat.title == "Whole"]
    assert record.getMessage() == f"could not undo a half-done import of chat {written}"
    assert record.exc_info is not None and isinstance(record.exc_info[1], OSError)


def test_the_marked_parts_of_every_conversation_add_up():
    image = node("a", "root", "user", ["look", {"image": 1}, {"image": 2}],
                 content_type="multimodal_text")
    text = json.dumps([conversation(image, id="1"), conversation(image, id="2")])
    assert read_chats(text).tally.marked == {"file": 4}
    report = import_chats(Store(), text)
    assert (report.skipped, report.tally.marked) == (0, {"file": 4})


# ---- order ----


@st.composite
def shuffled_trees(draw):
    count = draw(st.integers(0, 12))
    parents = [None] + [draw(st.sampled_from([None, *range(i)])) for i in range(1, count)]
    messages = [Message(chat_id="c", role="user", content=str(i), id=f"m{i}",
                        parent_id=None if p is None else f"m{p}") for i, p in enumerate(parents)]
    order = draw(st.permutations(messages))
    return list(order)


@given(shuffled_trees())
def test_parents_come_first_and_siblings_keep_their_order(messages):
    """Property: for a tree given in any order, parents_first holds every message once, each
    after its parent, and messages with the same parent in the order they were given."""
    ordered = parents_first(messages)
    assert sorted(m.id for m in ordered) == sorted(m.id for m in messages)
    position = {m.id: i for i, m in enumerate(ordered)}
    assert all(m.parent_id is None or position[m.parent_id] < position[m.id] for m in ordered)
    for parent in {m.parent_id for m in messages}:
        given_order = [m.id for m in messages if m.parent_id == parent]
        assert sorted(given_order, key=position.get) == given_order


def test_parents_first_releases_a_waiting_child_after_its_parent():
    parent = Message(chat_id="c", role="user", content="p", id="p")
    first = Message(chat_id="c", role="assistant", content="1", id="c1", parent_id="p")
    second = Message(chat_id="c", role="assistant", content="2", id="c2", parent_id="p")
    other = Message(chat_id="c", role="user", content="o", id="o")
    assert [m.id for m in parents_first([first, second, other, parent])] == ["o", "p", "c1", "c2"]


# ---- what is written ----


def test_the_markdown_of_a_chat():
    chat = Chat(title="", id="c1", system_prompt="Be brief.", current_id="m2")
    messages = [Message(chat_id="c1", role="user", content="Hi", id="m1"),
                Message(chat_id="c1", role="assistant", content="Hello", id="m2",
                        parent_id="m1", status="failed")]
    assert to_markdown(chat, messages) == (
        "# Untitled chat\n\n<details><summary>System prompt</summary>\n\nBe brief.\n\n"
        "</details>\n\n## You\n\nHi\n\n## Assistant\n\nHello\n\n> *Failed*\n")


def test_the_markdown_shows_the_branch_on_screen_each_text_ending_on_its_last_line():
    chat = Chat(title="Two answers", id="c1", current_id="old")
    messages = [Message(chat_id="c1", role="user", content="Q\n", id="q"),
                Message(chat_id="c1", role="assistant", content="old answer", id="old",
                        parent_id="q", created_at="2024-01-01T00:00:01+00:00"),
                Message(chat_id="c1", role="assistant", content="new answer\n\n", id="new",
                        parent_id="q", created_at="2024-01-01T00:00:02+00:00")]
    assert to_markdown(chat, messages) == (
        "# Two answers\n\n## You\n\nQ\n\n## Assistant\n\nold answer\n")
    assert to_markdown(chat.with_changes(current_id="new"), messages).endswith(
        "## Assistant\n\nnew answer\n")


def test_the_markdown_fences_only_what_was_code_and_closes_a_fence_left_open():
    chat = Chat(title="Code", id="c1", current_id="a")
    messages = [Message(chat_id="c1", role="user", content="Fix *this*:\n~~~~py\nx = 1", id="q"),
                Message(chat_id="c1", role="assistant", content="Done:\n```py\nx = 2\n```",
                        id="a", parent_id="q", model_label="gpt-4o · Work")]
    assert to_markdown(chat, messages) == (
        "# Code\n\n## You\n\nFix *this*:\n~~~~py\nx = 1\n~~~~\n\n"
        "## gpt\\-4o · Work\n\nDone:\n```py\nx = 2\n```\n")


def test_usage_counts_may_be_zero_but_not_negative():
    chat, [message] = chat_with("Usage", 1)
    zero = message.with_changes(usage={"prompt_tokens": 0, "completion_tokens": 3})
    [(_, [read])] = read_chats(to_json([(chat, [zero])])).chats
    assert read.usage == {"prompt_tokens": 0, "completion_tokens": 3}
    negative = message.with_changes(usage={"prompt_tokens": -1})
    assert refusal(to_json([(chat, [negative])])) == (
        "Nothing was imported: chat 1 (“Usage”): message 1: its usage must map names to whole "
        "numbers.")


def test_a_file_imported_twice_is_already_there_the_second_time():
    text = to_json([chat_with("One", 2), chat_with("Two", 2)])
    store = Store()
    first = import_chats(store, text)
    again = import_chats(store, text)
    assert (first.imported, first.already_there) == (2, 0)
    assert (again.imported, again.already_there) == (0, 2)
    assert again.chat_ids == first.chat_ids


def test_a_loop_in_a_chatgpt_tree_is_refused():
    a, b = node("a", "b"), node("b", "a")
    assert chatgpt_refusal([conversation(a, b)]) == (
        "Nothing was imported: conversation 1 (“A chat”): its message tree is broken (a "
        "missing message or a loop).")


def test_the_json_of_a_chat():
    chat = Chat(title="é", id="c1", created_at="2024-01-01T00:00:00+00:00",
                updated_at="2024-01-01T00:00:00+00:00")
    at = datetime(2024, 5, 6, 7, 8, 9, tzinfo=timezone.utc)
    assert to_json([(chat, [])], now=lambda: at) == "\n".join([
        "{", ' "format": "switchboard.chats",', ' "version": 1,',
        ' "exported_at": "2024-05-06T07:08:09+00:00",', ' "chats": [', "  {",
        '   "title": "é",', '   "id": "c1",', '   "connection_id": "",', '   "model": "",',
        '   "system_prompt": "",', '   "temperature": null,', '   "current_id": null,',
        '   "pinned": false,', '   "max_tokens": null,', '   "context_window": null,',
        '   "created_at": "2024-01-01T00:00:00+00:00",',
        '   "updated_at": "2024-01-01T00:00:00+00:00",', '   "folder": "",',
        '   "messages": [],',
        '   "comparisons": []', "  }", " ]",
        "}"])


def test_an_export_is_stamped_with_the_time_in_utc():
    before = datetime.now(timezone.utc)
    stamped = datetime.fromisoformat(json.loads(to_json([]))["exported_at"])
    assert stamped.utcoffset().total_seconds() == 0
    assert before <= stamped <= datetime.now(timezone.utc)


@pytest.mark.parametrize("count, page", [(0, 2), (1, 2), (4, 2), (5, 2), (6, 3), (7, 200)])
def test_every_chat_pages_through_all_of_them_newest_first(count, page):
    store = Store()
    for i in range(count):
        chat, messages = chat_with(f"c{i}", 1)
        store.save_chat(chat.with_changes(updated_at=f"2024-01-0{i % 3 + 1}T00:00:00+00:00"))
        store.add_message(messages[0])
    asked = []
    listed = store.list_chats

    def list_chats(limit=50, before=None):
        asked.append(limit)
        return listed(limit, before)

    store.list_chats = list_chats
    pairs = every_chat(store, page) if page != 200 else every_chat(store)
    assert [c.id for c, _ in pairs] == [c.id for c in listed(10**6)]
    assert all(ms == store.messages(c.id) and len(ms) == 1 for c, ms in pairs)
    assert asked == [page] * (count // page + 1)


def test_a_json_document_names_its_format():
    assert json.loads(to_json([]))["format"] == FORMAT
