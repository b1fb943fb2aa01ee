"""ChatGPT's conversations.json read whole: every branch as versions, hidden and empty nodes
skipped and counted, image and tool parts marked where they were; the same file twice adds
nothing; a big file is read a conversation at a time."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.history.transfer import check_file, import_chats, read_chats
from core.store.sqlite import SQLiteChatStore
from tests.chatgpt_exports import export, node

# What a node of the tree holds: whether a reader of the chat sees it as a message of its own.
KINDS = {
    "null": None,  # ChatGPT's root and other empty nodes
    "system": dict(role="system", parts=[""],
                   metadata={"is_visually_hidden_from_conversation": True}),
    "context": dict(role="user", parts=["About me"], content_type="user_editable_context"),
    "hidden user": dict(role="user", parts=["secret"],
                        metadata={"is_visually_hidden_from_conversation": True}),
    "user": dict(role="user", parts=["question"]),
    "assistant": dict(role="assistant", parts=["answer"]),
    "image": dict(role="user", parts=[{"content_type": "image_asset_pointer",
                                      "asset_pointer": "file-service://file-x"}],
                  content_type="multimodal_text"),
    "tool call": dict(role="assistant", parts=["print(1)"], content_type="code",
                      recipient="python"),
    "tool output": dict(role="tool", parts=["1"], content_type="execution_output"),
    "empty": dict(role="assistant", parts=[""]),
}
SEEN = ("user", "assistant", "image")
HIDDEN = ("system", "context", "hidden user")


@st.composite
def trees(draw):
    """A conversation: nodes of any kind, each under any earlier one (branches), and the
    branch on screen ending at any node."""
    count = draw(st.integers(1, 25))
    kinds = [draw(st.sampled_from(sorted(KINDS))) for _ in range(count)]
    parents = [None] + [draw(st.integers(0, i - 1)) for i in range(1, count)]
    mapping = {}
    for i, (kind, parent) in enumerate(zip(kinds, parents)):
        spec = dict(KINDS[kind] or {})
        parts = [*spec.pop("parts", ()), *([f"#{i}"] if kind in SEEN else [])]
        mapping[f"n{i}"] = node(f"n{i}", None if parent is None else f"n{parent}",
                                spec.pop("role", None), parts, created=1_700_000_000.0 + i,
                                **spec)
    current = draw(st.integers(0, count - 1))
    return {"title": "T", "id": "conv", "current_node": f"n{current}",
            "mapping": mapping}, kinds, parents, current


def _nearest_seen(i, kinds, parents):
    while i is not None and kinds[i] not in SEEN:
        i = parents[i]
    return None if i is None else f"n{i}"


def _steps_above(i, kinds, parents):
    """Tool steps between node i and the nearest node above it that a reader sees."""
    steps, i = 0, parents[i]
    while i is not None and kinds[i] not in SEEN:
        steps += kinds[i] in ("tool call", "tool output")
        i = parents[i]
    return steps


@settings(max_examples=300, deadline=None)
@given(trees())
def test_every_message_a_reader_sees_is_imported_once_under_the_one_it_answers(tree):
    """Property: for any tree of nodes with branches, null, hidden, empty and tool nodes, each
    node a reader sees (a user's or the model's text, or an image) is one message, its parent
    the nearest such node above it; the chat shows the nearest such node at or above
    current_node; hidden nodes are counted as hidden, and nothing else is lost unmarked."""
    document, kinds, parents, current = tree
    reading = read_chats(json.dumps([document]))
    [(chat, messages)] = reading.chats
    seen = [i for i, kind in enumerate(kinds) if kind in SEEN]
    assert sorted(m.id for m in messages) == sorted(f"n{i}" for i in seen)
    by_id = {m.id: m for m in messages}
    for i in seen:
        assert by_id[f"n{i}"].parent_id == _nearest_seen(parents[i], kinds, parents)
        assert f"#{i}" in by_id[f"n{i}"].content
    assert chat.current_id == _nearest_seen(current, kinds, parents)
    tally = reading.tally
    assert tally.messages == len(seen)
    assert tally.left_out.get("hidden", 0) == sum(kind in HIDDEN for kind in kinds)
    assert tally.left_out.get("empty", 0) == kinds.count("empty")
    assert tally.marked.get("file", 0) == kinds.count("image")
    steps = {i: _steps_above(i, kinds, parents) for i in seen}
    for i in seen:  # each marked in every message that came after it
        assert by_id[f"n{i}"].content.count("[Tool step in ChatGPT") == steps[i]
    assert tally.marked.get("tool", 0) == sum(steps.values())
    siblings = {}
    for i in seen:
        siblings.setdefault(by_id[f"n{i}"].parent_id, []).append(i)
    assert tally.versions == sum(len(group) - 1 for group in siblings.values())


def test_a_tool_step_is_marked_in_the_next_message_or_counted_when_none_follows():
    mapping = {"r": node("r", None),
               "q": node("q", "r", "user", ["What is 1+1?"]),
               "c": node("c", "q", "assistant", ["1+1"], content_type="code",
                         recipient="python"),
               "o": node("o", "c", "tool", ["2"], content_type="execution_output",
                         name="python"),
               "a": node("a", "o", "assistant", ["It is 2."]),
               "c2": node("c2", "q", "assistant", ["search"], recipient="browser")}
    reading = read_chats(json.dumps([{"title": "T", "id": "x", "current_node": "a",
                                      "mapping": mapping}]))
    [(chat, messages)] = reading.chats
    assert [m.content for m in messages if m.id == "a"] == [
        "[Tool step in ChatGPT (python); not imported]\n"
        "[Tool step in ChatGPT (python); not imported]\nIt is 2."]
    assert reading.tally.marked == {"tool": 2}
    assert reading.tally.left_out == {"tool left": 1}  # the search no answer came after
    assert "1 tool step was left out" in import_chats(_Nowhere(), json.dumps(
        [{"title": "T", "id": "x", "current_node": "a", "mapping": mapping}])).summary


class _Nowhere:
    """A store that holds nothing yet and takes every chat."""

    def get_chat(self, chat_id):
        return None

    def add_whole_chats(self, whole):
        return [chat.id for chat, _, _ in whole]


def test_an_image_part_is_named_by_its_attachment_when_the_export_says_it():
    mapping = {"q": node("q", None, "user",
                         [{"content_type": "image_asset_pointer",
                           "asset_pointer": "file-service://file-abc"}, "What is it?"],
                         content_type="multimodal_text",
                         metadata={"attachments": [{"id": "file-abc", "name": "cat.png"}]})}
    [(_, [message])] = read_chats(json.dumps([{"title": "T", "id": "x", "current_node": "q",
                                               "mapping": mapping}])).chats
    assert message.content == ("[Image: cat.png was attached in ChatGPT; not imported]\n"
                               "What is it?")


@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(0, 2**32))
def test_read_a_conversation_at_a_time_it_is_the_same_as_read_whole(seed):
    """Property: a made-up export read from bytes (a conversation at a time) gives the same
    chats as the whole file parsed at once."""
    data = export(3, seed=seed, turns=4, words=12)
    streamed = [pair for pair, _, _ in check_file(data).chats()]
    assert streamed == read_chats(data.decode()).chats


def test_the_same_file_twice_adds_nothing_to_sqlite(tmp_path):
    data = export(20, seed=7, turns=5, words=20)
    store = SQLiteChatStore(tmp_path)
    first = import_chats(store, data, owner="local")
    chats = store.list_chats(limit=100)
    before = {c.id: store.messages(c.id) for c in chats}
    again = import_chats(store, data, owner="local")
    assert (first.imported, first.already_there) == (20, 0)
    assert (again.imported, again.already_there) == (0, 20)
    assert {c.id: store.messages(c.id) for c in store.list_chats(limit=100)} == before
    assert sum(len(ms) for ms in before.values()) == first.tally.messages
    versions = sum(len(ms) - len({m.parent_id for m in ms}) for ms in before.values())
    assert versions == first.tally.versions > 0
