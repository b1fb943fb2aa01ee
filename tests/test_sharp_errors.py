"""What a model server's failure says, pinned to the whole message: every status, every kind
of connection failure, every shape of error body, and which setting each one is about."""

from __future__ import annotations

import json
import logging
import socket
import ssl

import httpx2
import openai
import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.failures import UserFacingError
from core.chat.errors import (
    MODELS_OFFERED,
    MalformedReply,
    ServerReportedError,
    _error_code,
    describe_empty_stream,
    describe_error,
    describe_stall,
    describe_stream_end,
    for_the_administrator,
    is_web_page,
    provider_message,
    setting_at_fault,
)

BASE = "http://models.example:8000/v1"
REQUEST = httpx2.Request("POST", f"{BASE}/chat/completions")


def status_error(status: int, body: object = None, headers: dict | None = None,
                 text: str = "") -> openai.APIStatusError:
    response = httpx2.Response(status, request=REQUEST, headers=headers or {}, text=text)
    return openai.APIStatusError(f"Error code: {status}", response=response, body=body)


def caused(outer: BaseException, *chain: BaseException) -> BaseException:
    """`outer`, caused by chain[0], caused by chain[1], ..."""
    current = outer
    for cause in chain:
        current.__cause__ = cause
        current = cause
    return outer


def connection_error(*chain: BaseException) -> openai.APIConnectionError:
    return caused(openai.APIConnectionError(request=REQUEST), *chain)


# ---- statuses ----


@pytest.mark.parametrize(
    "status, body, message",
    [
        (401, None, "The API key was rejected (401): check the key in Settings."),
        (401, {"error": "bad key"},
         "The API key was rejected (401): check the key in Settings. The server said: bad key"),
        (403, None, "Access denied (403): this key may not use this model or endpoint."),
        (403, {"detail": "no"},
         "Access denied (403): this key may not use this model or endpoint. The server said: no"),
        (429, None, "Too many requests (429): the server is rate-limiting you. Wait a moment "
                    "before trying again."),
        (422, None, "The server could not process the request (422). It may not support one of "
                    "the options sent."),
        (422, {"detail": [{"msg": "field required"}]},
         "The server could not process the request (422). It said: field required"),
        (413, None, "The request is too large for the server (413): start a new chat or "
                    "shorten the conversation."),
        (400, {"error": {"message": "nope", "code": "context_length_exceeded"}},
         "The conversation is too long for the model's context (400): start a new chat or "
         "shorten the conversation. The server said: nope"),
        (500, None, "The server had an internal error (500); try again shortly."),
        (502, None, "A gateway or proxy in front of the model server could not reach it (502)."),
        (503, None, "The server is overloaded or unavailable (503); try again in a moment."),
        (504, None, "A gateway or proxy in front of the model server timed out waiting for it "
                    "(504)."),
        (529, None, "The server is overloaded (529); try again in a moment."),
        (599, None, "The server failed (599); try again shortly."),
        (599, {"error": "gone"}, "The server failed (599); try again shortly. The server said: "
                                 "gone"),
        (418, None, "The server refused the request (418)."),
        (418, {"message": "teapot"}, "The server refused the request (418): teapot"),
        (423, {"message": "locked"}, "The server refused the request (423): locked"),
        (400, False, "The server refused the request (400): false"),
        # A 5xx or a 429 is never the model's fault, whatever the text says.
        (500, {"error": "model not found"}, "The server had an internal error (500); try again "
                                            "shortly. The server said: model not found"),
        (429, {"error": "unknown model x"}, "Too many requests (429): the server is "
         "rate-limiting you. Wait a moment before trying again. The server said: unknown model x"),
    ],
)
def test_each_status_has_its_whole_message(status, body, message):
    assert describe_error(status_error(status, body), base_url=BASE, model="m") == message


KEY_REJECTED = "The API key was rejected ({}): check the key in Settings."


