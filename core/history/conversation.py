"""The branch on screen, the reply arriving at its end and what a retry resends, kept in a
ChatStore as it happens; every earlier version is a sibling in the chat's tree."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from core.chat.call import Reply
from core.chat.errors import CONTEXT_TOO_LONG
from core.failures import OurBug, UserFacingError
from core.history.model import (
    MAX_ERROR_LENGTH,
    MAX_TITLE_LENGTH,
    STATUS_NOTES,
    Attachment,
    Chat,
    Comparison,
    Message,
)
from core.store.contracts import ChatStore
from core.store.errors import StoreUnavailable
from core.history.thread import Thread, parents_first, title_from

logger = logging.getLogger(__name__)

WORKER_GONE = ("The app stopped before this reply ended (it was restarted or it crashed); "
               "what had arrived is kept. Retry asks again.")
NOT_STORED = "Not stored in full:"  # a message the store refused, as stored in its place


TOKEN_COUNTS = frozenset({"prompt_tokens", "completion_tokens", "total_tokens"})  # said by servers


def _replies(count: int) -> str:
    return f"{count} repl{'y' if count == 1 else 'ies'}"


def _changes(message: Message) -> dict:
    return {"content": message.content, "status": message.status, "error": message.error,
            "reasoning": message.reasoning, "usage": message.usage,
            "model_label": message.model_label}


@dataclass(frozen=True)
class ShownMessage(Message):
    """As stored, plus what only this session saw of a reply as it ended (never stored)."""

    error_field: str | None = None  # "key", "base_url" or "model": the setting to fix
    thinking_seconds: float | None = None
    notice: str | None = None  # e.g. the server did not stream this reply

    @classmethod
    def of(cls, message: Message) -> "ShownMessage":
        values = vars(message)  # every field, and what this session knows of it if any
        if values.get("error_field") is None and message.error.startswith(CONTEXT_TOO_LONG):
            values = {**values, "error_field": "conversation"}  # as it ended: no Retry
        if message.status == "interrupted" and not message.error:  # its worker was gone
            values = {**values, "error": WORKER_GONE}
        return cls(**values)

    @classmethod
    def ended(cls, message: Message, reply: Reply) -> "ShownMessage":
        """A reply as it ended; `message` is its row as first asked for (chat, parent, id)."""
        status = "stopped" if reply.status == "streaming" else reply.status  # ended under it
        return cls(message.chat_id, "assistant", reply.text, parent_id=message.parent_id,
                   id=message.id, model_label=reply.label, status=status,
                   error=reply.error or "", reasoning=reply.reasoning,
                   usage={**(reply.usage or {}), **reply.measures()},
                   error_field=reply.error_field, thinking_seconds=reply.thinking_seconds,
                   notice=reply.notice)

    @property
    def footer(self) -> str:
        parts = [self.model_label or "unknown model"]
        if note := STATUS_NOTES.get(self.status):
            parts.append(note)
        if self.notice:
            parts.append(self.notice)
        usage = self.usage or {}
        if usage.get("total_tokens"):
            parts.append(
                f"{usage['total_tokens']} tokens ({usage.get('prompt_tokens', '?')} in, "
                f"{usage.get('completion_tokens', '?')} out)"
            )
        return " · ".join(parts)


@dataclass
class Conversation:
    turns: list[ShownMessage] = field(default_factory=list)  # the branch on screen
    retrying: ShownMessage | None = None  # the reply a Retry replaces, until the new one has text
    chat: Chat = field(default_factory=Chat)
    store: ChatStore | None = None  # None: this conversation lives in the browser session only
    stored: bool = False  # the chat row exists in the store
    messages: list[Message] = field(default_factory=list)  # every branch, as stored
    unsaved: str | None = None  # why the store could not keep the last change (said on the page)
    _thread: tuple | None = field(default=None, repr=False, compare=False)
    _unstored: dict = field(default_factory=dict, repr=False)  # message id -> its change, in order
    _added: set = field(default_factory=set, repr=False)  # message ids the store holds
    _chat_changed: bool = field(default=False, repr=False)
    _flushing: bool = field(default=False, repr=False, compare=False)
    _generation: int | None = field(default=0, repr=False)  # the store's file, last written to
    refused: dict = field(default_factory=dict)  # message id -> why the store refused it
    comparisons: list[Comparison] = field(default_factory=list)  # oldest first
    _unstored_comparisons: dict = field(default_factory=dict, repr=False)  # id -> Comparison
    _ended: dict = field(default_factory=dict, repr=False)  # compared replies seen end here
    _viewed: dict = field(default_factory=dict, repr=False)  # message id -> leaf last shown

    def __post_init__(self) -> None:
        self._generation = getattr(self.store, "generation", 0)

    @classmethod
    def open(cls, store: ChatStore, chat: Chat) -> "Conversation":
        messages = store.messages(chat.id)
        branch = Thread(messages).branch(chat.current_id)
        return cls([ShownMessage.of(m) for m in branch], chat=chat, store=store, stored=True,
                   messages=list(messages), _added={m.id for m in messages},
                   comparisons=store.comparisons(chat.id))

    # ---- a failing store loses nothing: the page keeps every turn and says why, and what
    # was not stored is written with the next change.

    def attach(self, store: ChatStore) -> None:
        self.store, self._generation = store, None  # it holds none of this yet
        self._flush()

    def store_again(self) -> None:
        """A rerun calls this while a failing store has anything left to take."""
        if self.unsaved is not None or self._unstored:
            self._flush()

    def store_held(self) -> None:
        """Write the changes held back (`store=False`)."""
        self._flush()

    def _flush(self) -> None:
        """A change made during a write (a stopped run's cleanup) is written by the same call."""
        if self.store is None or self._flushing:  # the call under way writes this change too
            return
        generation = getattr(self.store, "generation", 0)
        if generation != self._generation:  # attached, or its file made again: none of this
            self._generation, self.stored, self._added = generation, False, set()
            self._unstored = {m.id: object() for m in parents_first(self.messages)}
            self._unstored.update((m.id, object()) for m in self.messages)  # a loop: last
            self._unstored_comparisons = {c.id: c for c in self.comparisons}
            self._chat_changed = True
        self._flushing = True
        try:
            latest, read = {}, None
            while (self._chat_changed or not self.stored or self._unstored
                   or self._unstored_comparisons):
                if self._chat_changed or not self.stored:  # the chat row first
                    chat = self.chat
                    saved = self.store.save_chat(chat)
                    self.stored = True
                    if self.chat is chat:  # not changed again meanwhile
                        self.chat, self._chat_changed = saved, False
                    continue
                if not self._unstored:  # a comparison after its message: every view has both
                    self._write_comparison(next(iter(self._unstored_comparisons.values())))
                    continue
                if read is not self.messages:  # a change made meanwhile gives a new list
                    latest, read = {m.id: m for m in self.messages}, self.messages
                message_id, change = next(iter(self._unstored.items()))
                self._write(latest[message_id])
                if self._unstored.get(message_id) is change:  # not changed again meanwhile
                    del self._unstored[message_id]
        except UserFacingError as exc:
            logger.warning("A chat change was not stored (kept to store later): %s", exc)
            self.unsaved = str(exc)
            return
        finally:
            self._flushing = False
        self.unsaved = None

    def _write(self, message: Message) -> None:
        """A message the store refuses (too big for it, over the user's bounds) is said beside it
        and stored as a note in its place, so the messages after it are stored all the same."""
        try:
            self._write_as(message)
        except (StoreUnavailable, OurBug):  # not a refusal of this message: said as it is
            raise
        except UserFacingError as exc:
            logger.warning("A message was refused by the store: %s", exc)
            self.refused[message.id] = str(exc)
            self._write_as(message.with_changes(content="", reasoning="", usage=None,
                                                attachments=(),
                                                error=f"{NOT_STORED} {exc}"[:MAX_ERROR_LENGTH]))

    def _write_comparison(self, comparison: Comparison) -> None:
        saved = self.store.save_comparison(comparison)
        if self._unstored_comparisons.get(comparison.id) is comparison:  # not changed meanwhile
            del self._unstored_comparisons[comparison.id]
            self.comparisons = [saved if c.id == saved.id else c for c in self.comparisons]

    def _write_as(self, message: Message) -> None:
        if message.id in self._added:
            self.store.update_message(message.id, _changes(message))
        else:
            self.store.add_message(message)
            self._added.add(message.id)

    def _change_chat(self, **changes) -> None:
        changed = self.chat.with_changes(**changes)
        if changed != self.chat:
            self.chat, self._chat_changed = changed, True

    def _keep_message(self, message: Message, flush: bool = True) -> None:
        self.messages = [m for m in self.messages if m.id != message.id] + [message]
        self._unstored[message.id] = object()  # this change: a write of an older one keeps it
        if not self.chat.title and message.role == "user":
            named = message.content or ", ".join(a.name for a in message.attachments)
            self._change_chat(title=title_from(named))
        if flush:
            self._flush()

    def rename(self, title: str) -> None:
        self._change_chat(title=title.strip()[:MAX_TITLE_LENGTH] or self.chat.title)
        self._flush()

    def keep_options(self, model: str, connection_id: str, system_prompt: str,
                     temperature: float | None, max_tokens: int | None = None,
                     context_window: int | None = None) -> None:
        """Saved with the chat's next change."""
        self._change_chat(model=model, connection_id=connection_id,
                          system_prompt=system_prompt, temperature=temperature,
                          max_tokens=max_tokens, context_window=context_window)

    def add_user(self, text: str, store: bool = True,
                 attachments: tuple[Attachment, ...] = ()) -> None:
        """`store=False`: written with the next change (or `store_again`), e.g. once the reply
        to it was asked for, so the request does not wait for the store."""
        self.retrying = None
        turn = ShownMessage(self.chat.id, "user", text, parent_id=self._leaf_id(),
                            attachments=tuple(attachments))
        self.turns.append(turn)
        self._change_chat(current_id=turn.id)
        self._keep_message(turn, flush=store)

    # ---- a reply run by the server process (core.history.replies): this conversation shows it

    def ask_reply(self, store: bool = True) -> ShownMessage:
        """The reply about to be asked for: an empty "streaming" turn ending the branch. Its
        worker stores it; a Retry's, only once it has text (the retried reply stays current).
        `store=False`: the chat's change is written with the next one."""
        turn = ShownMessage(self.chat.id, "assistant", "", parent_id=self._leaf_id(),
                            status="streaming")
        self.turns.append(turn)
        self.messages = [*self.messages, turn]
        self._added.add(turn.id)
        if self.retrying is None:
            self._change_chat(current_id=turn.id)
        if store:
            self._flush()
        return turn

    def live_turn(self) -> ShownMessage | None:
        """The reply still arriving at the end of the branch on screen, if any."""
        last = self.turns[-1] if self.turns else None
        return last if last is not None and last.status == "streaming" else None

    def end_live(self, final: ShownMessage, stored: bool, added: bool = True) -> None:
        """The live reply as it ended. `stored`: as it ended, by its worker or another process;
        `added`: its row is in the store (else it is added with the next write)."""
        live = self.live_turn()
        if live is None or live.id != final.id:
            return
        if (final.status == "failed" and self.retrying is not None and self.retrying.content
                and not (final.content or final.reasoning)):
            # A Retry that got nothing keeps the reply it retried, with the new error: its
            # worker stored nothing, so the retried reply's own row takes the error here.
            self.messages = [m for m in self.messages if m.id != final.id]
            self._added.discard(final.id)
            final = replace(self.retrying, error=final.error, error_field=final.error_field)
            stored, added = False, True
        self.retrying = None
        self.turns[-1] = final
        self.messages = [m for m in self.messages if m.id != final.id] + [final]
        if not added:
            self._added.discard(final.id)
        if not stored:
            self._unstored[final.id] = object()
        self._change_chat(current_id=final.id)
        self._flush()

    def forget_live(self, message: Message) -> None:
        """A live reply that is not to be found any more (its chat was deleted elsewhere)."""
        self.turns = [t for t in self.turns if t.id != message.id]
        self.messages = [m for m in self.messages if m.id != message.id]

    def usage_line(self, label: str = "", cost: Callable[[Mapping], float] | None = None
                   ) -> str | None:
        """The tokens this chat's replies used (every version), as their servers reported; with
        `cost`, what the replies of the model `label` cost at its stated prices."""
        replies = [m for m in self.messages if m.role == "assistant" and m.usage
                   and TOKEN_COUNTS.intersection(m.usage)]
        if not replies:
            return None
        used = [m.usage for m in replies]
        prompt = sum(u.get("prompt_tokens") or 0 for u in used)
        completion = sum(u.get("completion_tokens") or 0 for u in used)
        total = sum(u.get("total_tokens") or 0 for u in used) or prompt + completion
        line = (f"This chat used {total:,} tokens ({prompt:,} in, {completion:,} out) "
                f"over {_replies(len(used))}")
        priced = [m.usage for m in replies if m.model_label == label]
        if cost is None or not priced:
            return line + "."
        dollars = sum(cost(u) for u in priced)
        which = "" if len(priced) == len(used) else f" (the {_replies(len(priced))} by {label})"
        return f"{line}; about ${dollars:,.4f}{which} at the prices its server states."

    # ---- a comparison: the last message asked of 2-4 models at once, each reply a version

    def ask_compared(self, labels: list[str], blind: bool) -> Comparison:
        """One "streaming" reply per model label, siblings under the last message (the user's),
        which stays the end of the branch on screen until one is picked. Their workers store
        them; the comparison is written with the next change (after its message)."""
        asked = self.turns[-1]
        replies = [ShownMessage(self.chat.id, "assistant", "", parent_id=asked.id,
                                model_label=label, status="streaming") for label in labels]
        self.messages = [*self.messages, *replies]
        self._added.update(r.id for r in replies)
        comparison = Comparison(self.chat.id, asked.id, tuple(r.id for r in replies),
                                tuple(labels), blind=blind)
        self.comparisons = [*self.comparisons, comparison]
        self._unstored_comparisons[comparison.id] = comparison
        self._change_chat(current_id=asked.id)
        return comparison

    def open_comparison(self) -> Comparison | None:
        """The comparison shown at the end of the branch: its message ends the branch."""
        last = self.turns[-1] if self.turns else None
        if last is None or last.role != "user":
            return None
        return next((c for c in reversed(self.comparisons) if c.message_id == last.id), None)

    def comparison_of(self, message: Message) -> Comparison | None:
        """The comparison a reply was one column of."""
        return next((c for c in self.comparisons if message.id in c.reply_ids), None)

    def message(self, message_id: str) -> ShownMessage | None:
        found = next((m for m in reversed(self.messages) if m.id == message_id), None)
        return None if found is None else self._shown(found)

    def end_compared(self, final: ShownMessage, stored: bool, added: bool = True) -> None:
        """A compared reply as it ended (see end_live)."""
        self.messages = [m for m in self.messages if m.id != final.id] + [final]
        self._ended[final.id] = final
        if not added:
            self._added.discard(final.id)
        if not stored:
            self._unstored[final.id] = object()
        self._flush()

    def decide(self, comparison: Comparison, picked_id: str | None, tie: bool = False) -> None:
        """The user's first verdict is kept; a later pick only moves the branch on screen."""
        if not comparison.decided and (picked_id in comparison.reply_ids or tie):
            decided = comparison.with_changes(picked_id=None if tie else picked_id, tie=tie)
            self.comparisons = [decided if c.id == comparison.id else c
                                for c in self.comparisons]
            self._unstored_comparisons[comparison.id] = decided
        if picked_id is not None:
            self.switch_to(picked_id)
        else:
            self._flush()

    def reopen(self, comparison: Comparison) -> None:
        """Show the comparison again: the branch ends at its message."""
        self.turns = [self._shown(m) for m in self.thread().branch(comparison.message_id)]
        self._change_chat(current_id=comparison.message_id)
        self._flush()

    # ---- versions: a regenerated reply or an edited message is a sibling; all stay

    def thread(self) -> Thread:
        """Built once per change, not once per message shown."""
        key = (len(self.messages), self.messages[-1].id if self.messages else None)
        if self._thread is None or self._thread[0] != key:
            self._thread = (key, Thread(self.messages))
        return self._thread[1]

    def switch_to(self, message_id: str) -> None:
        """Show another version: with the branch last viewed under it in this session, else
        its newest."""
        for turn in self.turns:  # where the reader was, under each message of this branch
            self._viewed[turn.id] = self._leaf_id()
        thread = self.thread()
        leaf = self._viewed.get(message_id)
        if leaf is None or message_id not in {m.id for m in thread.branch(leaf)}:
            leaf = thread.newest_leaf(message_id)
        self.turns = [self._shown(m) for m in thread.branch(leaf)]
        self._change_chat(current_id=leaf)
        self._flush()

    def _shown(self, message: Message) -> ShownMessage:
        """A turn this session saw end keeps what only it knows."""
        return (next((t for t in self.turns if t.id == message.id), None)
                or self._ended.get(message.id) or ShownMessage.of(message))

    def _leaf_id(self) -> str | None:
        return self.turns[-1].id if self.turns else None

    def branch_from(self, index: int) -> str:
        """Unshow turn `index` onward (kept stored as the earlier version); its text."""
        text = self.turns[index].content
        del self.turns[index:]
        return text

    def needs_retry(self) -> bool:
        if not self.turns:
            return False
        last = self.turns[-1]
        return last.role == "user" or last.status in ("failed", "interrupted")

    def prepare_regenerate(self) -> bool:
        if self.turns and self.turns[-1].role == "assistant":
            self.retrying = self.turns.pop()
        return bool(self.turns) and self.turns[-1].role == "user"
