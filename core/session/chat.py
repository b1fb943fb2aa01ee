"""The chat on screen: this session's conversation, its options, and its id in the address."""

from __future__ import annotations

import uuid

import streamlit as st

from core.auth import SessionEnded
from core.chat.call import wire_messages
from core.failures import UserFacingError
from core.history.conversation import Conversation, ShownMessage
from core.history.model import Message
from core.history.replies import LEASE_SECONDS, REPLIES, Ask, Job, Tail, shown_final
from core.history.titles import TITLES, TitleAsk, is_first_words
from core.providers import sources
from core.providers.kinds import Target
from core.providers.profile import NO_TITLES
from core.session.compose import takes_no_images
from core.session.drafts import put
from core.session.people import current_user, settings
from core.session.stores import (
    chat_store,
    chat_store_opener,
    history_changed,
    quirk_stores,
    remembered,
    store,
)
from core.store.errors import ChatGone


def _new_conversation() -> Conversation:
    """One the store cannot keep now says why and stays on the page."""
    try:
        return Conversation(store=chat_store())
    except SessionEnded:
        raise
    except UserFacingError as exc:
        return Conversation(unsaved=str(exc))


def conversation() -> Conversation:
    """One made while the chat store was out is written to it once it is back."""
    if "conversation" not in st.session_state:
        st.session_state.conversation = _new_conversation()
    current = st.session_state.conversation
    if current.store is None:
        try:
            current.attach(chat_store())
        except SessionEnded:
            raise
        except UserFacingError as exc:
            current.unsaved = str(exc)
    else:
        current.store_again()
    return current


def open_chat(chat_id: str) -> None:
    """A callback; the chat's model and options come with it."""
    store = chat_store()
    chat = store.get_chat(chat_id)
    if chat is None:
        history_changed()
        raise ChatGone()
    st.session_state.conversation = Conversation.open(store, chat)
    put("chat:system_prompt", chat.system_prompt)
    put("chat:custom_temperature", chat.temperature is not None)
    put("chat:temperature", chat.temperature if chat.temperature is not None else 0.7)
    put("chat:max_tokens", chat.max_tokens)
    put("chat:context_window", chat.context_window)
    if chat.model:
        put("chat:model", chat.model)
    st.session_state.pop("chat:editing", None)


# A browser keeps a widget's value unless it is set: New chat sets the defaults back.
CHAT_OPTION_DEFAULTS = {
    "chat:system_prompt": "",
    "chat:custom_temperature": False,
    "chat:temperature": 0.7,
    "chat:max_tokens": None,  # the server's default
    "chat:context_window": None,  # as the server says
}


# ?chat=<id>: a reload, a bookmark or a copied link opens it again; an unstored chat is not named.
CHAT_PARAM = "chat"


def chat_in_address() -> str | None:
    """None unless the address names a UUID."""
    value = st.query_params.get(CHAT_PARAM)
    try:
        return str(uuid.UUID(value)) if value else None
    except ValueError:
        return None


def reopen_addressed_chat() -> None:
    """For a new browser session (reload, bookmark, tab); ChatGone if the user has no such chat."""
    if "conversation" not in st.session_state and (chat_id := chat_in_address()):
        open_chat(chat_id)


def show_in_address(conversation: Conversation) -> None:
    stored = conversation.turns and conversation.store is not None and not conversation.unsaved
    wanted = conversation.chat.id if stored else None
    if st.query_params.get(CHAT_PARAM) != wanted:
        if wanted:
            st.query_params[CHAT_PARAM] = wanted
        else:
            st.query_params.pop(CHAT_PARAM, None)


def new_chat() -> None:
    """Default options; the model stays."""
    st.session_state.conversation = _new_conversation()
    for key, value in CHAT_OPTION_DEFAULTS.items():
        put(key, value)
    st.session_state.pop("chat:editing", None)


# ---- a long chat opens at its latest turns; the earlier ones are drawn on demand

SHOWN_TURNS = 40  # drawn when a chat opens: 1,000 messages took 11 s to draw in a browser
EARLIER = "chat:shown_from"  # (chat id, the first turn drawn), once the user asked for more


def first_shown(conversation: Conversation) -> int:
    """The index of the first turn drawn: the latest SHOWN_TURNS, or from where the user asked."""
    latest = max(0, len(conversation.turns) - SHOWN_TURNS)
    kept = st.session_state.get(EARLIER)
    return latest if kept is None or kept[0] != conversation.chat.id else min(kept[1], latest)


