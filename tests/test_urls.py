"""Base-URL validation and normalisation: the cases users actually paste."""

import pytest

from core.urls import INVALID_URL_MESSAGE, is_valid_base_url, normalize_base_url, url_problem


@pytest.mark.parametrize(
    "typed, expected",
    [
        ("http://localhost:1234/v1", "http://localhost:1234/v1"),
        ("http://localhost:1234/v1/", "http://localhost:1234/v1"),
        ("  http://localhost:1234/v1  ", "http://localhost:1234/v1"),
        ("http://localhost:1234/v1/chat/completions", "http://localhost:1234/v1"),
        ("http://localhost:1234/v1/chat/completions/", "http://localhost:1234/v1"),
        ("https://openrouter.ai/api/v1/models", "https://openrouter.ai/api/v1"),
        ("HTTPS://API.Groq.com/openai/v1", "https://api.groq.com/openai/v1"),
        ("http://[::1]:8080/v1", "http://[::1]:8080/v1"),
        ("http://127.0.0.1:11434/v1", "http://127.0.0.1:11434/v1"),
    ],
)
def test_normalize_base_url(typed, expected):
    assert normalize_base_url(typed) == expected


@pytest.mark.parametrize(
    "typed, says",
    [
        ("localhost:1234/v1", "Only http:// and https://"),
        ("ftp://example.com/v1", "Only http:// and https://"),
        ("javascript:alert(1)", "Only http:// and https://"),
        ("file:///etc/passwd", "Only http:// and https://"),
        ("http://", INVALID_URL_MESSAGE),
        ("http:///v1", INVALID_URL_MESSAGE),
        ("http://local host/v1", "spaces or control characters"),
        ("http://localhost/v1\x00", "spaces or control characters"),
        ("http://user:sk-secret@localhost/v1", "not inside the URL"),
        ("http://localhost:99999/v1", INVALID_URL_MESSAGE),
        ("http://localhost/v1?x=1", "no query string"),
        ("http://exa mple.com", "spaces"),
        ("http://" + "a" * 1000 + ".com", "longer than 1000"),
    ],
)
def test_invalid_urls_get_a_reason(typed, says):
    assert not is_valid_base_url(typed)
    assert says in url_problem(typed)


def test_empty_url_is_not_a_problem_it_turns_the_provider_off():
    assert url_problem("") is None


def test_a_credential_in_the_url_is_not_echoed_back():
    assert "sk-secret" not in url_problem("http://me:sk-secret@localhost/v1")
