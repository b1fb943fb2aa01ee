"""A server's or the network's failure as a message for the user, here only: built on openai's
exception classes and `e.body`, never `str(e)`; keys redacted. Anything else is our bug."""

from __future__ import annotations

import json
import logging
import re
import socket
import ssl
from collections.abc import Iterable

import httpx2
import openai

from core.failures import UserFacingError, causes, ours
from core.redaction import collapse, redact

logger = logging.getLogger(__name__)

_TAG = re.compile(r"<[^>]+>")
_TITLE = re.compile(r"<title[^>]*>(.*?)</title\s*>", re.S | re.I)
_H1 = re.compile(r"<h1[^>]*>(.*?)</h1\s*>", re.S | re.I)


class MalformedReply(Exception):
    """Not JSON, or not the shape of a chat reply."""


class ServerReportedError(Exception):
    """An error the server sent inside a 200 reply (an `error` event, or an `error` field)."""

    def __init__(self, body: object) -> None:
        super().__init__("the server reported an error")
        self.body = body


_TRACEBACK = "Traceback (most recent call last)"
_STACK_LINE = re.compile(r"^\s*(File \"[^\n]*\", line \d+|at \S+\(.*\)$)", re.M)
# "ValueError: RuntimeError: the message", or a proxy's "OpenAIException - litellm.MockException:
# the message": the class names mean nothing to a user.
_ERROR_PREFIXES = re.compile(r"^(?:[A-Za-z_][\w.]*(?:Error|Exception)\s*(?::|\s-)\s*)+")


def _human_part(text: str) -> str:
    """A provider's text without stack traces or exception-class prefixes, collapsed and capped."""
    before, _, trace = text.partition(_TRACEBACK)
    if trace and not before.strip():  # only a traceback: its last line is the message
        lines = [line for line in trace.splitlines() if line.strip()]
        before = lines[-1] if lines else ""
    stack = _STACK_LINE.search(before)
    if stack:
        before = before[: stack.start()]
    before = before.strip()
    return collapse(_ERROR_PREFIXES.sub("", before) or before)


def _from_html(text: str) -> str | None:
    """A short line from an HTML error page (its title or heading), never the markup."""
    for pattern in (_TITLE, _H1):
        match = pattern.search(text)
        if match:
            inner = collapse(_TAG.sub(" ", match.group(1)))
            if inner:
                return inner
    return None


def _looks_like_html(text: str) -> bool:
    head = text.lstrip()[:200].lower()
    return head.startswith(("<!doctype", "<html", "<head", "<body")) or "<html" in head


def _message_in(value: object, depth: int = 0) -> str | None:
    """The provider's message inside a decoded error body, in any shape we know."""
    if depth > 4 or value is None:
        return None
    if isinstance(value, bool):  # the whole body "true" or "false": plain text that parses
        return str(value).lower() if depth == 0 else None
    if isinstance(value, (int, float)):  # a plain-text body that happens to parse as JSON
        return str(value)
    if isinstance(value, str):
        stripped = value.strip()
        if stripped[:1] in "{[":
            try:
                return _message_in(json.loads(stripped), depth + 1)
            except ValueError:
                pass
        if _looks_like_html(stripped):
            return _from_html(stripped)
        return _human_part(_TAG.sub(" ", stripped) if "<" in stripped else stripped) or None
    if isinstance(value, list):
        parts = [m for item in value[:5] if (m := _message_in(item, depth + 1))]
        return "; ".join(parts) or None
    if isinstance(value, dict):
        # {"error": {"message": ...}}, {"error": "..."}, {"message": ...}, {"detail": ...},
        # FastAPI's {"detail": [{"msg": ...}]}, {"errors": [...]}, {"error_message": ...}
        for key in ("error", "message", "detail", "msg", "error_message", "errors", "title"):
            if key in value:
                found = _message_in(value[key], depth + 1)
                if found:
                    return found
    return None


def provider_message(body: object) -> str | None:
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    return _message_in(body)


