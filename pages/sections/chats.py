"""Settings' "Your chats" section: export all, import (Switchboard JSON or ChatGPT's
conversations.json) in the background with its progress and Cancel, delete all."""

from datetime import date

import streamlit as st

from core import session
from core.auth import SessionEnded
from core.failures import UserFacingError
from core.history.importing import (
    CANCELLED,
    DONE,
    current_import,
    forget_import,
    start_import,
)
from core.history.transfer import every_chat, every_comparison, to_json

EXPORT = "chats:export"  # the file "Prepare the export" made, offered for download
DELETING = "chats:delete_all"
FLASH = "chats:flash"
UPLOAD = "chats:import_file"
POLL_SECONDS = 0.5  # how often the progress bar is drawn again while an import runs


def _owner() -> str:
    user = session.current_user()
    if user is None:
        raise SessionEnded()
    return user.id


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
    upload = st.session_state.get(UPLOAD)
    try:
        start_import(None if upload is None else upload.getvalue(), session.chat_store_opener(),
                     _owner())
    except SessionEnded:
        return
    except UserFacingError as exc:
        st.session_state[FLASH] = ("error", str(exc))
        return
    st.session_state.pop(EXPORT, None)  # prepared before this import: no longer everything


def _cancel_import() -> None:
    try:
        job = current_import(_owner())
    except SessionEnded:
        return
    if job is not None:
        job.cancel()


@st.fragment(run_every=POLL_SECONDS)
def _import_progress() -> None:
    """Drawn again every POLL_SECONDS while an import runs; once it ended, its outcome."""
    try:
        owner = _owner()
    except SessionEnded:
        return
    job = current_import(owner)
    if job is None:
        return
    progress = job.progress()
    if progress.running:
        st.progress(progress.fraction, text=progress.words)
        st.button("Cancel import", key="chats:import_cancel", on_click=_cancel_import)
        return
    forget_import(owner, job)
    session.history_changed()
    kind = {DONE: "success", CANCELLED: "info"}.get(progress.state, "error")
    st.session_state[FLASH] = (kind, progress.words)
    st.rerun(scope="app")  # the chat list and this section, as they are now


def _has_import() -> bool:
    try:
        return current_import(_owner()) is not None
    except SessionEnded:
        return False


def _delete_all() -> None:
    st.session_state.pop(DELETING, None)
    try:
        count = session.chat_store().delete_all()
    except SessionEnded:
        return
    except UserFacingError as exc:
        st.session_state[FLASH] = ("error", str(exc))
        return
    st.session_state.pop(EXPORT, None)  # it holds chats that are gone
    session.new_chat()
    session.history_changed()
    st.session_state[FLASH] = ("success", f"{count} chats deleted.")


def draw() -> None:
    st.header("Your chats")
    if flash := st.session_state.pop(FLASH, None):
        {"success": st.success, "info": st.info}.get(flash[0], st.error)(flash[1])
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
        st.file_uploader("Import chats", type=["json"], key=UPLOAD,
                         help="A Switchboard export, or conversations.json from a ChatGPT "
                              "data export (every branch of each conversation, as versions).")
        st.button("Import", key="chats:import", on_click=_import)
        if _has_import():
            _import_progress()
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
