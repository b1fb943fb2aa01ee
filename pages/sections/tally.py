"""Settings' "Blind comparisons" section: the user's own tally per model, from the picks made
with the names hidden."""

import streamlit as st

from core import session
from core.history.compare import tally
from pages.sections.reading import read_or_say


def draw() -> None:
    st.subheader("Blind comparisons")
    verdicts = read_or_say(lambda: session.chat_store().blind_verdicts(), "Your tally")
    if verdicts is None:
        return
    counts = tally(verdicts)
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
