"""Settings and chat keep what the user gave, in AppTest (issue 8).

Streamlit drops the state of every widget a run does not draw, so visiting another page used
to empty an unsaved Settings form and the chat's options. Also: a check's result is shown only
for the inputs it was made for, an error about a setting links to Settings, and a reply's
reasoning is shown collapsed with how long it took.
"""

from __future__ import annotations

import json

from tests.apptest import compatible, configure_compatible, open_app
from tests.chatting import errors, save_compatible, send, start_chat, use_server


def _visit(at, page: str):
    at.switch_page(f"pages/{page}.py").run()
    assert not at.exception, at.exception
    return at


def _unsaved(at) -> list[str]:
    """The 'Unsaved: ...' notes under the forms, and expander labels that say so."""
    notes = [m.value for m in at.markdown if "Unsaved:" in m.value]
    labels = [e.label for e in at.expander if "Unsaved changes" in e.label]
    return notes + labels


def _type(at, name: str, value: str):
    at.text_input(key=compatible(name)).set_value(value).run()
    assert not at.exception, at.exception
    return at


def test_an_unsaved_draft_survives_a_visit_to_chat_and_says_what_is_unsaved():
    at = open_app("settings")
    assert _unsaved(at) == []
    _type(at, "base_url", "http://localhost:1234/v1")
    _type(at, "model", "qwen")
    _type(at, "key", "sk-draft-key-5678")

    _visit(at, "chat")
    _visit(at, "settings")
    assert at.text_input(key=compatible("base_url")).value == "http://localhost:1234/v1"
    assert at.text_input(key=compatible("model")).value == "qwen"
    assert at.text_input(key=compatible("key")).value == "sk-draft-key-5678"
    notes = _unsaved(at)
    assert any("Unsaved: API key, base URL, model name" in n for n in notes), notes
    assert "OpenAI-compatible :orange-badge[Unsaved changes]" in notes

    at.button(key=compatible("save")).click().run()
    assert _unsaved(at) == []
    assert any("ending in …5678" in c.value for c in at.caption)
    assert at.text_input(key=compatible("key")).value == ""


def test_discard_changes_shows_the_saved_settings_again():
    at = open_app("settings")
    configure_compatible(at, "http://localhost:1234/v1", "sk-saved-key-1111", "saved-model")
    _type(at, "base_url", "http://localhost:9999/v1")
    _type(at, "model", "other-model")
    assert any("Unsaved: base URL, model name" in n for n in _unsaved(at))
    _visit(at, "chat")
    _visit(at, "settings")
    at.button(key=compatible("discard")).click().run()
    assert at.text_input(key=compatible("base_url")).value == "http://localhost:1234/v1"
    assert at.text_input(key=compatible("model")).value == "saved-model"
    assert _unsaved(at) == []
    assert not any(b.key == compatible("discard") for b in at.button)


def test_a_test_result_is_shown_only_while_the_inputs_it_was_made_for_stay(katan_server):
    at = open_app("settings")
    configure_compatible(at, katan_server.base_url, katan_server.api_key, katan_server.model)
    at.button(key=compatible("test_button")).click().run()
    assert any("Connection works" in s.value for s in at.success), [e.value for e in at.error]

    _type(at, "base_url", katan_server.base_url.replace("127.0.0.1", "localhost"))
    assert not any("Connection works" in s.value for s in at.success)
    _type(at, "base_url", katan_server.base_url)  # back as it was: a result made then is gone
    assert not any("Connection works" in s.value for s in at.success)

    at.button(key=compatible("test_button")).click().run()
    assert any("Connection works" in s.value for s in at.success)
    _type(at, "model", "another-model")  # a test is made for one model
    assert not any("Connection works" in s.value for s in at.success)


