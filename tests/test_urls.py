"""Base-URL validation and normalisation: the cases users actually paste."""

import httpx2
import pytest

from core.chat.client import build_client
from core.providers.profile import Profile
from core.providers.connections import targets
from core.providers.seed import seed_connections
from core.providers.urls import (
    INVALID_URL_MESSAGE,
    is_valid_base_url,
    normalize_base_url,
    url_problem,
)


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


# --- what the HTTP client can request (issue 8: "No traceback, ever", "Input at the edges") --

BAD_PORT = "The port must be a whole number from 1 to 65535."


@pytest.mark.parametrize(
    "typed, says",
    [
        ("http://0177.0.0.1:1234/v1", "0177.0.0.1 is not a valid IP address"),
        ("http://999.1.1.1:1234/v1", "999.1.1.1 is not a valid IP address"),
        ("http://127.000.000.001/v1", "127.000.000.001 is not a valid IP address"),
        ("http://1.1.1.256/v1", "1.1.1.256 is not a valid IP address"),
        ("https://😀.example/v1", "😀.example is not a valid international domain name"),
        ("https://a\u0301b.example/v1", "is not a valid international domain name"),
        ("http://localhost:0/v1", BAD_PORT),
        ("http://localhost:65536/v1", BAD_PORT),
        ("http://localhost:+80/v1", BAD_PORT),
        ("http://localhost:\u0663/v1", BAD_PORT),  # an Arabic-Indic digit three
    ],
)
def test_urls_the_http_client_refuses_are_invalid_with_a_reason(typed, says):
    assert not is_valid_base_url(typed)
    problem = url_problem(typed)
    assert problem.startswith(f"{INVALID_URL_MESSAGE}. ")  # the general sentence comes first
    assert says in problem


@pytest.mark.parametrize(
    "character",
    ["\u202e", "\u202d", "\u200b", "\u200e", "\u2066", "\u2067", "\u2068", "\u2069", "\ufeff",
     "\u00ad", "\u061c"],
)
@pytest.mark.parametrize("where", ["host", "path", "end"])
def test_invisible_format_characters_are_refused_in_urls(character, where):
    typed = {
        "host": f"http://local{character}host:1234/v1",
        "path": f"http://localhost:1234/v{character}1",
        "end": f"http://localhost:1234/v1{character}",
    }[where]
    assert not is_valid_base_url(typed)
    assert url_problem(typed) == (
        f"{INVALID_URL_MESSAGE}. The URL contains invisible formatting characters "
        "(such as text-direction marks or zero-width spaces)."
    )


@pytest.mark.parametrize(
    "typed",
    ["https://例え.jp/v1", "http://bücher.example:8080/api/v1", "https://пример.рф/v1",
     "https://Bücher.example/v1", "http://例え。jp/v1"],
)
def test_international_domain_names_are_accepted_and_kept_as_typed(typed):
    assert url_problem(typed) is None
    assert normalize_base_url(typed + "/") == typed


def test_every_accepted_url_can_be_requested():
    for typed in ("https://例え.jp/v1", "http://[::1]:8080/v1", "http://127.1:80/v1"):
        assert is_valid_base_url(typed)
        httpx2.URL(typed)  # the client's own parser takes it: no InvalidURL at request time


def _requests_made_for(base_url: str) -> list[httpx2.Request]:
    seen: list[httpx2.Request] = []

    def answer(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        return httpx2.Response(200, json={"object": "list", "data": []})

    (target,) = targets(seed_connections(Profile(openai_compatible_base_url=base_url), {}))
    transport = httpx2.MockTransport(answer)
    build_client(target, http_client=httpx2.Client(transport=transport)).models.list()
    return seen


def test_an_international_domain_name_is_requested_in_its_ascii_form():
    (request,) = _requests_made_for("https://例え.jp/v1")
    assert request.url.raw_host == b"xn--r8jz45g.jp"
    assert request.headers["host"] == "xn--r8jz45g.jp"
    assert str(request.url) == "https://xn--r8jz45g.jp/v1/models"
