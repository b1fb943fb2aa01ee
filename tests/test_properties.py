"""The product's properties, each a hypothesis test that says which it checks:
P1 base-URL validity, P2 save-then-load round trip, P3 which models are offered, P4 the
request goes to exactly the configured base URL, P5 the model sent is the one configured,
P6 a provider's error message is what the user sees.

P4-P6 observe requests in-process through an httpx2 mock transport; the same behaviours are
shown against real servers in test_chat_page.py and test_errors_real.py. URLs are built from
generated parts (names, international names, IPv4, IPv6, ports, paths), so each test knows
by construction what is valid and where a request must go.
"""

from __future__ import annotations

import dataclasses
import json
import string
import tempfile
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import httpx2
import openai
from cryptography.fernet import Fernet
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from core.chat.call import Reply, stream_reply
from core.chat.client import build_client
from core.failures import UserFacingError
from core.chat.errors import describe_error
from core.store.keybox import EncryptedProfileStore, KeyBox
from core.providers.profile import MAX_KEY_LENGTH, MAX_TEXT_LENGTH, Profile
from core.providers.kinds import (
    DEFAULT_COMPATIBLE_MODEL,
    OPENAI_COMPATIBLE,
    Target,
)
from core.providers.connections import targets
from core.providers.seed import seed_connection, seed_connections
from core.store.sqlite import SQLiteProfileStore
from core.providers.urls import is_valid_base_url

# --- strategies ---------------------------------------------------------------------------


@dataclass(frozen=True)
class GeneratedURL:
    """A URL built from parts, with the ASCII host a client must request it at."""

    scheme: str
    host: str  # as typed
    ascii_host: str  # what goes on the wire: punycode for IDN, no brackets for IPv6
    port: str  # "" or ":N"
    path: str

    @property
    def text(self) -> str:
        return f"{self.scheme}://{self.host}{self.port}{self.path}"


def _same(text: str) -> tuple[str, str]:
    return text, text


def _a_label(label: str) -> str:
    """IDNA's ASCII form of a lowercase, NFC, left-to-right label, with the stdlib's codec."""
    return label if label.isascii() else "xn--" + label.encode("punycode").decode("ascii")


_label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?", fullmatch=True)
# A top-level label starts with a letter: all-digit names are IPv4 addresses to a client.
_top_label = st.from_regex(r"[a-z]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)
_hostname = st.builds(lambda labels, top: ".".join([*labels, top]),
                      st.lists(_label, max_size=3), _top_label).map(_same)
# Lowercase letters of left-to-right scripts that IDNA 2008 allows without context rules:
# Latin with accents, Greek, Cyrillic, Hiragana, CJK ideographs.
_idn_letters = st.one_of(
    st.characters(min_codepoint=0xDF, max_codepoint=0xF6),
    st.characters(min_codepoint=0xF8, max_codepoint=0xFF),
    st.characters(min_codepoint=0x3B1, max_codepoint=0x3C9),
    st.characters(min_codepoint=0x430, max_codepoint=0x44F),
    st.characters(min_codepoint=0x3041, max_codepoint=0x3093),
    st.characters(min_codepoint=0x4E00, max_codepoint=0x9FA5),
)
_idn_label = st.text(st.one_of(_idn_letters, st.sampled_from("abcxyz019")), min_size=1,
                     max_size=8).filter(lambda label: not label.isascii())
_idn_host = st.builds(
    lambda labels, top: (".".join(labels + [top]), ".".join(map(_a_label, labels + [top]))),
    st.lists(st.one_of(_idn_label, _label), min_size=1, max_size=3),
    st.one_of(_idn_label, _top_label),
)
_ipv4 = st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t))).map(_same)
_ipv6 = st.ip_addresses(v=6).map(lambda a: (f"[{a}]", str(a)))
_host = st.one_of(_hostname, _idn_host, _ipv4, _ipv6, st.just(_same("localhost")))
_port = st.one_of(st.just(""), st.integers(1, 65535).map(lambda p: f":{p}"))
# Dot segments are excluded: every client resolves "a/../b" to "b" (RFC 3986, 5.2.4).
_segment = st.text(string.ascii_letters + string.digits + "-._~", min_size=1,
                   max_size=12).filter(lambda s: s not in (".", ".."))
_path = st.lists(_segment, max_size=4).map(lambda segs: "".join("/" + s for s in segs))
url_parts = st.builds(
    lambda scheme, host, port, path: GeneratedURL(scheme, host[0], host[1], port, path),
    st.sampled_from(["http", "https", "HTTP", "Https"]),
    _host,
    _port,
    _path,
)
valid_urls = url_parts.map(lambda url: url.text)


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


def _with_host(url: GeneratedURL, host: str) -> str:
    return f"{url.scheme}://{host}{url.port}{url.path}"