def test_fetched_models_stay_when_the_model_changes_and_go_when_the_key_does(katan_server):
    at = open_app("settings")
    configure_compatible(at, katan_server.base_url, katan_server.api_key, "")
    at.button(key=compatible("fetch")).click().run()
    picker = at.selectbox(key=compatible("model_pick"))
    assert katan_server.model in picker.options
    picker.set_value(katan_server.model).run()
    assert at.text_input(key=compatible("model")).value == katan_server.model
    assert at.selectbox(key=compatible("model_pick"))  # the list was made for this server and key
    _type(at, "key", "sk-some-other-key-0000")
    assert not any(s.key == compatible("model_pick") for s in at.selectbox)


def test_chat_options_survive_a_visit_to_settings_until_new_chat(katan_server):
    use_server(katan_server)
    at = start_chat()
    at.text_area(key="chat:system_prompt").set_value("Be brief.").run()
    at.toggle(key="chat:custom_temperature").set_value(True).run()
    at.slider(key="chat:temperature").set_value(0.3).run()

    _visit(at, "settings")
    _visit(at, "chat")
    assert at.text_area(key="chat:system_prompt").value == "Be brief."
    assert at.toggle(key="chat:custom_temperature").value is True
    assert at.slider(key="chat:temperature").value == 0.3
    send(at, "hello")
    assert "temperature=0.3" in at.chat_message[-1].markdown[0].value

    at.button(key="chat:new").click().run()
    _visit(at, "settings")
    _visit(at, "chat")
    assert at.text_area(key="chat:system_prompt").value == ""
    assert at.toggle(key="chat:custom_temperature").value is False
    assert at.slider(key="chat:temperature").value == 0.7


def test_the_model_picked_survives_a_visit_to_settings(katan_server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-operator-key-for-openai-0000")  # two providers
    use_server(katan_server)
    at = start_chat()
    models = at.selectbox(key="chat:model")
    picked = next(label for label in models.options if label.endswith("· OpenAI-compatible"))
    assert picked != models.value
    models.set_value(picked).run()

    _visit(at, "settings")
    _visit(at, "chat")
    assert at.selectbox(key="chat:model").value == picked


def _settings_links(at) -> list[str]:
    """Links to Settings in the page itself (the sidebar's navigation always has one)."""
    return [link.proto.label for link in at.main.get("page_link") if link.proto.page == "settings"]


def test_an_error_about_the_key_links_to_settings_and_others_do_not(katan_server, canned_server):
    save_compatible(katan_server.base_url, "sk-not-the-right-key-0000", katan_server.model)
    at = start_chat()
    send(at, "hello")
    assert "API key was rejected" in errors(at)[0]
    assert _settings_links(at) == ["Check the API key in Settings"]

    overloaded = canned_server(503, {"error": {"message": "busy"}})
    use_server(overloaded)
    at = start_chat()
    send(at, "hello")
    assert errors(at) and _settings_links(at) == []  # nothing to fix in Settings


def _event(delta: dict, finish: str | None = None) -> str:
    chunk = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "canned-model",
             "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return f"data: {json.dumps(chunk)}\n\n"


def test_a_finished_reply_shows_how_long_it_thought_collapsed(canned_server):
    stream = [
        *(_event({"reasoning_content": f"thought {n}. "}) for n in range(4)),
        _event({"content": "Done thinking."}),
        _event({}, finish="stop"),
        "data: [DONE]\n\n",
    ]
    use_server(canned_server(200, stream, chunked=True, pace=0.3))
    at = start_chat()
    send(at, "think first")
    reply = at.chat_message[-1]
    (area,) = [e for e in reply.expander]
    assert area.label.startswith("Thought for ") and area.label.endswith(" s"), area.label
    seconds = float(area.label.removeprefix("Thought for ").removesuffix(" s"))
    assert 0.6 <= seconds <= 5, seconds  # four pieces 0.3 s apart, then the answer
    assert not area.proto.expanded  # collapsed until the reader opens it
    assert "thought 3." in area.markdown[0].value
    assert reply.markdown[-1].value == "Done thinking."
