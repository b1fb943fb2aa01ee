"""The chat call: one openai client per request, a streamed reply, errors as messages."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field

import httpx2
import openai

from core.attachments.wire import carries_images, content
from core.chat.client import Limits, build_client, connection_for
from core.config import Settings
from core.chat.model_list import read_model_list
from core.chat.netguard import GatheringStream
from core.chat.windows import learn_from_refusal
from core.history.model import Message
from core.chat.errors import (
    NOT_STREAMED,
    PROVIDER_FAILURES,
    MalformedReply,
    ServerReportedError,
    IMAGE_REFUSALS,
    describe_empty_stream,
    describe_images_refused,
    images_refused,
    describe_error,
    describe_stall,
    describe_stream_end,
    for_the_administrator,
    is_web_page,
    provider_message,
    setting_at_fault,
)
from core.providers.connections import MAX_COMPLETION_TOKENS, NO_STREAM_OPTIONS, no_images
from core.providers.kinds import Target, target_secrets
from core.chat.events import ChunkReader, StreamEnd, Thinking, Watchdog, read_events

__all__ = ["Reply", "Thinking", "coalesce", "start_reply", "stream_reply", "wire_messages"]

COALESCE_SECONDS = 0.05  # at most one page update per 50 ms: faster freezes the page
RENDER_CHARS_PER_SECOND = 100_000  # each update re-renders the reply (bench/stream.py part 2)
MAX_UPDATE_SECONDS = 2.0  # however heavy the page, the reply moves at least this often
QUEUE_LIMIT_FACTOR = 5  # keep-alives before the first chunk stretch the first-token limit so far
MODEL_LIST_SECONDS = 5.0  # listing models for an unknown-model message must not hold it up


@dataclass
class Reply:
    model: str = ""
    provider: str = ""
    reasoning: str = ""
    status: str = "streaming"  # complete | stopped | interrupted | incomplete | failed
    finish_reason: str | None = None
    usage: dict | None = None
    error: str | None = None
    # "key", "base_url", "model": the page links to Settings; "conversation": too long to retry
    error_field: str | None = None
    notice: str | None = None  # said under a reply that is fine but unusual
    clock: Callable[[], float] = field(default=time.monotonic, repr=False, compare=False)
    started: float | None = None  # set from `clock` when the reply is created
    first_token_seconds: float | None = None  # until the first answer text
    reasoning_started: float | None = None
    reasoning_ended: float | None = None  # when the answer started or the reply ended
    # Joined on demand: `text += piece` on an attribute copies the whole text each time.
    parts: list[str] = field(default_factory=list, repr=False)
    # Read on any thread while the stream appends: one reader at a time joins only the
    # pieces present when it starts, so no piece is lost.
    _reading: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.started is None:
            self.started = self.clock()

    @property
    def text(self) -> str:
        with self._reading:
            count = len(self.parts)
            if count > 1:
                self.parts[:count] = ["".join(self.parts[:count])]
            return "".join(self.parts)

    def add_answer(self, text: str) -> None:
        if self.first_token_seconds is None:
            self.first_token_seconds = self.clock() - self.started
            self.end_reasoning()
        self.parts.append(text)

    def add_reasoning(self, text: str) -> None:
        if self.reasoning_started is None:
            self.reasoning_started = self.clock()
        self.reasoning += text

    def end_reasoning(self) -> None:
        if self.reasoning_started is not None and self.reasoning_ended is None:
            self.reasoning_ended = self.clock()

    @property
    def thinking_seconds(self) -> float | None:
        if self.reasoning_started is None:
            return None
        end = self.reasoning_ended if self.reasoning_ended is not None else self.clock()
        return max(0.0, end - self.reasoning_started)

    def measures(self) -> dict[str, int]:
        """What the app measured, kept with the reply's usage when it ends: milliseconds from
        the request to the first token (of the answer or its reasoning) and to now, and
        whether the reply room cut it (the stored status alone does not say)."""
        firsts = [self.first_token_seconds] if self.first_token_seconds is not None else []
        if self.reasoning_started is not None:
            firsts.append(self.reasoning_started - self.started)
        timings = {"reply_ms": round(1000 * (self.clock() - self.started))}
        if firsts:
            timings["first_token_ms"] = round(1000 * min(firsts))
        if self.finish_reason == "length":
            timings["cut_at_length"] = 1
        return timings

    @property
    def label(self) -> str:
        """As the model selector shows it (Target.label)."""
        return f"{self.model} · {self.provider}" if self.model else ""


def wire_messages(branch: Iterable[Message], system_prompt: str = "",
                  with_images: bool = True) -> list[dict]:
    """The system prompt when set, then the branch with each message's attachments; failed
    and empty replies left out. `with_images=False`: for a model that takes none, each image
    is named in its place."""
    system = [{"role": "system", "content": system_prompt}] if system_prompt.strip() else []
    return system + [{"role": m.role, "content": content(m, with_images)} for m in branch
                     if (m.content or m.attachments) and m.status != "failed"]


def _open_response(client, stack: ExitStack, target: Target, messages, extra,
                   on_quirk: Callable[[str], None], max_tokens: int | None = None):
    """Retries without stream_options, or with max_completion_tokens, for a server that refuses
    them; each refusal goes to `on_quirk` so the next request asks right away."""
    create = client.chat.completions.with_streaming_response.create
    usage = {} if NO_STREAM_OPTIONS in target.quirks else {
        "stream_options": {"include_usage": True}}
    limit = {} if max_tokens is None else (
        {"max_completion_tokens": max_tokens} if MAX_COMPLETION_TOKENS in target.quirks
        else {"max_tokens": max_tokens})
    while True:  # each retry drops one option for good: at most two
        try:
            return stack.enter_context(create(
                model=target.model, messages=messages, stream=True, **usage, **limit, **extra
            )).http_response
        except openai.APIStatusError as exc:
            if usage and exc.status_code in (400, 422) and _names_stream_options(exc):
                usage = {}
                on_quirk(NO_STREAM_OPTIONS)
            elif "max_tokens" in limit and _wants_max_completion_tokens(exc):
                limit = {"max_completion_tokens": max_tokens}
                on_quirk(MAX_COMPLETION_TOKENS)
            elif carries_images(messages) and (refusal := images_refused(exc, target.model)):
                on_quirk(no_images(target.model))  # said before sending to it from now on
                raise refusal from exc
            else:
                raise


def _wants_max_completion_tokens(exc: openai.APIStatusError) -> bool:
    """OpenAI's reasoning models refuse max_tokens and ask for max_completion_tokens."""
    if exc.status_code != 400:
        return False
    text = (provider_message(exc.body) or exc.message or "").lower()
    return "max_tokens" in text and "max_completion_tokens" in text


