"""How much of a model's context window the next request takes, and what the user could do
when it does not fit. Nothing here drops anything: it only says what would have to go."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

WARN_SHARE = 0.8  # the window's share from which the page warns
DEFAULT_REPLY_SHARE = 0.2  # of the window, kept for the reply when the chat sets no max_tokens
DEFAULT_REPLY_CAP = 4096


@dataclass(frozen=True)
class Plan:
    """What would have to go for the request to fit: attachments (name, tokens), largest
    first, then the oldest `messages` earlier messages. `fits`: that is enough."""

    attachments: tuple[tuple[str, int], ...] = ()
    messages: int = 0
    message_tokens: int = 0
    fits: bool = True


@dataclass(frozen=True)
class Budget:
    """`conversation`: the earlier messages with the system prompt and the template's share;
    `earlier`: each earlier message's tokens, oldest first (what could be left out);
    `attachments`: the draft's, tokens by name; `max_tokens`: the chat's reply room, if set."""

    window: int | None
    conversation: int = 0
    draft: int = 0
    attachments: Mapping[str, int] = field(default_factory=dict)
    max_tokens: int | None = None
    exact: bool = True
    earlier: tuple[int, ...] = ()

    @property
    def reply_room(self) -> int:
        if self.max_tokens is not None:
            return self.max_tokens
        if self.window is None:
            return 0
        return min(int(self.window * DEFAULT_REPLY_SHARE), DEFAULT_REPLY_CAP)

    @property
    def used(self) -> int:
        return self.conversation + self.draft + sum(self.attachments.values()) + self.reply_room

    @property
    def share(self) -> float | None:
        return None if not self.window else self.used / self.window

    @property
    def state(self) -> str:
        """"unknown" without a window, "over" past it, "warn" from 80% of it, else "ok"."""
        if not self.window:
            return "unknown"
        if self.used > self.window:
            return "over"
        if self.used * 5 >= self.window * 4:  # exactly 80%, no float rounding
            return "warn"
        return "ok"

    def plan(self) -> Plan:
        """Attachments largest first, then the oldest messages, until the request fits."""
        if self.state != "over":
            return Plan()
        need = self.used - self.window
        dropped: list[tuple[str, int]] = []
        for name, tokens in sorted(self.attachments.items(), key=lambda item: -item[1]):
            if need <= 0:
                break
            dropped.append((name, tokens))
            need -= tokens
        messages = message_tokens = 0
        for tokens in self.earlier:
            if need <= 0:
                break
            messages += 1
            message_tokens += tokens
            need -= tokens
        return Plan(tuple(dropped), messages, message_tokens, fits=need <= 0)

    def _tokens(self, count: int) -> str:
        return f"{'' if self.exact else '≈'}{count:,} token{'' if count == 1 else 's'}"

    def warning(self) -> str | None:
        """The sentence for a request at 80% of the window or more, else None."""
        if self.state != "warn":
            return None
        return (f"This request takes {self.share:.0%} of the model's context window "
                f"({self._tokens(self.used)} of {self.window:,}, with {self._tokens(self.reply_room)} "
                "kept for the reply).")

    def advice(self) -> str | None:
        """For a request over the window: what the user could leave out, or that the message
        alone does not fit. None when it fits."""
        if self.state != "over":
            return None
        head = (f"This request needs {self._tokens(self.used)} (with {self._tokens(self.reply_room)} "
                f"kept for the reply) but the model's context window is {self.window:,}.")
        plan = self.plan()
        if not plan.fits:
            return (f"{head} Your message alone does not fit: shorten it, "
                    "lower the reply's maximum length or use a model with a larger window.")
        steps = []
        if plan.attachments:
            names = ", ".join(f"{name} ({self._tokens(tokens)})" for name, tokens in plan.attachments)
            steps.append(f"remove the attachment{'s' if len(plan.attachments) > 1 else ''} {names}")
        if plan.messages:
            which = "message" if plan.messages == 1 else f"{plan.messages} messages"
            steps.append(f"leave out the oldest {which} of this chat "
                         f"({self._tokens(plan.message_tokens)}), e.g. by starting a new chat")
        return f"{head} To fit, {' and '.join(steps)}. Nothing is left out unless you do so."