@pytest.mark.parametrize(
    "status, body, setting",
    [
        (400, {"error": {"message": "API key not valid. Please pass a valid API key."}}, "key"),
        (400, {"error": {"message": "nope", "code": "INVALID_API_KEY"}}, "key"),
        (400, {"error": {"message": "Expired API key", "status": "INVALID_ARGUMENT"}}, "key"),
    ],
)
def test_a_400_saying_the_key_is_not_valid_is_about_the_key(status, body, setting):
    said = provider_message(body)
    assert describe_error(status_error(status, body)) == (
        KEY_REJECTED.format(status) + f" The server said: {said}")
    assert setting_at_fault(status_error(status, body)) == setting


@pytest.mark.parametrize("status", [404, 422])
def test_only_a_400_is_read_for_words_about_the_key(status):
    body = {"error": "invalid api key"}
    assert not describe_error(status_error(status, body)).startswith("The API key was rejected")
    assert setting_at_fault(status_error(status, body)) != "key"


def test_a_conversation_too_long_is_not_a_setting_but_a_too_large_request_is_nothing():
    too_long = status_error(400, {"error": {"message": "x", "code": "context_length_exceeded"}})
    assert setting_at_fault(too_long) == "conversation"
    assert setting_at_fault(status_error(413, None)) is None


def test_a_retry_after_header_is_said_in_seconds():
    exc = status_error(429, None, {"Retry-After": " 7 "})
    assert describe_error(exc) == ("Too many requests (429): the server is rate-limiting you. "
                                   "Try again in 7 seconds.")


def test_the_text_of_a_body_the_sdk_did_not_decode_is_read_from_the_response():
    exc = status_error(418, None, text="plain words from the server")
    assert describe_error(exc) == ("The server refused the request (418): plain words from the "
                                   "server")


@pytest.mark.parametrize(
    "base_url, hint",
    [
        ("http://server:1234", " Most servers expect the base URL to end in /v1."),
        ("http://server:1234/api", " Most servers expect the base URL to end in /v1."),
        ("http://server:1234/v1/X", " Most servers expect the base URL to end in /v1."),
        ("http://server:1234/V1", " Most servers expect the base URL to end in /v1."),
        ("http://server:1234/v1", " Check the path: the base URL may have an extra /v1 or a "
                                  "wrong path."),
        ("http://server:1234/v1/", " Check the path: the base URL may have an extra /v1 or a "
                                   "wrong path."),
        ("http://server:1234/v1//", " Check the path: the base URL may have an extra /v1 or a "
                                    "wrong path."),
    ],
)
def test_a_404_gives_the_hint_that_fits_the_base_url(base_url, hint):
    """Each hint exactly: both mention 404 and /v1, so only the whole text tells them apart."""
    message = describe_error(status_error(404, None), base_url=base_url)
    assert message == f"Nothing was found at {base_url}/chat/completions (404).{hint}"
    said = describe_error(status_error(404, {"error": "no route"}), base_url=base_url)
    assert said == f"{message} The server said: no route"


@given(st.lists(st.sampled_from(["v1", "V1", "api", "openai", "x", "", "v1x", "av1"]),
                max_size=4),
       st.sampled_from(["", "/", "//"]))
def test_the_404_hint_follows_whether_the_base_url_ends_in_v1(segments, slashes):
    """Property: the 404 hint asks for /v1 exactly when the base URL, trailing slashes
    trimmed, does not end in /v1; otherwise it suggests an extra /v1 or a wrong path."""
    base_url = "http://server" + "".join(f"/{s}" for s in segments) + slashes
    message = describe_error(status_error(404, None), base_url=base_url)
    ends_in_v1 = base_url.rstrip("/").endswith("/v1")
    assert message.endswith(" Check the path: the base URL may have an extra /v1 or a wrong "
                            "path." if ends_in_v1 else
                            " Most servers expect the base URL to end in /v1.")


def test_describe_error_without_a_base_url_or_model_names_neither():
    assert describe_error(status_error(404, None)) == (
        "Nothing was found at /chat/completions (404). Most servers expect the base URL to end "
        "in /v1.")
    assert describe_error(status_error(400, {"error": {"code": "model_not_found"}})) == (
        "The server does not know the model (400): check the model name in Settings.")


