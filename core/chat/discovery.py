"""Model discovery (`GET {base}/models`) and "Test connection". Every request goes through
`build_client`; probes for a missing or extra `/v1` change only the path, so the key stays put."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, closing, contextmanager
from dataclasses import dataclass

import httpx2
import openai

from core.chat.client import Limits, build_client
from core.failures import UserFacingError
from core.chat.call import Reply, Thinking, stream_reply
from core.chat.errors import describe_empty_stream, describe_error
from core.chat.model_list import _NotAModelList, read_model_list
from core.redaction import redact
from core.providers.kinds import Target, target_secrets

LIST_STEP = "List models"
CHAT_STEP = "One-token chat"
PING_MESSAGES = [{"role": "user", "content": "Hi"}]
MAX_TEST_CHUNKS = 64  # a server that ignores max_tokens=1 is not read to the end
_SHOWN_MODELS = 10


class DiscoveryError(UserFacingError):
    """`kind`: not_listed, wrong_base_url (lacks or doubles /v1), unreachable, auth,
    bad_response (200, not a model list) or server_error."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


# ---------------------------------------------------------------- list_models


@contextmanager
def _client(target: Target, limits: Limits, http_client: httpx2.Client | None) -> Iterator[openai.OpenAI]:
    client = build_client(target, limits, http_client)
    try:
        yield client
    finally:
        if http_client is None:  # closing ours; the caller's client stays the caller's
            client.close()


def _get_models(target: Target, limits: Limits, http_client: httpx2.Client | None) -> list[str]:
    with _client(target, limits, http_client) as client:
        return read_model_list(client)


def _answers(target: Target, base_url: str, limits: Limits, http_client: httpx2.Client | None) -> bool:
    """Whether {base_url}/models exists: it lists models, or asks for a key (401/403)."""
    probe = dataclasses.replace(target, base_url=base_url)
    try:
        _get_models(probe, limits, http_client)
    except openai.APIStatusError as exc:
        return exc.status_code in (401, 403)
    except Exception:
        return False
    return True


def _not_found(target: Target, limits: Limits, http_client: httpx2.Client | None) -> DiscoveryError:
    """A 404 at {base}/models: a wrong base URL if a probe says so, else unlisted."""
    base = target.base_url.rstrip("/")
    without = base.removesuffix("/v1") if base.endswith("/v1") else None
    if base.endswith("/v1/v1") or (without and _answers(target, without, limits, http_client)):
        return DiscoveryError(
            f"Nothing was found at {base}/models (404): the base URL has an extra /v1. "
            f"Remove the extra /v1 (use {without}).",
            "wrong_base_url",
        )
    if without is None and _answers(target, base + "/v1", limits, http_client):
        return DiscoveryError(
            f"Nothing was found at {base}/models (404), but {base}/v1/models answers: "
            f"add /v1 to the end of the base URL (use {base}/v1).",
            "wrong_base_url",
        )
    return DiscoveryError(
        f"This server does not list its models ({base}/models not found); "
        "type the model name by hand.",
        "not_listed",
    )


def list_models(
    target: Target, limits: Limits = Limits(), http_client: httpx2.Client | None = None
) -> list[str]:
    """Sorted unique model ids; any failure raises DiscoveryError, written for the user."""
    secrets = target_secrets(target)
    try:
        return _get_models(target, limits, http_client)
    except _NotAModelList as exc:
        message = (
            f"The server at {target.base_url} answered {target.base_url}/models with {exc}. "
            "Check the base URL, or type the model name by hand."
        )
        raise DiscoveryError(redact(message, secrets), "bad_response") from None
    except Exception as exc:  # an error status; connection, TLS, timeout, the network guard
        kind = "unreachable"
        if isinstance(exc, openai.APIStatusError):
            if exc.status_code in (404, 405):
                error = _not_found(target, limits, http_client)
                raise DiscoveryError(redact(str(error), secrets), error.kind) from None
            kind = "auth" if exc.status_code in (401, 403) else "server_error"
        message = describe_error(exc, base_url=target.base_url, secrets=secrets)
        raise DiscoveryError(message, kind) from None


# ---------------------------------------------------------------- test_connection


@dataclass(frozen=True)
class Step:
    """One step of a connection test. `warning`: it passed, with something to say."""

    name: str
    ok: bool
    detail: str
    seconds: float
    warning: bool = False

    @property
    def summary(self) -> str:
        mark = "✗" if not self.ok else ("⚠" if self.warning else "✓")
        return f"{mark} {self.name} ({self.seconds * 1000:.0f} ms): {self.detail}"


@dataclass(frozen=True)
class ConnectionReport:
    """What "Test connection" found: every step that ran, and the chat latency on success."""

    steps: tuple[Step, ...]
    warnings: tuple[str, ...] = ()
    first_chunk_ms: float | None = None
    total_ms: float | None = None  # None when a step failed

    @property
    def failed_step(self) -> Step | None:
        return next((step for step in self.steps if not step.ok), None)

    @property
    def ok(self) -> bool:
        return self.failed_step is None

    @property
    def detail(self) -> str:
        failed = self.failed_step
        if failed is not None:
            return f"the step '{failed.name}' failed: {failed.detail}"
        return (f"first chunk after {self.first_chunk_ms:.0f} ms, "
                f"whole reply in {self.total_ms:.0f} ms.")

    @property
    def summary(self) -> str:
        head = ("Connection works: " if self.ok else "Connection test failed: ") + self.detail
        lines = [head, *(step.summary for step in self.steps)]
        lines += [f"Warning: {warning}" for warning in self.warnings]
        return "\n".join(lines)


