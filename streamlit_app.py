"""Switchboard's frame: page setup, who may see which page, navigation."""

import streamlit as st

from core import session

st.set_page_config(page_title="Switchboard", page_icon="🔀", layout="centered")

chat_page = st.Page("pages/chat.py", title="Chat", icon="💬", default=True)
settings_page = st.Page("pages/settings.py", title="Settings", icon="⚙️")

try:
    session.settings()
except ValueError as exc:  # a malformed setting: say which, don't show a traceback
    st.error(f"Switchboard is misconfigured: {exc}")
    st.stop()

pages = [chat_page, settings_page]
pg = st.navigation(pages)
pg.run()
