"""Chat features in AppTest against llm-katan: new chat, regenerate, edit, options, copy, stop."""

from __future__ import annotations

import re

from tests.chatting import assistant_captions, chat_messages, send, start_chat, use_server


def _posts(recorder):
    return [r.body for r in recorder.chat_requests]


def test_new_chat_starts_empty_and_keeps_the_model(katan_server):
    use_server(katan_server)
    at = start_chat()
    send(at, "hello")
    at.button(key="chat:new").click().run()
    assert chat_messages(at) == []
    assert at.selectbox(key="chat:model").value.startswith("katan-echo")


def test_regenerate_answers_the_last_message_again(katan_server, recording_proxy):
    proxy, recorder = recording_proxy(katan_server)
    use_server(proxy)
    at = start_chat()
    send(at, "tell me something")
    assert at.button(key="chat:retry").label == "Regenerate"
    at.button(key="chat:retry").click().run()
    messages = chat_messages(at)
    assert [role for role, _ in messages] == ["user", "assistant"]
    bodies = _posts(recorder)
    assert len(bodies) == 2 and bodies[0]["messages"] == bodies[1]["messages"]


def test_edit_and_resend_replaces_the_last_exchange(katan_server):
    use_server(katan_server)
    at = start_chat()
    send(at, "first")
    send(at, "secnod with a typo")
    at.button(key="chat:edit").click().run()
    assert at.text_area(key="chat:editing").value == "secnod with a typo"
    at.text_area(key="chat:editing").set_value("second, fixed").run()
    at.button(key="chat:edit_send").click().run()
    messages = chat_messages(at)
    assert [text for role, text in messages if role == "user"] == ["first", "second, fixed"]
    assert "User: second, fixed" in messages[-1][1]


def test_system_prompt_and_temperature_are_sent_for_this_chat_only(katan_server, recording_proxy):
    proxy, recorder = recording_proxy(katan_server)
    use_server(proxy)
    at = start_chat()
    at.text_area(key="chat:system_prompt").set_value("You are terse.").run()
    at.toggle(key="chat:custom_temperature").set_value(True).run()
    at.slider(key="chat:temperature").set_value(0.2).run()
    send(at, "hi")
    body = _posts(recorder)[-1]
    assert body["messages"][0] == {"role": "system", "content": "You are terse."}
    assert body["temperature"] == 0.2

    at.button(key="chat:new").click().run()
    assert at.text_area(key="chat:system_prompt").value == ""
    send(at, "hi again")
    body = _posts(recorder)[-1]
    assert body["messages"][0]["role"] == "user" and "temperature" not in body


def test_markdown_and_code_render_and_each_reply_can_be_copied(katan_server):
    use_server(katan_server)
    at = start_chat()
    send(at, "```python\nprint('hi')\n```")
    (assistant,) = [m for m in at.chat_message if m.name == "assistant"]
    assert "```python" in assistant.markdown[0].value  # rendered by st.markdown as code
    (copy,) = [h.proto.body for h in assistant.get("html")]  # the one-click Copy
    held = re.search(r'<textarea class="sb-copy-text" hidden readonly>(.*?)</textarea>', copy,
                     re.S).group(1)
    assert "print(&#x27;hi&#x27;)" in held  # the reply's Markdown, escaped in the page
    assert assistant_captions(at)[0].startswith("katan-echo · OpenAI-compatible")


def test_a_long_message_is_shown_as_typed_and_a_short_one_as_markdown(katan_server):
    """A pasted file (over 20,000 characters) is drawn as plain text, line breaks and all;
    the model still gets it whole, and shorter messages keep their Markdown."""
    from core.chat.blocks import PLAIN_MESSAGE_OVER

    use_server(katan_server)
    at = start_chat()
    send(at, "Some **bold** text")
    (short,) = [m for m in at.chat_message if m.name == "user"]
    assert [md.value for md in short.markdown] == ["Some **bold** text"] and not short.text
    pasted = "Here is my file:\n```python\n" + "x = 1  # **not bold**\n" * 1_000 + "```"
    assert len(pasted) > PLAIN_MESSAGE_OVER
    send(at, pasted)
    long = [m for m in at.chat_message if m.name == "user"][-1]
    assert [t.value for t in long.text] == [pasted] and not long.markdown
    assert [c.value for c in long.caption] == ["A long message: shown as typed, without Markdown."]
    # The echo: the model got the whole message. Its 22 KB code block is too big to highlight:
    # the reply draws it plain, without its fence lines.
    code = pasted.split("```python\n", 1)[1].removesuffix("```")
    reply = chat_messages(at)[-1][1]
    assert "User: Here is my file:\n" in reply and code.removesuffix("\n") in reply
