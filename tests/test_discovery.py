"""Model discovery and Test connection: real servers on loopback, then body shapes
and edge cases in-process with an httpx2 MockTransport."""

from __future__ import annotations

import json

import httpx2
import pytest

from core.chat.client import Limits
from core.chat.discovery import (
    CHAT_STEP,
    LIST_STEP,
    ConnectionReport,
    DiscoveryError,
    list_models,
    test_connection,
)
from core.chat.model_list import parse_model_ids
from core.failures import UserFacingError
from core.providers.kinds import Target
from tests.fixtures.common import free_port
from tests.fixtures.llm_servers import KATAN_MODEL, LLMOCK_MODEL, SMOLLM_ALIAS

FAST = Limits(connect=5.0, first_token=30.0, idle=30.0)
WRONG_KEY = "sk-wrong-0123456789abcdef"


def target_for(server, *, base_url=None, api_key=None, model=None) -> Target:
    return Target(
        "openai-compatible",
        "OpenAI-compatible",
        server.base_url if base_url is None else base_url,
        server.api_key if api_key is None else api_key,
        server.model if model is None else model,
    )


def assert_no_key(report_or_text, key):
    text = report_or_text.summary if isinstance(report_or_text, ConnectionReport) else report_or_text
    for i in range(len(key) - 7):
        assert key[i : i + 8] not in text


def assert_succeeded(report: ConnectionReport):
    assert report.ok, report.summary
    assert [step.name for step in report.steps] == [LIST_STEP, CHAT_STEP]
    assert all(step.ok for step in report.steps)
    assert report.first_chunk_ms is not None and report.first_chunk_ms > 0
    assert report.total_ms is not None and report.total_ms >= report.first_chunk_ms
    assert "first chunk after" in report.summary and " ms" in report.summary


# ---------------------------------------------------------------- real servers


@pytest.mark.parametrize("fixture, model", [("llama_server", SMOLLM_ALIAS), ("katan_server", KATAN_MODEL)])
def test_real_server_lists_its_model_and_the_connection_test_succeeds(request, fixture, model):
    server = request.getfixturevalue(fixture)
    target = target_for(server)
    assert list_models(target, FAST) == [model]
    report = test_connection(target, FAST)
    assert_succeeded(report)
    assert report.steps[0].detail == f"1 model: {model}"  # what the server listed
    assert report.warnings == ()  # the configured model is listed, the stream finished
    assert_no_key(report, server.api_key)


def test_llmock_lists_its_catalogue_and_warns_that_the_model_is_not_in_it(llmock_factory):
    server = llmock_factory()
    target = target_for(server)
    models = list_models(target, FAST)
    assert "gpt-4o" in models and models == sorted(set(models))
    assert LLMOCK_MODEL not in models
    report = test_connection(target, FAST)
    assert_succeeded(report)  # llmock answers any model name
    assert report.steps[0].warning
    assert any(f"'{LLMOCK_MODEL}' is not among the models" in w for w in report.warnings)


@pytest.mark.parametrize("fixture", ["llama_server", "katan_server"])
def test_wrong_key_fails_at_the_list_step_with_the_invalid_key_message(request, fixture):
    server = request.getfixturevalue(fixture)
    target = target_for(server, api_key=WRONG_KEY)
    with pytest.raises(DiscoveryError) as caught:
        list_models(target, FAST)
    assert caught.value.kind == "auth"
    assert "API key was rejected (401)" in str(caught.value)
    assert_no_key(str(caught.value), WRONG_KEY)
    assert_no_key(str(caught.value), server.api_key)  # llm-katan echoes the expected key

    report = test_connection(target, FAST)
    assert not report.ok
    assert report.failed_step.name == LIST_STEP
    assert len(report.steps) == 1  # no point sending a chat with a rejected key
    assert "API key was rejected" in report.summary
    assert_no_key(report, WRONG_KEY)
    assert_no_key(report, server.api_key)