def _said_in(exc: openai.APIStatusError) -> str | None:
    body = exc.body
    if body is None or isinstance(body, (bool, int, float)):  # none, or plain text that parsed
        try:  # as JSON ("Infinity" would read as "inf"): the text as the server sent it
            body = exc.response.text or body
        except httpx2.ResponseNotRead:  # a streamed response that was never read
            pass
    return provider_message(body)


_UNKNOWN_MODEL = re.compile(
    r"\bmodel\b[^.;]{0,80}?\b(unknown|invalid|not found|does not exist|doesn't exist|"
    r"not exist|missing|no such)\b"
    r"|\b(unknown|invalid|no such|missing)\s+model\b|model_not_found|invalid_model",
    re.I,
)
_TOO_LONG = re.compile(
    r"context[ _]length|context[ _]window|context size|too many tokens|prompt is too long|"
    r"input is too long|maximum (input|prompt) length|reduce the length of the messages",
    re.I,
)
_BAD_KEY = re.compile(
    r"\bapi[ _-]?key\b[^.;]{0,40}?\b(not valid|invalid|incorrect|expired|revoked)\b"
    r"|\b(invalid|incorrect|expired)\s+api[ _-]?key\b|api_key_invalid|invalid_api_key",
    re.I,
)
_MODEL_CODES = {"model_not_found", "invalid_model", "unknown_model"}
_FOR_THE_KEY = (401, 403)
MODELS_OFFERED = 10  # an unknown-model message offers at most this many of the server's models


def _error_code(body: object) -> str:
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        body = body["error"]
    if not isinstance(body, dict):
        return ""
    code = body.get("code") or body.get("type") or ""
    return str(code).lower()


def _is_unknown_model(exc: openai.APIStatusError, said: str | None) -> bool:
    if not 400 <= exc.status_code < 500 or exc.status_code in (*_FOR_THE_KEY, 429):
        return False
    if _error_code(exc.body) in _MODEL_CODES or (said and _UNKNOWN_MODEL.search(said)):
        return True
    return exc.status_code == 404 and bool(said) and "model" in said.lower()


def _is_bad_key(exc: openai.APIStatusError, said: str | None) -> bool:
    """A 400 (Gemini's shape) or other status whose text says the key is not valid."""
    if exc.status_code in _FOR_THE_KEY:
        return True
    if exc.status_code != 400:
        return False
    return "invalid_api_key" in _error_code(exc.body) or bool(said and _BAD_KEY.search(said))


def _is_too_long(exc: openai.APIStatusError, said: str | None) -> bool:
    code = _error_code(exc.body)
    if exc.status_code == 413 or "context_length" in code:
        return True
    return bool(said and _TOO_LONG.search(said))


# How a reply the model's context cannot hold begins: Retry would fail the same way.
CONTEXT_TOO_LONG = "The conversation is too long for the model's context"


class ImagesRefused(UserFacingError):
    """The model refused a message with an image: said once, then before sending (a quirk)."""


# What servers say when a model cannot take an image, or content parts at all (llama.cpp
# without a vision projector, vLLM and Ollama text models, LM Studio, OpenAI's older models).
_NO_IMAGES = re.compile(
    r"image|vision|multi-?modal|content (?:must|should) be a string|expected (?:a )?str"
    r"|concatenate str|not \"?list\"?|array of content parts", re.I)
IMAGE_REFUSALS = (400, 415, 422, 500, 501)
_IMAGE_TOO_BIG = re.compile(r"too (?:large|big|many)|exceed", re.I)  # this image, not images


def images_refused(exc: BaseException, model: str) -> ImagesRefused | None:
    """The refusal of a request carrying images, when the server's words say it was them."""
    if not isinstance(exc, openai.APIStatusError) or exc.status_code not in IMAGE_REFUSALS:
        return None
    said = _said_in(exc) or ""
    if not _NO_IMAGES.search(said) or _IMAGE_TOO_BIG.search(said):
        return None
    return ImagesRefused(describe_images_refused(model, said))


