"""Nothing of the operator's environment reaches a server the user configured (core/client.py).

The openai SDK fills organization, project, extra headers and more from OPENAI_* variables
when the caller leaves them out. The server here is llm-katan behind the recording proxy, on
loopback; the requests go through the app's own paths (reply, Fetch models, Test connection).
"""

from __future__ import annotations

import dataclasses

import openai
import pytest

from core.chat.call import Reply, start_reply
from core.chat.client import build_client, connection_for
from core.config import Settings
from core.chat.discovery import list_models, test_connection
from core.providers.kinds import Target

OPERATOR_ENVIRONMENT = {
    "OPENAI_ORG_ID": "org-operator",
    "OPENAI_PROJECT_ID": "proj-operator",
    "OPENAI_ADMIN_KEY": "sk-admin-operator",
    "OPENAI_WEBHOOK_SECRET": "whsec-operator",
    "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",  # the discard port: a request there would fail
    "OPENAI_API_KEY": "sk-operator",
    "OPENAI_CUSTOM_HEADERS": "X-Operator-Secret: s3cret\nAuthorization: Bearer sk-operator-ambient",
}
LEAKS = ("operator", "s3cret", "whsec")


@pytest.fixture
def operator_environment(monkeypatch):
    for name, value in OPERATOR_ENVIRONMENT.items():
        monkeypatch.setenv(name, value)


def _sent(recorder) -> list[dict[str, str]]:
    return [request.headers for request in recorder.requests]


def test_no_operator_setting_reaches_a_custom_server(operator_environment, katan_server, recording_proxy):
    proxy, recorder = recording_proxy(katan_server)
    target = Target("openai-compatible", "OpenAI-compatible", proxy.base_url, proxy.api_key, proxy.model)
    settings = Settings()
    reply = Reply(target.provider_id, target.model)
    assert "".join(c for c in start_reply(settings, target, [{"role": "user", "content": "hi"}], reply)
                   if isinstance(c, str))
    assert reply.error is None, reply.error
    assert list_models(target, *connection_for(settings)) == [katan_server.model]
    assert test_connection(target, *connection_for(settings)).ok

    requests = recorder.requests
    assert len(requests) >= 4  # reply, list, and Test connection's list + chat
    for request in requests:
        assert request.sent_bearer(proxy.api_key)  # the target's key, not the ambient one
        for name in ("openai-organization", "openai-project", "x-operator-secret"):
            assert name not in request.headers, (name, request.path)
        assert not any(leak in value for value in request.headers.values() for leak in LEAKS)


def test_the_targets_own_organization_is_sent(operator_environment, katan_server, recording_proxy):
    proxy, recorder = recording_proxy(katan_server)
    target = Target("openai", "OpenAI", proxy.base_url, proxy.api_key, proxy.model, organization="org-user")
    build_client(target, http_client=connection_for(Settings())[1]).models.list()
    with pytest.raises(openai.AuthenticationError):  # katan wants its key; what was sent counts
        build_client(dataclasses.replace(target, api_key=""), http_client=connection_for(Settings())[1]).models.list()
    first, keyless = recorder.requests
    assert first.headers["openai-organization"] == "org-user"
    assert "openai-project" not in first.headers
    assert first.sent_bearer(proxy.api_key)
    assert not keyless.sent_bearer("sk-operator") and keyless.sent_bearer("no-key")
