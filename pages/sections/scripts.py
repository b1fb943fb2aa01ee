"""Small scripts of the chat page, read from chat_js/ once per process; each installs itself
once per browser tab."""

import functools
from pathlib import Path

import streamlit as st

SCRIPTS = Path(__file__).parent / "chat_js"
HIDDEN = "chat-sidebar-script"  # the page's style hides this container


@functools.cache
def script(name: str) -> str:
    return (SCRIPTS / name).read_text(encoding="utf-8")


def close_sidebar_on_pick() -> None:
    """On a phone, picking a chat or starting one closes the sidebar."""
    with st.container(key=HIDDEN, gap=None):
        st.html(f"<script>{script('sidebar.js')}</script>", unsafe_allow_javascript=True)
