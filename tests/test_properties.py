"""The SPEC's properties P1-P6, each a hypothesis test named after it.

P4-P6 observe requests in-process through an httpx2 mock transport; the same behaviours are
shown against real servers in test_chat_page.py and test_errors_real.py.
"""

from __future__ import annotations

import dataclasses
import json
import string

import httpx2
import openai
from hypothesis import given, settings
from hypothesis import strategies as st

from core.chat import Reply, stream_reply
from core.client import build_client
from core.errors import describe_error
from core.profiles import MAX_KEY_LENGTH, Profile
from core.providers import (
    DEFAULT_COMPATIBLE_MODEL,
    OPENAI_COMPATIBLE,
    Target,
    available_targets,
)
from core.urls import is_valid_base_url, normalize_base_url

# --- strategies ---------------------------------------------------------------------------

_label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?", fullmatch=True)
_hostname = st.lists(_label, min_size=1, max_size=4).map(".".join)
_ipv4 = st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t)))
_ipv6 = st.ip_addresses(v=6).map(lambda a: f"[{a}]")
_host = st.one_of(_hostname, _ipv4, _ipv6, st.just("localhost"))
_port = st.one_of(st.just(""), st.integers(1, 65535).map(lambda p: f":{p}"))
_segment = st.text(string.ascii_letters + string.digits + "-._~", min_size=1, max_size=12)
_path = st.lists(_segment, max_size=4).map(lambda segs: "".join("/" + s for s in segs))
valid_urls = st.builds(
    lambda scheme, host, port, path: f"{scheme}://{host}{port}{path}",
    st.sampled_from(["http", "https", "HTTP", "Https"]),
    _host,
    _port,
    _path,
)


def _corrupt(url: str, how: str, extra: str) -> str:
    scheme, rest = url.split("://", 1)
    if how == "scheme":
        return f"{extra or 'ftp'}://{rest}"
    if how == "no_host":
        return f"{scheme}:///{rest.partition('/')[2]}"
    if how == "whitespace":
        cut = len(url) // 2
        return url[:cut] + (extra[:1] if extra[:1].isspace() else " ") + url[cut:]
    if how == "control":
        return url + "\x00"
    if how == "credentials":
        return f"{scheme}://user:{extra or 'pw'}@{rest}"
    if how == "too_long":
        return url + "/" + "a" * 1000
    if how == "no_scheme":
        return rest
    raise AssertionError(how)


invalid_urls = st.builds(
    _corrupt,
    valid_urls,
    st.sampled_from(
        ["scheme", "no_host", "whitespace", "control", "credentials", "too_long", "no_scheme"]
    ),
    st.sampled_from(["", "ftp", "file", "javascript", "ws", "\t", "\n", "secret"]),
)

# Printable, no whitespace: what an API key or model id looks like.
tokens = st.text(
    st.characters(min_codepoint=33, max_codepoint=0x2FFF, exclude_categories=("Cs", "Cc", "Zs", "Zl", "Zp")),
    min_size=1,
    max_size=80,
)
keys = tokens.filter(lambda k: len(k) <= MAX_KEY_LENGTH)


# --- P1 -----------------------------------------------------------------------------------


@given(valid_urls)
def test_p1_url_validation_accepts_well_formed_http_urls(url):
    """P1: every well-formed http/https URL with a host is valid."""
    assert is_valid_base_url(url)


@given(invalid_urls)
def test_p1_url_validation_refuses_everything_else(url):
    """P1: other schemes, no host, whitespace, control characters, credentials, >1000."""
    assert not is_valid_base_url(url)


@given(st.text(max_size=60))
def test_p1_url_validation_only_http_with_host(text):
    """P1 from the other side: whatever is accepted is http(s) with a host and no spaces."""
    if is_valid_base_url(text):
        scheme, _, rest = text.partition("://")
        assert scheme.lower() in ("http", "https")
        assert rest and rest[0] not in "/?#"
        assert not any(ch.isspace() for ch in text)


# --- P2 lives in test_store_contract.py, run against every store backend ----------------


# --- P3 -----------------------------------------------------------------------------------


@given(
    url=st.one_of(st.just(""), st.just("   "), valid_urls, invalid_urls),
    profile_key=st.one_of(st.just(""), keys),
    server_key=st.one_of(st.just(""), keys),
    needs_key=st.booleans(),
)
def test_p3_model_availability(url, profile_key, server_key, needs_key):
    """P3: listed iff the base URL is set and a key is there or the provider needs none."""
    provider = dataclasses.replace(OPENAI_COMPATIBLE, needs_key=needs_key)
    profile = Profile(openai_compatible_base_url=url, openai_compatible_api_key=profile_key)
    server_keys = {"OPENAI_COMPATIBLE_API_KEY": server_key} if server_key else {}
    listed = bool(available_targets(profile, server_keys, registry=(provider,)))
    url_set = url.strip() != "" and is_valid_base_url(url.strip())
    key_there = bool(profile_key or server_key.strip())
    assert listed == (url_set and (key_there or not needs_key))


