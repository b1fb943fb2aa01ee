"""The chat call: one openai client per request, a streamed reply, errors as messages."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import httpx2
import openai

from core.config import Settings
from core.errors import describe_error
from core.providers import Target

COALESCE_SECONDS = 0.05  # at most one page update per 50 ms (FACTS.md: faster freezes the page)
NO_KEY_PLACEHOLDER = "no-key"  # the SDK insists on a key; keyless local servers ignore it


@dataclass
class Reply:
    """An assistant reply as it streams in, and how it ended."""

    model: str = ""
    provider: str = ""
    text: str = ""
    reasoning: str = ""
    status: str = "streaming"  # complete | stopped | interrupted | incomplete | failed
    finish_reason: str | None = None
    usage: dict | None = None
    error: str | None = None
    started: float = field(default_factory=time.monotonic)
    first_token_seconds: float | None = None

    @property
    def ended(self) -> bool:
        return self.status != "streaming"


@dataclass(frozen=True)
class Limits:
    connect: float = 5.0
    first_token: float = 60.0
    idle: float = 30.0


def build_client(
    target: Target, limits: Limits = Limits(), http_client: httpx2.Client | None = None
) -> openai.OpenAI:
    """A client that talks to exactly `target.base_url` (P4) and never retries on its own."""
    return openai.OpenAI(
        api_key=target.api_key or NO_KEY_PLACEHOLDER,
        organization=target.organization,
        project=None,
        base_url=target.base_url,
        timeout=httpx2.Timeout(
            connect=limits.connect, read=max(limits.first_token, limits.idle), write=30, pool=5
        ),
        max_retries=0,  # the page offers Retry; silent retries only delay the error
        http_client=http_client,
    )


def chat_messages(history: Iterable[dict], system_prompt: str = "") -> list[dict]:
    """The messages to send: the system prompt, then each user/assistant turn's text."""
    messages = [{"role": "system", "content": system_prompt}] if system_prompt.strip() else []
    for turn in history:
        if turn.get("role") in ("user", "assistant") and turn.get("content"):
            messages.append({"role": turn["role"], "content": turn["content"]})
    return messages


def stream_reply(
    client: openai.OpenAI,
    target: Target,
    messages: list[dict],
    reply: Reply,
    *,
    temperature: float | None = None,
) -> Iterator[str]:
    """Yield the reply's text as it arrives, keeping `reply` up to date.

    Never raises for a provider failure: the reply ends 'failed' (nothing arrived) or
    'interrupted' (some text arrived), with `reply.error` written for the user.
    """
    reply.model, reply.provider = target.model, target.provider_label
    try:
        extra = {} if temperature is None else {"temperature": temperature}
        stream = client.chat.completions.create(
            model=target.model, messages=messages, stream=True, **extra
        )
        with stream:
            for chunk in stream:
                if not chunk.choices:
                    if chunk.usage is not None:
                        reply.usage = chunk.usage.model_dump()
                    continue
                choice = chunk.choices[0]
                delta = choice.delta
                if delta is not None:
                    extra_fields = delta.model_extra
                    if extra_fields:
                        thought = extra_fields.get("reasoning_content") or extra_fields.get(
                            "reasoning"
                        )
                        if isinstance(thought, str):
                            reply.reasoning += thought
                    text = delta.content
                    if text:
                        if reply.first_token_seconds is None:
                            reply.first_token_seconds = time.monotonic() - reply.started
                        reply.text += text
                        yield text
                if choice.finish_reason:
                    reply.finish_reason = choice.finish_reason
                if chunk.usage is not None:
                    reply.usage = chunk.usage.model_dump()
    except GeneratorExit:
        reply.status = "stopped"
        raise
    except Exception as exc:  # every provider failure becomes a message, once, here
        reply.error = describe_error(exc, base_url=target.base_url, secrets=[target.api_key])
        reply.status = "interrupted" if reply.text else "failed"
        return
    reply.status = "complete" if reply.finish_reason else "incomplete"
    if reply.status == "incomplete":
        reply.error = "The server ended the reply without saying it was finished; it may be cut short."


def coalesce(chunks: Iterable[str], interval: float = COALESCE_SECONDS) -> Iterator[str]:
    """Join chunks so that a page is updated at most once per `interval` seconds.

    The first chunk goes out at once, so time to first token is unchanged.
    """
    pending: list[str] = []
    last = 0.0
    clock = time.monotonic
    for chunk in chunks:
        pending.append(chunk)
        now = clock()
        if now - last >= interval:
            yield "".join(pending)
            pending.clear()
            last = now
    if pending:
        yield "".join(pending)


def limits_for(settings: Settings) -> Limits:
    return Limits(settings.connect_timeout, settings.first_token_timeout, settings.idle_timeout)


def start_reply(
    settings: Settings,
    target: Target,
    messages: list[dict],
    reply: Reply,
    *,
    temperature: float | None = None,
) -> Iterator[str]:
    """The reply's text stream for `target`, with the limits the settings give."""
    client = build_client(target, limits_for(settings))
    return stream_reply(client, target, messages, reply, temperature=temperature)
