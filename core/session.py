"""The one module of core that touches Streamlit: secrets and per-session state.

Everything here belongs to one browser session. Nothing per-user is ever put in
st.cache_resource (SPEC: Scale, Security).
"""

from __future__ import annotations

from collections.abc import Mapping

import streamlit as st

from core.config import Settings, load_settings
from core.conversation import Conversation
from core.profiles import Profile, ProfileStore
from core.keybox import EncryptedProfileStore, keybox_for
from core.store_sqlite import SQLiteProfileStore


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


def store() -> ProfileStore:
    """This session's profile store, bound to its user."""
    if "store" not in st.session_state:
        config = settings()
        backend = SQLiteProfileStore(config.data_dir)
        st.session_state.store = EncryptedProfileStore(backend, keybox_for(config))
    return st.session_state.store


def profile() -> Profile:
    """The saved profile, read once per script run (pages share it)."""
    return store().load()


def conversation() -> Conversation:
    if "conversation" not in st.session_state:
        st.session_state.conversation = Conversation()
    return st.session_state.conversation


def server_quirks() -> set[str]:
    """Base URLs found, in this session, to reject `stream_options`."""
    return st.session_state.setdefault("server_quirks", set())