# ---- an unknown model ----


@pytest.mark.parametrize(
    "status, body",
    [
        (400, {"error": {"message": "nope", "code": "model_not_found"}}),
        (400, {"error": {"message": "nope", "type": "invalid_model"}}),
        (400, {"error": {"message": "nope", "code": None, "type": "Unknown_Model"}}),
        (404, {"error": "No model loaded"}),
        (400, {"error": "The model foo does not exist"}),
        (400, {"error": "invalid model"}),
    ],
)
def test_an_unknown_model_is_recognised_by_code_type_or_words(status, body):
    message = describe_error(status_error(status, body), model="foo")
    said = f" The server said: {provider_message(body)}"
    assert message == (f'The server does not know the model "foo" ({status}): check the model '
                       f"name in Settings.{said}")
    assert setting_at_fault(status_error(status, body)) == "model"


def test_a_404_that_does_not_mention_a_model_is_the_base_url_s():
    assert setting_at_fault(status_error(404, {"error": "No route"})) == "base_url"
    assert setting_at_fault(status_error(405, {"error": "No model loaded"})) is None


@pytest.mark.parametrize("count, offered", [
    (MODELS_OFFERED - 1, ", ".join(f"m{i}" for i in range(MODELS_OFFERED - 1)) + "."),
    (MODELS_OFFERED, ", ".join(f"m{i}" for i in range(MODELS_OFFERED)) + "."),
    (MODELS_OFFERED + 2, ", ".join(f"m{i}" for i in range(MODELS_OFFERED)) + " and 2 more."),
])
def test_an_unknown_model_message_offers_at_most_ten_models(count, offered):
    models = [f"m{i}" for i in range(count)]
    exc = status_error(400, {"error": {"code": "model_not_found"}})
    assert describe_error(exc, model="gpt-9", models=models) == (
        f'The server does not know the model "gpt-9" (400): check the model name in Settings. '
        f"It offers: {offered}")


def test_a_413_is_too_large_whatever_the_body():
    exc = status_error(413, "Payload Too Large")
    assert describe_error(exc) == ("The request is too large for the server (413): start a new "
                                   "chat or shorten the conversation. The server said: Payload "
                                   "Too Large")
    assert describe_error(status_error(414, None)) == "The server refused the request (414)."


def test_the_code_of_an_error_body():
    """_error_code: the body's `code` (else its `type`), lower-cased; "" when it has none."""
    assert _error_code({"error": {"code": "Model_Not_Found", "type": "x"}}) == "model_not_found"
    assert _error_code({"error": {"type": "Invalid_Request"}}) == "invalid_request"
    assert _error_code({"code": 404}) == "404"
    assert _error_code({"error": "text"}) == ""
    assert _error_code({"message": "no code"}) == ""
    assert _error_code("plain text") == ""
    assert _error_code(None) == ""


# ---- the provider's own words ----