@given(openai_key=st.one_of(st.just(""), keys), server_key=st.one_of(st.just(""), keys))
def test_p3_openai_needs_a_key(openai_key, server_key):
    """P3 for OpenAI: its models are listed iff a user or operator key is there."""
    server_keys = {"OPENAI_API_KEY": server_key} if server_key else {}
    targets = available_targets(Profile(openai_api_key=openai_key), server_keys)
    listed = any(t.provider_id == "openai" for t in targets)
    assert listed == bool(openai_key or server_key.strip())


# --- P4, P5: what the client really sends -------------------------------------------------


def _sse(*chunks: dict) -> bytes:
    lines = [f"data: {json.dumps(c)}\n\n" for c in chunks] + ["data: [DONE]\n\n"]
    return "".join(lines).encode()


def _chunk(content: str | None, finish: str | None = None) -> dict:
    delta = {} if content is None else {"content": content}
    return {
        "id": "c1",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "m",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def _recording_client(seen: list, target: Target, respond=None) -> openai.OpenAI:
    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        if respond is not None:
            return respond(request)
        body = _sse(_chunk("hi"), _chunk(None, "stop"))
        return httpx2.Response(200, content=body, headers={"content-type": "text/event-stream"})

    return build_client(target, http_client=httpx2.Client(transport=httpx2.MockTransport(handler)))


def _target_for(profile: Profile) -> Target:
    (target,) = available_targets(profile, {})
    return target


@settings(max_examples=60)
@given(url=valid_urls, suffix=st.sampled_from(["", "/", "/chat/completions", "/chat/completions/"]))
def test_p4_base_url_usage(url, suffix):
    """P4: requests go to exactly the configured base URL (normalised) + /chat/completions."""
    target = _target_for(Profile(openai_compatible_base_url=url + suffix))
    seen: list[httpx2.Request] = []
    list(stream_reply(_recording_client(seen, target), target, [{"role": "user", "content": "x"}], Reply()))
    (request,) = seen
    expected = httpx2.URL(normalize_base_url(url) + "/chat/completions")
    assert (request.url.scheme, request.url.host, request.url.port) == (
        expected.scheme,
        expected.host,
        expected.port,
    )
    assert request.url.path == expected.path


@settings(max_examples=60)
@given(model=st.one_of(st.just(""), st.just("  "), tokens))
def test_p5_model_name_propagation(model):
    """P5: the request body's `model` is the configured name, or the stated default."""
    profile = Profile(
        openai_compatible_base_url="http://localhost:1234/v1", openai_compatible_model_name=model
    )
    target = _target_for(profile)
    seen: list[httpx2.Request] = []
    list(stream_reply(_recording_client(seen, target), target, [{"role": "user", "content": "x"}], Reply()))
    sent = json.loads(seen[0].content)["model"]
    assert sent == (model.strip() or DEFAULT_COMPATIBLE_MODEL)
    assert target.model == sent  # the label the page shows is the model sent (R3.3)


# --- P6 -----------------------------------------------------------------------------------

_messages = st.text(
    string.ascii_letters + string.digits + " .,:'!-", min_size=3, max_size=120
).filter(lambda m: m.strip() and len(m.split()) > 0)

_SHAPES = {
    "openai": lambda m: {"error": {"message": m, "type": "invalid_request_error"}},
    "error_string": lambda m: {"error": m},
    "message": lambda m: {"message": m},
    "detail": lambda m: {"detail": m},
    "fastapi_detail_list": lambda m: {"detail": [{"loc": ["body"], "msg": m}]},
    "nested_json_string": lambda m: {"error": json.dumps({"message": m})},
    "errors_list": lambda m: {"errors": [{"message": m}]},
}


@settings(max_examples=150)
@given(
    message=_messages,
    shape=st.sampled_from(sorted(_SHAPES) + ["plain_text", "html"]),
    status=st.sampled_from([400, 401, 403, 404, 409, 413, 422, 429, 500, 502, 503]),
)
def test_p6_error_message_extraction(message, shape, status):
    """P6: whatever shape the error body has, the provider's message is what the user sees."""
    if shape == "plain_text":
        content, ctype = message.encode(), "text/plain"
    elif shape == "html":
        content = f"<html><head><title>{message}</title></head><body><h1>x</h1></body></html>"
        content, ctype = content.encode(), "text/html"
    else:
        content, ctype = json.dumps(_SHAPES[shape](message)).encode(), "application/json"

    target = _target_for(Profile(openai_compatible_base_url="http://localhost:1234/v1"))
    respond = lambda request: httpx2.Response(status, content=content, headers={"content-type": ctype})  # noqa: E731
    reply = Reply()
    list(stream_reply(_recording_client([], target, respond), target, [{"role": "user", "content": "x"}], reply))
    assert reply.status == "failed"
    assert " ".join(message.split()) in reply.error
    assert "<" not in reply.error  # no markup dumped on the user


@given(message=_messages, shape=st.sampled_from(sorted(_SHAPES)))
def test_p6_error_message_extraction_from_exception_body(message, shape):
    """P6 on the SDK's own exception object, as raised for a non-streamed call."""
    response = httpx2.Response(400, request=httpx2.Request("POST", "http://x/v1/chat/completions"))
    exc = openai.BadRequestError("Error code: 400", response=response, body=_SHAPES[shape](message))
    assert " ".join(message.split()) in describe_error(exc, base_url="http://x/v1")
