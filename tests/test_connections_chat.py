"""Any number of connections in the chat (issue 10): real servers on loopback, the real app.

Three connections at once (llama.cpp with the real model, llm-katan, llmock), each behind its
own recording proxy: the selector offers all their models, and each reply goes to its own
server with its own key, model and headers. Learned quirks are kept with the connection.
"""

from __future__ import annotations

import pytest

from core.providers.connections import NO_STREAM_OPTIONS
from tests.apptest import open_app, shown_text
from tests.chatting import (
    add_connection,
    connection_store,
    errors,
    save_compatible,
    saved_profile,
    send,
)


def _assistant_replies(at) -> list[str]:
    return ["\n".join(md.value for md in m.markdown) for m in at.chat_message if m.name == "assistant"]


@pytest.fixture
def three_connections(llama_server, katan_server, llmock_factory, recording_proxy):
    """(name, upstream, proxy, recorder, header value) for three servers behind proxies."""
    made = []
    for name, upstream in (("Local llama", llama_server), ("Katan", katan_server),
                           ("Mock", llmock_factory())):
        proxy, recorder = recording_proxy(upstream)
        secret = f"team-{name.split()[-1].lower()}-header-value"
        add_connection(name, proxy, headers=[("X-Team", secret)])
        made.append((name, upstream, proxy, recorder, secret))
    return made


def test_three_connections_each_stream_from_their_own_server(three_connections):
    at = open_app()
    offered = at.selectbox(key="chat:model").options
    for name, upstream, *_ in three_connections:
        assert f"{upstream.model} · {name}" in offered
    for name, upstream, proxy, recorder, secret in three_connections:
        for *_, each_recorder, _ in three_connections:
            each_recorder.clear()
        at.selectbox(key="chat:model").set_value(f"{upstream.model} · {name}").run()
        send(at, f"Say hello to {name}")
        assert not errors(at), errors(at)
        assert _assistant_replies(at)[-1].strip(), f"{name} sent an empty reply"
        (chat,) = [r for r in recorder.requests if r.path.endswith("/chat/completions")]
        assert chat.body["model"] == upstream.model and chat.body["stream"] is True
        assert chat.headers["x-team"] == secret
        assert chat.sent_bearer(proxy.api_key)
        assert chat.headers["host"] == proxy.base_url.split("/")[2]
        for other_name, *_, other_recorder, _ in three_connections:
            if other_name != name:
                assert other_recorder.requests == [], f"{other_name} got {name}'s request"
    page = shown_text(at)
    for *_, secret in three_connections:
        assert secret not in page


def _visit_settings_and_come_back(at) -> None:
    """Another tab's change shows on the next navigation (or within a few seconds)."""
    at.switch_page("pages/settings.py").run()
    at.switch_page("pages/chat.py").run()
    assert not at.exception, at.exception


def test_a_disabled_or_deleted_connection_leaves_the_selector_and_its_chat_keeps_its_label(
        katan_server):
    saved = add_connection("Katan", katan_server)
    at = open_app()
    send(at, "hello")
    footer = f"{katan_server.model} · Katan"
    assert any(footer in c.value for m in at.chat_message for c in m.caption)
    connection_store().update(saved.id, {"enabled": False}, saved.version)  # another tab
    _visit_settings_and_come_back(at)
    assert not [s for s in at.selectbox if s.key == "chat:model"]  # no model is offered
    assert any(footer in c.value for m in at.chat_message for c in m.caption)
    connection_store().delete(saved.id)
    _visit_settings_and_come_back(at)
    assert not at.exception and not [s for s in at.selectbox if s.key == "chat:model"]
    assert any(footer in c.value for m in at.chat_message for c in m.caption)


def test_a_failing_connection_says_which_one_it_was(canned_server, katan_server):
    down = canned_server(500, {"error": {"message": "upstream exploded"}})
    add_connection("Flaky proxy", down, models=["some-model"])
    save_compatible(katan_server.base_url, katan_server.api_key, katan_server.model)
    at = open_app()
    at.selectbox(key="chat:model").set_value("some-model · Flaky proxy").run()
    send(at, "hello")
    (error,) = errors(at)
    assert error.startswith("Flaky proxy: ")


def test_a_header_value_the_server_echoes_is_never_shown(canned_server):
    secret = "hdr-value-7c1e9a4b2f"
    echoing = canned_server(400, {"error": {"message": f"bad header X-Team: {secret}"}})
    add_connection("Echo", echoing, headers=[("X-Team", secret)], models=["m"])
    at = open_app()
    send(at, "hello")
    assert errors(at) and secret not in shown_text(at)


def test_a_refused_stream_options_is_learned_once_and_kept_across_sessions(
        katan_server, refusing_stream_options):
    server, recorder = refusing_stream_options(katan_server)
    saved = add_connection("Strict proxy", server)
    at = open_app()
    send(at, "first")
    assert not errors(at), errors(at)
    sent = [r.body for r in recorder.requests if r.path.endswith("/chat/completions")]
    assert ["stream_options" in body for body in sent] == [True, False]  # refused, then without
    (stored,) = connection_store().list()
    assert stored.quirks == {NO_STREAM_OPTIONS} and stored.version == saved.version
    recorder.clear()
    another_tab = open_app()  # a new browser session: nothing of the first one's memory
    send(another_tab, "second")
    sent = [r.body for r in recorder.requests if r.path.endswith("/chat/completions")]
    assert ["stream_options" in body for body in sent] == [False]


def test_the_seed_providers_refused_stream_options_is_kept_in_the_profile(
        katan_server, refusing_stream_options):
    server, recorder = refusing_stream_options(katan_server)
    save_compatible(server.base_url, server.api_key, server.model)
    send(open_app(), "first")
    assert saved_profile().openai_compatible_quirks == NO_STREAM_OPTIONS
    recorder.clear()
    send(open_app(), "second")
    sent = [r.body for r in recorder.requests if r.path.endswith("/chat/completions")]
    assert ["stream_options" in body for body in sent] == [False]
