"""No key, nor any 8-character piece of one, ever reaches a message (issue 4, acceptance 5).

Random keys are fed through every error path of a chat call; servers that echo the key back
in their error bodies (as llm-katan really does, see test_errors_real.py) are simulated
in-process here so that hypothesis can try thousands of keys.
"""

from __future__ import annotations

import json
import string

import httpx2
import openai
from hypothesis import given, settings
from hypothesis import strategies as st
from postgrest.exceptions import APIError
from supabase_auth.errors import AuthApiError

from core.chat.call import Reply, stream_reply
from core.chat.client import build_client
from core.redaction import KEY_FRAGMENT
from core.auth import describe_auth_error
from core.store.errors import backend_failure
from core.chat.errors import describe_error
from core.providers.kinds import Target

keys = st.text(string.ascii_letters + string.digits + "-_.", min_size=8, max_size=120)


def _echo_bodies(key: str) -> list[tuple[int, bytes, str]]:
    """Error answers that repeat the key, or parts of it, in the shapes servers use."""
    half = key[len(key) // 3 :]
    return [
        (401, json.dumps({"error": {"message": f"Incorrect API key provided: {key}"}}).encode(), "application/json"),
        (401, json.dumps({"detail": f"invalid key {key[:12]}...{key[-6:]}"}).encode(), "application/json"),
        (403, json.dumps({"error": f"key {half} has no access"}).encode(), "application/json"),
        (400, f"bad key: {key}".encode(), "text/plain"),
        (502, f"<html><head><title>Bad key {key}</title></head></html>".encode(), "text/html"),
        (429, json.dumps({"message": f"rate limit for {key}"}).encode(), "application/json"),
        (500, json.dumps({"error": {"message": f"Traceback: Authorization: Bearer {key}"}}).encode(), "application/json"),
    ]


def _stream_error(key: str) -> bytes:
    event = {"error": {"message": f"upstream rejected key {key}", "type": "server_error"}}
    return f"data: {json.dumps(event)}\n\n".encode()


def _assert_no_fragment(key: str, message: str) -> None:
    for start in range(len(key) - KEY_FRAGMENT + 1):
        assert key[start : start + KEY_FRAGMENT] not in message, message


def _target(key: str) -> Target:
    return Target("openai-compatible", "OpenAI-compatible", "http://127.0.0.1:9/v1", key, "m")


def _chat_error(key: str, status: int, body: bytes, content_type: str) -> str:
    def handler(request):
        return httpx2.Response(status, content=body, headers={"content-type": content_type})

    target = _target(key)
    client = build_client(target, http_client=httpx2.Client(transport=httpx2.MockTransport(handler)))
    reply = Reply()
    list(stream_reply(client, target, [{"role": "user", "content": "x"}], reply))
    return reply.error or ""


@settings(max_examples=60, deadline=None)
@given(key=keys)
def test_random_keys_never_reach_any_error_message(key):
    for status, body, content_type in _echo_bodies(key):
        _assert_no_fragment(key, _chat_error(key, status, body, content_type))
    _assert_no_fragment(key, _chat_error(key, 200, _stream_error(key), "text/event-stream"))
    request = httpx2.Request("POST", "http://127.0.0.1:9/v1/chat/completions")
    connection = openai.APIConnectionError(message=f"failed with {key}", request=request)
    connection.__cause__ = httpx2.ConnectError(f"refused while sending {key}")
    _assert_no_fragment(key, describe_error(connection, base_url="http://127.0.0.1:9/v1", secrets=[key]))


@given(key=keys)
def test_keylike_text_is_hidden_even_from_store_and_auth_errors(key):
    """Store and auth errors never carry keys; a Bearer token in one is still blanked."""
    refused = APIError({"message": f"JWT Bearer {key} expired", "code": "PGRST999"})
    message = str(backend_failure(refused))
    assert message.startswith("The database refused the request: ")
    _assert_no_fragment(key, message)
    message = describe_auth_error(AuthApiError(f"token Bearer {key} bad", 400, None))
    assert message.startswith("The sign-in service refused the request: ")
    _assert_no_fragment(key, message)