@pytest.mark.parametrize(
    "body, said",
    [
        ({"error": {"error": {"error": {"message": "deep"}}}}, "deep"),
        ({"error": {"error": {"error": {"error": {"message": "too deep"}}}}}, None),
        ({"error": {"error": {"error": ["listed"]}}}, "listed"),
        ({"error": {"error": {"error": {"errors": ["too deep"]}}}}, None),
        ({"error": {"error": '{"message": "json in text"}'}}, "json in text"),
        ({"error": {"error": {"error": '{"message": "too deep"}'}}}, None),
        ({"error": True, "message": "a flag is not a message"}, "a flag is not a message"),
        ({"error": 404}, "404"),
        (503, "503"),
        (True, "true"),  # a plain-text body "true" or "false", decoded as JSON by the SDK
        (False, "false"),
        ({"error_message": "from error_message"}, "from error_message"),
        ({"title": "from title"}, "from title"),
        (["one", "two"], "one; two"),
        ({"errors": ["first", {"message": "second"}]}, "first; second"),
        (["1", "2", "3", "4", "5", "6"], "1; 2; 3; 4; 5"),
        ("Request <b>rejected</b> by policy", "Request rejected by policy"),
        # Only the first 200 characters are looked at to tell an HTML page:
        ("p" * 195 + "<html><title>T</title></html>", "T"),
        ("p" * 196 + "<html><title>T</title></html>", "p" * 196 + " T"),
        ("<?xml version='1.0'?><html><body><h1>Oops</h1><p>more</p></body></html>", "Oops"),
        ("<!DOCTYPE html><title>Doc title</title><p>body text</p>", "Doc title"),
        ("<head><title>Head title</title></head><p>body text</p>", "Head title"),
        ("<body><h1>Heading</h1><p>body text</p></body>", "Heading"),
        ("<html><title>502 <b>Bad</b>  Gateway</title></html>", "502 Bad Gateway"),
        (b"caf\xe9 \xff broken bytes", "caf\ufffd \ufffd broken bytes"),
        ("Bad input\nTraceback (most recent call last):\n  File \"a.py\", line 1, in <module>\n"
         "ValueError: x\n\nDuring handling:\n\nTraceback (most recent call last):\n"
         "  File \"b.py\", line 2\nKeyError: y", "Bad input"),
        ("Bad thing happened\n  File \"x.py\", line 3, in f\n    raise", "Bad thing happened"),
        ("Traceback (most recent call last):\n  File \"a.py\", line 1\nValueError: the reason",
         "the reason"),
        ("Traceback (most recent call last)<br>", None),  # a header and nothing after it
    ],
)
def test_the_provider_s_words_are_found_in_every_shape(body, said):
    assert provider_message(body) == said


# ---- connections ----


@pytest.mark.parametrize(
    "chain, message",
    [
        ([httpx2.ConnectError("outer"), socket.gaierror(-2, "Name or service not known")],
         f"Could not find the server at {BASE}: the host name does not resolve."),
        ([httpx2.ConnectError("outer"), socket.gaierror(-5, "No address for the host")],
         f"Could not find the server at {BASE}: the host name does not resolve."),
        ([OSError("[Errno -2] Name or service not known")],
         f"Could not find the server at {BASE}: the host name does not resolve."),
        ([OSError("Temporary failure in name resolution")],
         f"Could not find the server at {BASE}: the host name does not resolve."),
        ([OSError("nodename nor servname provided, or not known")],
         f"Could not find the server at {BASE}: the host name does not resolve."),
        ([httpx2.ConnectError("outer"), ssl.SSLError(1, "bad record mac")],
         f"Could not make a secure (TLS) connection to {BASE}: bad record mac"),
        ([OSError("certificate verify failed: unable to get local issuer")],
         f"Could not make a secure (TLS) connection to {BASE}: certificate verify failed: "
         "unable to get local issuer"),
        ([OSError("SSL handshake failed")],
         f"Could not make a secure (TLS) connection to {BASE}: SSL handshake failed"),
        ([httpx2.ConnectError("outer"), ConnectionRefusedError("no")],
         f"Could not connect to {BASE}: the connection was refused. Is the server running, and "
         "is the port right?"),
        ([OSError("Connection Refused by peer")],
         f"Could not connect to {BASE}: the connection was refused. Is the server running, and "
         "is the port right?"),
        ([httpx2.ConnectError("the middle"), OSError("the  root\n cause")],
         f"Could not connect to {BASE}: the root cause"),
        ([httpx2.ConnectError("the middle"), OSError()], f"Could not connect to {BASE}: OSError"),
    ],
)
def test_a_connection_failure_says_what_went_wrong(chain, message):
    assert describe_error(connection_error(*chain), base_url=BASE) == message
    # The same failure raised by httpx2 itself, without the SDK around it:
    raw = caused(httpx2.ConnectError("raw"), *chain)
    assert describe_error(raw, base_url=BASE) == message


