"""Settings' "Chat titles" section: who writes a new chat's title after its first reply."""

import streamlit as st

from core import session
from core.auth import SessionEnded
from core.failures import UserFacingError
from core.providers.profile import NO_TITLES
from pages.sections.reading import read_or_say

OWN_MODEL = ""  # the chat's own model writes its title
KEY = "titles:model"


def _label(choice: str) -> str:
    if choice == OWN_MODEL:
        return "The chat's own model"
    if choice == NO_TITLES:
        return "None: a chat keeps its first words"
    return choice


def _save() -> None:
    """The choice is saved at once (a field of the profile, checked like the others)."""
    choice = st.session_state[KEY]
    store = session.store()
    try:
        store.save(store.load().with_changes(title_model=choice))  # changes only this
    except SessionEnded:
        return  # the frame says the session ended and shows sign-in
    except UserFacingError as exc:
        st.session_state["titles:flash"] = str(exc)
        return
    session.forget("profile")
    st.toast("Chat titles: " + _label(choice), icon="✅")


def draw() -> None:
    st.subheader("Chat titles")
    if not session.settings().chat_titles:
        st.caption("The administrator turned chat titles off: a chat keeps its first words.")
        return
    profile = read_or_say(lambda: session.remembered("profile", session.store().load),
                          "Who writes chat titles")
    if profile is None:
        return
    chosen = profile.title_model
    offered = [t.label for t in st.session_state.get("chat:targets") or ()]
    choices = [OWN_MODEL, *offered, NO_TITLES]
    if chosen not in choices:  # a model no longer offered: said, and kept until changed
        choices.insert(1, chosen)
    if KEY not in st.session_state or st.session_state[KEY] not in choices:
        st.session_state[KEY] = chosen
    st.selectbox("Who writes a new chat's title", choices, format_func=_label, key=KEY,
                 on_change=_save, help="After a chat's first reply, a short request asks this "
                 "model for a title of a few words. A chat you renamed keeps your name; if the "
                 "model fails, the chat keeps its first words.")
    if chosen and chosen != NO_TITLES and chosen not in offered and offered:
        st.caption(f"{chosen} is not offered now: each chat's own model writes its title.")
    if flash := st.session_state.pop("titles:flash", None):
        st.error(flash)
