"""Chat: pick a model, talk, watch the reply stream in."""

import time

import streamlit as st

from core import session
from core.chat.blocks import (
    WARM_KEY,
    BlockSplitter,
    UpdateCost,
    draw_blocks,
    highlighted_on_page,
    warm_highlighter,
)
from core.chat.call import Reply, coalesce
from core.history.conversation import ShownMessage
from core.store.errors import MAX_CONTEXT_WINDOW, MAX_REPLY_TOKENS
from core.auth import SessionEnded
from core.failures import UserFacingError
from core.store.keybox import describe_unreadable_key
from core.providers.connections import (
    Connection,
    connection_problems,
    describe_unreadable_secrets,
)
from core.providers.connections import targets as connection_targets
from core.providers.kinds import Target
from core.providers.sources import every_connection
from core.attachments.reading import ACCEPTED_TYPES, MAX_UPLOAD_MB
from pages.sections import history
from pages.sections.history import MESSAGE_ANCHOR
from pages.sections.attachments import draw_attachments, draw_tray
from pages.sections.compare import draw_comparison, draw_compared_note, draw_picker
from pages.sections.message_box import MeterNumbers, draw_meter, keep_draft, offer_prompts
from pages.sections.reply_body import draw_copy, draw_reply_body, draw_user_text
from pages.sections.scripts import HIDDEN, close_sidebar_on_pick

session.run_in_frame()  # never drawn without the frame's gate


# Keyed containers get the CSS class st-key-<key>. A user's own line breaks are kept (Markdown
# joins single lines), Stop stays in view just above the chat input while a reply grows, and
# the block that loads the highlighter (core/blocks.py warm_highlighter) takes no room.
_WARM = f".st-key-{WARM_KEY}"
_STYLE = f"""<style>
[class*="st-key-chat-user-"] p {{ white-space: pre-wrap; }}
.st-key-chat-stop {{ position: sticky; bottom: 1rem; z-index: 10; width: fit-content; }}
{_WARM}, div:has(> {_WARM}) {{ display: none; }}
.st-key-{HIDDEN} {{ display: none; }}
</style>"""

LAST_DRAW_SECONDS = 0.1
TITLE_LOOK_SECONDS = 0.5  # how often a page looks whether its chat's new title is written
MIN_WINDOW = 256  # tokens: no chat model has less

# Under an error about a setting: where to fix it.
_SETTINGS_LINKS = {
    "key": "Check the API key in Settings",
    "base_url": "Check the base URL in Settings",
    "model": "Check the model name in Settings",
}


