"""A chat's messages as a tree (issue 11, versions): branches, siblings, what the model sees."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given, strategies as st

from core.chat.call import wire_messages
from core.history.listing import group_label
from core.history.model import Message
from core.history.thread import Thread, title_from


def _message(id: str, parent: str | None, role: str = "user", content: str = "x",
             status: str = "complete") -> Message:
    return Message(chat_id="c", role=role, content=content, parent_id=parent, id=id,
                   status=status)


@st.composite
def trees(draw):
    """Messages oldest first, each parent made before its child: any shape of branches."""
    count = draw(st.integers(1, 30))
    messages = []
    for index in range(count):
        parent = (draw(st.one_of(st.none(), st.sampled_from([m.id for m in messages])))
                  if messages else None)
        messages.append(_message(f"m{index}", parent, draw(st.sampled_from(["user", "assistant"]))))
    return messages


@given(trees(), st.data())
def test_a_branch_runs_from_a_root_to_the_leaf_asked_for(messages, data):
    """Property: branch(id) starts at a root, each message's parent is the one before it, and
    it ends at `id`; an unknown id gives the newest branch, never an error."""
    thread = Thread(messages)
    leaf = data.draw(st.sampled_from([m.id for m in messages]))
    path = thread.branch(leaf)
    assert path[0].parent_id is None and path[-1].id == leaf
    assert all(child.parent_id == parent.id for parent, child in zip(path, path[1:]))
    newest = thread.branch("no-such-id")
    assert newest == thread.branch(thread.newest_leaf(None))
    assert not thread.children.get(newest[-1].id)  # it ends at a leaf


@given(trees(), st.data())
def test_every_version_is_reachable_by_switching(messages, data):
    """Property: from any message, stepping next/previous visits each sibling exactly once,
    and switching to one shows a branch that holds it and ends at a leaf."""
    thread = Thread(messages)
    start = data.draw(st.sampled_from(messages))
    first = thread.version(start)
    seen, current = [], start
    while (version := thread.version(current)).previous_id is not None:
        current = thread.by_id[version.previous_id]
    while current is not None:
        seen.append(current.id)
        version = thread.version(current)
        current = thread.by_id.get(version.next_id) if version.next_id else None
    assert len(seen) == first.count == len(set(seen))
    assert seen.index(start.id) + 1 == first.index
    leaf = thread.newest_leaf(start.id)
    assert start in thread.branch(leaf) and not thread.children.get(leaf)


def test_regenerate_and_edit_make_siblings_and_the_model_sees_only_the_branch_on_screen():
    messages = [
        _message("u1", None, "user", "first question"),
        _message("a1", "u1", "assistant", "first answer"),
        _message("u2", "a1", "user", "second question"),
        _message("a2", "u2", "assistant", "", status="failed"),
        _message("a2b", "u2", "assistant", "regenerated answer"),
        _message("u2e", "a1", "user", "edited second question"),
        _message("a3", "u2e", "assistant", "answer to the edit"),
    ]
    thread = Thread(messages)
    assert (thread.version(thread.by_id["a2b"]).index, thread.version(thread.by_id["a2b"]).count) == (2, 2)
    assert (thread.version(thread.by_id["u2e"]).index, thread.version(thread.by_id["u2e"]).count) == (2, 2)
    assert wire_messages(thread.branch("a2b")) == [
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "first answer"},
        {"role": "user", "content": "second question"},
        {"role": "assistant", "content": "regenerated answer"},
    ]
    assert [m.id for m in thread.branch(thread.newest_leaf("u2"))] == ["u1", "a1", "u2", "a2b"]
    assert [m.id for m in thread.branch(None)] == ["u1", "a1", "u2e", "a3"]


@given(st.text())
def test_a_title_is_one_short_line_from_the_first_message(text):
    """Property: a title has no line break, at most 61 characters, and is never empty."""
    title = title_from(text)
    assert title and "\n" not in title and len(title) <= 61
    if " ".join(text.split()) and len(" ".join(text.split())) <= 60:
        assert title == " ".join(text.split())


def test_the_chat_list_groups_by_age_then_by_month():
    today = date(2026, 3, 15)
    ages = (-1, 0, 1, 2, 7, 8, 30, 31, 400)
    labels = {age: group_label(today - timedelta(days=age), today) for age in ages}
    assert labels == {-1: "Today", 0: "Today", 1: "Yesterday", 2: "Previous 7 days",
                      7: "Previous 7 days", 8: "Previous 30 days", 30: "Previous 30 days",
                      31: "February 2026", 400: "February 2025"}
    assert group_label(None, today) == "Older"
