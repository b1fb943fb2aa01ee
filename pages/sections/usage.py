"""Settings' "Usage" section: the tokens the user's replies took, per model and connection, as
their servers reported them."""

import streamlit as st

from core import session
from pages.sections.reading import read_or_say


def draw() -> None:
    st.subheader("Usage")
    totals = read_or_say(lambda: session.chat_store().usage_totals(), "Your usage")
    if totals is None:
        return
    if not totals:
        st.caption("No reply has reported its tokens yet. Servers that stream usage (most do "
                   "when asked) fill this in as you chat.")
        return
    st.caption("Tokens your replies took, summed from what each server reported, every version "
               "of every chat included.")
    st.dataframe(
        [{"Model · connection": t.model_label or "unknown model", "Replies": t.replies,
          "Tokens in": t.prompt_tokens, "Tokens out": t.completion_tokens,
          "Total": t.prompt_tokens + t.completion_tokens} for t in totals],
        hide_index=True, width="stretch", key="usage:table")
