"""A conversation: its turns, the reply in flight, and what a retry resends (R4.4)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from core.chat import Reply

STATUS_NOTES = {
    "stopped": "Stopped",
    "interrupted": "Interrupted",
    "incomplete": "Possibly incomplete",
    "failed": "Failed",
}


@dataclass
class Turn:
    role: str  # "user" or "assistant"
    content: str
    model: str = ""  # the label of the model that wrote an assistant turn
    status: str = "complete"
    error: str | None = None
    reasoning: str = ""
    usage: dict | None = None
    error_field: str | None = None  # "key", "base_url" or "model": the setting to fix
    thinking_seconds: float | None = None
    notice: str | None = None  # e.g. the server did not stream this reply

    @property
    def note(self) -> str | None:
        return STATUS_NOTES.get(self.status)

    @property
    def footer(self) -> str:
        """The line under a reply: its model, how it ended if not normally, its usage."""
        parts = [self.model or "unknown model"]
        if self.note:
            parts.append(self.note)
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
    turns: list[Turn] = field(default_factory=list)
    in_flight: Reply | None = None
    retrying: Turn | None = None  # the reply a Retry is replacing, until the new one has text

    def add_user(self, text: str) -> None:
        self.retrying = None
        self.turns.append(Turn("user", text))

    def begin_reply(self) -> Reply:
        self.in_flight = Reply()
        return self.in_flight

    def finish_reply(self, reply: Reply) -> Turn:
        """Record how the reply in flight ended; it is never dropped, even when empty."""
        if reply.status == "streaming":  # the run ended under it: the user pressed Stop
            reply.status = "stopped"
        turn = Turn(
            "assistant",
            reply.text,
            model=reply.label,
            status=reply.status,
            error=reply.error,
            reasoning=reply.reasoning,
            usage=reply.usage,
            error_field=reply.error_field,
            thinking_seconds=reply.thinking_seconds,
            notice=reply.notice,
        )
        if turn.status == "failed" and not turn.content and self.retrying and self.retrying.content:
            # A Retry that got nothing keeps the partial reply it was retrying, with the new error.
            turn = replace(self.retrying, error=turn.error, error_field=turn.error_field)
        self.turns.append(turn)
        self.in_flight = None
        self.retrying = None
        return turn

    def recover(self) -> None:
        """A run that ended mid-reply (Stop, a rerun) leaves its reply in flight: keep it."""
        if self.in_flight is not None:
            self.finish_reply(self.in_flight)

    def last_user_text(self) -> str | None:
        for turn in reversed(self.turns):
            if turn.role == "user":
                return turn.content
        return None

    def needs_retry(self) -> bool:
        """True when the last message got no complete reply: it can be sent again."""
        if not self.turns:
            return False
        last = self.turns[-1]
        return last.role == "user" or last.status in ("failed", "interrupted")

    def prepare_regenerate(self) -> bool:
        """Drop the last assistant reply so the last user message can be answered again."""
        if self.turns and self.turns[-1].role == "assistant":
            self.retrying = self.turns.pop()
        return bool(self.turns) and self.turns[-1].role == "user"

    def take_last_user_message(self) -> str | None:
        """Remove the last user message and what followed it, for editing; return its text."""
        for index in range(len(self.turns) - 1, -1, -1):
            if self.turns[index].role == "user":
                text = self.turns[index].content
                del self.turns[index:]
                return text
        return None

    def history(self) -> list[dict]:
        """What the model sees: complete turns only; failed replies are left out."""
        return [
            {"role": t.role, "content": t.content}
            for t in self.turns
            if t.content and t.status != "failed"
        ]