def _names_stream_options(exc: openai.APIStatusError) -> bool:
    text = f"{exc.body} {exc.message}".lower()
    return "stream_options" in text or "include_usage" in text


def _allow_long_reads(response: httpx2.Response, limits: Limits) -> None:
    """Past the head the watchdog applies the limits; the read timeout (httpx2's public
    `timeout` extension, read when the body is) only backs it up, should the watchdog die."""
    timeouts = response.request.extensions.get("timeout")
    if isinstance(timeouts, dict):
        timeouts["read"] = max(limits.first_token, limits.idle) + 5


def stream_reply(
    client: openai.OpenAI,
    target: Target,
    messages: list[dict],
    reply: Reply,
    *,
    temperature: float | None = None,
    limits: Limits = Limits(),
    on_quirk: Callable[[str], None] = lambda quirk: None,
    max_tokens: int | None = None,
    watchdog: Watchdog | None = None,
) -> Iterator[str | Thinking]:
    """Answer text and Thinking markers. Never raises: on failure the reply ends 'failed' or
    'interrupted' with `reply.error`; unsupported options go to `on_quirk`. Arming `watchdog`
    to 0 from another thread cuts the stream at once."""
    reply.model, reply.provider = target.model, target.provider_label
    extra = {} if temperature is None else {"temperature": temperature}
    watchdog = watchdog or Watchdog(clock=reply.clock)
    reader = ChunkReader(reply)
    end = StreamEnd()
    try:
        with STREAMING, ExitStack() as stack:
            response = _open_response(client, stack, target, messages, extra, on_quirk,
                                      max_tokens)
            _allow_long_reads(response, limits)
            kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
            if kind == "application/json" or kind.endswith("+json"):
                yield from _whole_reply(response, reader, end)
            else:
                yield from _streamed_reply(response, reader, end, watchdog, limits)
            yield from reader.flush()
    except GeneratorExit:
        reply.status = "stopped"
        raise
    except Exception as exc:  # every failure becomes a message, once, here
        _end_with_error(reply, target, limits, watchdog, exc, client)
        if isinstance(exc, openai.APIStatusError):
            learn_from_refusal(target, provider_message(exc.body) or exc.message)
            if exc.status_code in IMAGE_REFUSALS:
                _blame_images(reply, client, target, messages, on_quirk)
        return
    finally:
        reply.end_reasoning()
        watchdog.close()
    if watchdog.fired:
        _end_with_error(reply, target, limits, watchdog, None, client)
        return
    _classify_end(reply, target, end, kind)
    if reply.status == "failed" and not reply.finish_reason:  # no reply at all
        _blame_images(reply, client, target, messages, on_quirk)
    _address_the_error(reply, target)


