"""Every server said right: finish reasons, keep-alive comments, the administrator's
connections, sign-in portals, Gemini's key error, a proxy's class names, context length and
Test connection's unknown model.

Streams come from real HTTP servers on loopback (tests/fixtures/llm_servers.py), read through
the same path the chat page runs (`start_reply`), or through the page itself.
"""

from __future__ import annotations

import json

import pytest
from streamlit.testing.v1 import AppTest

from core.chat.call import Reply, start_reply
from core.chat.client import Limits
from core.chat.discovery import CHAT_STEP, test_connection
from core.chat.errors import provider_message
from core.config import load_settings
from core.providers.connections import Connection, target_for
from core.providers.kinds import Target
from tests.apptest import APP
from tests.chatting import errors, send, start_chat, use_server

CONTENT_FILTER_NOTE = "The provider's content filter stopped this reply."


def _reply_from(target_or_url, model: str = "m", environ: dict | None = None) -> Reply:
    target = target_or_url if isinstance(target_or_url, Target) else Target(
        "openai-compatible", "Compatible", target_or_url, "k", model)
    reply = Reply()
    settings = load_settings(environ=environ or {}, dotenv_path=None)
    for _ in start_reply(settings, target, [{"role": "user", "content": "hi"}], reply):
        pass
    return reply


def _sse(*chunks: dict, done: bool = True) -> list[str]:
    events = [f"data: {json.dumps(chunk)}\n\n" for chunk in chunks]
    return events + (["data: [DONE]\n\n"] if done else [])


def _chunk(content: str | None = None, finish=None, finish_key: bool = True) -> dict:
    choice: dict = {"index": 0, "delta": {"content": content} if content else {}}
    if finish_key:
        choice["finish_reason"] = finish
    return {"id": "c1", "object": "chat.completion.chunk", "model": "m", "choices": [choice]}


def _streaming(canned_server, pieces: list[str], pace: float = 0.0):
    return canned_server(200, pieces, content_type="text/event-stream", chunked=True, pace=pace)


# ---- 1. every finish reason has a defined outcome ----


@pytest.mark.parametrize("finish, status, note", [
    ("stop", "complete", None),
    ("tool_calls", "complete", None),
    ("function_call", "complete", None),
    ("length", "incomplete", "length limit"),
    ("content_filter", "interrupted", CONTENT_FILTER_NOTE),
    (None, "incomplete", "without saying it was finished"),
    ("because_i_said_so", "incomplete", "unknown finish reason ('because_i_said_so')"),
])
def test_every_finish_reason_after_text_has_an_outcome(canned_server, finish, status, note):
    server = _streaming(canned_server, _sse(_chunk("Some text"), _chunk(finish=finish)))
    reply = _reply_from(server.base_url)
    assert (reply.text, reply.status) == ("Some text", status)
    if note is None:
        assert reply.error is None
    else:
        assert note in reply.error


def test_a_missing_finish_reason_key_is_possibly_incomplete(canned_server):
    server = _streaming(canned_server, _sse(_chunk("Some text", finish_key=False)))
    reply = _reply_from(server.base_url)
    assert reply.status == "incomplete" and "may be incomplete" in reply.error


def test_a_content_filter_before_any_text_says_so_instead_of_an_empty_reply(canned_server):
    server = _streaming(canned_server, _sse(_chunk(finish="content_filter")))
    reply = _reply_from(server.base_url)
    assert (reply.text, reply.status, reply.error) == ("", "failed", CONTENT_FILTER_NOTE)


def test_the_chat_page_marks_a_filtered_reply_and_offers_retry(canned_server):
    server = _streaming(canned_server, _sse(_chunk("The start of"), _chunk(finish="content_filter")))
    use_server(server)
    at = start_chat()
    send(at, "tell me")
    assert any(CONTENT_FILTER_NOTE in shown for shown in errors(at))
    assert at.button(key="chat:retry").label == "Retry"


# ---- 2. keep-alive comments are the server being alive ----


def test_keep_alive_comments_are_not_silence(canned_server):
    """OpenRouter sends `: OPENROUTER PROCESSING` while a request waits in its queue."""
    waiting = [": OPENROUTER PROCESSING\n\n"] * 6  # 6 x 0.4 s: well past the 1 s limit
    server = _streaming(canned_server, waiting + _sse(_chunk("Hello"), _chunk(finish="stop")),
                        pace=0.4)
    reply = _reply_from(server.base_url, environ={"SWITCHBOARD_FIRST_TOKEN_TIMEOUT": "1"})
    assert reply.error is None, reply.error
    assert (reply.text, reply.status) == ("Hello", "complete")


