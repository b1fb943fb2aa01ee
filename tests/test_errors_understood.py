"""Every server is understood (issue 8): unknown models, context length, 5xx, provider text.

Against real HTTP on loopback (canned servers answering what real servers were seen to
answer, docs/servers.md) through the same path the chat page runs (`start_reply`).
"""

from __future__ import annotations

import logging

import pytest

from core.chat.call import Reply, start_reply
from core.config import load_settings
from core.chat.errors import describe_stall
from core.providers.kinds import Target
from tests.chatting import errors, send, start_chat, use_server

# llama.cpp's server (llama-cpp-python 0.3.36) refusing a prompt longer than n_ctx, verbatim.
LLAMA_CONTEXT_REFUSAL = {"error": {
    "message": "This model's maximum context length is 2048 tokens. However, you requested 3036 "
    "tokens (3031 in the messages, 5 in the completion). Please reduce the length of the "
    "messages or completion.",
    "type": "invalid_request_error", "param": "messages", "code": "context_length_exceeded"}}


def _reply_from(base_url: str, model: str = "gpt-nope", key: str = "k", text: str = "hi") -> Reply:
    reply = Reply()
    target = Target("openai-compatible", "Compatible", base_url, key, model)
    settings = load_settings(environ={}, dotenv_path=None)
    for _ in start_reply(settings, target, [{"role": "user", "content": text}], reply):
        pass
    return reply


@pytest.mark.parametrize("status, said", [
    (400, "Unknown model: gpt-nope"),
    (404, "model 'gpt-nope' not found"),
    (422, "Invalid model name"),
    (400, "The model `gpt-nope` does not exist or you do not have access to it."),
    (400, "model is missing from the catalogue"),
])
def test_an_unknown_model_is_named_whatever_the_status(canned_routes, status, said):
    listed = {"object": "list", "data": [{"id": "llama3.2"}, {"id": "qwen3:8b"}]}
    server = canned_routes({"/v1/chat/completions": (status, {"error": {"message": said}}),
                            "/v1/models": (200, listed)})
    reply = _reply_from(server.base_url)
    assert reply.status == "failed" and reply.error_field == "model"
    assert f'does not know the model "gpt-nope" ({status})' in reply.error
    assert "It offers: llama3.2, qwen3:8b." in reply.error


def test_an_unknown_model_without_a_model_list_offers_nothing(canned_routes):
    server = canned_routes({"/v1/chat/completions": (400, {"error": {"message": "unknown model"}})})
    reply = _reply_from(server.base_url)
    assert 'does not know the model "gpt-nope" (400)' in reply.error
    assert "offers" not in reply.error


def test_a_long_model_list_is_cut_to_ten(canned_routes):
    ids = [f"model-{i:02}" for i in range(25)]
    server = canned_routes({"/v1/chat/completions": (404, {"error": {"code": "model_not_found"}}),
                            "/v1/models": (200, {"data": [{"id": i} for i in ids]})})
    reply = _reply_from(server.base_url)
    assert f"It offers: {', '.join(ids[:10])} and 15 more." in reply.error


def test_the_chat_page_shows_the_unknown_model_message(canned_routes):
    server = canned_routes({"/v1/chat/completions": (422, {"detail": "invalid model: gpt-nope"}),
                            "/v1/models": (200, {"data": [{"id": "smollm2"}]})})
    use_server(server, model="gpt-nope")
    at = start_chat()
    send(at, "hello")
    assert 'does not know the model "gpt-nope" (422)' in errors(at)[0]
    assert "It offers: smollm2." in errors(at)[0]


@pytest.mark.parametrize("status, body", [
    (400, LLAMA_CONTEXT_REFUSAL),
    (422, {"detail": "prompt is too long: 210000 tokens > 200000 maximum"}),
    (500, {"error": {"message": "too many tokens in the request"}}),
    (400, "the request exceeds the available context size, try increasing it"),
    (400, {"error": {"message": "Input exceeds the model's context window"}}),
])
def test_a_context_length_refusal_advises_a_new_chat_whatever_the_status(canned_server, status, body):
    reply = _reply_from(canned_server(status, body).base_url)
    assert f"too long for the model's context ({status}): start a new chat or shorten" in reply.error
    assert reply.error_field == "conversation"  # no link to Settings, and no Retry


@pytest.mark.parametrize("status, says", [
    (500, "internal error (500)"),
    (502, "A gateway or proxy in front of the model server could not reach it (502)"),
    (504, "A gateway or proxy in front of the model server timed out waiting for it (504)"),
    (503, "overloaded or unavailable (503); try again"),
    (529, "overloaded (529); try again"),
])
def test_server_failures_are_said_precisely(canned_server, status, says):
    reply = _reply_from(canned_server(status, {"error": {"message": "upstream trouble"}}).base_url)
    assert says in reply.error and "upstream trouble" in reply.error


def test_a_provider_stack_trace_is_cut_to_its_human_part(canned_server):
    trace = (
        "Traceback (most recent call last):\n"
        '  File "/srv/app.py", line 12, in handle\n    run()\n'
        '  File "/srv/model.py", line 99, in run\n    raise RuntimeError(msg)\n'
        "RuntimeError: ValueError: the GPU ran out of memory"
    )
    reply = _reply_from(canned_server(500, {"error": {"message": trace}}).base_url)
    assert reply.error.endswith("The server said: the GPU ran out of memory")
    assert "Traceback" not in reply.error and "File" not in reply.error


def test_a_nested_error_prefix_and_a_long_text_are_trimmed(canned_server):
    said = "InternalServerError: APIError: " + "the backend failed badly " * 40
    reply = _reply_from(canned_server(500, {"error": {"message": said}}).base_url)
    text = reply.error.split("The server said: ", 1)[1]
    assert text.startswith("the backend failed badly") and text.endswith("…")
    assert len(text) <= 300


def test_a_stall_is_said_in_words_for_users_and_the_operator_hint_goes_to_the_log(caplog):
    with caplog.at_level(logging.INFO, logger="core.chat.errors"):
        first = describe_stall("first_token", 60, "http://h/v1")
        idle = describe_stall("idle", 30, "http://h/v1")
    assert first == ("The server at http://h/v1 did not start replying: sent nothing for 60 "
                     "seconds, so the reply was cut off.")
    assert "stopped in the middle of the reply: sent nothing for 30 seconds" in idle
    assert "SWITCHBOARD" not in first + idle
    assert "SWITCHBOARD_FIRST_TOKEN_TIMEOUT" in caplog.text
    assert "SWITCHBOARD_IDLE_TIMEOUT" in caplog.text


def test_errors_name_the_setting_to_fix(katan_server, canned_server):
    """The page links to Settings for these: the key, the base URL, or (above) the model."""
    assert _reply_from(katan_server.base_url, katan_server.model, "sk-wrong-0123456789").error_field == "key"
    assert _reply_from("http://127.0.0.1:9/v1").error_field == "base_url"  # nothing listens on 9
    html = canned_server(200, "<html><title>Router login</title></html>", content_type="text/html")
    assert _reply_from(html.base_url).error_field is None  # a portal in the way, not the URL
    assert _reply_from(canned_server(429, {"error": "slow down"}).base_url).error_field is None


def test_llmock_refusing_a_long_conversation_gets_the_advice(llmock_factory):
    """llmock's real context-window check (docs/servers.md): 400 context_length_exceeded."""
    server = llmock_factory("--context-window", "5")
    reply = _reply_from(server.base_url, server.model, text="a long question " * 50)
    assert "too long for the model's context (400): start a new chat or shorten" in reply.error
    assert "maximum context length is 5 tokens" in reply.error
