"""Base-URL validation and normalisation: valid only if httpx2 can request it, so what is saved
can be sent. International names stay as typed; httpx2 requests them as punycode."""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from urllib.parse import urlsplit, urlunsplit

import httpx2

MAX_URL_LENGTH = 1000
INVALID_URL_MESSAGE = "Please enter a valid URL (e.g., http://localhost:1234/v1)"
PLACEHOLDER_BASE_URL = "http://localhost:1234/v1"
INVISIBLE_CHARACTERS_REASON = (
    "invisible formatting characters (such as text-direction marks or zero-width spaces)"
)

# Suffixes users paste from curl examples: the SDK appends these itself.
_PASTED_SUFFIXES = ("/chat/completions", "/completions", "/models")
_HOST_LABEL = re.compile(r"^[A-Za-z0-9_]([A-Za-z0-9_-]{0,62})?$")
_DOTTED_NUMBERS = re.compile(r"^[0-9]+(\.[0-9]+)*\.?$")
_BAD_PORT = "The port must be a whole number from 1 to 65535."


def has_control_characters(text: str) -> bool:
    return any(unicodedata.category(ch) == "Cc" for ch in text)


def has_invisible_characters(text: str, allowed: frozenset[str] = frozenset()) -> bool:
    """Cf characters (bidi overrides, zero-width spaces) but `allowed`: they hide or reorder."""
    return any(unicodedata.category(ch) == "Cf" and ch not in allowed for ch in text)


class InvalidBaseURL(ValueError):
    """`reason` says why, for the user."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _check(url: str) -> None:
    if len(url) > MAX_URL_LENGTH:
        raise InvalidBaseURL(f"The URL is longer than {MAX_URL_LENGTH} characters.")
    if has_control_characters(url) or any(ch.isspace() for ch in url):
        raise InvalidBaseURL("The URL contains spaces or control characters.")
    if has_invisible_characters(url):
        raise InvalidBaseURL(f"The URL contains {INVISIBLE_CHARACTERS_REASON}.")
    try:
        parts = urlsplit(url)
    except ValueError:
        raise InvalidBaseURL(INVALID_URL_MESSAGE) from None
    try:
        port = parts.port
    except ValueError:
        raise InvalidBaseURL(_BAD_PORT) from None
    if parts.scheme.lower() not in ("http", "https"):
        raise InvalidBaseURL("Only http:// and https:// URLs are supported.")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise InvalidBaseURL(
            "Put the API key in the API key field, not inside the URL."
        )
    host = parts.hostname or ""
    if not host:
        raise InvalidBaseURL(INVALID_URL_MESSAGE)
    if port == 0:
        raise InvalidBaseURL(_BAD_PORT)
    if not _valid_host(_requested_host(url, host)):
        raise InvalidBaseURL(INVALID_URL_MESSAGE)
    if parts.query or parts.fragment or url.endswith(("?", "#")):
        raise InvalidBaseURL("A base URL has no query string or #fragment.")


def _requested_host(url: str, host: str) -> str:
    """As httpx2 will request it (IDN in ASCII); InvalidBaseURL if it cannot."""
    try:
        parsed = httpx2.URL(url)
    except httpx2.InvalidURL:
        raise InvalidBaseURL(_unrequestable_host(host)) from None
    return parsed.raw_host.decode("ascii")


def _unrequestable_host(host: str) -> str:
    if _DOTTED_NUMBERS.match(host):
        return (f"{host} is not a valid IP address: four numbers from 0 to 255, "
                "without leading zeros.")
    if not host.isascii():
        return f"{host} is not a valid international domain name."
    return INVALID_URL_MESSAGE


def _valid_host(host: str) -> bool:
    """An IPv6 literal or DNS labels, in the requested ASCII form."""
    if ":" in host:  # IPv6 literal, brackets already stripped
        try:
            ipaddress.IPv6Address(host.split("%", 1)[0])
        except ValueError:
            return False
        return True
    labels = host.rstrip(".").split(".")
    return len(host) <= 253 and all(_HOST_LABEL.match(label) for label in labels)


def is_valid_base_url(url: str) -> bool:
    try:
        _check(url)
    except InvalidBaseURL:
        return False
    return True


def url_problem(url: str) -> str | None:
    """None when fine; empty is fine (no server)."""
    if url == "":
        return None
    try:
        _check(url.strip())
    except InvalidBaseURL as exc:
        if exc.reason == INVALID_URL_MESSAGE:
            return exc.reason
        return f"{INVALID_URL_MESSAGE}. {exc.reason}"  # the usual message, then why
    return None


def normalize_base_url(url: str) -> str:
    """Trimmed, no trailing slash or pasted endpoint, an international name as typed;
    InvalidBaseURL for anything `is_valid_base_url` refuses."""
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


def as_saved(url: str) -> str:
    """Normalised when valid, else trimmed as given, so the form and Chat can show it."""
    url = url.strip()
    try:
        return normalize_base_url(url) if url else ""
    except InvalidBaseURL:
        return url