def test_keep_alives_in_the_middle_of_a_reply_are_not_silence(canned_server):
    pieces = _sse(_chunk("Hello"), done=False) + [": keep-alive\n\n"] * 5 + _sse(
        _chunk(" there"), _chunk(finish="stop"))
    server = _streaming(canned_server, pieces, pace=0.4)
    reply = _reply_from(server.base_url, environ={"SWITCHBOARD_IDLE_TIMEOUT": "1"})
    assert reply.error is None, reply.error
    assert (reply.text, reply.status) == ("Hello there", "complete")


def test_a_queue_that_never_moves_is_cut_and_said_truthfully(canned_server):
    """Keep-alives stretch the first-token limit, not forever: 5 times it, then cut."""
    server = _streaming(canned_server, [": keep-alive\n\n"] * 20, pace=0.4)  # 8 s of them
    reply = _reply_from(server.base_url, environ={"SWITCHBOARD_FIRST_TOKEN_TIMEOUT": "1"})
    assert reply.status == "failed"
    assert reply.error == (f"The server at {server.base_url} did not start replying: it only "
                           "sent keep-alive messages for 5 seconds (the request may be waiting "
                           "in a queue), so the reply was cut off.")


# ---- 3. the administrator's connections send the user to the administrator ----

REFUSED_KEY = {"error": {"message": "Incorrect API key provided", "code": "invalid_api_key"}}


def test_a_key_error_of_an_administrators_connection_says_ask_the_administrator(canned_server):
    server = canned_server(401, REFUSED_KEY)
    connection = Connection(name="team", base_url=server.base_url, api_key="sk-operator-x",
                            models=("m",), id="operator:team", origin="operator")
    reply = _reply_from(target_for(connection, "m", "team (administrator)"))
    assert reply.status == "failed" and reply.error_field is None
    assert "ask them to check the API key" in reply.error
    assert "Settings" not in reply.error
    assert reply.error.startswith("team (administrator): The API key was rejected (401).")


def test_a_key_error_with_the_operators_key_on_the_seed_provider_says_ask(canned_server):
    server = canned_server(401, REFUSED_KEY)
    connection = Connection(name="OpenAI-compatible", base_url=server.base_url, api_key="sk-op",
                            default_model="m", id="profile:openai-compatible", origin="profile",
                            key_from_operator=True)
    reply = _reply_from(target_for(connection, "m"))
    assert reply.error_field is None and "ask them to check the API key" in reply.error


def test_the_users_own_connection_still_links_to_settings(canned_server):
    server = canned_server(401, REFUSED_KEY)
    connection = Connection(name="mine", base_url=server.base_url, api_key="sk-mine",
                            models=("m",), id="7")
    reply = _reply_from(target_for(connection, "m"))
    assert reply.error_field == "key" and "check the key in Settings" in reply.error


def test_an_unknown_model_of_an_administrators_connection_says_ask(canned_routes):
    server = canned_routes({"/v1/chat/completions": (404, {"error": {
        "message": "model 'm' not found", "code": "model_not_found"}})})
    connection = Connection(name="team", base_url=server.base_url, api_key="sk-operator-x",
                            models=("m",), id="operator:team", origin="operator")
    reply = _reply_from(target_for(connection, "m", "team (administrator)"))
    assert reply.error_field is None and "ask them to check the model" in reply.error
    assert "Settings" not in reply.error


# ---- 4. a web page in the way is named, and not blamed on the base URL ----


def test_a_sign_in_portal_is_named_by_its_title(canned_server):
    page = ("<!DOCTYPE html><html><head><title>Sign in – Corp SSO</title></head>"
            "<body><form>...</form></body></html>")
    server = canned_server(200, page, content_type="text/html; charset=utf-8")
    reply = _reply_from(server.base_url)
    assert reply.status == "failed" and reply.error_field is None
    assert f"The server at {server.base_url} answered with a web page ('Sign in – Corp SSO')" in reply.error
    assert "sign-in portal, proxy or gateway" in reply.error
    assert "<" not in reply.error


def test_a_json_answer_that_is_not_a_reply_still_points_at_the_base_url(canned_server):
    server = canned_server(200, {"status": "ok"}, content_type="application/json")
    reply = _reply_from(server.base_url)
    assert reply.status == "failed"