def _bad_ipv4(numbers: tuple[int, ...], which: int, spoil: str) -> str:
    """A dotted quad a client refuses: one part over 255, or written with a leading zero."""
    parts = [str(n) for n in numbers]
    parts[which] = str(numbers[which] + 256) if spoil == "over_255" else f"0{numbers[which]}"
    return ".".join(parts)


def _with_invisible(url: str, at: int, character: str) -> str:
    return url[:at % (len(url) + 1)] + character + url[at % (len(url) + 1):]


_near_misses = st.one_of(
    # A host the client cannot request: bad IPv4 forms, a label IDNA refuses.
    st.builds(_with_host, url_parts, st.builds(
        _bad_ipv4, st.tuples(*[st.integers(0, 255)] * 4), st.integers(0, 3),
        st.sampled_from(["over_255", "leading_zero"]))),
    st.builds(_with_host, url_parts, st.builds(
        lambda bad, label: bad + label + ".example",
        st.sampled_from(["😀", "\u0301", "☃", "♥"]), _idn_label)),
    # A port out of range or not plain digits.
    st.builds(lambda url, port: f"{url.scheme}://{url.host}:{port}{url.path}", url_parts,
              st.one_of(st.just("0"), st.integers(65536, 10**6).map(str), st.just("+80"),
                        st.just("\u0663"))),
    # An invisible format character anywhere.
    st.builds(_with_invisible, valid_urls, st.integers(0, 10**4),
              st.characters(categories=["Cf"])),
)

invalid_urls = st.one_of(
    st.builds(
        _corrupt,
        valid_urls,
        st.sampled_from(
            ["scheme", "no_host", "whitespace", "control", "credentials", "too_long", "no_scheme"]
        ),
        st.sampled_from(["", "ftp", "file", "javascript", "ws", "\t", "\n", "secret"]),
    ),
    _near_misses,
)

# Printable, no whitespace, nothing invisible: what a model id looks like.
tokens = st.text(
    st.characters(min_codepoint=33, max_codepoint=0x2FFF,
                  exclude_categories=("Cs", "Cc", "Cf", "Zs", "Zl", "Zp")),
    min_size=1,
    max_size=80,
)
# What the form accepts as a key: printable ASCII, up to the limit.
_key_characters = st.characters(min_codepoint=0x21, max_codepoint=0x7E)
keys = st.one_of(
    st.text(_key_characters, min_size=1, max_size=80),
    st.integers(MAX_KEY_LENGTH - 3, MAX_KEY_LENGTH).flatmap(
        lambda n: st.text(_key_characters, min_size=n, max_size=n)),
)


# --- P1 -----------------------------------------------------------------------------------


@given(valid_urls)
def test_p1_url_validation_accepts_well_formed_http_urls(url):
    """P1: every well-formed http/https URL with a host is valid: names, IDN, IPv4, IPv6."""
    assert is_valid_base_url(url)


@given(invalid_urls)
def test_p1_url_validation_refuses_everything_else(url):
    """P1: other schemes, no host, whitespace, control and invisible characters, credentials,
    >1000, and what the HTTP client cannot request: bad IPv4 forms, bad IDNA, bad ports."""
    assert not is_valid_base_url(url)


@given(st.one_of(st.text(max_size=60), invalid_urls,
                 st.builds(_with_invisible, valid_urls, st.integers(0, 99), st.characters())))
def test_p1_url_validation_only_http_with_host(text):
    """P1 from the other side: whatever is accepted is http(s) with a host and no spaces or
    invisible characters, and the HTTP client can request it."""
    if is_valid_base_url(text):
        scheme, _, rest = text.partition("://")
        assert scheme.lower() in ("http", "https")
        assert rest and rest[0] not in "/?#"
        assert not any(ch.isspace() or unicodedata.category(ch) in ("Cc", "Cf") for ch in text)
        assert httpx2.URL(text).host


# --- P2 lives in test_store_contract.py, run against every store backend ----------------


# --- P3 -----------------------------------------------------------------------------------

# (what is typed in the base URL field, whether that counts as a set base URL)
_configured_url = st.one_of(
    st.tuples(st.sampled_from(["", "   ", "\t"]), st.just(False)),
    st.tuples(valid_urls, st.just(True)),
    st.tuples(valid_urls.map(lambda url: f"  {url}/ "), st.just(True)),
    st.tuples(invalid_urls, st.just(False)),
)
# (a server-side key, whether it is a key)
_server_key = st.one_of(st.tuples(st.sampled_from(["", "  "]), st.just(False)),
                        st.tuples(keys, st.just(True)))


