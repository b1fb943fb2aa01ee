"""The chat call: one openai client per request, a streamed reply, errors as messages."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import httpx2
import openai

from core.client import Limits, _DoneAwareDecoder, build_client, connection_for
from core.config import Settings
from core.errors import describe_empty_stream, describe_error, describe_stall, describe_stream_end
from core.providers import Target
from core.streaming import ThinkSplitter, Watchdog

COALESCE_SECONDS = 0.05  # at most one page update per 50 ms (FACTS.md: faster freezes the page)
# Every update re-sends and re-renders the whole reply: measured by bench/stream.py part 2.
RENDER_CHARS_PER_SECOND = 100_000


@dataclass
class Reply:
    """An assistant reply as it streams in, and how it ended."""

    model: str = ""
    provider: str = ""
    reasoning: str = ""
    status: str = "streaming"  # complete | stopped | interrupted | incomplete | failed
    finish_reason: str | None = None
    usage: dict | None = None
    error: str | None = None
    started: float = field(default_factory=time.monotonic)
    first_token_seconds: float | None = None
    # Pieces, joined on demand: `text += piece` on an attribute copies the whole text each time.
    parts: list[str] = field(default_factory=list, repr=False)

    @property
    def text(self) -> str:
        if len(self.parts) > 1:
            self.parts[:] = ["".join(self.parts)]
        return self.parts[0] if self.parts else ""

    @text.setter
    def text(self, value: str) -> None:
        self.parts[:] = [value] if value else []

    @property
    def label(self) -> str:
        """The same label the model selector shows (Target.label)."""
        return f"{self.model} · {self.provider}" if self.model else ""


def chat_messages(history: Iterable[dict], system_prompt: str = "") -> list[dict]:
    """The messages to send: the system prompt, then each user/assistant turn's text."""
    messages = [{"role": "system", "content": system_prompt}] if system_prompt.strip() else []
    for turn in history:
        if turn.get("role") in ("user", "assistant") and turn.get("content"):
            messages.append({"role": turn["role"], "content": turn["content"]})
    return messages


def _open_stream(client, target: Target, messages, extra: dict, quirks: set[str]):
    """Start the request; once, without stream_options, for a server that rejects it."""
    wants_usage = target.base_url not in quirks
    try:
        return client.chat.completions.create(
            model=target.model,
            messages=messages,
            stream=True,
            **({"stream_options": {"include_usage": True}} if wants_usage else {}),
            **extra,
        )
    except openai.APIStatusError as exc:
        if not (wants_usage and exc.status_code in (400, 422) and _names_stream_options(exc)):
            raise
    quirks.add(target.base_url)  # remembered for this base URL for the rest of the session
    return client.chat.completions.create(
        model=target.model, messages=messages, stream=True, **extra
    )


def _names_stream_options(exc: openai.APIStatusError) -> bool:
    text = f"{exc.body} {exc.message}".lower()
    return "stream_options" in text or "include_usage" in text


def _raise_error_event(chunk) -> None:
    """An `event: error` SSE that the SDK passed on as a chunk without choices."""
    extra = chunk.model_extra or {}
    if chunk.usage is None and ("error" in extra or "message" in extra):
        raise openai.APIError(
            message="error event", request=None, body=extra.get("error") or extra
        )


def _socket_of(stream) -> object | None:
    network = stream.response.extensions.get("network_stream")
    return network.get_extra_info("socket") if network is not None else None


