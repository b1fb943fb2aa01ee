"""What the user typed, kept across pages."""

from __future__ import annotations

import streamlit as st

# Streamlit drops a widget's state in a run that does not draw it (another page is shown), so
# each value is also kept under this prefix, outside any widget.
KEPT = "kept:"


def restore(key: str, default: object) -> None:
    """Before drawing the widget: its kept value, else `default`."""
    state = st.session_state
    if key not in state:
        state[key] = state.get(KEPT + key, default)


def keep(key: str) -> None:
    """A widget's on_change callback."""
    st.session_state[KEPT + key] = st.session_state[key]


def keeping(key: str) -> dict:
    """Widget options that keep each new value (restore gives it back)."""
    return {"key": key, "on_change": keep, "args": (key,)}


def put(key: str, value: object) -> None:
    """In a callback, or before the widget is drawn."""
    st.session_state[key] = value
    st.session_state[KEPT + key] = value


def kept(key: str, default: object = None) -> object:
    state = st.session_state
    return state[key] if key in state else state.get(KEPT + key, default)
