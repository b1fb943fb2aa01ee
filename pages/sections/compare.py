"""Compare: one message to 2-4 models at once, their replies side by side (one under the other on
a phone), each with its figures, Stop, and the pick of the one to continue with."""

import threading
import time
from string import ascii_uppercase

import streamlit as st

from core import session
from core.chat.blocks import LiveBlocks, UpdateCost
from core.chat.call import COALESCE_SECONDS, MAX_UPDATE_SECONDS, RENDER_CHARS_PER_SECOND, STREAMING
from core.chat.figures import of_message, of_reply
from core.history.conversation import ShownMessage
from core.history.model import MAX_COMPARED, MIN_COMPARED, Comparison
from core.history.replies import Feed
from core.session.compare import BLIND, Column, columns, pick, picker_key, reopen, stop_all
from core.session.compare import stop_comparing
from pages.sections.reply_body import draw_copy, draw_reply_body

LIVE_WHOLE_MAX = 20_000  # characters a column draws whole while it streams: then its tail
LIVE_TAIL = 8_000  # the latest characters a column shows past that (four columns at once)
FIGURES_SECONDS = 0.25  # how often a streaming column's figures are drawn again
LAST_DRAW_SECONDS = 0.1
MAX_WAIT_SECONDS = 0.25  # a column whose reply is silent: its figures still move
GATHER_SECONDS = 0.005


def draw_picker(labels: list[str]) -> None:
    """Beside the message box: the models the next message goes to, and blind mode."""
    picker = picker_key()
    session.restore(picker, [])
    session.restore(BLIND, False)
    chosen = [label for label in session.kept(picker) or () if label in labels]
    with st.popover(f"Compare · {len(chosen)}" if len(chosen) >= MIN_COMPARED else "Compare",
                    icon="⚖️", key="compare:picker",
                    help="Send your next message to 2 to 4 models at once."):
        st.multiselect("Models to compare", labels, max_selections=MAX_COMPARED,
                       placeholder="Pick 2 to 4 models", **session.keeping(picker),
                       help="Your next message goes to each of them; their replies stream side "
                       "by side, and you continue with the one you pick.")
        st.toggle("Blind", help="Hide the models' names until you pick the best reply; "
                  "your picks make a tally in Settings.", **session.keeping(BLIND))
    if len(chosen) >= MIN_COMPARED:
        with st.container(horizontal=True, vertical_alignment="center", key="compare-next"):
            blind = " (blind)" if session.kept(BLIND) else ""
            st.caption(f"Your next message goes to {len(chosen)} models{blind}: "
                       + ", ".join(chosen), width="content")
            st.button("Stop comparing", key="compare:off", type="tertiary", icon="✖️",
                      on_click=stop_comparing)


def _name(comparison: Comparison, index: int) -> str:
    if comparison.blind and not comparison.decided:
        return f"Model {ascii_uppercase[index]}"
    return comparison.labels[index]


def _mark(comparison: Comparison, reply_id: str) -> str:
    if comparison.tie:
        return " · 🤝 tie"
    return " · 🏆 picked" if comparison.picked_id == reply_id else ""


def _header(comparison: Comparison, index: int) -> None:
    reply_id = comparison.reply_ids[index]
    st.markdown(f"**{_name(comparison, index)}**"
                + (_mark(comparison, reply_id) if comparison.decided else ""))


def _ended_column(comparison: Comparison, index: int, column: Column, all_ended: bool) -> None:
    message = column.message
    if message.reasoning:
        with st.expander("Thoughts", icon="💭", expanded=False, type="compact"):
            st.markdown(message.reasoning)
    if message.content:
        draw_reply_body(message.content, key=f"compare-text-{message.id}")
    st.caption(of_message(message).line(), help="Time to the first token, tokens per second "
               "after it, the reply's tokens (≈: counted from its characters, the server did "
               "not say) and how it ended.")
    if message.error:
        st.error(message.error)
    usable = bool(message.content)
    if comparison.blind and not comparison.decided:
        st.button("This one is best", key=f"compare:best:{message.id}", type="primary",
                  disabled=not (all_ended and usable), width="stretch", on_click=pick,
                  args=(comparison.id, message.id),
                  help="Shows the models' names, counts in your tally, and continues with it.")
        return
    with st.container(horizontal=True, vertical_alignment="center"):
        st.button("Continue with this one", key=f"compare:pick:{message.id}",
                  type="primary" if comparison.picked_id == message.id else "secondary",
                  disabled=not usable, on_click=pick, args=(comparison.id, message.id),
                  help="Your next message goes to this model, with this reply only.")
        if message.content:
            draw_copy(message.content, key=f"compare-text-{message.id}")


def draw_comparison(conversation, comparison: Comparison, highlighted_above: int) -> None:
    """The comparison at the end of the chat; while replies arrive, they grow side by side until
    all have ended, then the page is drawn again with them as stored."""
    found = columns(conversation, comparison)
    all_ended = all(c.live is None for c in found)
    places = st.columns(len(found), gap="small", border=True)
    live, wake = [], threading.Event()
    for index, (place, column) in enumerate(zip(places, found)):
        with place:
            with st.container(key=f"compare-col-{index}"):
                _header(comparison, index)
                if column.live is None:
                    _ended_column(comparison, index, column, all_ended)
                    continue
                live.append(_LiveColumn(comparison, column, index, highlighted_above, wake))
    _verdicts(comparison, found, all_ended)
    if live:
        _stream(live, wake)
        session.history_changed()
        time.sleep(LAST_DRAW_SECONDS)  # the last words are sent before the rerun (see _follow)
        st.rerun()


