"""Settings' "Blind comparisons" section: the user's own tally per model, from the picks made
with the names hidden."""

import streamlit as st

from core import session
from core.auth import SessionEnded
from core.failures import UserFacingError
from core.history.compare import tally


def draw() -> None:
    st.subheader("Blind comparisons")
    try:
        counts = tally(session.chat_store().blind_verdicts())
    except SessionEnded:
        st.rerun()  # the frame says the session ended and shows sign-in
    except UserFacingError as exc:  # quietly: the page says a store's trouble where it matters
        st.caption(f"Your tally cannot be read now. {exc}")
        return
    if not counts:
        st.caption("No blind comparison yet. In a chat, pick 2 to 4 models under Compare, turn "
                   "on Blind, and pick the best reply before the names show.")
        return
    st.caption("Your picks with the names hidden: a win for the reply you picked, a loss for "
               "each other reply of that comparison, a tie for each when you judged them equal.")
    st.dataframe(
        [{"Model · connection": t.label, "Wins": t.wins, "Losses": t.losses, "Ties": t.ties,
          "Compared": t.wins + t.losses + t.ties} for t in counts],
        hide_index=True, width="stretch", key="tally:table")