def test_a_connection_error_of_httpx2_alone_says_its_own_text():
    assert describe_error(httpx2.ConnectError("connect  failed"), base_url=BASE) == (
        f"Could not connect to {BASE}: connect failed")


@pytest.mark.parametrize("cause", [httpx2.RemoteProtocolError("closed"), httpx2.ReadError("x")])
def test_a_dropped_connection_says_so(cause):
    dropped = (f"The connection to {BASE} dropped in the middle of the reply (the server closed "
               "it without finishing).")
    assert describe_error(connection_error(cause), base_url=BASE) == dropped
    assert describe_error(cause, base_url=BASE) == dropped
    assert setting_at_fault(connection_error(cause)) is None


def test_timeouts():
    connect = caused(openai.APITimeoutError(request=REQUEST), httpx2.ConnectTimeout("slow"))
    read = caused(openai.APITimeoutError(request=REQUEST), httpx2.ReadTimeout("slow"))
    assert describe_error(connect, base_url=BASE) == (
        f"Could not connect to {BASE}: the connection attempt timed out.")
    assert describe_error(read, base_url=BASE) == (
        f"The server at {BASE} did not answer in time (timed out).")
    assert describe_error(httpx2.ReadTimeout("slow"), base_url=BASE) == (
        f"The server at {BASE} stopped sending (timed out).")
    assert (setting_at_fault(connect), setting_at_fault(read)) == ("base_url", None)
    assert setting_at_fault(httpx2.ReadTimeout("slow")) is None


# ---- errors inside a reply, and other failures ----


def test_an_error_inside_the_reply_says_the_provider_s_words():
    prefix = "The server reported an error during the reply: "
    in_body = openai.APIError("ignored", REQUEST, body={"error": {"message": "overloaded"}})
    in_message = openai.APIError("Stream  broke", REQUEST, body=None)
    assert describe_error(in_body) == prefix + "overloaded"
    assert describe_error(in_message) == prefix + "Stream broke"
    assert describe_error(ServerReportedError({"error": {"message": "boom"}})) == prefix + "boom"
    assert describe_error(ServerReportedError({"unrelated": 1})) == prefix + "no details given."


def test_a_server_reported_error_keeps_its_body():
    body = {"error": "x"}
    exc = ServerReportedError(body)
    assert exc.body is body and str(exc) == "the server reported an error"


@pytest.mark.parametrize(
    "exc, message",
    [
        (httpx2.InvalidURL("No  scheme"), f"The base URL {BASE} cannot be used: No scheme."),
        (httpx2.DecodingError("bad\ngzip"), "The server's answer could not be read (bad gzip)."),
        (MalformedReply("not json"), "The server sent a malformed reply that could not be read."),
    ],
)
def test_other_failures_of_a_request(exc, message):
    assert describe_error(exc, base_url=BASE) == message


def test_an_exception_that_is_not_a_provider_failure_is_our_bug(caplog):
    key = "sk-abcdefghijklmnop"
    with caplog.at_level(logging.ERROR):
        message = describe_error(ValueError(f"oops {key} zz-hidden-words"),
                                 secrets=["zz-hidden-words"])
    assert message.startswith("Switchboard itself failed (reference ")
    assert message.endswith("); this is a bug in Switchboard, not the server.")
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "ValueError: oops" in logged and "zz-hidden-words" not in logged and key not in logged


def test_the_keys_it_is_given_are_redacted_from_the_provider_s_words():
    exc = status_error(401, {"error": "key zz-hidden-words-1234 is not valid"})
    assert describe_error(exc, secrets=["zz-hidden-words-1234"]) == (
        "The API key was rejected (401): check the key in Settings. The server said: key "
        "[redacted] is not valid")


# ---- which setting an error is about ----


class NamesTheModel(UserFacingError):
    field = "model"


