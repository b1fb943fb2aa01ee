"""The real test servers and the recording proxy work (tests/fixtures/llm_servers.py)."""

from __future__ import annotations

import dataclasses
import time

import httpx
import openai
import pytest


def _client(server, **kwargs) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key=server.api_key, max_retries=0, **kwargs)


def _stream_text(server, prompt: str = "Say hi", **kwargs) -> str:
    stream = _client(server).chat.completions.create(
        model=server.model, messages=[{"role": "user", "content": prompt}], stream=True, **kwargs
    )
    return "".join(c.choices[0].delta.content or "" for c in stream if c.choices)


def test_llama_server_streams_a_reply_from_smollm2(llama_server):
    assert llama_server.model == "smollm2"
    assert _stream_text(llama_server, max_tokens=16).strip()


def test_llama_server_rejects_a_wrong_key(llama_server):
    with pytest.raises(openai.AuthenticationError) as caught:
        _client(dataclasses.replace(llama_server, api_key="sk-wrong")).models.list()
    assert caught.value.body == {"detail": "Invalid API key"}


def test_katan_echoes_the_prompt_and_model(katan_server):
    text = _stream_text(katan_server, prompt="ping 42")
    assert "ping 42" in text
    assert f"model={katan_server.model}" in text


def test_recording_proxy_records_path_model_and_key_presence(katan_server, recording_proxy):
    proxy, recorder = recording_proxy(katan_server)
    assert proxy.base_url.endswith("/v1")
    assert "hello through the proxy" in _stream_text(proxy, prompt="hello through the proxy")
    (request,) = recorder.requests
    assert (request.method, request.path) == ("POST", "/v1/chat/completions")
    assert request.body["model"] == katan_server.model
    assert request.body["stream"] is True
    assert request.has_authorization and request.sent_bearer(katan_server.api_key)
    assert katan_server.api_key not in repr(request)


def test_recording_proxy_streams_without_buffering(llmock_factory, recording_proxy):
    slow = llmock_factory("--stream-chunk-delay-ms 200", "--response-style echo")
    proxy, _ = recording_proxy(slow)
    started = time.monotonic()
    stream = _client(proxy).chat.completions.create(
        model=proxy.model, messages=[{"role": "user", "content": "one two three four five"}],
        stream=True,
    )
    next(iter(stream))
    first_chunk_after = time.monotonic() - started
    chunks = 1 + sum(1 for _ in stream)
    total = time.monotonic() - started
    assert chunks >= 8  # echo style: one chunk per word
    assert first_chunk_after < total / 2, (first_chunk_after, total)


def test_recording_proxy_passes_a_mid_stream_disconnect_on(llmock_factory, recording_proxy):
    proxy, _ = recording_proxy(llmock_factory("--stream-fault disconnect=1.0"))
    with pytest.raises(openai.APIConnectionError):
        _stream_text(proxy)


def test_canned_server_returns_the_canned_body(canned_server):
    page = "<html><body><h1>502 Bad Gateway</h1></body></html>"
    server = canned_server(502, page, content_type="text/html")
    reply = httpx.post(server.base_url + "/chat/completions", json={"model": "m"})
    assert (reply.status_code, reply.text) == (502, page)
    assert reply.headers["content-type"] == "text/html"
    with pytest.raises(openai.InternalServerError) as caught:
        _stream_text(server)
    assert caught.value.body == page


def test_canned_server_sends_json_and_sse_pieces(canned_server):
    error = {"error": {"message": "model 'x' not found"}}
    assert httpx.get(canned_server(404, error).base_url + "/models").json() == error
    events = ['data: {"error": {"message": "overloaded"}}\n\n', "data: [DONE]\n\n"]
    with pytest.raises(openai.APIError, match="overloaded"):
        _stream_text(canned_server(200, events, chunked=True))
