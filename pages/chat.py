"""Chat: pick a model, talk, watch the reply stream in."""

import streamlit as st

from core import session
from core.chat import chat_messages, coalesce, start_reply
from core.conversation import Turn
from core.errors import UserFacingError
from core.providers import Target, available_targets


def _show_turn(turn: Turn) -> None:
    with st.chat_message(turn.role):
        if turn.reasoning:
            with st.expander("Reasoning", expanded=False):
                st.markdown(turn.reasoning)
        if turn.content:
            st.markdown(turn.content)
        if turn.role == "assistant":
            st.caption(turn.footer)
            if turn.error:
                st.error(turn.error)


def _pick_target(targets: list[Target]) -> Target:
    labels = [t.label for t in targets]
    choice = st.selectbox("Model", labels, key="chat:model")
    return targets[labels.index(choice)]


def _reply(target: Target) -> None:
    """Stream one reply into the page; how it ended is recorded in the conversation."""
    conversation = session.conversation()
    reply = conversation.begin_reply()
    messages = chat_messages(conversation.history())
    with st.chat_message("assistant"):
        st.write_stream(coalesce(start_reply(
            session.settings(), target, messages, reply, quirks=session.server_quirks()
        )))
    conversation.finish_reply(reply, target.label)
    st.rerun()


st.title("Chat")
try:
    targets = available_targets(session.profile(), session.settings().server_keys)
except UserFacingError as exc:
    st.error(str(exc))
    st.stop()

conversation = session.conversation()
if not targets:
    st.info("No provider is configured yet. Add an OpenAI key or an OpenAI-compatible server.")
    st.page_link("pages/settings.py", label="Open Settings", icon="⚙️")
    st.stop()

target = _pick_target(targets)
conversation.recover(target.label)
for turn in conversation.turns:
    _show_turn(turn)

resend = False
if conversation.needs_retry():
    resend = st.button("Retry", icon="🔁", key="chat:retry",
                       help="Send your last message again.")
prompt = st.chat_input("Message", submit_mode="stop", key="chat:input")
if prompt:
    conversation.add_user(prompt)
    _show_turn(conversation.turns[-1])
    _reply(target)
elif resend and conversation.prepare_regenerate():
    _reply(target)
