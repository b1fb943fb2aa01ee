"""Base-URL rules pinned exactly: each refusal's whole message, the length limits at their
boundaries, and what normalising trims."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from core.providers.urls import (
    INVALID_URL_MESSAGE,
    MAX_URL_LENGTH,
    InvalidBaseURL,
    as_saved,
    is_valid_base_url,
    normalize_base_url,
    url_problem,
)


def said(reason: str) -> str:
    """What url_problem shows for a refusal with its own reason: the general message, then why."""
    return f"{INVALID_URL_MESSAGE}. {reason}"


@pytest.mark.parametrize(
    "typed, message",
    [
        ("http://exa mple.com/v1", said("The URL contains spaces or control characters.")),
        ("ftp://example.com/v1", said("Only http:// and https:// URLs are supported.")),
        ("http://user:key@example.com/v1",
         said("Put the API key in the API key field, not inside the URL.")),
        ("http://example.com:0/v1", said("The port must be a whole number from 1 to 65535.")),
        ("http://example.com/v1?x=1", said("A base URL has no query string or #fragment.")),
        ("http://example.com/v1#top", said("A base URL has no query string or #fragment.")),
        ("http://example.com/v1?", said("A base URL has no query string or #fragment.")),
        ("http://example.com/v1#", said("A base URL has no query string or #fragment.")),
        ("http://0177.0.0.1/v1", said("0177.0.0.1 is not a valid IP address: four numbers from "
                                      "0 to 255, without leading zeros.")),
        # Only the general message when there is nothing more precise to say:
        ("http://", INVALID_URL_MESSAGE),  # no host
        ("http://:0", INVALID_URL_MESSAGE),  # no host (the empty port is not the problem)
        ("http://[::1", INVALID_URL_MESSAGE),  # the URL does not even split into parts
        ("http://-leading-hyphen.example/v1", INVALID_URL_MESSAGE),  # not a DNS label
    ],
)
def test_each_refusal_says_exactly_why(typed, message):
    assert url_problem(typed) == message
    assert not is_valid_base_url(typed)


def test_the_reason_is_the_exception_s_text():
    with pytest.raises(InvalidBaseURL) as refused:
        normalize_base_url("ftp://example.com")
    assert refused.value.reason == "Only http:// and https:// URLs are supported."
    assert str(refused.value) == refused.value.reason


@given(st.integers(min_value=len("http://example.com/"), max_value=MAX_URL_LENGTH + 50))
@example(MAX_URL_LENGTH)
@example(MAX_URL_LENGTH + 1)
def test_a_url_is_valid_up_to_the_length_limit_and_not_one_character_more(length):
    """Property: a URL of n characters (an ordinary one, padded in its path) is accepted
    exactly when n <= MAX_URL_LENGTH, and refused with the limit named otherwise."""
    url = "http://example.com/" + "a" * (length - len("http://example.com/"))
    assert len(url) == length
    if length <= MAX_URL_LENGTH:
        assert url_problem(url) is None
    else:
        assert url_problem(url) == said(f"The URL is longer than {MAX_URL_LENGTH} characters.")


def _host_of_length(length: int) -> str:
    labels, left = [], length
    while left > 0:  # labels of at most 63 characters, joined by dots
        size = min(63, left)
        labels.append("a" * size)
        left -= size + 1
    host = ".".join(labels)
    return host[:length] if len(host) >= length else host + "b" * (length - len(host))


@given(st.integers(min_value=240, max_value=270))
@example(253)
@example(254)
def test_a_host_name_is_valid_up_to_253_characters(length):
    """Property: a host name of DNS labels is accepted exactly when it has at most 253
    characters (a trailing dot, the root, aside)."""
    host = _host_of_length(length)
    assert len(host) == length and not host.startswith(".") and ".." not in host
    assert is_valid_base_url(f"http://{host}/v1") is (length <= 253)


def test_a_fully_qualified_name_with_its_trailing_dot_is_valid():
    assert url_problem("http://example.com./v1") is None
    assert normalize_base_url("http://Example.COM./v1") == "http://example.com./v1"


@pytest.mark.parametrize(
    "typed, expected",
    [
        ("http://h.example/v1//chat/completions", "http://h.example/v1"),
        ("http://h.example/X/chat/completions", "http://h.example/X"),
        ("http://h.example/X/", "http://h.example/X"),
        ("http://h.example//models", "http://h.example"),
        ("http://h.example/api/COMPLETIONS", "http://h.example/api"),
    ],
)
def test_only_slashes_are_trimmed_around_a_pasted_endpoint(typed, expected):
    assert normalize_base_url(typed) == expected


def test_a_url_as_saved_is_normalised_when_valid_and_kept_trimmed_when_refused():
    assert as_saved("  http://127.0.0.1:1234/v1/chat/completions  ") == "http://127.0.0.1:1234/v1"
    assert as_saved(" http://0177.0.0.1/v1 ") == "http://0177.0.0.1/v1"  # refused: as typed
    assert url_problem("http://0177.0.0.1/v1")  # (it is refused today)
    assert as_saved("   ") == "" and as_saved("") == ""
