"""A server's half-hidden echo of a key ("sk-proj-****wxyz") shows none of it: not the last 4
characters Settings hides for the administrator's key, not its first ones, not a piece next to
the mask. Real error shapes come back through an in-process transport given to the openai
client as its HTTP client; a property test states what `redact` promises for any secret."""

from __future__ import annotations

import json
import re
import string

import httpx2
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from core.chat.call import Reply, stream_reply
from core.chat.client import build_client
from core.chat.discovery import DiscoveryError, list_models, test_connection
from core.providers.connections import targets
from core.providers.operator import operator_connections
from core.providers.profile import Profile
from core.providers.seed import seed_connections
from core.redaction import HIDDEN, KEY_END, KEY_FRAGMENT, redact

ADMIN_KEY = "sk-proj-Q7vN2pLx9RtY4mKc8WzH3bJd6FgA1sUe5VoT0iXqwxyz"
ADMIN_GATEWAY_KEY = "gw_live_4fT9kLm2Qx7RbN8cVz3HpJ6dWy1sKe5Ao0Ug"

# How servers echo a key they refuse, half hidden (OpenAI's own first).
MASKED_ECHOES = {
    "openai": lambda key: (
        f"Incorrect API key provided: {key[:8]}{'*' * 60}{key[-4:]}. You can find your API key "
        "at https://platform.openai.com/account/api-keys."),
    "dots": lambda key: f"Invalid API key: {key[:3]}...{key[-4:]}",
    "ellipsis": lambda key: f"Invalid API key: {key[:3]}…{key[-4:]}",
    "x-mask": lambda key: f"Unknown key {'x' * 20}{key[-4:]}",
    "bullets": lambda key: f"Unknown key ••••{key[-4:]}",
    "stars-both-ends": lambda key: f"key {key[:4]}****{key[-4:]} is disabled",
    "ending-in": lambda key: f"The key ending in {key[-4:]} was revoked.",
    "starting-with": lambda key: f"The key starting with {key[:6]} was revoked.",
}
WHERE_SAID = ["openai-error", "detail", "plain-text"]


def _body(where: str, text: str) -> tuple[bytes, str]:
    if where == "openai-error":
        return json.dumps({"error": {"message": text, "type": "invalid_request_error",
                                     "param": None, "code": "invalid_api_key"}}).encode(), \
            "application/json"
    if where == "detail":
        return json.dumps({"detail": text}).encode(), "application/json"
    return text.encode(), "text/plain"


def _answering(status: int, body: bytes, content_type: str) -> httpx2.Client:
    """An HTTP client whose every request gets this answer, in-process."""
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(status, content=body, headers={"content-type": content_type})
    return httpx2.Client(transport=httpx2.MockTransport(handler))


def _admins_openai_target():
    """The seed's OpenAI with no key of the user's: the administrator's OPENAI_API_KEY."""
    found = targets(seed_connections(Profile(), {"OPENAI_API_KEY": ADMIN_KEY}))
    target = next(t for t in found if t.provider_id == "openai")
    assert target.api_key == ADMIN_KEY
    return target


def _admins_connection_target():
    """An administrator's connection (set in secrets), its key never shown to users."""
    [connection] = operator_connections({"gateway": {
        "name": "Team gateway", "base_url": "https://gateway.example/v1",
        "api_key": ADMIN_GATEWAY_KEY, "models": ["m"]}})
    [target] = targets([connection])
    return target


def _chat_error(target, client: httpx2.Client) -> str:
    reply = Reply()
    list(stream_reply(build_client(target, http_client=client), target,
                      [{"role": "user", "content": "hi"}], reply))
    assert reply.status == "failed"
    return reply.error or ""


def _fetch_models_error(target, client: httpx2.Client) -> str:
    with pytest.raises(DiscoveryError) as refused:
        list_models(target, http_client=client)
    return str(refused.value)


def _test_connection_text(target, client: httpx2.Client) -> str:
    report = test_connection(target, http_client=client)
    assert not report.ok
    return report.summary


def _assert_nothing_of(key: str, shown: str) -> None:
    assert key[-KEY_END:] not in shown, shown
    assert key[:KEY_END] not in shown, shown
    for start in range(len(key) - KEY_END + 1):  # no 4 characters of it next to a mask
        piece = key[start:start + KEY_END]
        for mask in ("*", "…", ".", "x", "•"):
            assert piece + mask not in shown and mask + piece not in shown, shown