@pytest.mark.parametrize(
    "exc, setting",
    [
        (None, None),
        (ValueError("ours"), None),
        (caused(RuntimeError("ours"), NamesTheModel("in an error of ours")), None),
        (status_error(401, None), "key"),
        (status_error(403, None), "key"),
        (status_error(400, None), None),
        (connection_error(httpx2.ConnectError("x")), "base_url"),
        (httpx2.ConnectError("x"), "base_url"),
        (httpx2.InvalidURL("x"), "base_url"),
        (connection_error(UserFacingError("the network guard refused it")), "base_url"),
        (connection_error(NamesTheModel("about the model")), "model"),
        (UserFacingError("a message of ours"), None),
        (MalformedReply("x"), None),
    ],
)
def test_the_setting_an_error_is_about(exc, setting):
    assert setting_at_fault(exc) == setting


# ---- replies that end oddly ----


def test_a_stall_is_said_and_the_setting_goes_to_the_log(caplog):
    with caplog.at_level(logging.INFO, logger="core.chat.errors"):
        message = describe_stall("idle", 2.5, BASE)
    assert message == (f"The server at {BASE} stopped in the middle of the reply: sent nothing "
                       "for 2.5 seconds, so the reply was cut off.")
    assert [r.getMessage() for r in caplog.records] == [
        f"A reply from {BASE} was cut after 2.5 s of silence; SWITCHBOARD_IDLE_TIMEOUT sets the "
        "limit."]


def test_a_reply_held_in_a_queue_is_said_so():
    assert describe_stall("queued", 150, BASE) == (
        f"The server at {BASE} did not start replying: it only sent keep-alive messages for 150 "
        "seconds (the request may be waiting in a queue), so the reply was cut off.")


def test_stream_ends():
    assert describe_stream_end("truncated", BASE) == (
        f"The connection to {BASE} closed before the reply was finished: it is cut short.")
    assert describe_stream_end("length", BASE) == (
        "The reply stopped at the server's length limit (max tokens).")
    unknown = ("The server ended the reply with an unknown finish reason ('{}'); it may be "
               "incomplete.")
    assert describe_stream_end("unknown_finish", BASE) == unknown.format("")
    assert describe_stream_end("unknown_finish", BASE, "odd\n  reason") == unknown.format(
        "odd reason")
    assert describe_stream_end("unknown_finish", BASE, "r" * 50) == unknown.format("r" * 40)


@pytest.mark.parametrize(
    "content_type, body, page",
    [
        ("text/html; charset=utf-8", "", True),
        ("TEXT/HTML", "", True),
        ("application/xhtml+xml", "", True),
        ("application/json", "<!DOCTYPE html><title>Portal</title>", True),
        ("application/json", "\n  <!DOCTYPE html><title>Portal</title>", True),
        ("", "<html><body>x</body></html>", True),
        ("application/json", '{"choices": []}', False),
        ("text/event-stream", "data: {}", False),
        ("", "", False),
    ],
)
def test_a_web_page_is_told_by_its_content_type_or_its_start(content_type, body, page):
    assert is_web_page(content_type, body) is page


WEB_PAGE = ("The server at {}{} answered with a web page{} instead of a reply: something between "
            "the app and the server (a sign-in portal, proxy or gateway) may be in the way.")


@pytest.mark.parametrize(
    "content_type, body, named",
    [
        ("text/html", "<html><head><title>Sign in</title></head><body>form</body></html>",
         " ('Sign in')"),
        ("application/json", "<!DOCTYPE html><h1>Gateway</h1>", " ('Gateway')"),
        ("text/html", "<html><body><p>no title</p></body></html>", ""),
        ("text/html", "just words", ""),
        ("text/html", f"<title>{'t' * 130}</title>", f" ('{'t' * 120}')"),
    ],
)
def test_a_web_page_answering_a_request_is_named_by_its_title(content_type, body, named):
    assert describe_empty_stream(BASE, content_type, body) == WEB_PAGE.format(BASE, "", named)


def test_a_json_answer_that_is_not_a_web_page_is_a_wrong_path():
    assert describe_empty_stream(BASE, "application/json", '{"ok": true}') == (
        f"The server at {BASE} answered with an application/json page instead of a streamed "
        "reply. Check the base URL: it should be the API root (often ending in /v1).")