def _listed(model: str, models: list[str]) -> bool:
    """Whether `model` is among `models` (Ollama's `name` stands for `name:latest`)."""
    names = set(models)
    return model in names or f"{model}:latest" in names or model.removesuffix(":latest") in names


def _models_step(
    target: Target, limits: Limits, http_client: httpx2.Client | None
) -> tuple[Step, list[str], list[str]]:
    """The step (the test goes on if it passed), the models, and warnings."""
    started = time.monotonic()
    try:
        models = list_models(target, limits, http_client)
    except DiscoveryError as exc:
        seconds = time.monotonic() - started
        if exc.kind in ("not_listed", "bad_response", "server_error"):
            # Listing is optional for chatting: say so, and see whether chat works.
            return Step(LIST_STEP, True, str(exc), seconds, warning=True), [], [str(exc)]
        return Step(LIST_STEP, False, str(exc), seconds), [], []
    seconds = time.monotonic() - started
    warnings = []
    if not models:
        detail = "The server lists no models."
        warnings.append("The server's model list is empty; type the model name by hand.")
    else:
        shown = ", ".join(models[:_SHOWN_MODELS]) + (" …" if len(models) > _SHOWN_MODELS else "")
        detail = f"{len(models)} model{'s' if len(models) != 1 else ''}: {shown}"
        if target.model and not _listed(target.model, models):
            warnings.append(
                f"The model '{target.model}' is not among the models this server lists; "
                "chat may fail or use another model. Check the model name."
            )
    secrets = target_secrets(target)
    warnings = [redact(w, secrets) for w in warnings]
    step = Step(LIST_STEP, True, redact(detail, secrets), seconds, warning=bool(warnings))
    return step, models, warnings


def _chat_step(
    target: Target, limits: Limits, http_client: httpx2.Client | None,
    models: Sequence[str] = (),
) -> tuple[Step, float | None, float | None, str | None]:
    """The step, first-chunk and total ms, a warning. Read by `stream_reply`, so a server is
    judged as chat will judge it; `models` are offered if the model is unknown."""
    secrets = target_secrets(target)
    if not target.model.strip():
        return Step(CHAT_STEP, False, "No model name is set: enter one in Settings.", 0.0), None, None, None
    started = time.monotonic()
    first: float | None = None
    chunks = 0
    cut_short = False
    reply = Reply()
    with ExitStack() as stack:
        try:
            client = stack.enter_context(_client(target, limits, http_client))
        except Exception as exc:  # e.g. a base URL the HTTP client cannot parse
            message = describe_error(exc, base_url=target.base_url, secrets=secrets,
                                     model=target.model, models=models)
            return Step(CHAT_STEP, False, message, 0.0), None, None, None
        stream = stream_reply(client, target, PING_MESSAGES, reply, limits=limits, max_tokens=1)
        with closing(stream):
            for piece in stream:
                if first is None:
                    first = time.monotonic()
                if not isinstance(piece, Thinking):
                    chunks += 1
                if chunks >= MAX_TEST_CHUNKS and reply.finish_reason is None:
                    cut_short = True
                    break
        ended = time.monotonic()  # before closing our client: that is not latency
    finish, seconds = reply.finish_reason, ended - started
    if reply.status in ("failed", "interrupted") and not _sent_nothing(reply, target):
        message = redact(reply.error or "The reply failed.", secrets)
        return Step(CHAT_STEP, False, message, seconds), None, None, None
    if first is None and (finish is None or _sent_nothing(reply, target)):
        detail = "The server accepted the chat request but sent nothing back."
        return Step(CHAT_STEP, False, detail, seconds), None, None, None
    if first is None:  # only a finish reason came (a one-token limit spent on nothing shown)
        first = ended
    first_ms, total_ms = (first - started) * 1000, (ended - started) * 1000
    detail = (
        f"model '{target.model}' answered: first chunk after {first_ms:.0f} ms, "
        f"done after {total_ms:.0f} ms."
    )
    warning = None
    if cut_short:
        warning = f"The server ignored the 1-token limit; stopped reading after {chunks} chunks."
    elif finish is None:
        warning = "The stream ended without a finish reason; replies may be cut short."
    if warning:
        detail += " " + warning
    step = Step(CHAT_STEP, True, redact(detail, secrets), seconds, warning=warning is not None)
    return step, first_ms, total_ms, warning


def _sent_nothing(reply, target: Target) -> bool:
    """A 200 event stream with no chunk in it (said as the chat request sending nothing back)."""
    return bool(reply.error) and reply.error.endswith(
        describe_empty_stream(target.base_url, "text/event-stream"))


def test_connection(
    target: Target, limits: Limits = Limits(), http_client: httpx2.Client | None = None
) -> ConnectionReport:
    """List the models, then a one-token chat; a server's failure is reported, not raised."""
    list_step, models, warnings = _models_step(target, limits, http_client)
    if not list_step.ok:
        return ConnectionReport((list_step,))
    chat_step, first_ms, total_ms, chat_warning = _chat_step(target, limits, http_client, models)
    return ConnectionReport(
        steps=(list_step, chat_step),
        warnings=tuple([*warnings, chat_warning] if chat_warning else warnings),
        first_chunk_ms=first_ms,
        total_ms=total_ms,
    )


# pytest collects module-level functions named test_*; this one is not a test.
test_connection.__test__ = False  # type: ignore[attr-defined]
