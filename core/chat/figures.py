"""How a reply performed, side by side with others: time to first token, tokens per second,
tokens, how it ended. From a reply still arriving (its Reply) or as stored (its usage)."""

from __future__ import annotations

from dataclasses import dataclass

from core.chat.call import Reply
from core.history.model import Message

# Characters per token when the server does not say how many it sent (marked ≈).
CHARS_PER_TOKEN = 4.0

ENDINGS = {
    "streaming": "streaming",
    "complete": "complete",
    "stopped": "stopped",
    "failed": "error",
    "interrupted": "interrupted",
    "incomplete": "incomplete",
}


@dataclass(frozen=True)
class Figures:
    first_token: float | None  # seconds from the request; None: no token (yet)
    seconds: float | None  # from the request to the end (or to now, while it arrives)
    tokens: int  # of the reply (reasoning included when the server counts it)
    estimated: bool  # `tokens` is a guess from the characters: the server did not say
    ending: str  # one of ENDINGS' values, or "length" (the reply room cut it)

    @property
    def per_second(self) -> float | None:
        """Tokens per second from the first token on; None before two figures are known."""
        if self.first_token is None or self.seconds is None or not self.tokens:
            return None
        generating = self.seconds - self.first_token
        return self.tokens / generating if generating > 0.05 else None

    def line(self) -> str:
        """e.g. "first token 0.21 s · 87 tok/s · 412 tokens · complete"."""
        about = "≈" if self.estimated else ""
        parts = [f"first token {_seconds(self.first_token)}" if self.first_token is not None
                 else "no token yet" if self.ending == "streaming" else "no token"]
        if (rate := self.per_second) is not None:
            parts.append(f"{about}{rate:,.0f} tok/s")
        parts += [f"{about}{self.tokens:,} tokens", self.ending]
        return " · ".join(parts)


def _seconds(value: float) -> str:
    return f"{value:.2f} s" if value < 10 else f"{value:.1f} s"


def _estimate(text: str, reasoning: str) -> int:
    return round((len(text) + len(reasoning)) / CHARS_PER_TOKEN)


def of_reply(reply: Reply, ended: bool = False) -> Figures:
    """A reply as it arrives, or as it ended (one still "streaming" then was stopped)."""
    measured = reply.measures()
    completion = (reply.usage or {}).get("completion_tokens")
    first = measured.get("first_token_ms")
    status = reply.status if reply.status != "streaming" else "stopped"
    ending = ("streaming" if not ended else "length" if measured.get("cut_at_length")
              else ENDINGS[status])
    return Figures(None if first is None else first / 1000, measured["reply_ms"] / 1000,
                   completion if completion is not None else _estimate(reply.text,
                                                                       reply.reasoning),
                   completion is None, ending)


def of_message(message: Message) -> Figures:
    """A reply as stored (its usage holds the measures taken as it ended)."""
    usage = message.usage or {}
    ending = ENDINGS[message.status]
    if usage.get("cut_at_length"):
        ending = "length"
    completion = usage.get("completion_tokens")
    first, total = usage.get("first_token_ms"), usage.get("reply_ms")
    return Figures(None if first is None else first / 1000,
                   None if total is None else total / 1000,
                   completion if completion is not None else _estimate(message.content,
                                                                       message.reasoning),
                   completion is None, ending)