def describe_images_refused(model: str, said: str | None = None) -> str:
    """`said`: the server's words; None when it sent no reply to the message with an image but
    answers the same message without it."""
    how = (f"the server answered \u201c{collapse(said)[:300]}\u201d" if said else
           "the server sent no reply to your message with an image, and answers it without one")
    return (f"{model} does not take images: {how}. Send your message without the image, or "
            "pick a model that can see images. From now on the message box says so before "
            "anything is sent to this model.")


def _status_message(
    exc: openai.APIStatusError, base_url: str, model: str, models: list[str]
) -> tuple[str, str | None]:
    said = _said_in(exc)
    status = exc.status_code
    suffix = f" The server said: {said}" if said else ""
    if status == 403:
        return "Access denied (403): this key may not use this model or endpoint." + suffix, "key"
    if _is_bad_key(exc, said):  # a 401, or a 400 that says so
        return f"The API key was rejected ({status}): check the key in Settings." + suffix, "key"
    if _is_unknown_model(exc, said):
        return _unknown_model_message(status, model, models) + suffix, "model"
    if _is_too_long(exc, said):
        what = "The request is too large for the server" if status == 413 else CONTEXT_TOO_LONG
        message = f"{what} ({status}): start a new chat or shorten the conversation." + suffix
        # "conversation" is not a setting: Retry would resend what the model refused
        return message, None if status == 413 else "conversation"
    if status == 404:
        return _not_found_message(base_url) + suffix, "base_url"
    if status == 429:
        wait = _retry_after(exc)
        return f"Too many requests (429): the server is rate-limiting you.{wait}" + suffix, None
    if status == 422:
        return "The server could not process the request (422)." + (
            f" It said: {said}" if said else " It may not support one of the options sent."
        ), None
    if status >= 500:
        failure = _SERVER_FAILURES.get(status, f"The server failed ({status}); try again shortly.")
        return failure + suffix, None
    return f"The server refused the request ({status})" + (f": {said}" if said else "."), None


_SERVER_FAILURES = {
    500: "The server had an internal error (500); try again shortly.",
    502: "A gateway or proxy in front of the model server could not reach it (502).",
    503: "The server is overloaded or unavailable (503); try again in a moment.",
    504: "A gateway or proxy in front of the model server timed out waiting for it (504).",
    529: "The server is overloaded (529); try again in a moment.",
}


def _unknown_model_message(status: int, model: str, models: list[str]) -> str:
    name = f' "{model}"' if model else ""
    message = (
        f"The server does not know the model{name} ({status}): "
        "check the model name in Settings."
    )
    if models:
        shown = ", ".join(models[:MODELS_OFFERED])
        more = f" and {len(models) - MODELS_OFFERED} more" if len(models) > MODELS_OFFERED else ""
        message += f" It offers: {shown}{more}."
    return message


def _retry_after(exc: openai.APIStatusError) -> str:
    value = exc.response.headers.get("retry-after") if exc.response is not None else None
    if value and value.strip().isdigit():
        return f" Try again in {int(value)} seconds."
    return " Wait a moment before trying again."


def _not_found_message(base_url: str) -> str:
    hint = (
        " Most servers expect the base URL to end in /v1."
        if not base_url.rstrip("/").endswith("/v1")
        else " Check the path: the base URL may have an extra /v1 or a wrong path."
    )
    return f"Nothing was found at {base_url}/chat/completions (404).{hint}"


_ROOT_CAUSES = (socket.gaierror, ssl.SSLError, ConnectionRefusedError)


def _connection_message(exc: BaseException, base_url: str) -> str:
    chain = list(causes(exc))
    cause = next((e for e in chain if isinstance(e, _ROOT_CAUSES)), chain[-1])
    text = str(cause).lower()
    if isinstance(cause, ssl.SSLError) or "certificate" in text or "ssl" in text:
        return f"Could not make a secure (TLS) connection to {base_url}: {collapse(str(cause))}"
    if isinstance(cause, socket.gaierror) or "name or service not known" in text or (
        "name resolution" in text
    ) or "nodename nor servname" in text:
        return f"Could not find the server at {base_url}: the host name does not resolve."
    if isinstance(cause, ConnectionRefusedError) or "refused" in text:
        return (
            f"Could not connect to {base_url}: the connection was refused. "
            "Is the server running, and is the port right?"
        )
    return f"Could not connect to {base_url}: {collapse(str(cause)) or type(cause).__name__}"


