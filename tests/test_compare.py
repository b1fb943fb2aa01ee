"""Compare's parts that need no browser: a reply's figures, the live columns' Markdown drawing,
and a conversation holding a comparison in the real SQLite store (asked, ended, picked, the
first verdict kept, reopened, written after its message)."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from core.chat.blocks import LiveBlocks
from core.chat.call import Reply
from core.chat.figures import Figures, of_message, of_reply
from core.history.conversation import Conversation, ShownMessage
from core.history.model import Message
from core.store.sqlite import SQLiteChatStore


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


# ---- figures


def test_a_reply_measures_its_first_token_and_its_length_and_a_cut_by_the_reply_room():
    clock = Clock()
    reply = Reply(clock=clock)
    clock.now += 0.25
    reply.add_answer("Hello")
    clock.now += 2.0
    assert reply.measures() == {"reply_ms": 2250, "first_token_ms": 250}
    reply.finish_reason = "length"
    assert reply.measures()["cut_at_length"] == 1


def test_reasoning_is_the_first_token_when_it_comes_first():
    clock = Clock()
    reply = Reply(clock=clock)
    clock.now += 0.5
    reply.add_reasoning("Let me think")
    clock.now += 1.5
    reply.add_answer("Done")
    assert reply.measures()["first_token_ms"] == 500


def test_a_reply_with_no_token_has_no_first_token():
    clock = Clock()
    reply = Reply(clock=clock)
    clock.now += 3
    assert reply.measures() == {"reply_ms": 3000}
    assert of_reply(reply).line() == "no token yet · ≈0 tokens · streaming"


def test_stored_figures_use_the_servers_count_and_say_how_it_ended():
    message = Message("c", "assistant", "x" * 400, usage={
        "completion_tokens": 120, "first_token_ms": 200, "reply_ms": 2200})
    figures = of_message(message)
    assert figures == Figures(0.2, 2.2, 120, False, "complete")
    assert figures.per_second == 60.0
    assert figures.line() == "first token 0.20 s · 60 tok/s · 120 tokens · complete"


def test_without_the_servers_count_tokens_are_estimated_and_marked():
    message = Message("c", "assistant", "x" * 400, status="incomplete",
                      usage={"first_token_ms": 1000, "reply_ms": 11000, "cut_at_length": 1})
    figures = of_message(message)
    assert (figures.tokens, figures.estimated, figures.ending) == (100, True, "length")
    assert figures.line() == "first token 1.00 s · ≈10 tok/s · ≈100 tokens · length"


def test_a_failed_reply_ended_in_error_and_a_reply_of_old_has_no_timings():
    failed = of_message(Message("c", "assistant", "", status="failed", error="down"))
    assert (failed.first_token, failed.ending, failed.line()) == (
        None, "error", "no token · ≈0 tokens · error")
    old = of_message(Message("c", "assistant", "four", usage={"completion_tokens": 1}))
    assert old.per_second is None and old.line() == "no token · 1 tokens · complete"


def test_a_reply_arriving_says_its_figures_from_the_servers_count_when_it_gives_one():
    clock = Clock()
    reply = Reply(clock=clock)
    clock.now += 0.5
    reply.add_answer("x" * 400)
    clock.now += 2.0
    assert of_reply(reply).line() == "first token 0.50 s · ≈50 tok/s · ≈100 tokens · streaming"
    reply.usage = {"completion_tokens": 80}
    reply.finish_reason = "length"
    assert of_reply(reply, ended=True) == Figures(0.5, 2.5, 80, False, "length")
    assert of_reply(reply, ended=True).line() == "first token 0.50 s · 40 tok/s · 80 tokens · length"


def test_reasoning_counts_in_the_estimate_and_long_waits_read_in_tenths():
    message = Message("c", "assistant", "x" * 40, reasoning="y" * 40,
                      usage={"first_token_ms": 10_000, "reply_ms": 14_000})
    assert of_message(message).tokens == 20
    assert of_message(message).line() == "first token 10.0 s · ≈5 tok/s · ≈20 tokens · complete"
    assert Figures(9.996, 20.0, 10, False, "complete").line().startswith("first token 10.00 s")


def test_no_rate_is_said_from_an_instant():
    assert Figures(1.0, 1.01, 50, False, "complete").per_second is None
    assert Figures(1.0, 2.0, 0, False, "complete").per_second is None


# ---- the live columns' drawing


class Place:
    """A Streamlit placeholder, duck-typed: keeps what was drawn last in it, in page order."""

    def __init__(self, page: list) -> None:
        self.page, self.value = page, None
        page.append(self)

    def empty(self) -> "Place":
        return Place(self.page)

    def container(self, **_) -> "Place":
        return self

    def markdown(self, text: str) -> None:
        self.value = ("markdown", text)

    def code(self, text: str, language=None) -> None:
        self.value = ("code", text)

    def text(self, text: str) -> None:
        self.value = ("text", text)

    def caption(self, text: str) -> None:
        self.value = ("caption", text)


def _drawn(page: list) -> list[tuple[str, str]]:
    return [p.value for p in page if p.value is not None]


words = st.text(alphabet="ab \n#-*>|`", min_size=0, max_size=300)


@settings(max_examples=200, deadline=None)
@given(words, st.lists(st.integers(min_value=1, max_value=40), max_size=40))
def test_live_blocks_draw_the_whole_text_however_it_is_cut(text, cuts):
    """Property: for any Markdown without fences cut into any pieces, the blocks drawn, joined
    in page order, are the text (nothing lost, nothing drawn twice)."""
    text = text.replace("`", "")  # fences are the next test's
    page: list = []
    blocks = LiveBlocks(Place(page), "k", whole_max=10_000)
    at = 0
    for size in cuts:
        blocks.add(text[at:at + size])
        at += size
    blocks.add(text[at:])
    blocks.end()
    drawn = _drawn(page)
    assert all(kind == "markdown" for kind, _ in drawn)
    assert "".join(value for _, value in drawn) == text


def test_a_fence_grows_as_code_and_is_drawn_whole_once_closed():
    page: list = []
    blocks = LiveBlocks(Place(page), "k")
    for piece in ["Before\n\n", "```py", "thon\nx = 1\n", "y = 2\n", "```\n", "After"]:
        blocks.add(piece)
    blocks.end()
    assert _drawn(page) == [("markdown", "Before\n\n"),
                            ("markdown", "```python\nx = 1\ny = 2\n```\n"),
                            ("code", "x = 1\ny = 2\n"), ("markdown", "After")]


@settings(max_examples=50, deadline=None)
@given(st.integers(min_value=1, max_value=97), st.integers(min_value=10, max_value=60))
def test_past_what_is_drawn_whole_only_the_latest_characters_show(piece, tail):
    """Property: once the text passes `whole_max`, the tail shows exactly its last `tail`
    characters and the caption counts every character."""
    text = "".join(f"w{n} " for n in range(200))
    page: list = []
    blocks = LiveBlocks(Place(page), "k", whole_max=100, tail=tail)
    for at in range(0, len(text), piece):
        blocks.add(text[at:at + piece])
        blocks.show_tail()
    blocks.end()
    drawn = _drawn(page)
    assert drawn[-1] == ("text", text[-tail:])
    assert f"of {len(text):,} characters" in drawn[-2][1]
    shown_whole = "".join(v for k, v in drawn if k == "markdown")
    assert len(shown_whole) <= 100 and text.startswith(shown_whole)


# ---- a conversation holding a comparison, in the real SQLite store


def _ended(conversation: Conversation, reply_id: str, text: str) -> ShownMessage:
    message = conversation.message(reply_id)
    return message.with_changes(content=text, status="complete")


def test_a_comparison_is_stored_after_its_message_and_the_first_verdict_is_kept(tmp_path: Path):
    store = SQLiteChatStore(tmp_path)
    conversation = Conversation(store=store)
    conversation.add_user("Which is best?", store=False)
    comparison = conversation.ask_compared(["a · One", "b · Two", "c · Three"], blind=True)
    conversation.store_held()
    assert store.comparisons(conversation.chat.id) == [
        comparison.with_changes(created_at=store.comparisons(conversation.chat.id)[0].created_at)]
    assert conversation.open_comparison() == conversation.comparisons[0]
    first, second, third = comparison.reply_ids
    for reply_id, text in ((first, "One says"), (second, "Two says"), (third, "Three says")):
        store.add_message(conversation.message(reply_id).with_changes(status="complete"))
        conversation.end_compared(_ended(conversation, reply_id, text), stored=False)

    conversation.decide(conversation.comparisons[0], second)
    assert [t.content for t in conversation.turns] == ["Which is best?", "Two says"]
    assert conversation.open_comparison() is None
    conversation.decide(conversation.comparisons[0], None, tie=True)  # the first verdict stays
    stored = store.comparisons(conversation.chat.id)[0]
    assert (stored.picked_id, stored.tie, bool(stored.decided_at)) == (second, False, True)
    assert store.blind_verdicts() == [stored]

    conversation.reopen(conversation.comparisons[0])  # the columns again, from the store too
    again = Conversation.open(store, store.get_chat(conversation.chat.id))
    assert again.open_comparison().id == comparison.id
    assert [again.message(r).content for r in comparison.reply_ids] == [
        "One says", "Two says", "Three says"]
    again.decide(again.open_comparison(), third)  # a later pick moves only the branch
    assert again.turns[-1].content == "Three says"
    assert store.comparisons(again.chat.id)[0].picked_id == second
    assert again.comparison_of(again.turns[-1]).id == comparison.id


def test_a_comparison_made_while_the_store_was_out_is_written_once_it_is_back(tmp_path: Path):
    conversation = Conversation(unsaved="out")
    conversation.add_user("Hello?", store=False)
    comparison = conversation.ask_compared(["a · One", "b · Two"], blind=False)
    store = SQLiteChatStore(tmp_path)
    conversation.attach(store)
    assert [c.id for c in store.comparisons(conversation.chat.id)] == [comparison.id]
    assert store.get_chat(conversation.chat.id).current_id == comparison.message_id
