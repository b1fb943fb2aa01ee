"""A new chat's title, written by a model after the chat's first reply: asked in the background,
stored only while the chat still has the title made from its first words (a rename by the user
always wins), and silently not at all when the model fails."""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from core.chat.call import Reply, close_source, start_reply
from core.config import Settings
from core.history.model import MAX_TITLE_LENGTH, Chat
from core.history.thread import title_from
from core.providers.kinds import Target
from core.store.contracts import ChatStore

logger = logging.getLogger(__name__)

TITLE_WORDS = 6
TITLE_CHARS = 80  # a title longer than this is cut at a word
TITLE_TOKENS = 40  # the request's room: a short title, or a reasoning model's few words more
KEPT_SECONDS = 600.0  # a written title stays findable this long, for the pages showing its chat
RETRY_SECONDS = 1.0
ASKED_CHARS = 2_000  # of the message and the reply: enough to say what a chat is about
INSTRUCTION = (f"Write a title of at most {TITLE_WORDS} words for the conversation below, in "
               "its language. Answer with the title only: no quotes, no final period.")

_THINKING = re.compile(r"<think>.*?(</think>|$)", re.S | re.I)
_LABEL = re.compile(r"^\s*(title|titre|título|titel)\s*:\s*", re.I)
_WRAPPING = "\"'`*_#“”‘’«»「」 \t"


def title_request(message: str, reply: str) -> list[dict]:
    """The request that asks for the title of a chat that began with `message` and `reply`:
    one message of the user's (small models follow it better than a system prompt)."""
    return [{"role": "user", "content": f"{INSTRUCTION}\n\nUser: {message[:ASKED_CHARS]}\n\n"
                                        f"Assistant: {reply[:ASKED_CHARS]}\n\nTitle:"}]


def clean_title(text: str) -> str | None:
    """The title in a model's answer: its first line (after a lead-in ending in a colon)
    without thinking, quotes, Markdown, a "Title:" label or a final period, cut to TITLE_CHARS
    at a word; None when nothing is left."""
    text = _THINKING.sub("", text)
    lines = [line for line in text.splitlines() if line.strip(_WRAPPING)]
    if len(lines) > 1 and lines[0].rstrip().endswith(":"):  # "Here's a title:" and then it
        lines = lines[1:]
    line = lines[0] if lines else ""
    line = _LABEL.sub("", line).strip(_WRAPPING).rstrip(".。").strip(_WRAPPING)
    line = " ".join(line.split())
    if not line or not any(ch.isalnum() for ch in line):
        return None
    return title_from(line, TITLE_CHARS)[:MAX_TITLE_LENGTH]


def is_first_words(chat: Chat, first_message: str) -> bool:
    """The chat's title is still the one made from its first message (not renamed)."""
    return chat.title in ("", title_from(first_message))


@dataclass(frozen=True)
class TitleAsk:
    """Who writes a chat's title once its first reply has ended, and the first message's words
    its title was made from."""

    target: Target
    first_words: str


class Titles:
    """Titles being written by this process, by chat id: a page showing the chat takes the new
    title from here (its own copy of the chat would otherwise write the old one back)."""

    def __init__(self) -> None:
        self._written: dict[str, tuple[str, float]] = {}
        self._pending: set[str] = set()
        self._lock = threading.Lock()

    def write(self, settings: Settings, ask: TitleAsk, store: Callable[[], ChatStore],
              chat_id: str, reply: str) -> None:
        with self._lock:
            if chat_id in self._pending:
                return  # a comparison's other replies: one title is enough
            self._pending.add(chat_id)
        threading.Thread(target=self._write, daemon=True,
                         args=(settings, ask, store, chat_id, reply)).start()

    def pending(self, chat_id: str) -> bool:
        return chat_id in self._pending

    def written(self, chat_id: str) -> str | None:
        """The title written for the chat lately, if any (kept KEPT_SECONDS)."""
        with self._lock:
            now = time.monotonic()
            for old in [k for k, (_, at) in self._written.items() if now - at > KEPT_SECONDS]:
                del self._written[old]
            found = self._written.get(chat_id)
            return found[0] if found else None

    def _write(self, settings: Settings, ask: TitleAsk, store: Callable[[], ChatStore],
               chat_id: str, reply: str) -> None:
        try:
            title = ask_title(settings, ask.target, ask.first_words, reply)
            if title is None:
                return
            opened = store()
            chat = opened.get_chat(chat_id)
            if chat is None or not is_first_words(chat, ask.first_words):
                return  # deleted, or renamed by the user meanwhile
            opened.save_chat(chat.with_changes(title=title))
            with self._lock:
                self._written[chat_id] = (title, time.monotonic())
        except Exception:  # a title is a nicety: the chat keeps its first words
            logger.warning("A chat's title could not be written", exc_info=True)
        finally:
            with self._lock:
                self._pending.discard(chat_id)


def ask_title(settings: Settings, target: Target, message: str, reply: str,
              pause: float = RETRY_SECONDS) -> str | None:
    """The model's title for the chat, or None when it fails or says nothing usable. Asked a
    second time after a failure: a one-slot server (llama-cpp-python) drops a request that a
    newer one (the page asking it to count tokens) interrupts."""
    for attempt in range(2):
        answer = Reply()
        pieces = start_reply(settings, target, title_request(message, reply), answer,
                             temperature=0.2, max_tokens=TITLE_TOKENS)
        try:
            for _ in pieces:
                pass
        finally:
            close_source(pieces)
        if answer.status in ("complete", "incomplete"):
            return clean_title(answer.text)
        logger.info("No title from %s: %s", target.label, answer.error or answer.status)
        if attempt == 0:
            time.sleep(pause)
    return None


TITLES = Titles()  # titles under way in this process (work, not a cache of user data)