@pytest.mark.parametrize(
    "message, field, said",
    [
        ("The API key was rejected (401): check the key in Settings. The server said: no",
         "key", "The API key was rejected (401). The server said: no This connection is set by "
                "the administrator: ask them to check the API key."),
        ('The server does not know the model "m" (400): check the model name in Settings.',
         "model", 'The server does not know the model "m" (400). This connection is set by the '
                  "administrator: ask them to check the model."),
        ("The server at x answered with a text/html page instead of a streamed reply. Check "
         "the base URL: it should be the API root (often ending in /v1).", "base_url",
         "The server at x answered with a text/html page instead of a streamed reply. This "
         "connection is set by the administrator: ask them to check the base URL."),
        ("Something else went wrong.", "conversation",
         "Something else went wrong. This connection is set by the administrator: ask them to "
         "check it."),
    ],
)
def test_an_administrator_s_connection_sends_the_user_to_the_administrator(message, field, said):
    assert for_the_administrator(message, field) == said


@pytest.mark.parametrize(
    "content_type, message",
    [
        ("application/json", f"The server at {BASE} answered with an application/json page "
         "instead of a streamed reply. Check the base URL: it should be the API root (often "
         "ending in /v1)."),
        ("Text/HTML; charset=utf-8", f"The server at {BASE} answered with a text/html page "
         "instead of a streamed reply. Check the base URL: it should be the API root (often "
         "ending in /v1)."),
        ("", f"The server at {BASE} accepted the request but sent no reply. The conversation may "
         "be too long for the model's context, or the server hit an error (see its log)."),
        ("text/event-stream; charset=utf-8", f"The server at {BASE} accepted the request but sent "
         "no reply. The conversation may be too long for the model's context, or the server hit "
         "an error (see its log)."),
    ],
)
def test_an_empty_answer_says_what_came_instead(content_type, message):
    assert describe_empty_stream(BASE, content_type) == message


@pytest.mark.parametrize("text", ["Infinity", "-Infinity", "NaN", "1e5", "1.50", "true"])
def test_a_plain_text_body_that_parses_as_json_is_said_as_the_server_sent_it(text):
    """The SDK decodes a text/plain body as JSON when it can: "Infinity" becomes a float."""
    request = httpx2.Request("POST", "http://x/v1/chat/completions")
    response = httpx2.Response(400, request=request, content=text.encode(),
                               headers={"content-type": "text/plain"})
    exc = openai.BadRequestError("Error code: 400", response=response, body=json.loads(text))
    assert describe_error(exc, base_url="http://x/v1").endswith(f": {text}")


def _chained(exc: BaseException, cause: BaseException) -> BaseException:
    exc.__cause__ = cause
    return exc


@pytest.mark.parametrize("broke", [httpx2.ReadError("reset"), httpx2.RemoteProtocolError("cut"),
                                   httpx2.ReadTimeout("slow")])
def test_a_connection_that_broke_mid_reply_deeper_in_the_chain_blames_no_setting(broke):
    """The base URL is blamed for a failed connection only when nothing in the chain says the
    connection broke mid-way: one level down is the direct case, two levels down this one."""
    request = httpx2.Request("POST", "http://x/v1/chat/completions")
    wrapped = _chained(httpx2.ConnectError("wrapped"), broke)
    assert setting_at_fault(wrapped) is None
    assert setting_at_fault(_chained(openai.APIConnectionError(request=request), wrapped)) is None
    assert setting_at_fault(_chained(httpx2.InvalidURL("odd"), broke)) is None
    plain = _chained(httpx2.ConnectError("refused"), ConnectionRefusedError())
    assert setting_at_fault(plain) == "base_url"
    assert setting_at_fault(_chained(openai.APIConnectionError(request=request), plain)) == (
        "base_url")
    assert setting_at_fault(httpx2.InvalidURL("odd")) == "base_url"
