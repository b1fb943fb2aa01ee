"""Every page runs inside the frame (streamlit_app.py), which checks who may see it."""

from __future__ import annotations

import runpy
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import streamlit as st

from core.session.stores import answering

FRAME = Path(__file__).resolve().parents[2] / "streamlit_app.py"


# Whether this thread's run is inside the frame; not in st.session_state, since after st.stop()
# every session_state call stops the run again.
_run = threading.local()


@contextmanager
def framing() -> Iterator[None]:
    """The frame runs the page inside this. Stores found busy or down are asked again in the
    next run (its callbacks included, which run before the frame)."""
    _run.in_frame = True
    found = answering()
    try:
        yield
    finally:
        _run.in_frame = False
        found.new_run()  # the object, not st.session_state: that stops a stopped run again


def run_in_frame() -> None:
    """First thing on every page: until st.navigation has run in the process (first request,
    every AppTest), Streamlit runs pages/ files by itself; run the frame instead, then stop."""
    if getattr(_run, "in_frame", False):
        return
    runpy.run_path(str(FRAME), run_name="__main__")
    st.stop()