# ---- 5. Gemini's 400 for a bad key is a key problem ----


def test_geminis_invalid_key_400_is_said_as_the_key(canned_server):
    body = [{"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.",
                       "status": "INVALID_ARGUMENT"}}]
    reply = _reply_from(canned_server(400, body).base_url)
    assert reply.error_field == "key"
    assert reply.error.startswith("The API key was rejected (400): check the key in Settings.")
    assert "API key not valid" in reply.error


def test_a_400_about_something_else_is_not_the_key(canned_server):
    reply = _reply_from(canned_server(400, {"error": {"message": "temperature must be <= 2"}}).base_url)
    assert reply.error_field is None and "rejected" not in reply.error


# ---- 6. a proxy's exception class names are cut ----


@pytest.mark.parametrize("said, kept", [
    ("OpenAIException - litellm.MockException: The mock server is down", "The mock server is down"),
    ("litellm.BadRequestError: OpenAIException - Error code: 400 - bad", "Error code: 400 - bad"),
    ("ValueError: RuntimeError: the message", "the message"),
    ("OpenAIException - litellm.MockException", "litellm.MockException"),  # nothing but names
])
def test_class_name_prefixes_are_cut_from_the_human_part(said, kept):
    assert provider_message({"error": {"message": said}}) == kept


def test_a_litellm_error_over_http_keeps_only_the_message(canned_server):
    body = {"error": {"message": "litellm.APIConnectionError: OpenAIException - "
                      "litellm.MockException: upstream refused", "type": None}}
    reply = _reply_from(canned_server(500, body).base_url)
    assert "The server said: upstream refused" in reply.error
    assert "Exception" not in reply.error and "litellm" not in reply.error


# ---- 7. a conversation too long for the model offers no Retry ----


def test_a_context_length_error_offers_edit_but_not_retry(canned_server):
    body = {"error": {"message": "This model's maximum context length is 2048 tokens.",
                      "code": "context_length_exceeded"}}
    use_server(canned_server(400, body))
    at = start_chat()
    send(at, "a very long message")
    assert "too long for the model's context" in errors(at)[-1]
    assert not [b for b in at.button if b.key == "chat:retry"]
    assert at.button(key="chat:edit").label == "Edit"
    assert not at.main.get("page_link")  # nothing to fix in Settings (the sidebar navigates)

    again = AppTest.from_file(APP, default_timeout=60)  # a reload: the chat read from the store
    again.query_params.update(dict(at.query_params))
    again.run()
    assert "too long for the model's context" in errors(again)[-1]
    assert not [b for b in again.button if b.key == "chat:retry"]
    assert again.button(key="chat:edit").label == "Edit"


# ---- 8. Test connection names the unknown model and offers the listed ones ----


def test_test_connection_names_the_unknown_model_and_offers_the_list(canned_routes):
    server = canned_routes({
        "/v1/models": (200, {"data": [{"id": "llama3.2"}, {"id": "qwen3:8b"}]}),
        "/v1/chat/completions": (404, {"error": {"message": "model 'gpt-nope' not found"}}),
    })
    target = Target("openai-compatible", "Compatible", server.base_url, "k", "gpt-nope")
    report = test_connection(target, Limits())
    chat = next(step for step in report.steps if step.name == CHAT_STEP)
    assert not chat.ok
    assert 'does not know the model "gpt-nope" (404)' in chat.detail
    assert "It offers: llama3.2, qwen3:8b." in chat.detail


# ---- Test connection reads the one-token chat as chat reads a reply ----


def test_test_connection_waits_through_keep_alives_like_chat(canned_server):
    waiting = [": OPENROUTER PROCESSING\n\n"] * 4  # 4 x 0.4 s: past the 1 s limit
    server = _streaming(canned_server, waiting + _sse(_chunk("."), _chunk(finish="length")),
                        pace=0.4)
    target = Target("openai-compatible", "Compatible", server.base_url, "k", "m")
    report = test_connection(target, Limits(first_token=1))
    chat = next(step for step in report.steps if step.name == CHAT_STEP)
    assert chat.ok, chat.detail


def test_test_connection_says_a_content_filter_like_chat(canned_server):
    server = _streaming(canned_server, _sse(_chunk(finish="content_filter")))
    target = Target("openai-compatible", "Compatible", server.base_url, "k", "m")
    chat = next(step for step in test_connection(target, Limits()).steps
                if step.name == CHAT_STEP)
    assert not chat.ok and chat.detail == CONTENT_FILTER_NOTE