@given(
    url=_configured_url,
    profile_key=st.one_of(st.just(""), keys),
    server_key=_server_key,
    needs_key=st.booleans(),
)
def test_p3_model_availability(url, profile_key, server_key, needs_key):
    """P3: the compatible model is listed iff the base URL is set and a key is available
    (profile or server-side), or the provider is marked as needing no key.

    The oracle is the property's sentence over facts known by construction, not the code."""
    (typed_url, url_is_set), (operator_key, operator_key_is_a_key) = url, server_key
    provider = dataclasses.replace(OPENAI_COMPATIBLE, needs_key=needs_key)
    profile = Profile(openai_compatible_base_url=typed_url, openai_compatible_api_key=profile_key)
    server_keys = {"OPENAI_COMPATIBLE_API_KEY": operator_key}
    offered = targets([seed_connection(provider, profile, server_keys)])
    listed = [t.provider_id for t in offered]
    key_available = profile_key != "" or operator_key_is_a_key
    expected = url_is_set and (key_available or not needs_key)
    assert listed == (["openai-compatible"] if expected else [])


@given(openai_key=st.one_of(st.just(""), keys), server_key=_server_key)
def test_p3_openai_needs_a_key(openai_key, server_key):
    """P3 for OpenAI: its models are listed iff a user or operator key is there."""
    operator_key, operator_key_is_a_key = server_key
    offered = targets(seed_connections(Profile(openai_api_key=openai_key),
                                       {"OPENAI_API_KEY": operator_key}))
    listed = any(t.provider_id == "openai" for t in offered)
    assert listed == (openai_key != "" or operator_key_is_a_key)


# --- keys: what the form accepts always fits the database --------------------------------

_any_character = st.characters(exclude_categories=("Cs",))
_mostly_ascii = st.one_of(*[_key_characters] * 9, _any_character)
_typed_keys = st.one_of(
    st.text(_any_character, max_size=40),
    st.text(_key_characters, max_size=40),
    st.integers(MAX_KEY_LENGTH - 3, MAX_KEY_LENGTH + 3).flatmap(
        lambda n: st.one_of(st.text(_key_characters, min_size=n, max_size=n),
                            st.text(_mostly_ascii, min_size=n, max_size=n))),
)


@settings(max_examples=80, deadline=None)
@given(key=_typed_keys)
def test_keys_up_to_the_limit_are_accepted_and_round_trip_or_refused_with_a_message(key):
    """Keys: a key of printable ASCII (0x21-0x7E) up to the limit is saved, encrypted within the
    database's 1000 characters, and read back; any other is refused with a message and nothing
    saved changes."""
    saved = Profile(display_name="kept", openai_compatible_api_key="sk-saved")
    acceptable = len(key) <= MAX_KEY_LENGTH and all(0x21 <= ord(ch) <= 0x7E for ch in key)
    with tempfile.TemporaryDirectory() as folder:
        backend = SQLiteProfileStore(Path(folder))
        store = EncryptedProfileStore(backend, KeyBox([Fernet.generate_key().decode()]))
        store.save(saved)
        try:
            store.save(saved.with_changes(openai_compatible_api_key=key))
        except UserFacingError as refused:
            assert not acceptable
            assert str(refused).startswith("OpenAI-compatible API key ")
            assert ("too long" in str(refused)) == (len(key) > MAX_KEY_LENGTH)
            assert store.load() == saved
            return
        assert acceptable
        assert store.load().openai_compatible_api_key == key
        assert len(key.encode()) <= MAX_KEY_LENGTH
        assert len(backend.load().openai_compatible_api_key) <= MAX_TEXT_LENGTH


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
    (target,) = targets(seed_connections(profile, {}))
    return target


_DEFAULT_PORTS = {"http": 80, "https": 443}


@settings(max_examples=80)
@given(url=url_parts, typed_around=st.sampled_from(["", "/", "/chat/completions",
                                                    "/chat/completions/", " "]))
def test_p4_base_url_usage(url, typed_around):
    """P4: the client talks to exactly the configured base URL: the request goes to its scheme,
    host (IDN in ASCII), port and path + /chat/completions, whatever was pasted after it.

    The expected URL is built from the generated parts, not by the app's normalisation."""
    assume(not url.path.lower().endswith(("/models", "/completions")))
    target = _target_for(Profile(openai_compatible_base_url=url.text + typed_around))
    seen: list[httpx2.Request] = []
    list(stream_reply(_recording_client(seen, target), target, [{"role": "user", "content": "x"}], Reply()))
    (request,) = seen
    scheme = url.scheme.lower()
    port = int(url.port[1:]) if url.port else _DEFAULT_PORTS[scheme]
    assert request.method == "POST"
    assert request.url.scheme == scheme
    assert request.url.raw_host.decode("ascii") == url.ascii_host
    assert (request.url.port or _DEFAULT_PORTS[scheme]) == port
    assert request.url.raw_path.decode("ascii") == url.path + "/chat/completions"


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
    assert target.model == sent  # the label the page shows is the model sent


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
