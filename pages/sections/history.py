"""The chat page's sidebar: New chat, search, and the user's chats grouped by day."""

from datetime import datetime, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import streamlit as st

from core import session
from core.auth import SessionEnded
from core.failures import UserFacingError
from core.history.listing import PAGE, by_day, safe_file_name, shown_title
from core.history.model import MAX_TITLE_LENGTH
from core.history.transfer import to_json, to_markdown

LIMIT = "history:limit"
RENAMING = "history:renaming"
DELETING = "history:deleting"
FLASH = "history:flash"


def _open(chat_id: str) -> None:
    try:  # a reply arriving in the chat on screen goes on
        session.open_chat(chat_id)
    except SessionEnded:
        return
    except UserFacingError as exc:
        st.session_state[FLASH] = str(exc)


def reopen() -> None:
    """Before the page reads its conversation: the chat the address names, in a new session."""
    try:
        session.reopen_addressed_chat()
    except SessionEnded:
        raise
    except UserFacingError as exc:
        st.session_state[FLASH] = str(exc)


def _new_chat() -> None:
    session.new_chat()
    session.history_changed()


def _more() -> None:
    st.session_state[LIMIT] = st.session_state.get(LIMIT, PAGE) + PAGE


def _rename(chat_id: str) -> None:
    title = (st.session_state.get(f"history:title:{chat_id}") or "").strip()
    st.session_state.pop(RENAMING, None)
    conversation = session.conversation()
    try:
        if conversation.chat.id == chat_id:
            conversation.rename(title)
        else:
            store = session.chat_store()
            chat = store.get_chat(chat_id)
            if chat is not None:
                store.save_chat(chat.with_changes(title=title))
    except UserFacingError as exc:
        st.session_state[FLASH] = str(exc)
    session.history_changed()


def _delete(chat_id: str) -> None:
    st.session_state.pop(DELETING, None)
    try:
        session.chat_store().delete_chat(chat_id)
    except UserFacingError as exc:
        st.session_state[FLASH] = str(exc)
        return
    if session.conversation().chat.id == chat_id:
        session.new_chat()
    session.history_changed()


def _chat_menu(chat) -> None:
    """Rename, export and delete, for the open chat."""
    conversation = session.conversation()
    with st.popover("Rename, export, delete", icon=":material/more_horiz:", width="stretch"):
        st.text_input("Title", value=shown_title(chat), max_chars=MAX_TITLE_LENGTH,
                      key=f"history:title:{chat.id}")
        st.button("Rename", key=f"history:rename:{chat.id}", on_click=_rename, args=(chat.id,))
        name = safe_file_name(shown_title(chat))
        # Made when clicked (a callable), not on every rerun of a long chat.
        st.download_button("Export as Markdown",
                           lambda: to_markdown(conversation.chat, conversation.messages,
                                               conversation.comparisons),
                           file_name=f"{name}.md", mime="text/markdown", icon="⬇️",
                           key=f"history:export_md:{chat.id}", on_click="ignore")
        st.download_button("Export as JSON",
                           lambda: to_json([(conversation.chat, conversation.messages)],
                                           comparisons={conversation.chat.id:
                                                        conversation.comparisons}),
                           file_name=f"{name}.json", mime="application/json", icon="⬇️",
                           key=f"history:export_json:{chat.id}", on_click="ignore")
        if st.session_state.get(DELETING) == chat.id:
            st.warning(f"Delete “{shown_title(chat)}” and all its messages?")
            left, right = st.columns(2)
            left.button("Delete for good", type="primary", key=f"history:delete_yes:{chat.id}",
                        on_click=_delete, args=(chat.id,))
            right.button("Cancel", key=f"history:delete_no:{chat.id}",
                         on_click=lambda: st.session_state.pop(DELETING, None))
        else:
            st.button("Delete…", key=f"history:delete:{chat.id}",
                      on_click=lambda: st.session_state.update({DELETING: chat.id}))


def _chat_button(chat, open_id: str) -> None:
    is_open = chat.id == open_id
    st.button(shown_title(chat), key=f"history:open:{chat.id}", width="stretch",
              type="secondary" if is_open else "tertiary", on_click=_open, args=(chat.id,),
              help="The chat on screen" if is_open else None)


def _zone():
    """The browser's time zone (days start at the user's midnight), else UTC."""
    try:
        return ZoneInfo(st.context.timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return timezone.utc


def draw(head, listing) -> None:
    """New chat and the search box in `head`; the open chat's menu and the chats (or what
    the search found) in `listing` (two sidebar containers, the chat options between)."""
    conversation = session.conversation()
    with head:
        st.button("New chat", icon="➕", key="chat:new", width="stretch", on_click=_new_chat)
        if flash := st.session_state.pop(FLASH, None):
            st.error(flash)
        query = st.text_input("Search chats", key="history:search", placeholder="Search chats",
                              label_visibility="collapsed", icon="🔎")
    with listing:
        try:
            if query.strip():
                found = session.chat_store().search(query.strip())
                st.caption(f"{len(found)} found" if found else "Nothing found.")
                for hit in found:
                    _chat_button(hit.chat, conversation.chat.id)
                    st.caption(hit.snippet)
                return
            limit = st.session_state.get(LIMIT, PAGE)
            chats = session.chat_list(limit)
        except SessionEnded:
            return
        except UserFacingError as exc:
            st.error(str(exc))
            return
        open_chat = next((c for c in chats if c.id == conversation.chat.id), None)
        if open_chat is not None:
            _chat_menu(open_chat)
        for label, group in by_day(chats, datetime.now(timezone.utc), _zone()):
            st.caption(label)
            for chat in group:
                _chat_button(chat, conversation.chat.id)
        if len(chats) >= limit:
            st.button("Load more", key="history:more", on_click=_more, width="stretch")