@pytest.mark.parametrize("where", WHERE_SAID)
@pytest.mark.parametrize("echo", list(MASKED_ECHOES))
@pytest.mark.parametrize("target_of", [_admins_openai_target, _admins_connection_target],
                         ids=["openai-with-admin-key", "admin-connection"])
def test_a_masked_echo_of_the_administrators_key_shows_none_of_it(target_of, echo, where):
    target = target_of()
    key = target.api_key
    body, content_type = _body(where, MASKED_ECHOES[echo](key))
    for status in (401, 403):
        for shown in (_chat_error(target, _answering(status, body, content_type)),
                      _fetch_models_error(target, _answering(status, body, content_type)),
                      _test_connection_text(target, _answering(status, body, content_type))):
            _assert_nothing_of(key, shown)
            assert "Switchboard itself failed" not in shown


def test_the_message_still_says_what_happened():
    target = _admins_openai_target()
    body, content_type = _body("openai-error", MASKED_ECHOES["openai"](ADMIN_KEY))
    shown = _chat_error(target, _answering(401, body, content_type))
    assert shown.startswith("The API key was rejected (401)")
    assert "Incorrect API key provided: " + HIDDEN + ". You can find your API key" in shown


# ---- the property ------------------------------------------------------------------------

KEY_CHARACTERS = string.ascii_letters + string.digits + "-_"
MASKS = ["*", "**", "****", "…", "...", "xxxx", "XXX", "•••", "###"]
secrets_ = st.text(KEY_CHARACTERS, min_size=KEY_END, max_size=60)
filler = st.text(string.ascii_letters + string.digits + " :.,'\"()/-_=", max_size=12)


@st.composite
def echoes(draw):
    """A secret, and a text that quotes pieces of it (whole, its ends, anything) between
    masks and ordinary words, as servers do."""
    secret = draw(secrets_)
    parts = []
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["filler", "mask", "prefix", "suffix", "piece", "whole"]))
        if kind == "filler":
            parts.append(draw(filler))
        elif kind == "mask":
            parts.append(draw(st.sampled_from(MASKS)))
        elif kind == "whole":
            parts.append(secret)
        else:
            size = draw(st.integers(1, len(secret)))
            start = {"prefix": 0, "suffix": len(secret) - size}.get(
                kind, draw(st.integers(0, len(secret) - size)))
            parts.append(secret[start:start + size])
    return secret, "".join(parts)


def _mask_runs(text: str):
    return re.finditer(r"\*+|…+|\.{2,}|[xX]{3,}|•+|#{3,}", text)


@settings(max_examples=500, deadline=None)
@given(echoes())
@example(("sk-proj-abcdefghwxyz", "sk-proj-****************wxyz."))
@example(("abcdefghijklmnop", "ends with mnop"))
def test_no_telling_piece_of_a_secret_survives_redaction(case):
    """For any secret of 4 or more characters and any text: in what `redact` leaves visible
    (the text between its markers), no 8 characters of the secret appear, nor its first or
    last 4, nor any 4 of its characters next to a masking run (`*`, `…`, `...`, `xxx`, ...)."""
    secret, text = case
    shown = redact(text, [secret])
    for visible in shown.split(HIDDEN):
        for start in range(len(secret) - KEY_FRAGMENT + 1):
            assert secret[start:start + KEY_FRAGMENT] not in visible, (text, shown)
        assert secret[:KEY_END] not in visible and secret[-KEY_END:] not in visible, (text, shown)
        for run in _mask_runs(visible):
            before = visible[max(0, run.start() - KEY_END):run.start()]
            after = visible[run.end():run.end() + KEY_END]
            for near in (before, after):
                assert len(near) < KEY_END or near not in secret, (text, shown)


@given(st.text(string.ascii_letters + " .,:", max_size=80))
def test_text_without_secrets_is_left_as_it_is(text):
    """Nothing is hidden without a secret to hide (key-like strings aside)."""
    assert redact(text, []) == text
    assert redact(text, ["Zq9#Vv7!Kk3$"]) == text
