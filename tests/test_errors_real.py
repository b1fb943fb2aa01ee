"""Every error class provoked for real, through the chat page.

Each test: a first exchange succeeds; the settings then point at a failing server; the next
message fails with the expected message; the typed message and the earlier conversation are
still there; after pointing back at a working server, one click on Retry answers it.
"""

from __future__ import annotations

import datetime
import http.server
import ipaddress
import ssl
import threading
from dataclasses import dataclass

import pytest

from tests.apptest import shown_text
from tests.chatting import chat_messages, errors, save_compatible, send, start_chat, use_server
from tests.fixtures.common import free_port

FIRST = "first question"
SECOND = "second question, which will fail"


@dataclass(frozen=True)
class Failing:
    base_url: str
    api_key: str
    model: str
    says: tuple[str, ...]  # every one of these is in the message shown


def _closed_port(request) -> Failing:
    url = f"http://127.0.0.1:{free_port()}/v1"
    return Failing(url, "k", "m", ("Could not connect to " + url, "refused"))


def _unknown_host(request) -> Failing:
    url = "http://switchboard-test.invalid:1234/v1"
    return Failing(url, "k", "m", (url, "does not resolve"))


def _timeout(request) -> Failing:
    server = request.getfixturevalue("katan_factory")("--latency-ms", "4000")
    request.getfixturevalue("monkeypatch").setenv("SWITCHBOARD_FIRST_TOKEN_TIMEOUT", "1")
    return Failing(server.base_url, server.api_key, server.model, ("did not start replying", "1 seconds"))


def _bad_key_katan(request) -> Failing:
    server = request.getfixturevalue("katan_server")
    return Failing(server.base_url, "sk-wrong-key-123456789", server.model, ("API key was rejected (401)",))


def _bad_key_llama(request) -> Failing:
    server = request.getfixturevalue("llama_server")
    return Failing(server.base_url, "wrong-key-abcdefgh", server.model, ("API key was rejected (401)", "Invalid API key"))


def _forbidden(request) -> Failing:
    server = request.getfixturevalue("canned_server")(
        403, {"error": {"message": "Project lacks access to model", "type": "permission_error"}}
    )
    return Failing(server.base_url, "k", "m", ("Access denied (403)", "Project lacks access to model"))


def _missing_v1(request) -> Failing:
    server = request.getfixturevalue("llama_server")
    return Failing(server.origin, server.api_key, server.model, ("404", "/v1"))


def _rate_limited(request) -> Failing:
    server = request.getfixturevalue("llmock_factory")("--error-rate", "429=1.0")
    return Failing(server.base_url, "k", server.model, ("429", "Try again in 1 seconds", "Rate limit exceeded"))


def _server_error(request) -> Failing:
    server = request.getfixturevalue("katan_factory")("--error-rate", "1.0")
    return Failing(server.base_url, server.api_key, server.model, ("internal error (500)", "internal server error"))


def _html_from_a_proxy(request) -> Failing:
    page = (
        "<!DOCTYPE html><html><head><title>502 Bad Gateway</title><style>h1{x:y}</style></head>"
        "<body><h1>502 Bad Gateway</h1><hr><center>nginx</center></body></html>"
    )
    server = request.getfixturevalue("canned_server")(502, page, content_type="text/html")
    return Failing(server.base_url, "k", "m", ("(502)", "502 Bad Gateway"))


def _plain_text_error(request) -> Failing:
    server = request.getfixturevalue("canned_server")(400, "model not loaded: qwen3")
    return Failing(server.base_url, "k", "m", ("(400)", "model not loaded: qwen3"))


def _error_event_in_stream(request) -> Failing:
    events = [
        'data: {"id":"c","object":"chat.completion.chunk","created":0,"model":"m",'
        '"choices":[{"index":0,"delta":{"role":"assistant"},"finish_reason":null}]}\n\n',
        'data: {"error": {"message": "model overloaded, try later", "type": "server_error"}}\n\n',
    ]
    server = request.getfixturevalue("canned_server")(200, events, chunked=True)
    return Failing(server.base_url, "k", "m", ("during the reply", "model overloaded, try later"))


def _too_large(request) -> Failing:
    server = request.getfixturevalue("canned_server")(
        413, "<html><head><title>413 Request Entity Too Large</title></head></html>",
        content_type="text/html",
    )
    return Failing(server.base_url, "k", "m", ("too large for the server (413)", "413 Request Entity Too Large"))


def _unprocessable(request) -> Failing:
    body = {"error": {"message": "body -> messages: Input should be a valid list", "type": "invalid_request_error"}}
    server = request.getfixturevalue("canned_server")(422, body)
    return Failing(server.base_url, "k", "m", ("(422)", "Input should be a valid list"))


def _untrusted_certificate(request) -> Failing:
    port = request.getfixturevalue("self_signed_https_port")
    url = f"https://127.0.0.1:{port}/v1"
    return Failing(url, "k", "m", ("secure (TLS) connection to " + url, "certificate"))


@pytest.fixture(scope="module")
def self_signed_https_port(tmp_path_factory):
    """A real HTTPS server on loopback whose certificate nobody trusts."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = _self_signed_certificate(folder)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def _self_signed_certificate(folder):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ))
    return str(cert_path), str(key_path)


SCENARIOS = {
    "413": _too_large,
    "422": _unprocessable,
    "TLS with a self-signed certificate": _untrusted_certificate,
    "connection refused": _closed_port,
    "unknown host": _unknown_host,
    "first-token timeout": _timeout,
    "401 llm-katan": _bad_key_katan,
    "401 llama.cpp": _bad_key_llama,
    "403": _forbidden,
    "404 missing /v1": _missing_v1,
    "429": _rate_limited,
    "500": _server_error,
    "502 HTML page": _html_from_a_proxy,
    "400 plain text": _plain_text_error,
    "error event in the stream": _error_event_in_stream,
}


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_an_error_is_explained_and_nothing_is_lost(scenario, request, katan_server):
    failing = SCENARIOS[scenario](request)  # before the session starts: it may set limits
    use_server(katan_server)
    at = start_chat()
    send(at, FIRST)
    first_reply = chat_messages(at)[1]
    assert first_reply[0] == "assistant" and FIRST in first_reply[1]

    save_compatible(failing.base_url, failing.api_key, failing.model)
    send(at, SECOND)

    shown = errors(at)
    assert len(shown) == 1, shown
    for phrase in failing.says:
        assert phrase in shown[0], (phrase, shown[0])
    assert failing.api_key not in shown[0] or len(failing.api_key) < 4
    messages = chat_messages(at)
    assert messages[:2] == [("user", FIRST), first_reply]  # the earlier conversation is intact
    assert ("user", SECOND) in messages  # the typed message is kept
    retry = at.button(key="chat:retry")

    use_server(katan_server)
    retry.click().run()
    assert not at.exception
    messages = chat_messages(at)
    assert messages[-2] == ("user", SECOND) and SECOND in messages[-1][1]
    assert errors(at) == []
    assert [role for role, _ in messages] == ["user", "assistant", "user", "assistant"]


def test_a_key_echoed_back_by_the_server_is_never_shown(katan_server):
    """llm-katan's 401 body repeats the key it got; the page must not."""
    key = "sk-user-typed-secret-987654321"
    save_compatible(katan_server.base_url, key, katan_server.model)
    at = start_chat()
    send(at, "hello")
    page = shown_text(at)  # every element, widget value and default
    assert "API key was rejected" in errors(at)[0]
    for start in range(len(key) - 7):
        assert key[start : start + 8] not in page
