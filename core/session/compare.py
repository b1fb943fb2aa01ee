"""A comparison on screen: one message asked of 2-4 models at once, each reply run by the server
process like any other (core.history.replies), and the user's pick of the one to go on with."""

from __future__ import annotations

import random
from dataclasses import dataclass

import streamlit as st

from core.chat.call import wire_messages
from core.history.conversation import Conversation, ShownMessage
from core.history.model import MAX_COMPARED, Comparison, Message
from core.history.replies import LEASE_SECONDS, REPLIES, Ask, Job, Tail, shown_final
from core.providers import sources
from core.providers.kinds import Target
from core.session.chat import conversation, stop_reply, title_ask
from core.session.compose import takes_no_images
from core.session.drafts import kept, put
from core.session.people import current_user, settings
from core.session.stores import chat_store, chat_store_opener, history_changed, quirk_stores

BLIND = "compare:blind"
ROUND = "compare:round"  # the picker's widget is new for each comparison (see stop_comparing)


def picker_key() -> str:
    """The key of the picker of the models the next message goes to."""
    return f"compare:models:{st.session_state.get(ROUND, 0)}"


def picked(targets: list[Target]) -> list[Target]:
    """The models picked for the next message, among those offered (at most MAX_COMPARED;
    fewer than 2: the message goes to the one model selected)."""
    by_label = {t.label: t for t in targets}
    chosen = [by_label[label] for label in kept(picker_key()) or () if label in by_label]
    return chosen[:MAX_COMPARED]


def stop_comparing() -> None:
    """A callback, or called before the picker is drawn. The picker is made anew, empty: a
    browser still holding the old one (not drawn while the replies streamed) sends its old
    choice with the next click, which would otherwise compare again."""
    st.session_state[ROUND] = st.session_state.get(ROUND, 0) + 1


def send_comparison(conversation: Conversation, targets: list[Target], system_prompt: str,
                    temperature: float | None, max_tokens: int | None) -> Comparison:
    """Ask every model for a reply to the branch on screen, at once; blind: in an order that
    says nothing of the pick. Each model gets the branch alone, as it would in a chat of its
    own, with images named in their place for a model that takes none."""
    blind = bool(st.session_state.get(BLIND))
    targets = random.sample(targets, len(targets)) if blind else list(targets)
    comparison = conversation.ask_compared([t.label for t in targets], blind)
    kept_in = quirk_stores()  # opened here: the workers have no session
    opener, user_id = chat_store_opener(), current_user().id
    jobs = []
    titled = title_ask(conversation, targets[0])  # one title: the first column's model writes it
    for target, reply_id in zip(targets, comparison.reply_ids):
        messages = wire_messages(conversation.turns, system_prompt,
                                 with_images=not takes_no_images(target))
        job = Job(Message(conversation.chat.id, "assistant", "", parent_id=comparison.message_id,
                          id=reply_id, model_label=target.label, status="streaming"),
                  opener, user_id)
        jobs.append(REPLIES.start(job, Ask(
            settings(), target, messages, temperature, max_tokens=max_tokens,
            title=titled if target is targets[0] else None,
            on_quirk=lambda quirk, target=target: sources.learn(target, quirk, kept_in)),
            stored_later=True))
    conversation.store_held()  # the message and the comparison, then the replies
    for job in jobs:
        REPLIES.save_soon(job)
    stop_comparing()  # the next message goes to one model: the one picked
    return comparison


@dataclass
class Column:
    """One model's reply in a comparison: as stored or ended (`live` None), or arriving."""

    message: ShownMessage
    live: Job | Tail | None


def columns(conversation: Conversation, comparison: Comparison) -> list[Column]:
    """Each column's reply; one that ended meanwhile is put in the conversation as it ended,
    one whose worker is gone is marked Interrupted."""
    found = []
    settled = False
    for reply_id, label in zip(comparison.reply_ids, comparison.labels):
        message = conversation.message(reply_id)
        if message is None:  # its worker never stored it (a chat deleted elsewhere)
            message = ShownMessage(comparison.chat_id, "assistant", "",
                                   parent_id=comparison.message_id, id=reply_id,
                                   model_label=label, status="interrupted")
            found.append(Column(message, None))
            continue
        if message.status != "streaming":
            found.append(Column(message, None))
            continue
        job = REPLIES.find(reply_id, current_user().id)
        if job is not None:
            if not job.done:
                found.append(Column(message, job))
                continue
            final = shown_final(job)
            conversation.end_compared(final, stored=job.stored, added=job.added)
            found.append(Column(final, None))
            continue
        store = chat_store()
        read = store.read_reply(reply_id, lease_seconds=LEASE_SECONDS)
        if read is not None and read[0].status == "streaming" and not read[1].alive:
            if not settled:
                store.settle_abandoned(comparison.chat_id, LEASE_SECONDS)
                settled = True
            read = store.read_reply(reply_id, lease_seconds=LEASE_SECONDS)
        if read is None:
            found.append(Column(message.with_changes(status="interrupted"), None))
        elif read[0].status == "streaming":
            found.append(Column(message, Tail(store, read[0])))
        else:
            ended = ShownMessage.of(read[0])
            conversation.end_compared(ended, stored=True)
            found.append(Column(ended, None))
    return found


def stop_all(comparison: Comparison) -> None:
    """Stop all's callback."""
    for reply_id in comparison.reply_ids:
        stop_reply(reply_id)


def pick(comparison_id: str, reply_id: str | None, tie: bool = False) -> None:
    """A column's pick (or, blind, "tie"): the verdict is kept; a picked reply becomes the
    version on screen and its model the one the next message goes to."""
    chat = conversation()
    comparison = next((c for c in chat.comparisons if c.id == comparison_id), None)
    if comparison is None:
        return
    chat.decide(comparison, reply_id, tie)
    history_changed()
    if reply_id is not None:
        label = comparison.labels[comparison.reply_ids.index(reply_id)]
        if label in {t.label for t in st.session_state.get("chat:targets") or ()}:
            put("chat:model", label)


def reopen(comparison_id: str) -> None:
    """"Show the comparison" under a reply that was one of its columns."""
    chat = conversation()
    comparison = next((c for c in chat.comparisons if c.id == comparison_id), None)
    if comparison is not None:
        chat.reopen(comparison)
