"""Base-URL validation and normalisation for OpenAI-compatible servers (R1.2, P1)."""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import urlsplit, urlunsplit

MAX_URL_LENGTH = 1000
INVALID_URL_MESSAGE = "Please enter a valid URL (e.g., http://localhost:1234/v1)"
PLACEHOLDER_BASE_URL = "http://localhost:1234/v1"

# Suffixes users paste from curl examples: the SDK appends these itself.
_PASTED_SUFFIXES = ("/chat/completions", "/completions", "/models")
_HOST_LABEL = re.compile(r"^[A-Za-z0-9_]([A-Za-z0-9_-]{0,62})?$")


def has_control_characters(text: str) -> bool:
    """True if `text` holds a C0/C1 control character or DEL."""
    return any(unicodedata.category(ch) == "Cc" for ch in text)


class InvalidBaseURL(ValueError):
    """The text is not a usable base URL; `reason` says why, for the user."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _check(url: str) -> None:
    if len(url) > MAX_URL_LENGTH:
        raise InvalidBaseURL(f"The URL is longer than {MAX_URL_LENGTH} characters.")
    if has_control_characters(url) or any(ch.isspace() for ch in url):
        raise InvalidBaseURL("The URL contains spaces or control characters.")
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError on a bad port
    except ValueError:
        raise InvalidBaseURL(INVALID_URL_MESSAGE) from None
    if parts.scheme.lower() not in ("http", "https"):
        raise InvalidBaseURL("Only http:// and https:// URLs are supported.")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise InvalidBaseURL(
            "Put the API key in the API key field, not inside the URL."
        )
    host = parts.hostname or ""
    if not host:
        raise InvalidBaseURL(INVALID_URL_MESSAGE)
    if not _valid_host(host):
        raise InvalidBaseURL(INVALID_URL_MESSAGE)
    if port == 0:
        raise InvalidBaseURL(INVALID_URL_MESSAGE)
    if parts.query or parts.fragment or url.endswith(("?", "#")):
        raise InvalidBaseURL("A base URL has no query string or #fragment.")


def _valid_host(host: str) -> bool:
    if host.startswith("[") or ":" in host:  # IPv6 literal, urlsplit strips brackets
        import ipaddress

        try:
            ipaddress.IPv6Address(host.split("%", 1)[0])
        except ValueError:
            return False
        return True
    labels = host.rstrip(".").split(".")
    return len(host) <= 253 and all(_HOST_LABEL.match(label) for label in labels)


def is_valid_base_url(url: str) -> bool:
    """True exactly for a well-formed http/https URL with a host (P1)."""
    try:
        _check(url)
    except InvalidBaseURL:
        return False
    return True


def url_problem(url: str) -> str | None:
    """The message to show for `url`, or None when it is fine. Empty is fine (R1.4)."""
    if url == "":
        return None
    try:
        _check(url.strip())
    except InvalidBaseURL as exc:
        if exc.reason == INVALID_URL_MESSAGE:
            return exc.reason
        return f"{INVALID_URL_MESSAGE}. {exc.reason}"  # the spec's message, then why
    return None


def normalize_base_url(url: str) -> str:
    """The base URL the SDK should get: trimmed, no trailing slash, no pasted endpoint.

    Raises InvalidBaseURL for anything `is_valid_base_url` refuses.
    """
    url = url.strip()
    _check(url)
    parts = urlsplit(url)
    path = parts.path.rstrip("/")
    lowered = path.lower()
    for suffix in _PASTED_SUFFIXES:
        if lowered.endswith(suffix):
            path = path[: -len(suffix)].rstrip("/")
            break
    scheme = parts.scheme.lower()
    netloc = parts.netloc.lower() if parts.netloc.isascii() else parts.netloc
    return urlunsplit((scheme, netloc, path, "", ""))
