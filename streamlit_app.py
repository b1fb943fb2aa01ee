"""Switchboard's frame: page setup, who may see which page, navigation."""

import importlib
import threading

import streamlit as st

from core import session
from core.failures import OurBug, UserFacingError, ours
from core.store.keybox import keybox_for

st.set_page_config(page_title="Switchboard", page_icon="🔀", layout="centered")


@st.cache_resource  # once per process, nothing per user
def _preload_write_stream_imports() -> None:
    """st.write_stream imports numpy/pandas/pyarrow on first use (~0.7 s): do it early."""
    modules = ("numpy", "pandas", "pyarrow")
    threading.Thread(target=lambda: [importlib.import_module(m) for m in modules], daemon=True).start()


_preload_write_stream_imports()


def _error_page(message: str) -> st.Page:
    """The one page shown when the frame itself cannot start: pages/ is never listed instead."""

    def cannot_start() -> None:
        st.title("Switchboard")
        st.error(message)

    return st.Page(cannot_start, title="Switchboard", icon="🔀", url_path="error", default=True)


chat = st.Page("pages/chat.py", title="Chat", icon="💬", default=True)
preferences = st.Page("pages/settings.py", title="Settings", icon="⚙️")

sign_in = "pages/sign_in.py", "Sign in", "🔑"
sign_up = "pages/sign_up.py", "Sign up", "✍️"
sign_out = "pages/sign_out.py", "Sign out", "🚪"


def page(spec, **options):
    path, title, icon = spec
    return st.Page(path, title=title, icon=icon, **options)


def pages_for(settings, user) -> list[st.Page]:
    """Pages of the other state stay registered but hidden: they only send the user on, so a
    page that just signed someone in or out never lands on "page not found"."""
    if settings.mode == "local":
        return [chat, preferences]
    if user is None:
        return [page(sign_in, default=True), page(sign_up), page(sign_out, visibility="hidden")]
    hidden = {"visibility": "hidden"}
    return [chat, preferences, page(sign_out), page(sign_in, **hidden), page(sign_up, **hidden)]


def draw_navigation(pages: list[st.Page], signed_in_as: str | None) -> None:
    """Links to the visible pages atop the sidebar, then who is signed in. Streamlit's own page
    list is off (config.toml): a tab reconnecting after a restart would see it list the pages/
    folder until this frame has run. The error page alone gets no links at all."""
    visible = [link for link in pages if link.visibility == "visible"]
    if len(visible) > 1:
        for link in visible:
            st.sidebar.page_link(link)
    if signed_in_as:
        st.sidebar.caption(f"Signed in as {signed_in_as}")


# Everything that can fail runs before st.navigation, which is always called: without it,
# Streamlit would serve the pages/ folder itself, reachable without this frame.
signed_in_as = None
try:
    settings = session.settings()
    keybox_for(settings)  # Supabase mode refuses to start without an encryption secret
    session.forget_old_outage()
    user = session.current_user()
    notice = session.take_auth_notice()
    if user is None:
        session.keep_unsent_message()  # sent just as the session ended: offered after sign-in
    pages = pages_for(settings, user)
    if user is not None and settings.mode != "local":
        signed_in_as = user.email
    if notice:
        st.warning(notice)
except OurBug as exc:  # our own bug, already logged with its reference
    pages = [_error_page(str(exc))]
except UserFacingError as exc:  # misconfigured, or the data unusable: say what, never a traceback
    kept = session.keep_unsent_message("Switchboard could not start")  # e.g. the secret damaged
    pages = [_error_page(f"Switchboard cannot start: {exc}" + (
        "\n\nThe chat message you had just sent was kept: Chat offers it back once this is "
        "fixed." if kept else ""))]
except Exception as exc:  # our own bug: logged with a reference, said as ours
    pages = [_error_page(str(ours(exc)))]

with session.framing():
    shown = st.navigation(pages, position="hidden")
    draw_navigation(pages, signed_in_as)  # above what the page draws in the sidebar
    session.on_page(shown.title)
    try:
        shown.run()
    except UserFacingError as exc:  # said by the code that raised it; no page caught it
        st.error(str(exc))
    except Exception as exc:  # a bug no page caught: logged with a reference, said as ours
        st.error(str(ours(exc)))