IMAGES_PROBE_SECONDS = 20.0


def _blame_images(reply: Reply, client, target: Target, messages: list[dict],
                  on_quirk: Callable[[str], None]) -> None:
    """A request with images that got no reply, or a refusal that does not say why: when the
    same request without its images is answered (one token asked), the model takes no images.
    Some servers (llama.cpp's without a vision projector) just send an empty stream."""
    if reply.parts or reply.reasoning or not carries_images(messages):
        return
    plain = [{**m, "content": "\n\n".join(p.get("text", "") for p in m["content"]
                                           if p.get("type") == "text")}
             if isinstance(m.get("content"), list) else m for m in messages]
    limit = ({"max_completion_tokens": 1} if MAX_COMPLETION_TOKENS in target.quirks
             else {"max_tokens": 1})
    try:
        client.with_options(timeout=IMAGES_PROBE_SECONDS, max_retries=2).chat.completions.create(
            model=target.model, messages=plain, stream=False, **limit)
    except PROVIDER_FAILURES:  # it fails without the images too: not about them
        return
    on_quirk(no_images(target.model))
    reply.error, reply.error_field = describe_images_refused(target.model), None


def _address_the_error(reply: Reply, target: Target) -> None:
    """Operator-set fields send the user to the administrator; the error names a seeded
    connection (a profile's is named by the footer)."""
    if reply.error and reply.error_field in target.operator_fields:
        reply.error = for_the_administrator(reply.error, reply.error_field)
        reply.error_field = None
    if reply.error and not target.connection_id.startswith("profile:") and target.connection_id:
        reply.error = f"{target.provider_label}: {reply.error}"


def _streamed_reply(response, reader: ChunkReader, end: StreamEnd, watchdog: Watchdog,
                    limits: Limits) -> Iterator[str | Thinking]:
    waited = watchdog.clock() - reader.reply.started
    network = response.extensions.get("network_stream")  # httpx2's documented extension
    sock = network.get_extra_info("socket") if network is not None else None
    watchdog.watch(sock, limits.first_token - waited, "first_token")
    idle = limits.idle

    def alive() -> None:
        """Before the reply starts (queued), a keep-alive extends the wait up to
        QUEUE_LIMIT_FACTOR first-token limits, so a queue that never moves is still cut."""
        if watchdog.reason == "idle":
            watchdog.arm(idle, "idle")
            return
        cap = reader.reply.started + limits.first_token * QUEUE_LIMIT_FACTOR
        watchdog.arm(min(limits.first_token, cap - watchdog.clock()), "queued")

    gathering = network if isinstance(network, GatheringStream) else None
    reply = reader.reply
    try:
        for chunk in read_events(response, end, on_comment=alive):
            watchdog.arm(idle, "idle")  # any chunk, reasoning or role-only, is the server replying
            yield from reader.chunk(chunk)
            if gathering and gathering.spacing is None and (reply.parts or reply.reasoning):
                gathering.spacing = read_spacing  # from the second token: the first came at once
    finally:
        if gathering:
            gathering.spacing = None  # the body's last bytes are read at once