def stream_reply(
    client: openai.OpenAI,
    target: Target,
    messages: list[dict],
    reply: Reply,
    *,
    temperature: float | None = None,
    limits: Limits = Limits(),
    quirks: set[str] | None = None,
) -> Iterator[str]:
    """Yield the reply's answer text as it arrives, keeping `reply` up to date.

    Never raises for a provider failure: the reply ends 'failed' (nothing arrived) or
    'interrupted' (some text arrived), with `reply.error` written for the user.
    Reasoning (`reasoning_content`, `reasoning`, `<think>`) goes to `reply.reasoning`.
    """
    reply.model, reply.provider = target.model, target.provider_label
    extra = {} if temperature is None else {"temperature": temperature}
    watchdog = Watchdog()
    splitter = ThinkSplitter()
    stream = None
    clock = time.monotonic
    idle = limits.idle
    add = reply.parts.append
    try:
        stream = _open_stream(client, target, messages, extra, quirks if quirks is not None else set())
        stream.response.request.extensions["timeout"]["read"] = limits.body_read_backstop
        waited = clock() - reply.started
        watchdog.watch(_socket_of(stream), limits.first_token - waited, "first_token")
        for chunk in stream:
            if reply.first_token_seconds is not None:
                watchdog.deadline = clock() + idle
            if chunk.usage is not None:
                reply.usage = chunk.usage.model_dump(exclude_none=True)
            if not chunk.choices:
                _raise_error_event(chunk)
                continue
            choice = chunk.choices[0]
            delta = choice.delta
            if delta is not None:
                extra_fields = delta.model_extra
                if extra_fields:
                    thought = extra_fields.get("reasoning_content") or extra_fields.get("reasoning")
                    if isinstance(thought, str):
                        reply.reasoning += thought
                text = delta.content
                if text:
                    answer, thought = splitter.feed(text)
                    if thought:
                        reply.reasoning += thought
                    if answer:
                        if reply.first_token_seconds is None:
                            reply.first_token_seconds = clock() - reply.started
                            watchdog.arm(idle, "idle")
                        add(answer)
                        yield answer
            if choice.finish_reason:
                reply.finish_reason = choice.finish_reason
        answer, thought = splitter.flush()
        reply.reasoning += thought
        if answer:
            add(answer)
            yield answer
    except GeneratorExit:
        reply.status = "stopped"
        raise
    except Exception as exc:  # every provider failure becomes a message, once, here
        _end_with_error(reply, target, limits, watchdog.fired, exc)
        return
    finally:
        watchdog.close()
        if stream is not None:
            stream.close()
    if watchdog.fired:
        _end_with_error(reply, target, limits, watchdog.fired, None)
        return
    _classify_end(reply, target, stream)


def _classify_end(reply: Reply, target: Target, stream) -> None:
    """How a stream that raised nothing ended: finished, cut short, or empty."""
    saw_done = getattr(getattr(stream, "_decoder", None), "saw_done", True)
    if not (reply.parts or reply.reasoning or reply.finish_reason):
        reply.status = "failed"
        content_type = stream.response.headers.get("content-type", "")
        reply.error = describe_empty_stream(target.base_url, content_type)
    elif not reply.finish_reason and not saw_done:
        reply.status = "interrupted"
        reply.error = describe_stream_end("truncated", target.base_url)
    elif not reply.finish_reason:
        reply.status = "incomplete"
        reply.error = describe_stream_end("no_finish_reason", target.base_url)
    elif reply.finish_reason == "length":
        reply.status = "incomplete"
        reply.error = describe_stream_end("length", target.base_url)
    else:
        reply.status = "complete"


def _end_with_error(reply, target, limits, stalled: str, exc: BaseException | None) -> None:
    if not stalled and isinstance(exc, openai.APITimeoutError):
        if isinstance(exc.__cause__, httpx2.ReadTimeout):  # connect timeouts keep their message
            stalled = "idle" if reply.first_token_seconds is not None else "first_token"
    if stalled:
        seconds = limits.first_token if stalled == "first_token" else limits.idle
        reply.error = describe_stall(stalled, seconds, target.base_url)
    else:
        reply.error = describe_error(exc, base_url=target.base_url, secrets=[target.api_key])
    reply.status = "interrupted" if reply.text else "failed"


def coalesce(
    chunks: Iterable[str],
    interval: float = COALESCE_SECONDS,
    render_rate: float = RENDER_CHARS_PER_SECOND,
) -> Iterator[str]:
    """Join chunks so that the page is updated at most once per `interval` seconds.

    Each update re-renders the whole reply, so the interval grows with the text shown
    (at most `render_rate` characters re-rendered per second). The first chunk goes out at
    once, so time to first token is unchanged; the rest goes out when the stream ends.
    """
    pending: list[str] = []
    last = wait = 0.0
    shown = 0
    clock = time.monotonic
    for chunk in chunks:
        pending.append(chunk)
        now = clock()
        if now - last >= wait:
            text = "".join(pending)
            pending.clear()
            shown += len(text)
            last, wait = now, max(interval, shown / render_rate)
            yield text
    if pending:
        yield "".join(pending)



def start_reply(
    settings: Settings,
    target: Target,
    messages: list[dict],
    reply: Reply,
    *,
    temperature: float | None = None,
    quirks: set[str] | None = None,
) -> Iterator[str]:
    """The reply's text stream for `target`, with the limits the settings give."""
    limits, http_client = connection_for(settings)
    client = build_client(target, limits, http_client=http_client)
    return stream_reply(
        client, target, messages, reply, temperature=temperature, limits=limits, quirks=quirks
    )