def test_closed_port_gives_the_connection_message_naming_the_url():
    base_url = f"http://127.0.0.1:{free_port()}/v1"
    target = Target("openai-compatible", "OpenAI-compatible", base_url, WRONG_KEY, "m")
    with pytest.raises(DiscoveryError) as caught:
        list_models(target, FAST)
    assert caught.value.kind == "unreachable"
    assert f"Could not connect to {base_url}" in str(caught.value)
    assert "refused" in str(caught.value)
    report = test_connection(target, FAST)
    assert not report.ok and report.failed_step.name == LIST_STEP
    assert base_url in report.detail


@pytest.mark.parametrize("fixture", ["llama_server", "katan_server"])
def test_base_url_without_v1_gets_the_add_v1_hint(request, fixture):
    server = request.getfixturevalue(fixture)
    target = target_for(server, base_url=server.origin)
    with pytest.raises(DiscoveryError) as caught:
        list_models(target, FAST)
    assert caught.value.kind == "wrong_base_url"
    assert "add /v1" in str(caught.value)
    assert f"(use {server.base_url})" in str(caught.value)
    assert "does not list its models" not in str(caught.value)
    report = test_connection(target, FAST)
    assert not report.ok and report.failed_step.name == LIST_STEP
    assert "add /v1" in report.summary


def test_base_url_without_v1_and_a_wrong_key_still_gets_the_add_v1_hint(llama_server):
    # /models is 404 whatever the key; /v1/models asks for one (401): the path exists.
    target = target_for(llama_server, base_url=llama_server.origin, api_key=WRONG_KEY)
    with pytest.raises(DiscoveryError, match="add /v1") as caught:
        list_models(target, FAST)
    assert_no_key(str(caught.value), WRONG_KEY)


@pytest.mark.parametrize("fixture", ["llama_server", "katan_server"])
def test_extra_v1_gets_the_remove_hint(request, fixture):
    server = request.getfixturevalue(fixture)
    target = target_for(server, base_url=server.base_url + "/v1")
    with pytest.raises(DiscoveryError) as caught:
        list_models(target, FAST)
    assert caught.value.kind == "wrong_base_url"
    assert "remove the extra /v1" in str(caught.value).lower()
    assert f"(use {server.base_url})" in str(caught.value)
    report = test_connection(target, FAST)
    assert not report.ok and "extra /v1" in report.summary


def test_server_without_models_is_reported_as_such_and_the_test_goes_on_to_chat(canned_server):
    server = canned_server(404, {"detail": "Not Found"})
    target = target_for(server)
    with pytest.raises(DiscoveryError) as caught:
        list_models(target, FAST)
    assert caught.value.kind == "not_listed"
    message = str(caught.value)
    assert "does not list its models" in message and "type the model name by hand" in message
    assert f"{server.base_url}/models not found" in message
    assert "Could not connect" not in message

    report = test_connection(target, FAST)
    list_step, chat_step = report.steps  # the chat step ran
    assert list_step.ok and list_step.warning and "does not list its models" in list_step.detail
    assert chat_step.name == CHAT_STEP
    # This canned server answers 404 everywhere, so the chat fails too, and says where.
    assert not report.ok and report.failed_step is chat_step
    assert "/chat/completions (404)" in chat_step.detail


def test_discovery_talks_to_exactly_the_base_url_with_the_key(llama_server, recording_proxy):
    proxy, recorder = recording_proxy(llama_server)
    report = test_connection(target_for(proxy), FAST)
    assert_succeeded(report)
    listing, chat = recorder.requests
    assert (listing.method, listing.path) == ("GET", "/v1/models")
    assert listing.sent_bearer(llama_server.api_key)
    assert (chat.method, chat.path) == ("POST", "/v1/chat/completions")
    assert chat.body["model"] == SMOLLM_ALIAS
    assert chat.body["stream"] is True and chat.body["max_tokens"] == 1


# ---------------------------------------------------------------- in-process: body shapes


BASE = "http://models.test/v1"
KEY = "sk-unit-secret-0123456789"


def _target(model="m1", base_url=BASE, key=KEY) -> Target:
    return Target("openai-compatible", "OpenAI-compatible", base_url, key, model)


def _client(handler) -> httpx2.Client:
    return httpx2.Client(transport=httpx2.MockTransport(handler))


