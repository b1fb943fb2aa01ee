"""Settings' "Your chats" section: export all, import (Switchboard JSON or ChatGPT's
conversations.json), delete all."""

from datetime import date

import streamlit as st

from core import session
from core.auth import SessionEnded
from core.failures import UserFacingError
from core.history.transfer import every_chat, every_comparison, import_chats, to_json

EXPORT = "chats:export"  # the file "Prepare the export" made, offered for download
DELETING = "chats:delete_all"
FLASH = "chats:flash"


def _prepare_export() -> None:
    try:
        store = session.chat_store()
        pairs = every_chat(store)
        st.session_state[EXPORT] = to_json(pairs, comparisons=every_comparison(store, pairs))
    except SessionEnded:
        return
    except UserFacingError as exc:
        st.session_state[FLASH] = ("error", str(exc))


def _import() -> None:
    upload = st.session_state.get("chats:import_file")
    if upload is None:
        return
    try:
        user = session.current_user()
        report = import_chats(session.chat_store(), upload.getvalue(), owner=user.id if user else "")
    except SessionEnded:
        return
    except UserFacingError as exc:
        st.session_state[FLASH] = ("error", str(exc))
        return
    session.history_changed()
    st.session_state[FLASH] = ("success", report.summary)


def _delete_all() -> None:
    st.session_state.pop(DELETING, None)
    try:
        count = session.chat_store().delete_all()
    except SessionEnded:
        return
    except UserFacingError as exc:
        st.session_state[FLASH] = ("error", str(exc))
        return
    session.new_chat()
    session.history_changed()
    st.session_state[FLASH] = ("success", f"{count} chats deleted.")


def draw() -> None:
    st.header("Your chats")
    if flash := st.session_state.pop(FLASH, None):
        (st.success if flash[0] == "success" else st.error)(flash[1])
    left, right = st.columns(2)
    with left:
        st.button("Prepare an export of all chats", key="chats:prepare", on_click=_prepare_export,
                  help="Every chat with every version of every message, as one JSON file "
                       "that Import reads back.")
        if EXPORT in st.session_state:
            st.download_button("Download all chats (JSON)", st.session_state[EXPORT],
                               file_name=f"switchboard-chats-{date.today()}.json",
                               mime="application/json", key="chats:download", icon="⬇️",
                               on_click="ignore")
    with right:
        st.file_uploader("Import chats", type=["json"], key="chats:import_file",
                         help="A Switchboard export, or conversations.json from a ChatGPT "
                              "data export (the branch on screen of each conversation).")
        st.button("Import", key="chats:import", on_click=_import)
    if st.session_state.get(DELETING):
        st.warning("Delete every chat and every message? This cannot be undone.")
        yes, no, _ = st.columns([1, 1, 2])
        yes.button("Delete all for good", type="primary", key="chats:delete_yes",
                   on_click=_delete_all)
        no.button("Cancel", key="chats:delete_no",
                  on_click=lambda: st.session_state.pop(DELETING, None))
    else:
        st.button("Delete all my chats…", key="chats:delete",
                  on_click=lambda: st.session_state.update({DELETING: True}))