def read_spacing() -> float:
    """Seconds between two reads of a reply's bytes once it has started. Crowded (more than
    Streaming.CROWD replies at once) the page shows a reply every COALESCE_SECONDS x crowding:
    reading it more often than half as often wakes its thread for the same text, and at a
    model's pace each wake-up costs more than the chunk it reads. Not crowded: every chunk at
    once."""
    crowd = STREAMING.crowding()
    return COALESCE_SECONDS / 2 * crowd if crowd > 1 else 0.0


def _whole_reply(response, reader: ChunkReader, end: StreamEnd) -> Iterator[str | Thinking]:
    """A server that ignored stream=true and sent one chat.completion: it is the reply."""
    body = json.loads(response.read())
    if not isinstance(body, dict):
        raise MalformedReply("a JSON answer that is not an object")
    if body.get("error") or (not body.get("choices") and provider_message(body)):
        raise ServerReportedError(body.get("error") or body)
    end.saw_done = True
    if body.get("choices"):
        reader.reply.notice = NOT_STREAMED
    yield from reader.chunk(body)


# Finish reasons of a finished reply, Anthropic's and Gemini's included; none at all is
# "Possibly incomplete".
FINISHED = frozenset({"stop", "eos", "end_turn", "stop_sequence", "tool_calls", "function_call",
                      "tool_use"})
CUT_BY_PROVIDER = {"content_filter": "content_filter", "safety": "content_filter",
                   "recitation": "content_filter", "refusal": "content_filter",
                   "error": "provider_error"}  # compared in lower case


def _classify_end(reply: Reply, target: Target, end: StreamEnd, content_type: str) -> None:
    if not (reply.parts or reply.reasoning or reply.finish_reason):
        reply.status = "failed"
        reply.error = describe_empty_stream(target.base_url, content_type, end.head)
        # A web page (a sign-in portal or gateway) says nothing against the base URL.
        web_page = is_web_page(content_type, end.head)
        if content_type and content_type != "text/event-stream" and not web_page:
            reply.error_field = "base_url"  # an HTML page or other JSON: not a chat API
    elif not reply.finish_reason and not end.saw_done:
        reply.status = "interrupted"
        reply.error = describe_stream_end("truncated", target.base_url)
    elif not reply.finish_reason:
        reply.status = "incomplete"
        reply.error = describe_stream_end("no_finish_reason", target.base_url)
    elif reply.finish_reason == "length":
        reply.status = "incomplete"
        reply.error = describe_stream_end("length", target.base_url)
    elif reply.finish_reason.lower() in CUT_BY_PROVIDER:
        # Cut by the provider, not finished: Retry is offered; with no text, the note is shown.
        reply.status = "interrupted" if reply.parts else "failed"
        reply.error = describe_stream_end(CUT_BY_PROVIDER[reply.finish_reason.lower()],
                                          target.base_url)
    elif reply.finish_reason.lower() in FINISHED:
        reply.status = "complete"
    else:  # a finish reason no server documents: shown, not taken as a finished reply
        reply.status = "incomplete"
        reply.error = describe_stream_end("unknown_finish", target.base_url,
                                          reason=reply.finish_reason)


def _stall(watchdog: Watchdog, limits: Limits, exc: BaseException | None
           ) -> tuple[str, float] | None:
    """The limit that cut the reply and its seconds of silence, if a limit did."""
    read_timeout = isinstance(exc, httpx2.ReadTimeout) or (
        isinstance(exc, openai.APITimeoutError) and isinstance(exc.__cause__, httpx2.ReadTimeout)
    )
    if not (watchdog.fired or read_timeout):
        return None
    limit = watchdog.fired or ("idle" if watchdog.reason == "idle" else "first_token")
    queued = limits.first_token * QUEUE_LIMIT_FACTOR
    return limit, {"first_token": limits.first_token, "queued": queued, "idle": limits.idle}[limit]