def _serving(models_response: httpx2.Response | None = None, chat=None, seen=None):
    """A handler: /models gets `models_response`, chat gets an SSE stream, others 404."""

    def handler(request: httpx2.Request) -> httpx2.Response:
        if seen is not None:
            seen.append(request)
        path = request.url.path
        if path.endswith("/v1/models") and request.url.host == "models.test" and models_response:
            return models_response
        if path == "/v1/chat/completions":
            return chat(request) if chat else _sse(["Hi"], finish="length")
        return httpx2.Response(404, json={"detail": "Not Found"})

    return handler


def _sse(pieces, finish="stop", status=200) -> httpx2.Response:
    events = []
    for piece in pieces:
        events.append({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m1",
                       "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]})
    if finish:
        events.append({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m1",
                       "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
    body = "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"
    return httpx2.Response(status, content=body.encode(), headers={"content-type": "text/event-stream"})


@pytest.mark.parametrize(
    "body, expected",
    [
        ({"object": "list", "data": [{"id": "b"}, {"id": "a"}, {"id": "b"}]}, ["a", "b"]),
        ([{"id": "x"}, {"id": "y"}], ["x", "y"]),
        (["z", "y", "z"], ["y", "z"]),
        ({"models": [{"name": "llama3:latest", "model": "llama3:latest"}, {"name": "qwen:7b"}]},
         ["llama3:latest", "qwen:7b"]),
        ({"data": [{"name": "only-name"}, {"id": None, "name": "n2"}, {"id": "  "}, {}, 3]},
         ["n2", "only-name"]),
        ({"data": []}, []),
        ({"data": {"models": [{"id": "nested"}]}}, ["nested"]),
    ],
)
def test_body_shapes(body, expected):
    models_response = httpx2.Response(200, json=body)
    assert list_models(_target(), http_client=_client(_serving(models_response))) == expected
    assert parse_model_ids(json.dumps(body)) == expected


def test_request_goes_to_base_models_with_the_key():
    seen = []
    handler = _serving(httpx2.Response(200, json={"data": [{"id": "m1"}]}), seen=seen)
    assert list_models(_target(), http_client=_client(handler)) == ["m1"]
    (request,) = seen
    assert str(request.url) == BASE + "/models"
    assert request.headers["authorization"] == f"Bearer {KEY}"


def test_a_callers_http_client_is_left_open():
    client = _client(_serving(httpx2.Response(200, json={"data": [{"id": "m1"}]})))
    list_models(_target(), http_client=client)
    test_connection(_target(), http_client=client)
    assert not client.is_closed


@pytest.mark.parametrize(
    "response, words",
    [
        (httpx2.Response(200, text="<!DOCTYPE html><html><head><title>My Web UI</title></head></html>",
                         headers={"content-type": "text/html"}), ["not JSON", "My Web UI"]),
        (httpx2.Response(200, text="hello, not json"), ["not JSON"]),
        (httpx2.Response(200, json={"status": "ok"}), ["not a model list"]),
        (httpx2.Response(200, json={"error": {"message": "upstream is down"}}), ["upstream is down"]),
    ],
)
def test_bodies_that_are_not_model_lists(response, words):
    with pytest.raises(DiscoveryError) as caught:
        list_models(_target(), http_client=_client(_serving(response)))
    assert caught.value.kind == "bad_response"
    assert isinstance(caught.value, UserFacingError)
    message = str(caught.value)
    assert all(word in message for word in words) and "<" not in message
    assert "type the model name by hand" in message


def test_404_without_a_working_probe_means_not_listed_and_chat_still_works():
    handler = _serving(models_response=None)  # /models is 404 everywhere, chat streams
    with pytest.raises(DiscoveryError, match="does not list its models") as caught:
        list_models(_target(), http_client=_client(handler))
    assert caught.value.kind == "not_listed"
    report = test_connection(_target(), http_client=_client(handler))
    assert report.ok, report.summary
    assert report.steps[0].warning and report.steps[1].ok
    assert any("does not list its models" in w for w in report.warnings)
    assert report.first_chunk_ms is not None


def test_probe_without_the_last_v1_suggests_removing_it():
    # A server at the root (/models works) configured as .../v1.
    def handler(request):
        if request.url.path == "/models":
            return httpx2.Response(200, json={"data": [{"id": "m1"}]})
        return httpx2.Response(404, text="Not Found")

    with pytest.raises(DiscoveryError) as caught:
        list_models(_target(), http_client=_client(handler))
    assert "remove the extra /v1" in str(caught.value).lower()
    assert "(use http://models.test)" in str(caught.value)


def test_other_http_errors_go_through_describe_error_and_never_show_the_key():
    body = {"error": {"message": f"bad key {KEY} for org"}}
    for status, words in ((401, "API key was rejected"), (403, "Access denied"), (500, "internal error")):
        response = httpx2.Response(status, json=body)
        with pytest.raises(DiscoveryError) as caught:
            list_models(_target(), http_client=_client(_serving(response)))
        assert words in str(caught.value)
        assert_no_key(str(caught.value), KEY)


def test_a_500_at_models_is_a_warning_and_the_chat_step_decides():
    handler = _serving(httpx2.Response(500, json={"error": "db down"}))
    report = test_connection(_target(), http_client=_client(handler))
    assert report.ok and report.steps[0].warning and "db down" in report.steps[0].detail


def test_chat_step_failure_says_which_step_and_why():
    def chat(request):
        return httpx2.Response(400, json={"error": {"message": f"context too long {KEY}"}})

    handler = _serving(httpx2.Response(200, json={"data": [{"id": "m1"}]}), chat=chat)
    report = test_connection(_target(), http_client=_client(handler))
    assert not report.ok and report.failed_step.name == CHAT_STEP
    assert "context too long" in report.detail and CHAT_STEP in report.detail
    assert report.total_ms is None
    assert_no_key(report, KEY)


def test_chat_step_sends_one_token_streamed_and_retries_with_max_completion_tokens():
    bodies = []

    def chat(request):
        body = json.loads(request.content)
        bodies.append(body)
        if "max_tokens" in body:
            return httpx2.Response(400, json={"error": {
                "message": "Unsupported parameter: 'max_tokens' is not supported with this model. "
                           "Use 'max_completion_tokens' instead."}})
        return _sse(["."], finish="length")

    handler = _serving(httpx2.Response(200, json={"data": [{"id": "m1"}]}), chat=chat)
    report = test_connection(_target(), http_client=_client(handler))
    assert report.ok, report.summary
    assert bodies[0]["max_tokens"] == 1 and bodies[0]["stream"] is True
    assert bodies[1]["max_completion_tokens"] == 1 and "max_tokens" not in bodies[1]


def test_stream_without_finish_reason_and_a_runaway_stream_are_warnings():
    handler = _serving(httpx2.Response(200, json={"data": [{"id": "m1"}]}),
                       chat=lambda r: _sse(["a"], finish=None))
    report = test_connection(_target(), http_client=_client(handler))
    assert report.ok and any("finish reason" in w for w in report.warnings)

    handler = _serving(httpx2.Response(200, json={"data": [{"id": "m1"}]}),
                       chat=lambda r: _sse(["x"] * 500, finish="stop"))
    report = test_connection(_target(), http_client=_client(handler))
    assert report.ok and any("ignored the 1-token limit" in w for w in report.warnings)


def test_ollama_latest_tag_counts_as_listed_and_an_empty_model_fails_the_chat_step():
    handler = _serving(httpx2.Response(200, json={"models": [{"name": "llama3:latest"}]}))
    report = test_connection(_target(model="llama3"), http_client=_client(handler))
    assert report.ok and report.warnings == ()

    report = test_connection(_target(model=""), http_client=_client(handler))
    assert not report.ok and "No model name" in report.detail


def test_an_empty_sse_stream_is_a_failure():
    handler = _serving(httpx2.Response(200, json={"data": [{"id": "m1"}]}),
                       chat=lambda r: httpx2.Response(200, content=b"data: [DONE]\n\n",
                                                      headers={"content-type": "text/event-stream"}))
    report = test_connection(_target(), http_client=_client(handler))
    assert not report.ok and "sent nothing back" in report.detail
