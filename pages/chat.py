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
        if turn.role != "assistant":
            return
        caption, copy = st.columns([5, 1], vertical_alignment="center")
        caption.caption(turn.footer)
        if turn.content:
            with copy.popover("Copy", icon="📋", width="stretch"):
                st.code(turn.content, language="markdown", wrap_lines=True)
        if turn.error:
            st.error(turn.error)


def _pick_target(targets: list[Target]) -> Target:
    labels = [t.label for t in targets]
    choice = st.selectbox("Model", labels, key="chat:model")
    return targets[labels.index(choice)]


def _chat_options() -> tuple[str, float | None]:
    """This chat's system prompt and temperature (None: the server's default)."""
    with st.sidebar:
        st.button("New chat", icon="➕", key="chat:new", width="stretch", on_click=session.new_chat)
        with st.expander("Chat options", expanded=False):
            system_prompt = st.text_area(
                "System prompt", key="chat:system_prompt",
                placeholder="e.g. You are a concise assistant.",
            )
            custom = st.toggle("Set temperature", key="chat:custom_temperature")
            temperature = st.slider(
                "Temperature", 0.0, 2.0, 0.7, 0.1, key="chat:temperature", disabled=not custom
            )
    return system_prompt, (temperature if custom else None)


def _reply(target: Target, system_prompt: str, temperature: float | None) -> None:
    """Stream one reply into the page; how it ended is recorded in the conversation."""
    conversation = session.conversation()
    reply = conversation.begin_reply()
    messages = chat_messages(conversation.history(), system_prompt)
    with st.chat_message("assistant"):
        stream = start_reply(
            session.settings(), target, messages, reply,
            temperature=temperature, quirks=session.server_quirks(),
        )
        st.write_stream(coalesce(stream))
    conversation.finish_reply(reply)
    st.rerun()


def _last_turn_actions(conversation) -> str | None:
    """Buttons under the conversation: regenerate or retry, and edit the last message."""
    if not conversation.turns:
        return None
    retry_label = "Retry" if conversation.needs_retry() else "Regenerate"
    left, right, _ = st.columns([1, 1, 2])
    if left.button(retry_label, icon="🔁", key="chat:retry", width="stretch",
                   help="Answer your last message again."):
        return "regenerate"
    if right.button("Edit", icon="✏️", key="chat:edit", width="stretch",
                    help="Edit your last message and send it again."):
        st.session_state["chat:editing"] = conversation.last_user_text() or ""
        st.rerun()
    return None


def _edit_box() -> str | None:
    """The last message open for editing; returns the new text when sent."""
    with st.container(border=True):
        st.text_area("Edit your last message", key="chat:editing")
        send, cancel, _ = st.columns([1, 1, 2])
        if send.button("Send", type="primary", key="chat:edit_send", width="stretch"):
            text = st.session_state.pop("chat:editing", "").strip()
            return text or None
        if cancel.button("Cancel", key="chat:edit_cancel", width="stretch"):
            st.session_state.pop("chat:editing", None)
            st.rerun()
    return None


st.title("Chat")
try:
    targets = available_targets(session.profile(), session.settings().server_keys)
except UserFacingError as exc:
    st.error(str(exc))
    st.stop()

conversation = session.conversation()
conversation.recover()
if not targets:
    st.info("No provider is configured yet. Add an OpenAI key or an OpenAI-compatible server.")
    st.page_link("pages/settings.py", label="Open Settings", icon="⚙️")
    st.stop()

target = _pick_target(targets)
system_prompt, temperature = _chat_options()
for turn in conversation.turns:
    _show_turn(turn)

edited = _edit_box() if "chat:editing" in st.session_state else None
action = None if edited else _last_turn_actions(conversation)
prompt = st.chat_input("Message", submit_mode="stop", key="chat:input")
if edited:
    conversation.take_last_user_message()
    prompt = edited
if prompt:
    conversation.add_user(prompt)
    _show_turn(conversation.turns[-1])
    _reply(target, system_prompt, temperature)
elif action == "regenerate" and conversation.prepare_regenerate():
    _reply(target, system_prompt, temperature)