def _end_with_error(reply, target, limits, watchdog: Watchdog, exc, client) -> None:
    stall = _stall(watchdog, limits, exc)
    if stall is not None:
        reply.error = describe_stall(*stall, target.base_url)
    else:
        reply.error_field = setting_at_fault(exc)
        models = _models_offered(client) if reply.error_field == "model" and client else []
        reply.error = describe_error(
            exc, base_url=target.base_url, secrets=target_secrets(target), model=target.model,
            models=models,
        )
    reply.status = "interrupted" if reply.text else "failed"
    _address_the_error(reply, target)


def _models_offered(client: openai.OpenAI) -> list[str]:
    try:
        return read_model_list(client, timeout=MODEL_LIST_SECONDS)
    except (*PROVIDER_FAILURES, ValueError):  # no list, or not one: the message goes without
        return []


class Streaming:
    """How many replies this process streams now: the page updates less often while many do."""

    CROWD = 10  # replies streaming at once before updates slow down
    MOST = 5.0  # at most this many times slower (0.25 s between updates)

    def __init__(self) -> None:
        self.now = 0
        self._lock = threading.Lock()

    def __enter__(self) -> "Streaming":
        with self._lock:
            self.now += 1
        return self

    def __exit__(self, *exc) -> None:
        with self._lock:
            self.now -= 1

    def crowding(self) -> float:
        return min(self.MOST, max(1.0, self.now / self.CROWD))


STREAMING = Streaming()  # a count, no user data: every session of the process shares it


def close_source(source: Iterable) -> None:
    """Closing ends the HTTP response, so the server stops."""
    close = getattr(source, "close", None)
    if close is not None:
        close()


def coalesce(
    chunks: Iterable[str | Thinking],
    interval: float = COALESCE_SECONDS,
    render_rate: float = RENDER_CHARS_PER_SECOND,
    *,
    on_thinking: Callable[[], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    rendered: Callable[[], int] | None = None,
    crowd: Callable[[], float] = lambda: STREAMING.crowding(),
) -> Iterator[str]:
    """Chunks joined into at most one update per `interval`, stretched by the update's cost
    (`rendered()` chars at `render_rate`/s, up to MAX_UPDATE_SECONDS) and by `crowd()`.
    Thinking markers call `on_thinking()` at most once per `interval`, and once at the end."""
    pending: list[str] = []
    last = wait = 0.0
    shown = 0
    thought_at = float("-inf")
    unshown_thought = False
    try:
        for chunk in chunks:
            now = clock()
            if isinstance(chunk, Thinking):
                unshown_thought = True
                if on_thinking is not None and now - thought_at >= interval:
                    thought_at, unshown_thought = now, False
                    on_thinking()
                continue
            pending.append(chunk)
            if now - last >= wait:
                text = "".join(pending)
                pending.clear()
                shown += len(text)
                yield text
                cost = rendered() if rendered is not None else shown
                last = now
                wait = max(interval * crowd(), min(cost / render_rate, MAX_UPDATE_SECONDS))
    finally:  # closed early (Stop): end the stream now, not when it is garbage-collected
        close_source(chunks)
    if unshown_thought and on_thinking is not None:
        on_thinking()
    if pending:
        yield "".join(pending)


def start_reply(
    settings: Settings,
    target: Target,
    messages: list[dict],
    reply: Reply,
    *,
    temperature: float | None = None,
    on_quirk: Callable[[str], None] = lambda quirk: None,
    watchdog: Watchdog | None = None,
    max_tokens: int | None = None,
) -> Iterator[str | Thinking]:
    """Never raises."""
    try:
        limits, http_client = connection_for(settings)
        client = build_client(target, limits, http_client=http_client)
    except Exception as exc:  # e.g. a base URL the HTTP client cannot parse
        reply.model, reply.provider = target.model, target.provider_label
        _end_with_error(reply, target, Limits(), Watchdog(), exc, None)
        return iter(())
    return stream_reply(
        client, target, messages, reply, temperature=temperature, limits=limits,
        on_quirk=on_quirk, watchdog=watchdog, max_tokens=max_tokens,
    )