_STALLS = {
    "first_token": ("did not start replying", "SWITCHBOARD_FIRST_TOKEN_TIMEOUT"),
    "idle": ("stopped in the middle of the reply", "SWITCHBOARD_IDLE_TIMEOUT"),
    "queued": ("did not start replying", "SWITCHBOARD_FIRST_TOKEN_TIMEOUT"),
}


def describe_stall(limit: str, seconds: float, base_url: str) -> str:
    """`limit`: first_token, idle, or queued (only keep-alives came before the reply)."""
    what, setting = _STALLS[limit]
    logger.info("A reply from %s was cut after %g s of silence; %s sets the limit.",
                base_url, seconds, setting)
    if limit == "queued":
        return (
            f"The server at {base_url} {what}: it only sent keep-alive messages for "
            f"{seconds:g} seconds (the request may be waiting in a queue), so the reply was "
            "cut off."
        )
    return (
        f"The server at {base_url} {what}: sent nothing for {seconds:g} seconds, "
        "so the reply was cut off."
    )


_STREAM_ENDS = {
    "truncated": "The connection to {url} closed before the reply was finished: it is cut short.",
    "no_finish_reason": "The server ended the reply without saying it was finished; "
    "it may be incomplete.",
    "length": "The reply stopped at the server's length limit (max tokens).",
    "content_filter": "The provider's content filter stopped this reply.",
    "provider_error": "The server ended the reply with an error (finish reason \"error\").",
    "unknown_finish": "The server ended the reply with an unknown finish reason ('{reason}'); "
    "it may be incomplete.",
}


def describe_stream_end(kind: str, base_url: str, reason: str = "") -> str:
    return _STREAM_ENDS[kind].format(url=base_url, reason=collapse(reason)[:40])


NOT_STREAMED = "The server did not stream this reply."


def is_web_page(content_type: str, body: str) -> bool:
    """Whether a 200 answer is an HTML page (a sign-in portal or gateway, not the API)."""
    kind = content_type.split(";")[0].strip().lower()
    return kind in ("text/html", "application/xhtml+xml") or bool(body and _looks_like_html(body))


def describe_empty_stream(base_url: str, content_type: str, body: str = "") -> str:
    """A 200 answer that carried no reply at all; `body`: the start of what came instead."""
    kind = content_type.split(";")[0].strip().lower()
    if body and is_web_page(content_type, body):
        title = _from_html(body)
        named = f" ('{title[:120]}')" if title else ""
        return (
            f"The server at {base_url} answered with a web page{named} instead of a reply: "
            "something between the app and the server (a sign-in portal, proxy or gateway) "
            "may be in the way."
        )
    if kind and kind != "text/event-stream":
        article = "an" if kind[0] in "aeiou" else "a"
        return (
            f"The server at {base_url} answered with {article} {kind} page instead of a "
            "streamed reply. Check the base URL: it should be the API root (often ending in /v1)."
        )
    return (
        f"The server at {base_url} accepted the request but sent no reply. The conversation "
        "may be too long for the model's context, or the server hit an error (see its log)."
    )


# What a provider or the network can throw at a request; anything else is a bug of ours.
PROVIDER_FAILURES = (
    openai.APIError,
    httpx2.HTTPError,
    httpx2.InvalidURL,
    MalformedReply,
    ServerReportedError,
    json.JSONDecodeError,
    UserFacingError,
)


def describe_error(
    exc: BaseException,
    *,
    base_url: str = "",
    secrets: Iterable[str] = (),
    model: str = "",
    models: Iterable[str] = (),
) -> str:
    """`models` are offered when the model is unknown; a non-provider exception is our bug."""
    secrets = list(secrets)
    if not isinstance(exc, PROVIDER_FAILURES):
        return str(ours(exc, secrets))
    return redact(_describe(exc, base_url, model, list(models))[0], secrets)


