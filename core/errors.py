"""Every failure becomes one message for the user, here and nowhere else (R4, P6)."""

from __future__ import annotations

import json
import re
import socket
import ssl
from collections.abc import Iterable, Iterator

import httpx2
import openai

_MAX_PROVIDER_MESSAGE = 500
_TAG = re.compile(r"<[^>]+>")
_SCRIPT_OR_STYLE = re.compile(r"<(script|style)\b.*?</\1\s*>", re.S | re.I)
_TITLE = re.compile(r"<title[^>]*>(.*?)</title\s*>", re.S | re.I)
_H1 = re.compile(r"<h1[^>]*>(.*?)</h1\s*>", re.S | re.I)
# Strings that look like credentials, hidden even when we were not told the key.
_KEYLIKE = re.compile(r"\b(sk-[A-Za-z0-9_\-]{8,}|Bearer\s+\S{8,})")


class UserFacingError(Exception):
    """An error whose text is written for the user and is safe to show as it is."""


KEY_FRAGMENT = 8  # no run of this many characters of a secret may reach the user


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with every secret, any 8-character piece of one, and key-like strings hidden."""
    secrets = [s for s in secrets if s]
    for short in (s for s in secrets if 4 <= len(s) < KEY_FRAGMENT):
        text = text.replace(short, "[redacted]")
    windows = {
        secret[i : i + KEY_FRAGMENT]
        for secret in secrets
        if len(secret) >= KEY_FRAGMENT
        for i in range(len(secret) - KEY_FRAGMENT + 1)
    }
    hidden = [False] * len(text)
    for start in range(len(text)):
        piece = text[start : start + KEY_FRAGMENT]
        if piece in windows:
            hidden[start : start + len(piece)] = [True] * len(piece)
    if any(hidden):
        out, previous = [], False
        for ch, hide in zip(text, hidden):
            if hide and not previous:
                out.append("[redacted]")
            elif not hide:
                out.append(ch)
            previous = hide
        text = "".join(out)
    return _KEYLIKE.sub("[redacted]", text)


def _collapse(text: str) -> str:
    text = " ".join(text.split())
    if len(text) > _MAX_PROVIDER_MESSAGE:
        text = text[: _MAX_PROVIDER_MESSAGE - 1].rstrip() + "…"
    return text


def _from_html(text: str) -> str | None:
    """A short line from an HTML error page (its title or heading), never the markup."""
    for pattern in (_TITLE, _H1):
        match = pattern.search(text)
        if match:
            inner = _collapse(_TAG.sub(" ", match.group(1)))
            if inner:
                return inner
    return None


def _looks_like_html(text: str) -> bool:
    head = text.lstrip()[:200].lower()
    return head.startswith(("<!doctype", "<html", "<head", "<body")) or "<html" in head


def _message_in(value: object, depth: int = 0) -> str | None:
    """The provider's message inside a decoded error body, in any shape we know."""
    if depth > 4 or value is None or isinstance(value, bool):
        return None
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
        return _collapse(_TAG.sub(" ", stripped)) if "<" in stripped else _collapse(stripped) or None
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
    """The provider's own error text from an error body of any shape, or None."""
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    return _message_in(body)


def _status_message(exc: openai.APIStatusError, base_url: str) -> str:
    body = exc.body
    if body is None:
        try:
            body = exc.response.text
        except Exception:  # a streamed response that was never read
            body = None
    said = provider_message(body)
    status = exc.status_code
    suffix = f" The server said: {said}" if said else ""
    if status == 401:
        return "The API key was rejected (401): check the key in Settings." + suffix
    if status == 403:
        return "Access denied (403): this key may not use this model or endpoint." + suffix
    if status == 404:
        return _not_found_message(said, base_url)
    if status == 429:
        return "Too many requests (429): the server is rate-limiting you." + _retry_after(
            exc
        ) + suffix
    if status == 413:
        return (
            "The request is too large for the server (413): start a new chat or shorten "
            "the conversation." + suffix
        )
    if status == 422:
        return "The server could not process the request (422)." + (
            f" It said: {said}" if said else " It may not support one of the options sent."
        )
    if status >= 500:
        return f"The server had an internal error ({status}); try again shortly." + suffix
    if said:
        return f"The server refused the request ({status}): {said}"
    return f"The server refused the request ({status})."