def _verdicts(comparison: Comparison, found: list[Column], all_ended: bool) -> None:
    with st.container(horizontal=True, vertical_alignment="center", key="compare-actions"):
        if not all_ended:
            st.button("Stop all", icon="⏹️", key=f"compare:stop_all:{comparison.id}",
                      on_click=stop_all, args=(comparison,), help="Stop every reply here.")
        if comparison.blind and not comparison.decided:
            st.button("Tie", icon="🤝", key=f"compare:tie:{comparison.id}",
                      disabled=not all_ended, on_click=pick, args=(comparison.id, None, True),
                      help="They are as good as each other: shows the names and counts a tie.")
            st.caption("Blind: the names show once you pick the best reply."
                       if all_ended else "Blind: the names show once you pick, after all end.",
                       width="content")
        elif all_ended and not comparison.decided:
            st.caption("Pick the reply to continue with.", width="content")


class _LiveColumn:
    """A column whose reply is arriving: its blocks, thinking and figures, redrawn in turn."""

    def __init__(self, comparison: Comparison, column: Column, index: int,
                 highlighted_above: int, wake: threading.Event) -> None:
        self.comparison = comparison
        self.feed = Feed(column.live, wake)
        self.message = column.message
        self.thinking = st.empty()
        self.body = st.container(key=f"compare-body-{index}")
        self.figures = st.empty()
        self.stop = st.empty()
        self.stop.button("Stop", icon="⏹️", key=f"compare:stop:{column.message.id}",
                         on_click=session.stop_reply, args=(column.message.id,),
                         help="Stop this reply here; keep what came.")
        self.blocks = LiveBlocks(self.body, f"compare-{index}", whole_max=LIVE_WHOLE_MAX,
                                 tail=LIVE_TAIL)
        self.cost = UpdateCost(self.blocks.splitter, highlighted_above, LIVE_WHOLE_MAX, LIVE_TAIL)
        self.next_at = 0.0
        self.figures_at = 0.0
        self.reasoning = 0
        self.ended = False

    @property
    def waiting_for_words(self) -> bool:
        """Nothing shown yet: its first words show as soon as they come, as fast as alone."""
        return not self.blocks.splitter.passed

    def update(self, now: float) -> None:
        text, done = self.feed.take()
        if text:
            self.blocks.add(text)
            self.blocks.show_tail()
        reply = self.feed.reply
        if len(reply.reasoning) != self.reasoning and (done or now >= self.figures_at):
            self.reasoning = len(reply.reasoning)
            with self.thinking.container():
                with st.expander("Thinking…" if not done else "Thoughts", icon="💭",
                                 type="compact"):
                    st.markdown(reply.reasoning)
        if done:
            self.blocks.end()
            self.ended = True
            if reply.error:  # said in this column only; the others go on
                self.stop.error(reply.error)
            elif self.comparison.blind or not self.feed.reply.text:
                self.stop.empty()  # blind: judged once all have ended
            else:  # no need to wait for the slowest to go on with this one
                self.stop.button("Continue with this one", key=f"compare:pick:{self.message.id}",
                                 on_click=pick, args=(self.comparison.id, self.message.id),
                                 help="Your next message goes to this model, with this reply "
                                 "only; the others still arriving go on as versions.")
        if done or now >= self.figures_at:
            self.figures_at = now + FIGURES_SECONDS
            self.figures.caption(of_reply(reply, ended=done).line())
        wait = COALESCE_SECONDS * 2 * STREAMING.crowding()
        self.next_at = now + max(wait, min(self.cost() / RENDER_CHARS_PER_SECOND,
                                           MAX_UPDATE_SECONDS))


def _stream(live: list[_LiveColumn], wake: threading.Event) -> None:
    """Every column grows on its own schedule (a heavy one waits longer) until all have ended;
    between updates the page waits for any reply to change (`wake`) or a column to be due. A
    column with nothing shown yet, or whose reply ended, is drawn as soon as it changes."""
    try:
        while not all(column.ended for column in live):
            wake.clear()
            now = time.monotonic()
            for column in live:
                if not column.ended and (now >= column.next_at or column.waiting_for_words
                                         or column.feed.ended):
                    column.update(now)
            due = [c.next_at if not c.waiting_for_words else now + MAX_WAIT_SECONDS
                   for c in live if not c.ended]
            if due:
                wake.wait(min(max(min(due) - time.monotonic(), 0.0), MAX_WAIT_SECONDS))
                time.sleep(GATHER_SECONDS)  # pieces arriving together are drawn together
    finally:
        for column in live:
            column.feed.close()


def draw_compared_note(conversation, turn: ShownMessage) -> None:
    """Under a reply that was one column of a comparison: which, and a way back to it."""
    comparison = conversation.comparison_of(turn)
    if comparison is None:
        return
    others = len(comparison.reply_ids) - 1
    with st.container(horizontal=True, vertical_alignment="center"):
        st.caption(f"Compared with {others} other model{'s' if others > 1 else ''}"
                   + (" (blind)" if comparison.blind else ""), width="content")
        st.button("Show the comparison", key=f"compare:reopen:{turn.id}", type="tertiary",
                  icon="⚖️", on_click=reopen, args=(comparison.id,))