def setting_at_fault(exc: BaseException | None) -> str | None:
    """Which setting an error is about ("key", "base_url", "model"), or None."""
    if exc is None or not isinstance(exc, PROVIDER_FAILURES):
        return None
    return _describe(exc, "", "", [])[1]


def _user_facing_cause(exc: BaseException) -> UserFacingError | None:
    """A message of ours raised deep inside the SDK (e.g. the network guard), if any."""
    return next((e for e in causes(exc) if isinstance(e, UserFacingError)), None)


def _dropped(base_url: str) -> str:
    return (
        f"The connection to {base_url} dropped in the middle of the reply "
        "(the server closed it without finishing)."
    )


def _url_at_fault(exc: BaseException) -> str | None:
    """A failed connection is the base URL's fault, unless it broke in the middle of the reply."""
    broke = (httpx2.RemoteProtocolError, httpx2.ReadError, httpx2.TimeoutException)
    return None if any(isinstance(e, broke) for e in causes(exc)) else "base_url"


def _describe(
    exc: BaseException, base_url: str, model: str, models: list[str]
) -> tuple[str, str | None]:
    """The message, and the setting at fault."""
    ours = _user_facing_cause(exc)
    if ours is not None:  # e.g. the network guard refusing the address: the base URL's
        connecting = (openai.APIConnectionError, httpx2.TransportError, httpx2.InvalidURL)
        field = "base_url" if isinstance(exc, connecting) else None
        return str(ours), getattr(ours, "field", field)
    if isinstance(exc, openai.APITimeoutError):
        if isinstance(exc.__cause__, httpx2.ConnectTimeout):
            return f"Could not connect to {base_url}: the connection attempt timed out.", "base_url"
        return f"The server at {base_url} did not answer in time (timed out).", None
    if isinstance(exc, openai.APIConnectionError):
        if isinstance(exc.__cause__, (httpx2.RemoteProtocolError, httpx2.ReadError)):
            return _dropped(base_url), None
        return _connection_message(exc, base_url), _url_at_fault(exc)
    if isinstance(exc, openai.APIStatusError):
        return _status_message(exc, base_url, model, models)
    if isinstance(exc, (openai.APIError, ServerReportedError)):  # an error inside the reply
        said = provider_message(exc.body) or provider_message(getattr(exc, "message", None))
        return "The server reported an error during the reply: " + (
            said or "no details given."), None
    if isinstance(exc, httpx2.InvalidURL):
        return f"The base URL {base_url} cannot be used: {collapse(str(exc))}.", _url_at_fault(exc)
    if isinstance(exc, httpx2.TimeoutException):
        return f"The server at {base_url} stopped sending (timed out).", None
    if isinstance(exc, (httpx2.RemoteProtocolError, httpx2.ReadError)):
        return _dropped(base_url), None
    if isinstance(exc, httpx2.TransportError):
        return _connection_message(exc, base_url), _url_at_fault(exc)
    if isinstance(exc, httpx2.HTTPError):  # e.g. a body that fails to decompress
        return f"The server's answer could not be read ({collapse(str(exc))}).", None
    return "The server sent a malformed reply that could not be read.", None


_ADMIN_FIELDS = {"key": "the API key", "base_url": "the base URL", "model": "the model"}
_FIX_IN_SETTINGS = re.compile(
    r"(:\s*)?check the (key|model name) in Settings\.|\s*Check the base URL: it should be the "
    r"API root \(often ending in /v1\)\.",
    re.I,
)


def for_the_administrator(message: str, field: str) -> str:
    """The user cannot change an operator's setting: send them to the administrator."""
    message = _FIX_IN_SETTINGS.sub(lambda m: "." if m.group(1) is not None else "", message)
    return (f"{message} This connection is set by the administrator: ask them to check "
            f"{_ADMIN_FIELDS.get(field, 'it')}.")