def _retry_after(exc: openai.APIStatusError) -> str:
    value = exc.response.headers.get("retry-after") if exc.response is not None else None
    if value and value.strip().isdigit():
        return f" Try again in {int(value)} seconds."
    return " Wait a moment before trying again."


def _not_found_message(said: str | None, base_url: str) -> str:
    said_text = f" The server said: {said}" if said else ""
    if said and "model" in said.lower():
        return "The model was not found (404): check the model name in Settings." + said_text
    hint = (
        " Most servers expect the base URL to end in /v1."
        if not base_url.rstrip("/").endswith("/v1")
        else " Check the path: the base URL may have an extra /v1 or a wrong path."
    )
    return f"Nothing was found at {base_url}/chat/completions (404).{hint}" + said_text


def _chain(exc: BaseException | None) -> Iterator[BaseException]:
    """`exc`, then what caused it, and so on, each once."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


_ROOT_CAUSES = (socket.gaierror, ssl.SSLError, ConnectionRefusedError)


def _connection_message(exc: BaseException, base_url: str) -> str:
    chain = list(_chain(exc))
    cause = next((e for e in chain if isinstance(e, _ROOT_CAUSES)), chain[-1])
    text = str(cause).lower()
    if isinstance(cause, ssl.SSLError) or "certificate" in text or "ssl" in text:
        return f"Could not make a secure (TLS) connection to {base_url}: {_collapse(str(cause))}"
    if isinstance(cause, socket.gaierror) or "name or service not known" in text or (
        "name resolution" in text
    ) or "nodename nor servname" in text:
        return f"Could not find the server at {base_url}: the host name does not resolve."
    if isinstance(cause, ConnectionRefusedError) or "refused" in text:
        return (
            f"Could not connect to {base_url}: the connection was refused. "
            "Is the server running, and is the port right?"
        )
    return f"Could not connect to {base_url}: {_collapse(str(cause)) or type(cause).__name__}"


_STALL_SETTINGS = {
    "first_token": ("did not start replying", "SWITCHBOARD_FIRST_TOKEN_TIMEOUT"),
    "idle": ("stopped sending in the middle of the reply", "SWITCHBOARD_IDLE_TIMEOUT"),
}


def describe_stall(limit: str, seconds: float, base_url: str) -> str:
    """A reply cut because a time limit passed ('first_token' or 'idle')."""
    what, setting = _STALL_SETTINGS[limit]
    return (
        f"The server at {base_url} {what} within {seconds:g} seconds, so the reply was cut off. "
        f"An operator can change this limit with {setting}."
    )


_STREAM_ENDS = {
    "truncated": "The connection to {url} closed before the reply was finished: it is cut short.",
    "no_finish_reason": "The server ended the reply without saying it was finished; "
    "it may be incomplete.",
    "length": "The reply stopped at the server's length limit (max tokens).",
}


def describe_stream_end(kind: str, base_url: str) -> str:
    """A stream that ended without an error, but not as a finished reply should."""
    return _STREAM_ENDS[kind].format(url=base_url)


def describe_empty_stream(base_url: str, content_type: str) -> str:
    """A 200 answer that carried no reply at all."""
    kind = content_type.split(";")[0].strip().lower()
    if kind and kind != "text/event-stream":
        return (
            f"The server at {base_url} answered with a {kind} page instead of a streamed reply. "
            "Check the base URL: it should be the API root (often ending in /v1)."
        )
    return (
        f"The server at {base_url} accepted the request but sent no reply. The conversation "
        "may be too long for the model's context, or the server hit an error (see its log)."
    )


def describe_error(exc: BaseException, *, base_url: str = "", secrets: Iterable[str] = ()) -> str:
    """One message for the user for any exception from a provider call."""
    return redact(_describe(exc, base_url), secrets)


def _user_facing_cause(exc: BaseException) -> UserFacingError | None:
    """A message of ours raised deep inside the SDK (e.g. the network guard), if any."""
    return next((e for e in _chain(exc) if isinstance(e, UserFacingError)), None)


def _dropped(base_url: str) -> str:
    return (
        f"The connection to {base_url} dropped in the middle of the reply "
        "(the server closed it without finishing)."
    )


def _describe(exc: BaseException, base_url: str) -> str:
    ours = _user_facing_cause(exc)
    if ours is not None:
        return str(ours)
    if isinstance(exc, openai.APITimeoutError):
        if isinstance(exc.__cause__, httpx2.ConnectTimeout):
            return f"Could not connect to {base_url}: the connection attempt timed out."
        return f"The server at {base_url} did not answer in time (timed out)."
    if isinstance(exc, openai.APIConnectionError):
        if isinstance(exc.__cause__, (httpx2.RemoteProtocolError, httpx2.ReadError)):
            return _dropped(base_url)
        return _connection_message(exc, base_url)
    if isinstance(exc, openai.APIStatusError):
        return _status_message(exc, base_url)
    if isinstance(exc, openai.APIError):  # an error event inside the stream
        said = provider_message(exc.body) or provider_message(exc.message)
        return "The server reported an error during the reply: " + (said or "no details given.")
    if isinstance(exc, httpx2.TimeoutException):
        return f"The server at {base_url} stopped sending (timed out)."
    if isinstance(exc, (httpx2.RemoteProtocolError, httpx2.ReadError)):
        return _dropped(base_url)
    if isinstance(exc, httpx2.TransportError):
        return _connection_message(exc, base_url)
    if isinstance(exc, json.JSONDecodeError):
        return "The server sent a malformed reply that could not be read."
    return f"Something went wrong talking to the server ({type(exc).__name__})."


_AUTH_MESSAGES = {
    "invalid_credentials": "Wrong email or password.",
    "user_already_exists": "An account with this email already exists. Sign in instead.",
    "email_exists": "An account with this email already exists. Sign in instead.",
    "weak_password": "That password is too weak: choose a longer one.",
    "email_not_confirmed": "Please confirm your email address first (see your inbox).",
    "over_request_rate_limit": "Too many attempts: wait a minute and try again.",
    "validation_failed": "Please check the email address and password.",
    "session_not_found": "Your session has ended. Please sign in again.",
    "refresh_token_not_found": "Your session has ended. Please sign in again.",
}


def describe_auth_error(exc: BaseException) -> str:
    """A Supabase Auth failure, said for the user."""
    code = getattr(exc, "code", None)
    if code in _AUTH_MESSAGES:
        message = _AUTH_MESSAGES[code]
        said = getattr(exc, "message", "")
        if code == "weak_password" and said:
            message += f" ({_collapse(said)})"
        return message
    if getattr(exc, "status", None) is not None and getattr(exc, "message", None):
        return redact(f"Sign-in service error: {_collapse(exc.message)}")
    return describe_backend_error(exc)


# PostgreSQL error codes PostgREST passes on.
_PG_MESSAGES = {
    "23514": "A value is longer than the database allows (1000 characters). Nothing was saved.",
    "42501": "You are not allowed to change that profile.",
    "PGRST301": "Your session has expired. Please sign in again.",
    "PGRST303": "Your session has expired. Please sign in again.",
}


def describe_backend_error(exc: BaseException) -> str:
    """A failure of the profile database (PostgREST) or of reaching it."""
    from core.profiles import FIELD_LABELS  # profiles imports this module

    code = getattr(exc, "code", None)
    if code == "23514":  # check_violation: name the column whose limit was passed
        detail = f"{getattr(exc, 'message', '')} {getattr(exc, 'details', '')}"
        for column in sorted(FIELD_LABELS, key=len, reverse=True):
            if column in detail:
                return (
                    f"{FIELD_LABELS[column]} is too long: the database keeps at most 1000 "
                    "characters. Nothing was saved."
                )
    if code in _PG_MESSAGES:
        return _PG_MESSAGES[code]
    if type(exc).__module__.startswith(("httpx", "httpcore")):  # supabase-py's transport
        return "Could not reach the profile database. Please try again in a moment."
    said = getattr(exc, "message", None)
    if said:
        return redact(f"The profile database refused the request: {_collapse(str(said))}")
    return f"The profile database could not be reached ({type(exc).__name__})."
