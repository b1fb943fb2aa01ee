"""The context budget of the chat on screen: the picked model's counter and window, and the
counts kept for the browser session, so a long chat is counted once, then only what changed."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import streamlit as st

from core.attachments.wire import fenced
from core.chat.budget import Budget
from core.chat.call import wire_messages
from core.chat.client import connection_for
from core.chat.tokens import (
    Counter,
    TokenCache,
    count_text,
    counter_for,
    image_tokens,
    message_tokens,
    reply_opening,
)
from core.chat.windows import context_window, prices
from core.history.conversation import Conversation
from core.history.model import Attachment
from core.providers.kinds import Target
from core.session.compose import Draft, takes_no_images
from core.session.people import settings

CACHE = "chat:token_cache"  # this session's counts, by counter and text
TYPED = "chat:typed_windows"  # model label -> the window the user last typed for it
COUNTER = "chat:counters"  # the target it counts for -> its counter


def _cache() -> TokenCache:
    if CACHE not in st.session_state:
        st.session_state[CACHE] = TokenCache()
    return st.session_state[CACHE]


def _identity(target: Target) -> tuple[str, str, str]:
    return target.connection_id, target.base_url, target.model


# Seconds a page run waits for a server's answer about the model (its window, whether it counts
# tokens) before it goes on without (asked again on the next run); a message being sent waits
# longer, since its request goes to that server anyway.
PAGE_WAIT = 0.3
SEND_WAIT = 3.0


def _counter(target: Target, wait: float = PAGE_WAIT) -> Counter:
    """Kept per model for the session (a comparison counts for several at once)."""
    kept = st.session_state.setdefault(COUNTER, {})
    counter = kept.get(_identity(target))
    if counter is None or not counter.final:
        limits, http_client = connection_for(settings())
        counter = kept[_identity(target)] = counter_for(target, http_client, limits, wait)
    return counter


def ask_ahead(targets: list[Target]) -> None:
    """Ask the servers of models about to be sent to (a comparison being picked) for their
    window and whether they count tokens, without waiting: the answers are in when it is sent."""
    for target in targets:
        _counter(target, wait=0)
        stated_window(target, wait=0)


def remember_typed_window(target: Target, window: int | None) -> None:
    """A window typed in a chat's options holds for the model in this session's other chats."""
    if window:
        st.session_state.setdefault(TYPED, {})[target.label] = window


def reply_cost(target: Target | None) -> tuple[str, Callable[[Mapping], float] | None]:
    """The picked model's label and what a reply's usage costs at the prices its server stated
    with its window (None: it states none, or no model is picked)."""
    stated = prices(target) if target is not None else None
    return (target.label, stated.cost) if stated else ("", None)


def typed_window(target: Target) -> int | None:
    return st.session_state.get(TYPED, {}).get(target.label)


def stated_window(target: Target, wait: float = PAGE_WAIT) -> int | None:
    """As the server states it (asked once per process and model), or as a refusal named it;
    None also while the server has not answered within `wait` seconds."""
    limits, http_client = connection_for(settings())
    return context_window(target, http_client, limits, wait)


def attachment_tokens(counter: Counter, attachment: Attachment, cache: TokenCache) -> int:
    if attachment.kind == "image":  # its size as sent, kept with it when it was read
        return image_tokens(attachment.width, attachment.height)
    return count_text(counter, fenced(attachment), cache)


def _unique(names: list[str]) -> list[str]:
    """Two files of the same name are told apart: "a.txt", "a.txt (2)"."""
    seen: dict[str, int] = {}
    named = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        named.append(name if seen[name] == 1 else f"{name} ({seen[name]})")
    return named


def chat_budget(conversation: Conversation, target: Target, system_prompt: str,
                draft: Draft | None, upto: int | None = None) -> Budget:
    """The next request to `target`: the branch on screen (its first `upto` turns, for an
    edit), the draft and its files, and the reply's room, against the chat's window (typed) or
    the server's (stated). With a draft to send, the server's answers are waited for longer."""
    wait = SEND_WAIT if draft is not None and (draft.text or draft.attachments) else PAGE_WAIT
    counter, cache = _counter(target, wait), _cache()
    wire = wire_messages(conversation.turns[:upto], system_prompt,
                         with_images=not takes_no_images(target))
    each = [message_tokens(counter, m, cache) for m in wire]
    files = draft.attachments if draft else ()
    attachments = dict(zip(_unique([a.name for a in files]),
                           (attachment_tokens(counter, a, cache) for a in files)))
    chat = conversation.chat
    return Budget(
        window=chat.context_window or typed_window(target) or stated_window(target, wait),
        conversation=reply_opening(counter, cache) + sum(each),
        draft=count_text(counter, draft.text, cache) if draft and draft.text else 0,
        attachments=attachments, max_tokens=chat.max_tokens, exact=counter.exact,
        earlier=tuple(t for m, t in zip(wire, each) if m["role"] != "system"))


TYPING_SAMPLE = 2_000  # characters of the user's recent words that set the typing rate
TYPING_RATE = 0.3  # tokens per character of typed text before the user has written much


def typing_rate(conversation: Conversation, target: Target) -> float:
    """Tokens per character of what this user types, from their recent words in this chat
    (scripts differ: Chinese takes about four times Latin's), for the meter's live estimate."""
    words = "".join(t.content for t in conversation.turns if t.role == "user")[-TYPING_SAMPLE:]
    if len(words) < 200:
        return TYPING_RATE
    # The counter the budget just made; a server still being asked is not waited for again.
    return max(0.05, count_text(_counter(target, wait=0), words, _cache()) / len(words))
