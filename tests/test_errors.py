"""describe_error on bodies and exceptions built in-process; real servers: test_errors_real.py."""

import httpx2
import openai
import pytest

from core.failures import UserFacingError
from core.chat.errors import describe_error, provider_message
from core.redaction import redact

CLOUDFLARE_PAGE = """<!DOCTYPE html>
<html><head><title>502 Bad Gateway | example.com</title>
<style>body{font-family:sans-serif}</style><script>var x = "<b>";</script></head>
<body><h1>Bad gateway</h1><p>The web server reported a bad gateway error.</p></body></html>"""


def _status_error(status, body, headers=None):
    request = httpx2.Request("POST", "http://server/v1/chat/completions")
    response = httpx2.Response(status, request=request, headers=headers or {})
    cls = {401: openai.AuthenticationError, 403: openai.PermissionDeniedError,
           404: openai.NotFoundError, 429: openai.RateLimitError}.get(status)
    if cls is None:
        cls = openai.InternalServerError if status >= 500 else openai.APIStatusError
    return cls(f"Error code: {status}", response=response, body=body)


@pytest.mark.parametrize(
    "body, expected",
    [
        ({"error": {"message": "Model x not found", "code": 404}}, "Model x not found"),
        ({"error": "Bad things"}, "Bad things"),
        ({"message": "Quota exceeded"}, "Quota exceeded"),
        ({"detail": "Invalid API key"}, "Invalid API key"),
        ({"detail": [{"loc": ["body", "model"], "msg": "field required"}]}, "field required"),
        ("upstream connect error", "upstream connect error"),
        (CLOUDFLARE_PAGE, "502 Bad Gateway | example.com"),
        (b'{"error": {"message": "bytes body"}}', "bytes body"),
    ],
)
def test_provider_message_shapes(body, expected):
    assert provider_message(body) == expected


def test_html_page_is_never_dumped():
    message = describe_error(_status_error(502, CLOUDFLARE_PAGE), base_url="http://server/v1")
    assert "502 Bad Gateway | example.com" in message
    assert "<" not in message and "font-family" not in message


def test_401_and_403_have_their_own_messages():
    assert "API key was rejected" in describe_error(_status_error(401, {"detail": "nope"}))
    assert "Access denied" in describe_error(_status_error(403, {"error": "forbidden"}))


def test_429_says_when_to_retry():
    exc = _status_error(429, {"error": {"message": "slow down"}}, {"retry-after": "7"})
    message = describe_error(exc)
    assert "429" in message and "7 seconds" in message and "slow down" in message


def test_404_hints_at_v1_when_the_path_lacks_it():
    message = describe_error(_status_error(404, "Not Found"), base_url="http://server:1234")
    assert "/v1" in message and "http://server:1234" in message


def test_404_naming_a_model_points_at_the_model_name():
    message = describe_error(
        _status_error(404, {"error": {"message": "The model `gpt-9` does not exist"}}),
        base_url="http://server/v1",
    )
    assert "model" in message.lower() and "gpt-9" in message


def test_keys_are_redacted_from_every_message():
    key = "sk-live-1234567890abcdef"
    exc = _status_error(401, {"error": {"message": f"Incorrect API key provided: {key}"}})
    message = describe_error(exc, secrets=[key])
    assert key not in message and key[-12:] not in message


def test_keylike_strings_are_redacted_even_when_not_named():
    assert "sk-abcdefgh12345" not in redact("token sk-abcdefgh12345 rejected")


def test_user_facing_error_deep_in_the_chain_wins():
    inner = UserFacingError("Refused: private address")
    outer = openai.APIConnectionError(request=httpx2.Request("GET", "http://x"))
    outer.__cause__ = inner
    assert describe_error(outer) == "Refused: private address"