def _seconds(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"


def _thinking_label(seconds: float | None, done: bool) -> str:
    if seconds is None:
        return "Thoughts" if done else "Thinking…"
    return f"Thought for {_seconds(seconds)}" if done else f"Thinking… {_seconds(seconds)}"


def _switch(message_id: str) -> None:
    """◀ / ▶ callback: show another version and the newest branch under it."""
    conversation = session.conversation()
    conversation.switch_to(message_id)  # a reply arriving on the other branch goes on
    session.history_changed()


def _versions(conversation, turn: ShownMessage) -> None:
    """"◀ 2 / 3 ▶" under a message that has other versions (regenerated or edited)."""
    version = conversation.thread().version(turn)
    if version.count < 2:
        return
    with st.container(horizontal=True, vertical_alignment="center", gap="small",
                      width="content", key=f"chat-versions-{turn.id}"):
        st.button("◀", key=f"chat:previous:{turn.id}", type="tertiary",
                  disabled=version.previous_id is None, on_click=_switch,
                  args=(version.previous_id,), help="The previous version")
        st.caption(f"{version.index} / {version.count}", width="content")
        st.button("▶", key=f"chat:next:{turn.id}", type="tertiary",
                  disabled=version.next_id is None, on_click=_switch,
                  args=(version.next_id,), help="The next version")


def _show_turn(index: int, turn: ShownMessage, conversation) -> None:
    with st.container(key=MESSAGE_ANCHOR.format(turn.id)), st.chat_message(turn.role):
        _draw_turn(index, turn, conversation)


def _draw_turn(index: int, turn: ShownMessage, conversation) -> None:
    """A message of the chat: the user's (its files, text, versions, Edit) or a reply."""
    if turn.reasoning:
        with st.expander(_thinking_label(turn.thinking_seconds, done=True), expanded=False,
                         icon="💭", type="compact"):
            st.markdown(turn.reasoning)
    if turn.role == "user":
        draw_attachments(turn.attachments, key=f"chat-files-{turn.id}")
        if st.session_state.get("chat:editing_index") == index:
            _edit_box()  # in place of the message it edits; this version stays
            return
        with st.container(key=f"chat-user-{index}"):
            draw_user_text(turn.content, key=f"chat-text-{turn.id}")
        if turn.id in conversation.refused:
            st.warning(f"This message is not stored in full: {conversation.refused[turn.id]}")
        elif turn.error:  # as stored in place of a message the store refused
            st.warning(turn.error)
        with st.container(horizontal=True, vertical_alignment="center"):
            _versions(conversation, turn)
            st.button("Edit", icon="✏️", key=f"chat:edit:{turn.id}", type="tertiary",
                      on_click=_start_editing, args=(index,),
                      help="Edit this message and send it again; this version stays.")
        return
    if turn.content:
        draw_reply_body(turn.content, key=f"chat-text-{turn.id}")
    caption, copy = st.columns([5, 1], vertical_alignment="center")
    caption.caption(turn.footer)
    if turn.content:
        with copy:
            draw_copy(turn.content, key=f"chat-text-{turn.id}")
    _versions(conversation, turn)
    draw_compared_note(conversation, turn)
    if turn.id in conversation.refused:
        st.warning(f"This reply is not stored in full: {conversation.refused[turn.id]}")
    if turn.error:
        st.error(turn.error)
        if turn.error_field in _SETTINGS_LINKS:
            st.page_link("pages/settings.py", label=_SETTINGS_LINKS[turn.error_field],
                         icon="⚙️")


def _pick_target(targets: list[Target]) -> Target:
    """The model picked, among every connection's models (grouped by connection, filtered as
    the user types); the choice survives other pages while it is still offered."""
    by_label = {t.label: t for t in targets}  # labels are unique (connections.targets)
    labels = list(by_label)
    if session.kept("chat:model") not in by_label:
        session.put("chat:model", labels[0])
    session.restore("chat:model", labels[0])
    choice = st.selectbox("Model", labels, help="Every model of every enabled connection; "
                          "type to filter.", **session.keeping("chat:model"))
    return by_label[choice]


def _kept(key: str) -> dict:
    """An option's widget keeps its value while other pages are shown (Streamlit drops the value of a widget not drawn)."""
    session.restore(key, session.CHAT_OPTION_DEFAULTS[key])
    return session.keeping(key)


def _chat_options(area, stated_window: int | None, typed_window: int | None
                  ) -> tuple[str, float | None, int | None, int | None]:
    """This chat's system prompt, temperature (None: the server's default), reply room (None:
    the server's default) and context window typed by the user (None: as the server says)."""
    with area:
        with st.expander("Chat options", expanded=False):
            system_prompt = st.text_area(
                "System prompt", placeholder="e.g. You are a concise assistant.",
                **_kept("chat:system_prompt"),
            )
            custom = st.toggle("Set temperature", **_kept("chat:custom_temperature"))
            temperature = st.slider(
                "Temperature", 0.0, 2.0, step=0.1, disabled=not custom, **_kept("chat:temperature")
            )
            max_tokens = st.number_input(
                "Reply room (max tokens)", min_value=1, max_value=MAX_REPLY_TOKENS, step=256,
                placeholder="the server's default",
                help="The most tokens a reply may take; kept free in the context window.",
                **_kept("chat:max_tokens"))
            said = (f"The server says {stated_window:,} tokens; type a number to use another."
                    if stated_window else "The server does not say; type the model's context "
                    "window to see how full the chat is before sending.")
            known = typed_window or stated_window
            whose = "typed for this model" if typed_window else "said by the server"
            window = st.number_input(
                "Context window (tokens)", min_value=MIN_WINDOW, max_value=MAX_CONTEXT_WINDOW,
                step=1024, help=said, placeholder=f"{known:,} ({whose})" if known else "unknown",
                **_kept("chat:context_window"))
    return system_prompt, (temperature if custom else None), max_tokens, window


def _request(action: str) -> None:
    """Button callback: the action runs before anything is drawn, so nothing jumps."""
    st.session_state["chat:action"] = action


def _start_editing(index: int | None = None) -> None:
    """Edit a message (the last one when `index` is None) in the box under the chat."""
    turns = session.conversation().turns
    if index is None:
        index = max((i for i, t in enumerate(turns) if t.role == "user"), default=None)
    if index is not None:
        st.session_state["chat:editing"] = turns[index].content
        st.session_state["chat:editing_index"] = index


def _stop_editing() -> None:
    st.session_state.pop("chat:editing", None)
    st.session_state.pop("chat:editing_index", None)
    session.dismiss_refusal()


def _submitted(conversation, prompt, targets: list[Target], system_prompt: str) -> bool:
    """The message box's words and files, with the files waiting in the tray: sent when each
    file reads and the message fits every model it goes to; else nothing is lost (the words go
    back into the box, the files wait in the tray) and the page says why."""
    read, refused = session.read_files(prompt.files)
    draft = session.Draft(prompt.text, (*session.tray(), *read))
    return _send(conversation, draft, targets, system_prompt, " ".join(refused))


def _send(conversation, draft, targets: list[Target], system_prompt: str, why: str = "") -> bool:
    """The draft added to the chat when it can go (`why`, or the checks, say it cannot: then
    its words go back into the box and its files wait in the tray)."""
    if why := why or _why_not(conversation, draft, targets, system_prompt):
        session.hold(draft, why)
        st.rerun()  # the box is drawn again with the words put back
    conversation.add_user(draft.text, store=False, attachments=draft.attachments)
    session.sent()
    return True


def _why_not(conversation, draft, targets: list[Target], system_prompt: str,
             upto: int | None = None) -> str | None:
    """Why the draft cannot go to each of `targets` after the branch's first `upto` turns (each
    named when there are several), if so."""
    said = []
    for target in targets:
        why = session.draft_problem(draft, target)
        if why is None:
            budget = session.chat_budget(conversation, target, system_prompt, draft, upto)
            why = budget.advice() if budget.state == "over" else None
        if why:
            said.append(why if len(targets) == 1 else f"{target.label}: {why}")
    return " ".join(said) or None


def _take_request(conversation, prompt, target: Target, compared: list[Target],
                  system_prompt: str) -> bool:
    """Apply what the user asked for; True when a reply (or, with `compared` models, one reply
    of each) must be asked for now."""
    action = st.session_state.pop("chat:action", None)
    if prompt:
        return _submitted(conversation, prompt, compared or [target], system_prompt)
    if action == "send_unsent" and (text := st.session_state.pop(session.UNSENT, "")):
        return _send(conversation, session.Draft(text), compared or [target], system_prompt)
    if action == "regenerate":
        return conversation.prepare_regenerate()
    if action == "send_edit":
        text = st.session_state.get("chat:editing", "").strip()
        index = st.session_state.get("chat:editing_index")
        if not text or index is None or index >= len(conversation.turns):
            return False
        draft = session.Draft(text, conversation.turns[index].attachments)  # sent again
        if why := _why_not(conversation, draft, [target], system_prompt, upto=index):
            session.refuse(why)  # said above the box; the edit stays open to change
            return False
        _stop_editing()
        session.sent()
        conversation.branch_from(index)  # the earlier version stays, one ◀ away
        conversation.add_user(text, store=False, attachments=draft.attachments)
        return True
    return False


def _edit_box() -> None:
    """Editing a message, where it stands in the chat."""
    with st.container(border=True, key="chat-edit-box"):
        st.text_area("Edit your message", key="chat:editing")
        send, cancel, _ = st.columns([1, 1, 2])
        send.button("Send", type="primary", key="chat:edit_send", width="stretch",
                    on_click=_request, args=("send_edit",))
        cancel.button("Cancel", key="chat:edit_cancel", width="stretch", on_click=_stop_editing)


def _actions(conversation) -> None:
    """Under the conversation: regenerate or retry, and edit the last message."""
    if "chat:editing" in st.session_state:
        return
    if not conversation.turns or conversation.open_comparison() is not None:
        return
    label = "Retry" if conversation.needs_retry() else "Regenerate"
    left, right, _ = st.columns([1, 1, 2])
    # Too long for the model's context: sending the same conversation again fails again.
    if conversation.turns[-1].error_field != "conversation":
        left.button(label, icon="🔁", key="chat:retry", width="stretch", on_click=_request,
                    args=("regenerate",), help="Answer your last message again.")
    right.button("Edit", icon="✏️", key="chat:edit", width="stretch", on_click=_start_editing,
                 help="Edit your last message and send it again.")


def _unsent_message() -> None:
    """A message submitted as the session ended, offered back after signing in again."""
    text = st.session_state.get(session.UNSENT)
    if not text:
        return
    with st.container(border=True, key="chat-unsent"):
        why = st.session_state.get(session.UNSENT_WHY) or "your session had ended"
        st.caption(f"Your message was not sent ({why}):")
        with st.container(key="chat-user-unsent"):
            draw_user_text(text, key="chat-text-unsent")
        send, discard, _ = st.columns([1, 1, 2])
        send.button("Send", type="primary", key="chat:unsent_send", width="stretch",
                    on_click=_request, args=("send_unsent",))
        discard.button("Discard", key="chat:unsent_discard", width="stretch",
                       on_click=session.discard_unsent_message)


def _live_thinking(area, reply: Reply):
    """The on_thinking callback: the reasoning so far, collapsed, and how long it has taken."""
    shown = {}

    def redraw() -> None:
        done = reply.reasoning_ended is not None
        label = _thinking_label(reply.thinking_seconds, done)
        if not shown:  # updated in place from now on, so a reader's open area stays open
            shown["status"] = area.status(label, expanded=False, type="compact")
            shown["text"] = shown["status"].empty()
        shown["status"].update(label=label, state="complete" if done else "running")
        shown["text"].markdown(reply.reasoning)

    return redraw


def _follow(live, conversation) -> None:
    """The reply still arriving, growing on the page until it ends; then the page is drawn
    again with it as stored. Leaving (another chat, a reload, a closed tab) ends only this view:
    the reply goes on in the server process."""
    with st.chat_message("assistant"):
        thinking = st.empty()
        body = st.container()
        with st.container(key="chat-stop"):
            st.button("Stop", icon="⏹️", key="chat:stop", on_click=session.stop_reply,
                      args=(live.id,), help="Stop the reply here; keep what came.")
        blocks = BlockSplitter()
        # Code blocks on the page are highlighted again on every update: fewer, larger updates.
        shown = coalesce(live.follow(), on_thinking=_live_thinking(thinking, live.reply),
                         rendered=UpdateCost(blocks, highlighted_on_page(conversation.turns)))
        draw_blocks(shown, blocks, body)
    session.history_changed()
    # Streamlit drops what a run drew but has not sent yet when the next run starts: the
    # reply's last words would never show before the rerun that draws it as ended.
    time.sleep(LAST_DRAW_SECONDS)
    st.rerun()


def _message_box(conversation, target: Target, system_prompt: str, labels: list[str]) -> None:
    """Just above the box: why the last message was not sent, the files waiting to be sent,
    and how full the model's context is (the words being typed counted as they are typed)."""
    waiting = session.tray()
    budget = session.chat_budget(conversation, target, system_prompt,
                                 session.Draft("", tuple(waiting)))
    with st.container(key="chat-box"):
        if why := session.refusal():
            st.error(f"Not sent: {why}", icon="✋")
        elif warning := budget.warning():
            st.warning(warning, icon="⚠️")
        draw_tray(waiting, session.drop_from_tray)
        draw_picker(labels)
        if session.takes_no_images(target):
            earlier = any(a.kind == "image" for t in conversation.turns for a in t.attachments)
            st.caption(f"{target.model} does not take images: it refused one before."
                       + (" The images earlier in this chat are named to it in their place."
                          if earlier else ""))
    draw_meter(MeterNumbers(
        conversation=budget.conversation, window=budget.window, reply_room=budget.reply_room,
        tokens_per_character=session.typing_rate(conversation, target), exact=budget.exact,
        attachments_waiting=sum(budget.attachments.values())))


def _placeholder(conversation, target: Target, compared: list[Target]) -> str:
    if conversation.open_comparison() is not None:
        return "Pick the reply to continue with (above)"
    if compared:
        return f"Message to {len(compared)} models"
    if session.takes_no_images(target):
        return f"Message ({target.model} does not take images)"
    return "Message"


@st.fragment(run_every=TITLE_LOOK_SECONDS)
def _await_title(chat_id: str) -> None:
    """While a model writes the chat's title: once it is written, the page shows it."""
    if not session.title_pending(session.conversation()):
        st.rerun(scope="app")


TARGETS = "chat:targets"  # the models offered when the stores were last read here
UNREADABLE: list[str] = []  # saved keys found unreadable in this run (said as warnings)


def _own_connections() -> list[Connection] | None:
    """The user's own connections; None when they cannot be read now (said on the page)."""
    try:
        return session.remembered("connections", session.connection_store().list)
    except UserFacingError as exc:
        if isinstance(exc, SessionEnded):
            raise
        st.error(str(exc))
        return None


def _offered_targets() -> list[Target] | None:
    """The models the user can chat with. When a store cannot be read now, its message is
    shown and the models read earlier in this session stay offered (None: none were read)."""
    try:
        store = session.store()
        profile = session.remembered("profile", store.load)
        own = _own_connections()
    except SessionEnded:
        session.keep_unsent_message()
        st.rerun()  # the frame says the session ended and shows sign-in
    except UserFacingError as exc:
        st.error(str(exc))
        return st.session_state.get(TARGETS)
    if own is None:
        return st.session_state.get(TARGETS)
    for field in store.unreadable_keys:
        st.warning(describe_unreadable_key(field, session.settings()))
    UNREADABLE.extend(store.unreadable_keys)
    operator = session.settings().operator_connections
    everything = every_connection(profile, session.settings().server_keys,
                                  store.unreadable_keys, operator, own)
    seed = len(everything) - len(operator) - len(own)
    for index, connection in enumerate(everything):
        if connection.unreadable and connection.enabled:
            UNREADABLE.append(connection.name)
            if index < seed:  # the seed's key: said above, once
                continue
            st.warning(describe_unreadable_secrets(connection))
        if connection.enabled and (problems := connection_problems(connection)):
            st.warning(f"{connection.name} is not offered: its saved settings are refused by "
                       "today's rules. " + " ".join(problems))
            st.page_link("pages/settings.py", label=f"Correct {connection.name} in Settings",
                         icon="⚙️")
    targets = connection_targets(everything)
    st.session_state[TARGETS] = targets
    return targets


def _draw_conversation(conversation, live, target: Target | None = None) -> None:
    """The chat list, the chat's address (from its first message on), its usage (priced for
    the picked `target` where its server states prices) and every turn but the reply still
    arriving (`_follow` draws that one)."""
    history.draw(sidebar_head, sidebar_list,  # alone: unless this run follows replies
                 alone=live is None and conversation.open_comparison() is None)
    if conversation.unsaved:
        st.warning(f"This chat is not being saved: {conversation.unsaved} "
                   "It stays on this page.")
    session.show_in_address(conversation)
    if line := conversation.usage_line(*session.reply_cost(target)):
        st.caption(line)
    start = session.first_shown(conversation)
    if start:
        st.button(f"Show earlier messages ({start:,} more)", icon="⬆️", key="chat:earlier",
                  type="tertiary", on_click=session.show_earlier, args=(conversation,),
                  help="A long chat opens at its latest messages; the earlier ones are a click "
                  "away.")
    for index, turn in enumerate(conversation.turns[start:], start):
        if live is None or turn.id != live.id:
            _show_turn(index, turn, conversation)
    if (comparison := conversation.open_comparison()) is not None:
        draw_comparison(conversation, comparison, highlighted_on_page(conversation.turns))


st.title("Chat")
st.html(_STYLE)
close_sidebar_on_pick()
history.reopen()  # a reload opens the chat it showed (its id is in the address)
conversation = session.conversation()
session.adopt_title(conversation)  # written by a model since its first reply, already stored
live = session.live_reply(conversation)  # a reply that ended meanwhile is shown as it ended
if st.session_state.get("chat:input") or st.session_state.get("chat:action"):
    session.forget("profile", "connections")  # about to send: the settings as they are now
sidebar_head, sidebar_options, sidebar_list = (st.sidebar.container() for _ in range(3))
targets = _offered_targets()
if not targets:  # the conversation already on screen stays there
    _draw_conversation(conversation, live)
    if targets is not None and UNREADABLE:  # configured, but its key cannot be read now
        st.info("No model can be offered while the saved key cannot be read (see above). "
                "Put back the secret it was saved with, or enter the key again in Settings.")
    elif targets is not None:
        st.info("No provider is configured yet. Add an OpenAI key, an OpenAI-compatible server "
                "or a connection in Settings.")
        st.page_link("pages/settings.py", label="Open Settings", icon="⚙️")
    if live is not None:
        _follow(live, conversation)
    st.stop()

target = _pick_target(targets)
system_prompt, temperature, max_tokens, window = _chat_options(
    sidebar_options, session.stated_window(target), session.typed_window(target))
session.remember_typed_window(target, window)
conversation.keep_options(target.label, target.connection_id, system_prompt, temperature,
                          max_tokens, window)
if conversation.open_comparison() is not None:
    st.set_page_config(layout="wide")  # its columns side by side
# Pinned to the bottom; while a reply arrives, Stop it to send another. Its file options never
# change (a change empties it); a model that takes no images is said in its placeholder.
session.put_back()
compared = session.compared_targets(targets)
session.ask_ahead(compared)  # their windows and counters, asked while the message is typed
prompt = st.chat_input(
    _placeholder(conversation, target, compared), submit_mode="disable", key="chat:input",
    accept_file="multiple", file_type=ACCEPTED_TYPES, max_upload_size=MAX_UPLOAD_MB,
    disabled=live is not None or conversation.open_comparison() is not None)
keep_draft()  # what is typed and attached in the box survives a visit to another page
offer_prompts([t.label for t in targets])  # saved prompts on "/" in the box
if live is None and _take_request(conversation, prompt, target, compared, system_prompt):
    # Asked before anything is drawn: the request leaves now, not after this run.
    if compared:
        session.send_comparison(conversation, compared, system_prompt, temperature, max_tokens)
        st.set_page_config(layout="wide")
    else:
        live = session.send_reply(conversation, target, system_prompt, temperature, max_tokens)
    session.history_changed()
_draw_conversation(conversation, live, target)
if live is not None:
    _follow(live, conversation)
else:
    _unsent_message()
    _actions(conversation)
    warm_highlighter(st)  # loaded now, not in the middle of a reply (a 0.3 to 1 s freeze)
    if session.title_pending(conversation):
        _await_title(conversation.chat.id)
    _message_box(conversation, target, system_prompt,  # last: its meter sticks above the box
                 [t.label for t in targets])
