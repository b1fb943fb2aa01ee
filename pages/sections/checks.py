"""Fetch models and Test connection, shared by every connection's expander: what they found,
kept in the session while the form still describes what was checked."""

import streamlit as st

from core import session
from core.chat.client import connection_for
from core.chat.discovery import list_models
from core.failures import UserFacingError
from core.forms import FETCH_INPUTS, TEST_INPUTS, CheckResult, check_connection

NO_URL = "Enter a valid base URL first."


def fetch_models(key: str, target) -> None:
    """Fetch models on `target` (the form's, saved or not); the result is kept under `key`."""
    if target is None:
        result = CheckResult.of(None, FETCH_INPUTS, False, NO_URL)
    else:
        try:
            models = list_models(target, *connection_for(session.settings()))
            result = CheckResult.of(target, FETCH_INPUTS, True, tuple(models))
        except UserFacingError as exc:
            result = CheckResult.of(target, FETCH_INPUTS, False, str(exc))
    st.session_state[key] = result


def test_connection(key: str, target) -> None:
    """Test connection on `target`; the report is kept under `key`."""
    if target is None:
        result = CheckResult.of(None, TEST_INPUTS, False, NO_URL)
    else:
        report = check_connection(target, *connection_for(session.settings()))
        result = CheckResult.of(target, TEST_INPUTS, report.ok, report.summary)
    st.session_state[key] = result


def current(key: str, target) -> CheckResult | None:
    """The result kept under `key`, or None once the inputs it was made for have changed."""
    result = st.session_state.get(key)
    if result is not None and not result.applies_to(target):
        del st.session_state[key]
        return None
    return result


def show_test(result: CheckResult | None) -> None:
    if result:
        (st.success if result.ok else st.error)(result.detail.replace("\n", "  \n"))
