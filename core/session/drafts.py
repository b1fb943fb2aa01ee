"""What the user typed, kept across pages: Streamlit drops a widget's state in a run that does
not draw it, so each input's value is also kept under a key of its own."""

from __future__ import annotations

import streamlit as st

# Streamlit drops a widget's state in a run that does not draw it (another page is shown),
# so what the user typed is also kept under this prefix, outside any widget.
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
