"""The chat page's message box, in the browser: a context meter that counts what is being typed
before it is sent, and a draft (text and attached files) that survives a visit to another page.

Streamlit's chat input tells the server nothing until Enter, so both live in the page: each is
one `st.html` element whose script is installed once per tab (by a window-level object that
Streamlit's page navigation keeps) and listens on the document, so a chat input drawn again is
still heard and nothing runs while the user does nothing.
"""

import functools
import html
import json
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from core.session import prompts

_SCRIPTS = Path(__file__).with_name("message_box_js")
METER_KEY = "message-box-meter"
DRAFT_KEY = "message-box-draft"

# The meter sits just above the chat input (the script measures the input's height) while the
# conversation scrolls under it; sticky on its wrapper, which Streamlit sizes to the container.
# Levels: ok, near (>= 80 % of the window), over, unknown.
_STYLE = f"""<style>
div:has(> .st-key-{METER_KEY}) {{ position: sticky; bottom: var(--sb-meter-bottom, 0); z-index: 9; }}
.st-key-{METER_KEY} {{ padding: 0.25rem 0; background: var(--sb-meter-background, transparent); }}
.sb-meter {{ font-size: 0.8rem; opacity: 0.85; }}
.sb-meter-bar {{ height: 3px; border-radius: 2px; background: rgba(128, 128, 128, 0.25);
  overflow: hidden; margin-bottom: 0.15rem; }}
.sb-meter-fill {{ height: 100%; width: 0; background: rgb(0, 104, 201); }}
.sb-meter[data-level="near"] .sb-meter-fill {{ background: rgb(217, 119, 6); }}
.sb-meter[data-level="near"] .sb-meter-line {{ color: rgb(180, 83, 9); }}
.sb-meter[data-level="over"] .sb-meter-fill {{ background: rgb(220, 38, 38); }}
.sb-meter[data-level="over"] .sb-meter-line {{ color: rgb(220, 38, 38); }}
.sb-meter[data-level="unknown"] .sb-meter-bar {{ display: none; }}
</style>"""


@dataclass(frozen=True)
class MeterNumbers:
    """What the server knows of the next request's size, in tokens.

    The meter adds the typed text's estimate to `conversation + attachments_waiting +
    reply_room` and compares that with `window`: over it, Send is refused.
    """

    conversation: int  # the conversation as it would be sent, its attachments included
    window: int | None  # the model's context window; None: not known yet
    reply_room: int  # kept for the reply (the request's max_tokens)
    tokens_per_character: float  # to estimate the text being typed
    exact: bool  # the conversation was counted by the model's own tokenizer
    attachments_waiting: int = 0  # attachments to go with the next message

    def __post_init__(self) -> None:
        if min(self.conversation, self.reply_room, self.attachments_waiting) < 0:
            raise ValueError("token counts cannot be negative")
        if self.window is not None and self.window <= 0:
            raise ValueError("a context window is a positive number of tokens")
        if not self.tokens_per_character > 0:
            raise ValueError("tokens per character must be positive")


@functools.cache  # the app's own files: read once per process, not on every run
def _script(name: str) -> str:
    return (_SCRIPTS / name).read_text(encoding="utf-8")


def meter_html(numbers: MeterNumbers) -> str:
    """The meter's element: its numbers in data-* attributes; the script writes its line."""
    data = {
        "conversation": numbers.conversation,
        "window": "" if numbers.window is None else numbers.window,
        "reply-room": numbers.reply_room,
        "tokens-per-character": repr(float(numbers.tokens_per_character)),
        "exact": "true" if numbers.exact else "false",
        "waiting": numbers.attachments_waiting,
    }
    attributes = " ".join(f'data-{name}="{html.escape(str(value))}"' for name, value in data.items())
    if numbers.window is None:
        role = 'role="status" aria-live="off"'
    else:
        role = f'role="meter" aria-valuemin="0" aria-valuemax="{numbers.window}" aria-valuenow="0"'
    return (f'<div class="sb-meter" {attributes} {role} aria-label="Context window used">'
            '<div class="sb-meter-bar"><div class="sb-meter-fill"></div></div>'
            '<div class="sb-meter-line"></div></div>')


def draw_meter(numbers: MeterNumbers) -> None:
    """The meter, sticky just above the chat input. Draw it last in the page's main area."""
    with st.container(key=METER_KEY):
        st.html(_STYLE + meter_html(numbers) + f"<script>{_script('meter.js')}</script>",
                unsafe_allow_javascript=True)


def keep_draft() -> None:
    """Keep the chat input's typed text and attached files across page visits in this tab and
    put them back into the chat input when this page is drawn again. Call it on the chat page,
    next to `st.chat_input`, whose accept_file/file_type must stay the same between runs."""
    _draft_script(forget=False)


def forget_draft() -> None:
    """Forget the draft kept in this tab (call it where a user signs out: the next one to sign
    in here must not find it)."""
    _draft_script(forget=True)


# The draft's element has nothing to show, and takes no room.
_DRAFT_STYLE = f"<style>.st-key-{DRAFT_KEY}, div:has(> .st-key-{DRAFT_KEY}) {{ display: none; }}</style>"


def _draft_script(forget: bool) -> None:
    with st.container(key=DRAFT_KEY):
        st.html(f'{_DRAFT_STYLE}<script data-forget="{str(forget).lower()}">'
                f'{_script("draft.js")}</script>', unsafe_allow_javascript=True)


PROMPTS_KEY = "message-box-prompts"
_PROMPTS_STYLE = (f"<style>.st-key-{PROMPTS_KEY}, div:has(> .st-key-{PROMPTS_KEY}) "
                  "{ display: none; }</style>")


def _apply_prompt(model_labels: list[str]) -> None:
    picked = str(st.session_state.get(f"{PROMPTS_KEY}:apply") or "")
    prompts.apply_settings(picked.split("#")[0], model_labels)


def offer_prompts(model_labels: list[str]) -> None:
    """Saved prompts on `/` in the chat input (see message_box_js/prompts.js); a prompt's model,
    when one of `model_labels`, and its options become the chat's. Call it on the chat page,
    next to `st.chat_input`: a pick reruns the page, and its callback sets the chat's pickers
    before they are drawn."""
    offered, _ = prompts.offered_prompts()  # a store that fails is said on Settings
    data = [{"id": p.id, "name": p.name, "text": p.text, "model": p.model, "origin": p.origin,
             "applies": prompts.sets_something(p, model_labels)} for p in offered]
    with st.container(key=PROMPTS_KEY):
        st.text_input("Saved prompt picked", key=f"{PROMPTS_KEY}:apply", live="0ms",
                      label_visibility="collapsed", on_change=_apply_prompt,
                      args=(list(model_labels),))
        st.html(f'{_PROMPTS_STYLE}<div class="sb-prompts" '
                f'data-prompts="{html.escape(json.dumps(data, ensure_ascii=False))}"></div>'
                f'<script>{_script("prompts.js")}</script>', unsafe_allow_javascript=True)
