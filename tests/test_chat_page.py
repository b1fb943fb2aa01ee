"""The chat page (AppTest) against real OpenAI-compatible servers on loopback."""

from __future__ import annotations

from tests.chatting import assistant_captions, chat_messages, errors, send, start_chat, use_server


def test_a_reply_streams_from_llama_cpp_and_the_server_saw_the_model_and_path(
    llama_server, recording_proxy
):
    proxy, recorder = recording_proxy(llama_server)
    use_server(proxy, model="smollm2")
    at = start_chat()
    assert at.selectbox(key="chat:model").value == "smollm2 · OpenAI-compatible"
    send(at, "Say hello in one short sentence.")

    messages = chat_messages(at)
    assert messages[0] == ("user", "Say hello in one short sentence.")
    assert messages[1][0] == "assistant" and messages[1][1].strip()
    assert errors(at) == []
    (request,) = recorder.chat_requests
    assert request.path == "/v1/chat/completions"
    assert request.body["model"] == "smollm2"
    assert request.body["stream"] is True
    assert request.sent_bearer(llama_server.api_key)
    assert request.body["messages"][-1] == {
        "role": "user",
        "content": "Say hello in one short sentence.",
    }


def test_an_empty_model_name_sends_the_default_shown_in_the_ui(katan_server, recording_proxy):
    proxy, recorder = recording_proxy(katan_server)
    use_server(proxy, model="")
    at = start_chat()
    assert at.selectbox(key="chat:model").value == "local-model · OpenAI-compatible"
    send(at, "hi")
    (request,) = recorder.chat_requests
    assert request.body["model"] == "local-model"


def test_the_conversation_is_sent_as_context_and_each_reply_names_its_model(katan_server):
    use_server(katan_server)
    at = start_chat()
    send(at, "first question")
    send(at, "second question")
    messages = chat_messages(at)
    assert [role for role, _ in messages] == ["user", "assistant", "user", "assistant"]
    assert "messages=3" in messages[3][1]  # user, assistant, user went to the server
    assert "User: second question" in messages[3][1]
    assert assistant_captions(at)[-1].startswith("katan-echo · OpenAI-compatible")


def test_usage_is_shown_when_the_server_sends_it(katan_server):
    use_server(katan_server)
    at = start_chat()
    send(at, "count my tokens")
    assert any("tokens" in caption for caption in assistant_captions(at))
