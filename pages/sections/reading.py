"""A Settings section's read of the store: what it read, or None once the page says why."""

from collections.abc import Callable
from typing import TypeVar

import streamlit as st

from core.auth import SessionEnded
from core.failures import UserFacingError

T = TypeVar("T")


def read_or_say(read: Callable[[], T], what: str) -> T | None:
    """`read()`; when the store cannot answer now, a quiet caption ("<what> cannot be read
    now. <why>") and None: the page says a store's trouble where it matters."""
    try:
        return read()
    except SessionEnded:
        st.rerun()  # the frame says the session ended and shows sign-in
    except UserFacingError as exc:
        st.caption(f"{what} cannot be read now. {exc}")
    return None
