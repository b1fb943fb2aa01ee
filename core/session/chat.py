"""The chat on screen: this session's conversation, its options, and its id in the address."""

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
    if chat.model:
        put("chat:model", chat.model)
    st.session_state.pop("chat:editing", None)


# A browser keeps a widget's value unless it is set: New chat sets the defaults back.
CHAT_OPTION_DEFAULTS = {
    "chat:system_prompt": "",
    "chat:custom_temperature": False,
    "chat:temperature": 0.7,
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
