"""The one module of core that touches Streamlit: secrets and per-session state.

Everything here belongs to one browser session. Nothing per-user is ever put in
st.cache_resource (SPEC: Scale, Security): the signed-in client, the store and the
conversation all live in st.session_state.
"""

from __future__ import annotations

from collections.abc import Mapping

import streamlit as st

from core.auth import SupabaseAuth, User
from core.errors import AuthUnavailable, SessionEnded
from core.config import Settings, load_settings
from core.conversation import Conversation
from core.keybox import EncryptedProfileStore, keybox_for
from core.profiles import Profile, ProfileStore
from core.store_sqlite import LOCAL_USER_ID, SQLiteProfileStore
from core.store_supabase import SupabaseProfileStore

LOCAL_USER = User(LOCAL_USER_ID, "")


def _secrets() -> Mapping[str, object]:
    """st.secrets as a plain dict; {} when there is no secrets file (never crash)."""
    try:
        return {k: v for k, v in st.secrets.items() if not isinstance(v, Mapping)}
    except Exception:  # no secrets.toml anywhere, or an unreadable one
        return {}


def settings() -> Settings:
    if "settings" not in st.session_state:
        st.session_state.settings = load_settings(_secrets())
    return st.session_state.settings


def auth() -> SupabaseAuth:
    """This session's own Supabase client (it carries the user's token)."""
    if "auth" not in st.session_state:
        st.session_state.auth = SupabaseAuth(settings())
    return st.session_state.auth


AUTH_NOTICE = "auth:notice"  # what the frame says about the sign-in session this run


def current_user() -> User | None:
    """Who this session acts for: the local user, or the signed-in Supabase user.

    An ended session (revoked, expired) is None from now on, and said once; a sign-in service
    that cannot be reached keeps the user signed in (a short outage is not a sign-out). Either
    way the frame shows `take_auth_notice()`; nothing typed here is dropped.
    """
    if settings().mode == "local":
        return LOCAL_USER
    try:
        return auth().current_user()
    except SessionEnded as ended:
        st.session_state[AUTH_NOTICE] = str(ended)
        return None
    except AuthUnavailable as outage:
        st.session_state[AUTH_NOTICE] = str(outage)
        return outage.user


def take_auth_notice() -> str | None:
    """The notice about the sign-in session, once."""
    return st.session_state.pop(AUTH_NOTICE, None)


def store() -> ProfileStore:
    """This session's profile store, bound to its current user."""
    user = current_user()
    if user is None:
        raise RuntimeError("no user is signed in")  # the frame shows only sign-in pages then
    cached = st.session_state.get("store")
    if cached is None or cached[0] != user.id:
        config = settings()
        if config.mode == "local":
            backend = SQLiteProfileStore(config.data_dir)
        else:
            backend = SupabaseProfileStore(auth().client, user.id)
        cached = (user.id, EncryptedProfileStore(backend, keybox_for(config)))
        st.session_state.store = cached
    return cached[1]


def profile() -> Profile:
    """The saved profile, read fresh (another replica may have changed it)."""
    return store().load()


def conversation() -> Conversation:
    if "conversation" not in st.session_state:
        st.session_state.conversation = Conversation()
    return st.session_state.conversation


# Streamlit drops a widget's state in a run that does not draw it (another page is shown),
# so what the user typed is also kept under this prefix, outside any widget (FACTS.md).
KEPT = "kept:"


def restore(key: str, default: object) -> None:
    """Before drawing the widget keyed `key`: give it the value kept for it, else `default`."""
    state = st.session_state
    if key not in state:
        state[key] = state.get(KEPT + key, default)


def keep(key: str) -> None:
    """A widget's on_change callback: keep its new value for when the widget is gone."""
    st.session_state[KEPT + key] = st.session_state[key]


def keeping(key: str) -> dict:
    """Options for the widget keyed `key` that keep each new value (restore gives it back)."""
    return {"key": key, "on_change": keep, "args": (key,)}


def put(key: str, value: object) -> None:
    """Set a widget's value and its kept copy (in a callback, or before it is drawn)."""
    st.session_state[key] = value
    st.session_state[KEPT + key] = value


def kept(key: str, default: object = None) -> object:
    """The widget's value in this run, or its kept copy when it is not drawn."""
    state = st.session_state
    return state[key] if key in state else state.get(KEPT + key, default)


# A browser keeps a widget's value unless it is set: New chat sets the defaults back.
CHAT_OPTION_DEFAULTS = {
    "chat:system_prompt": "",
    "chat:custom_temperature": False,
    "chat:temperature": 0.7,
}


def new_chat() -> None:
    """Start over: an empty conversation with default options (the model stays)."""
    st.session_state.conversation = Conversation()
    for key, value in CHAT_OPTION_DEFAULTS.items():
        put(key, value)
    st.session_state.pop("chat:editing", None)


def server_quirks() -> set[str]:
    """Base URLs found, in this session, to reject `stream_options`."""
    return st.session_state.setdefault("server_quirks", set())


def sign_out() -> None:
    """End the Supabase session and forget everything this browser session held."""
    if "auth" in st.session_state:
        st.session_state.auth.sign_out()
    for name in list(st.session_state.keys()):
        if name != "settings":
            del st.session_state[name]
