"""Switchboard's frame: page setup, who may see which page, navigation."""

import streamlit as st

from core import session
from core.errors import UserFacingError
from core.keybox import keybox_for

st.set_page_config(page_title="Switchboard", page_icon="🔀", layout="centered")

try:
    settings = session.settings()
    keybox_for(settings)  # Supabase mode refuses to start without an encryption secret
except (ValueError, UserFacingError) as exc:  # misconfigured: say what, never a traceback
    st.error(f"Switchboard cannot start: {exc}")
    st.stop()

chat = st.Page("pages/chat.py", title="Chat", icon="💬", default=True)
preferences = st.Page("pages/settings.py", title="Settings", icon="⚙️")

if settings.mode == "local":
    pages = [chat, preferences]
elif session.current_user() is None:
    pages = [
        st.Page("pages/sign_in.py", title="Sign in", icon="🔑", default=True),
        st.Page("pages/sign_up.py", title="Sign up", icon="✍️"),
    ]
else:
    pages = [chat, preferences, st.Page("pages/sign_out.py", title="Sign out", icon="🚪")]
    st.sidebar.caption(f"Signed in as {session.current_user().email}")

st.navigation(pages).run()
