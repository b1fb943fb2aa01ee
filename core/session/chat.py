"""The chat on screen: this session's conversation, opening and starting chats, their
options, and the chat's id in the page's address."""

from __future__ import annotations

import uuid

import streamlit as st

from core.auth import SessionEnded
from core.failures import UserFacingError
from core.history.conversation import Conversation
from core.session.drafts import put
from core.session.stores import chat_store, history_changed
from core.store.errors import ChatGone


def _new_conversation() -> Conversation:
    """An empty conversation, kept in the chat store from its first message; one that cannot
    be kept now says why and stays on the page."""
    try:
        return Conversation(store=chat_store())
    except SessionEnded:
        raise
    except UserFacingError as exc:
        return Conversation(unsaved=str(exc))


def conversation() -> Conversation:
    """This session's conversation; one made while the chat store was out is kept in it once
    the store is back (what it holds is written then)."""
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
    """Show a stored chat, with its model and options (a callback)."""
    store = chat_store()
    chat = store.get_chat(chat_id)
    if chat is None:
        history_changed()
        raise ChatGone()
    st.session_state.conversation = Conversation.open(store, chat)
    put("chat:system_prompt", chat.system_prompt)
    put("chat:custom_temperature", chat.temperature is not None)
    put("chat:temperature", chat.temperature if chat.temperature is not None else 0.7)
    if chat.model:
        put("chat:model", chat.model)
    st.session_state.pop("chat:editing", None)


# A browser keeps a widget's value unless it is set: New chat sets the defaults back.
CHAT_OPTION_DEFAULTS = {
    "chat:system_prompt": "",
    "chat:custom_temperature": False,
    "chat:temperature": 0.7,
}


# The open chat's id in the page's address (?chat=...): a reload, a bookmark or a copied link
# opens it again. A chat with nothing stored yet is not named.
CHAT_PARAM = "chat"


def chat_in_address() -> str | None:
    """The chat id the page's address names, if it is one (chat ids are UUIDs)."""
    value = st.query_params.get(CHAT_PARAM)
    try:
        return str(uuid.UUID(value)) if value else None
    except ValueError:
        return None


def reopen_addressed_chat() -> None:
    """A new browser session (a reload, a bookmark, a new tab) opens the chat its address
    names. Raises ChatGone when the store has no such chat of this user's."""
    if "conversation" not in st.session_state and (chat_id := chat_in_address()):
        open_chat(chat_id)


def show_in_address(conversation: Conversation) -> None:
    """Name the open chat in the page's address once it is stored; otherwise name none."""
    stored = conversation.turns and conversation.store is not None and not conversation.unsaved
    wanted = conversation.chat.id if stored else None
    if st.query_params.get(CHAT_PARAM) != wanted:
        if wanted:
            st.query_params[CHAT_PARAM] = wanted
        else:
            st.query_params.pop(CHAT_PARAM, None)


def new_chat() -> None:
    """Start over: an empty conversation with default options (the model stays)."""
    st.session_state.conversation = _new_conversation()
    for key, value in CHAT_OPTION_DEFAULTS.items():
        put(key, value)
    st.session_state.pop("chat:editing", None)