def show_earlier(conversation: Conversation) -> None:
    """"Show earlier messages"' callback: five times as many more."""
    start = max(0, first_shown(conversation) - 5 * SHOWN_TURNS)
    st.session_state[EARLIER] = (conversation.chat.id, start)


def show_from(conversation: Conversation, message_id: str) -> None:
    """Draw the chat from a message on (a search hit in an early turn)."""
    index = next((i for i, t in enumerate(conversation.turns) if t.id == message_id), None)
    if index is not None:
        st.session_state[EARLIER] = (conversation.chat.id, min(index, first_shown(conversation)))


# ---- a new chat's title, written by a model after its first reply (core.history.titles)


def title_ask(conversation: Conversation, target: Target) -> TitleAsk | None:
    """Who titles the chat after the reply about to be asked for to `target`: None unless it is
    the chat's first message and the chat still has the title made from it, or when the user
    chose no titles in Settings or the administrator turned them off."""
    asked = [t for t in conversation.turns if t.role == "user"]
    if len(asked) != 1 or not settings().chat_titles:
        return None
    first = asked[0].content or ", ".join(a.name for a in asked[0].attachments)
    if not is_first_words(conversation.chat, first):
        return None
    try:
        choice = remembered("profile", store().load).title_model
    except UserFacingError:  # a title can wait: the chat keeps its first words
        return None
    if choice == NO_TITLES:
        return None
    offered = {t.label: t for t in st.session_state.get("chat:targets") or ()}
    return TitleAsk(offered.get(choice, target), first)


def adopt_title(conversation: Conversation) -> None:
    """A title written for the chat on screen since (already stored) becomes its title here,
    unless the user renamed it meanwhile."""
    title = TITLES.written(conversation.chat.id)
    if title and title != conversation.chat.title and conversation.turns:
        first = next((t for t in conversation.turns if t.role == "user"), None)
        named = first and (first.content or ", ".join(a.name for a in first.attachments))
        if named and is_first_words(conversation.chat, named):
            conversation.chat = conversation.chat.with_changes(title=title)
            history_changed()


def title_pending(conversation: Conversation) -> bool:
    return TITLES.pending(conversation.chat.id)


# ---- replies run by the server process (core.history.replies); pages only view them


def send_reply(conversation: Conversation, target: Target, system_prompt: str,
               temperature: float | None, max_tokens: int | None = None) -> Job:
    """Ask for a reply to the branch on screen; it runs to its end whatever the page does."""
    messages = wire_messages(conversation.turns, system_prompt,
                             with_images=not takes_no_images(target))
    retried = conversation.retrying is not None and bool(conversation.retrying.content)
    turn = conversation.ask_reply(store=False)
    kept_in = quirk_stores()  # opened here: the worker has no session
    job = Job(Message(turn.chat_id, "assistant", "", parent_id=turn.parent_id, id=turn.id,
                      model_label=target.label, status="streaming"),
              chat_store_opener(), current_user().id, add_when_text=retried)
    REPLIES.start(job, Ask(settings(), target, messages, temperature,
                           on_quirk=lambda quirk: sources.learn(target, quirk, kept_in),
                           max_tokens=max_tokens, title=title_ask(conversation, target)),
                 stored_later=True)
    conversation.store_held()  # the message once its reply's request left, then the reply
    REPLIES.save_soon(job)  # (a reply is stored after its chat and message)
    return job


def live_reply(conversation: Conversation) -> Job | Tail | None:
    """The reply still arriving at the end of the chat on screen, to follow; one that ended is
    put in the conversation as it ended (and one whose worker is gone, marked Interrupted)."""
    turn = conversation.live_turn()
    if turn is None:
        return None
    job = REPLIES.find(turn.id, current_user().id)
    if job is not None:
        if not job.done:
            return job
        conversation.end_live(shown_final(job), stored=job.stored, added=job.added)
        return None
    store = chat_store()
    found = store.read_reply(turn.id, lease_seconds=LEASE_SECONDS)
    if found is not None and found[0].status == "streaming" and not found[1].alive:
        store.settle_abandoned(turn.chat_id, LEASE_SECONDS)
        found = store.read_reply(turn.id, lease_seconds=LEASE_SECONDS)
    if found is None:  # deleted meanwhile, or a Retry that never got text
        conversation.forget_live(turn)
        return None
    message = found[0]
    if message.status == "streaming":
        return Tail(store, message)
    conversation.end_live(ShownMessage.of(message), stored=True)
    return None


def stop_reply(message_id: str) -> None:
    """Stop's callback, from any tab or replica showing the reply."""
    job = REPLIES.find(message_id, current_user().id)
    if job is not None:
        job.stop()
    else:
        chat_store().request_stop(message_id)
