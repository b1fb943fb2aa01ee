"""Switchboard's frame: page setup, who may see which page, navigation."""

import importlib
import threading

import streamlit as st

from core import session
from core.errors import UserFacingError
from core.keybox import keybox_for

st.set_page_config(page_title="Switchboard", page_icon="🔀", layout="centered")


@st.cache_resource  # once per process, nothing per user
def _preload_write_stream_imports() -> None:
    """st.write_stream imports numpy/pandas/pyarrow on first use (~0.7 s): do it early."""
    modules = ("numpy", "pandas", "pyarrow")
    threading.Thread(target=lambda: [importlib.import_module(m) for m in modules], daemon=True).start()


_preload_write_stream_imports()

try:
    settings = session.settings()
    keybox_for(settings)  # Supabase mode refuses to start without an encryption secret
except (ValueError, UserFacingError) as exc:  # misconfigured: say what, never a traceback
    st.error(f"Switchboard cannot start: {exc}")
    st.stop()

chat = st.Page("pages/chat.py", title="Chat", icon="💬", default=True)
preferences = st.Page("pages/settings.py", title="Settings", icon="⚙️")

sign_in = "pages/sign_in.py", "Sign in", "🔑"
sign_up = "pages/sign_up.py", "Sign up", "✍️"
sign_out = "pages/sign_out.py", "Sign out", "🚪"


def page(spec, **options):
    path, title, icon = spec
    return st.Page(path, title=title, icon=icon, **options)


# Pages of the other state stay registered but hidden: they only send the user on, so a
# page that just signed someone in or out never lands on "page not found".
user = session.current_user()
if settings.mode == "local":
    pages = [chat, preferences]
elif user is None:
    pages = [page(sign_in, default=True), page(sign_up), page(sign_out, visibility="hidden")]
else:
    hidden = {"visibility": "hidden"}
    pages = [chat, preferences, page(sign_out), page(sign_in, **hidden), page(sign_up, **hidden)]
    st.sidebar.caption(f"Signed in as {user.email}")

st.navigation(pages).run()
