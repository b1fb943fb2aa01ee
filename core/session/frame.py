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


# Whether the script run on this thread is inside the frame: a flag of the run, not of a user.
# Not in st.session_state: after st.stop() every session_state call stops the run again.
_run = threading.local()


@contextmanager
def framing() -> Iterator[None]:
    """The frame runs the page inside this: the page then knows it was gated and drawn by it.
    At the end of the run, the stores found busy or down in it are asked again in the next
    (its callbacks included, which run before the frame)."""
    _run.in_frame = True
    found = answering()
    try:
        yield
    finally:
        _run.in_frame = False
        found.new_run()  # the object, not st.session_state: that stops a stopped run again


def run_in_frame() -> None:
    """First thing on every page. Until something in the process has called st.navigation
    (the first request after a start; every AppTest run), Streamlit runs a file of pages/ by
    itself, as its old folder navigation: then run the frame instead, which checks who may see
    the page, and draws it or another, and stop here."""
    if getattr(_run, "in_frame", False):
        return
    runpy.run_path(str(FRAME), run_name="__main__")
    st.stop()
