"""The Connections section of Settings in AppTest, local mode, a temp data folder per test
(issue 10): add from a preset, edit, save, reload; secrets never sent back; refused headers;
delete with a confirmation; drafts across pages; and the seed's two expanders as before."""

from __future__ import annotations

import pytest

from core.providers.connections import MAX_CONNECTIONS, Connection
from tests.apptest import compatible, configure_compatible, open_app, shown_text
from tests.chatting import connection_store
from tests.test_guard_wired import REFUSAL, CountingListener, _sign_in, _sign_up_through_the_api

PREFIX = "settings:connection:"
KEY = "sk-connection-secret-7788"
HEADER_VALUE = "header-secret-value-4242"


def _slot(at, name: str) -> str:
    """The key prefix of the inputs of the connection whose Name input holds `name`."""
    for box in at.text_input:
        if box.key and box.key.startswith(PREFIX) and box.key.endswith(":name") and box.value == name:
            return box.key.removesuffix("name")
    raise AssertionError(f"no connection named {name!r} on the page")


def _add(at, preset_id: str = "") -> str:
    """Pick a preset ('' for blank), press Add connection; the new connection's key prefix."""
    before = {b.key for b in at.text_input}
    at.selectbox(key="settings:connections:add:preset").set_value(preset_id).run()
    at.button(key="settings:connections:add").click().run()
    assert not at.exception, at.exception
    (name_key,) = [b.key for b in at.text_input if b.key not in before and b.key.endswith(":name")]
    return name_key.removesuffix("name")


def _type_header(at, slot: str, name: str, value: str) -> None:
    """Add a header row and type into it."""
    at.button(key=slot + "header_add").click().run()
    row = max(int(b.key.rsplit(":", 1)[1]) for b in at.text_input
              if b.key and b.key.startswith(slot + "header_name:"))
    at.text_input(key=f"{slot}header_name:{row}").set_value(name).run()
    at.text_input(key=f"{slot}header_value:{row}").set_value(value).run()


def _typed_rows(at, slot: str) -> list[tuple[str, str]]:
    names = [b for b in at.text_input if b.key and b.key.startswith(slot + "header_name:")]
    return [(b.value, at.text_input(key=b.key.replace("header_name", "header_value")).value)
            for b in names]


def _errors(at) -> list[str]:
    return [e.value for e in at.error]


def _unsaved_notes(at) -> list[str]:
    """The 'Unsaved: ...' badges beside the Save buttons (Markdown in AppTest)."""
    return [m.value for m in at.markdown if "Unsaved:" in m.value]


def _titles(at) -> list[str]:
    return [e.label for e in at.expander]


def _stored() -> list[Connection]:
    """What the local store holds now, read as the app reads it."""
    return connection_store().list()


def _fill_and_save_lm_studio(at) -> str:
    slot = _add(at, "lm-studio")
    at.text_input(key=slot + "name").set_value("My LM Studio").run()
    at.text_input(key=slot + "base_url").set_value("http://127.0.0.1:1234/v1/chat/completions").run()
    at.text_input(key=slot + "key").set_value(KEY).run()
    _type_header(at, slot, "X-Title", HEADER_VALUE)
    at.multiselect(key=slot + "models").set_value(["qwen2.5-7b", "typed-by-hand"]).run()
    at.text_input(key=slot + "default_model").set_value("qwen2.5-7b").run()
    at.button(key=slot + "save").click().run()
    assert not at.exception, at.exception
    return slot


def test_add_from_a_preset_edit_save_and_a_reload_shows_it_without_its_secrets():
    at = open_app("settings")
    slot = _add(at, "lm-studio")
    assert any("LM Studio" in title and "Not saved yet" in title for title in _titles(at))
    assert at.text_input(key=slot + "base_url").value == "http://localhost:1234/v1"  # the preset's
    assert _stored() == []  # nothing stored before Save

    _fill_and_save_lm_studio(at)
    assert any(s.value == "My LM Studio saved." for s in at.success)
    assert _errors(at) == []
    (stored,) = _stored()
    assert (stored.name, stored.base_url, stored.api_key, stored.headers, stored.models,
            stored.default_model) == ("My LM Studio", "http://127.0.0.1:1234/v1", KEY,
                                      (("X-Title", HEADER_VALUE),), ("qwen2.5-7b", "typed-by-hand"),
                                      "qwen2.5-7b")
    for page in (at, open_app("settings")):  # this session after Save, and a new one
        shown = shown_text(page)
        assert KEY not in shown and HEADER_VALUE not in shown
        saved = _slot(page, "My LM Studio")
        assert page.text_input(key=saved + "base_url").value == "http://127.0.0.1:1234/v1"
        assert page.text_input(key=saved + "key").value == ""
        assert page.multiselect(key=saved + "models").value == ["qwen2.5-7b", "typed-by-hand"]
        assert any(c.value == "A key is saved, ending in …7788." for c in page.caption)
        assert [t.value for t in page.text] == ["X-Title: value saved"]
        assert _typed_rows(page, saved) == []
        assert "My LM Studio :green-badge[Enabled]" in _titles(page)

    saved = _slot(at, "My LM Studio")  # a second save, of a new key and header, clears both
    at.text_input(key=saved + "key").set_value("sk-replaced-key-9911").run()
    _type_header(at, saved, "X-Second", "second-secret-value")
    at.button(key=saved + "save").click().run()
    assert at.text_input(key=saved + "key").value == "" and _typed_rows(at, saved) == []
    shown = shown_text(at)
    assert "sk-replaced-key-9911" not in shown and "second-secret-value" not in shown
    assert any(c.value == "A key is saved, ending in …9911." for c in at.caption)
    assert _stored()[0].headers == (("X-Title", HEADER_VALUE), ("X-Second", "second-secret-value"))


def test_a_preset_added_again_gets_its_own_name():
    at = open_app("settings")
    first = _add(at, "groq")
    second = _add(at, "groq")
    assert at.text_input(key=first + "name").value == "Groq"
    assert at.text_input(key=second + "name").value == "Groq 2"
    at.text_input(key=first + "key").set_value("gsk-first-0001").run()
    at.button(key=first + "save").click().run()
    assert [c.name for c in _stored()] == ["Groq"]
    at.button(key=second + "discard").click().run()
    again = _add(at, "groq")
    assert at.text_input(key=again + "name").value == "Groq 2"
    blank = _add(at, "")
    assert at.text_input(key=blank + "name").value == "New connection"


def test_a_save_elsewhere_is_followed_and_a_conflicting_save_keeps_what_was_typed():
    at = open_app("settings")
    _fill_and_save_lm_studio(at)
    other = open_app("settings")
    slot = _slot(at, "My LM Studio")
    at.text_input(key=slot + "default_model").set_value("mine").run()

    other.toggle(key=slot + "enabled").set_value(False).run()
    other.button(key=slot + "save").click().run()
    at.button(key=slot + "save").click().run()
    assert any("changed in another tab" in e for e in _errors(at))
    assert at.text_input(key=slot + "default_model").value == "mine"  # nothing typed is lost
    assert at.toggle(key=slot + "enabled").value is False  # what they did not edit follows
    at.button(key=slot + "save").click().run()  # now on the row as it is: saved
    assert (_stored()[0].default_model, _stored()[0].enabled) == ("mine", False)
    assert "My LM Studio :gray-badge[Disabled]" in _titles(at)
    other.run()  # no edits pending there: it shows what is saved now
    assert other.text_input(key=slot + "default_model").value == "mine"


def test_a_save_after_a_delete_elsewhere_keeps_the_form_to_add_it_again():
    at = open_app("settings")
    _fill_and_save_lm_studio(at)
    slot = _slot(at, "My LM Studio")
    at.text_input(key=slot + "default_model").set_value("mine").run()
    connection_store().delete(_stored()[0].id)  # another tab deleted it

    at.button(key=slot + "save").click().run()
    assert any("was deleted in another tab" in e for e in _errors(at))
    assert "My LM Studio :blue-badge[Not saved yet]" in _titles(at)
    assert at.text_input(key=slot + "default_model").value == "mine"
    at.button(key=slot + "save").click().run()
    (again,) = _stored()
    assert (again.name, again.default_model, again.api_key, again.headers) == (
        "My LM Studio", "mine", KEY, (("X-Title", HEADER_VALUE),))
    assert "My LM Studio :green-badge[Enabled]" in _titles(at)


@pytest.mark.parametrize("name, value, said", [
    ("Host", "evil.example", "The header Host cannot be set here"),
    ("Authorization", "Bearer other", "The header Authorization cannot be set here"),
    ("Content-Length", "12", "The header Content-Length cannot be set here"),
    ("X Title", "spaced", "The header name 'X Title' is not valid"),
    ("X-Title", "two\r\nX-Injected: 1", "The value of X-Title contains a line break."),
])
def test_a_refused_header_says_why_and_keeps_the_typed_rows(name, value, said):
    at = open_app("settings")
    _fill_and_save_lm_studio(at)
    slot = _slot(at, "My LM Studio")
    _type_header(at, slot, "X-Fine", "fine-value")
    _type_header(at, slot, name, value)
    assert any(said in e for e in _errors(at))  # said as it is typed
    at.button(key=slot + "save").click().run()
    assert not at.exception, at.exception
    assert sum(said in e for e in _errors(at)) == 2  # and again, under the connection, on Save
    assert _typed_rows(at, slot) == [("X-Fine", "fine-value"), (name, value)]
    assert _stored()[0].headers == (("X-Title", HEADER_VALUE),)  # nothing was saved
    assert any("Unsaved: headers" in note for note in _unsaved_notes(at))


def test_the_saved_header_can_be_removed_and_retyped_without_being_shown():
    at = open_app("settings")
    _fill_and_save_lm_studio(at)
    slot = _slot(at, "My LM Studio")
    at.checkbox(key=slot + "drop:X-Title").check().run()
    _type_header(at, slot, "HTTP-Referer", "https://switchboard.example")
    at.button(key=slot + "save").click().run()
    assert _stored()[0].headers == (("HTTP-Referer", "https://switchboard.example"),)
    assert [t.value for t in at.text] == ["HTTP-Referer: value saved"]


def test_delete_asks_first_then_the_connection_is_gone():
    at = open_app("settings")
    _fill_and_save_lm_studio(at)
    slot = _slot(at, "My LM Studio")
    at.button(key=slot + "delete").click().run()
    assert any("Delete the connection My LM Studio?" in w.value for w in at.warning)
    at.button(key=slot + "delete_cancelled").click().run()
    assert not any("Delete the connection" in w.value for w in at.warning)
    assert len(_stored()) == 1
    at.button(key=slot + "delete").click().run()
    at.button(key=slot + "delete_confirmed").click().run()
    assert not at.exception, at.exception
    assert any(s.value == "My LM Studio deleted." for s in at.success)
    assert _stored() == [] and not any("My LM Studio" in t for t in _titles(at))
    assert not any("My LM Studio" in t for t in _titles(open_app("settings")))


def test_drafts_survive_a_visit_to_chat_and_discard_brings_the_saved_values_back():
    at = open_app("settings")
    _fill_and_save_lm_studio(at)
    slot = _slot(at, "My LM Studio")
    new = _add(at, "groq")
    edits = {"name": "Renamed", "base_url": "http://127.0.0.1:9/v1", "key": "sk-typed-not-saved",
             "default_model": "other"}
    for field, value in edits.items():
        at.text_input(key=slot + field).set_value(value).run()
    _type_header(at, slot, "X-Draft", "draft-value")
    at.multiselect(key=slot + "models").set_value(["picked"]).run()
    at.text_input(key=new + "key").set_value("gsk-typed-in-new").run()

    at.switch_page("pages/chat.py").run()
    at.switch_page("pages/settings.py").run()
    assert not at.exception, at.exception
    for field, value in edits.items():
        assert at.text_input(key=slot + field).value == value
    assert _typed_rows(at, slot) == [("X-Draft", "draft-value")]
    assert at.multiselect(key=slot + "models").value == ["picked"]
    assert at.text_input(key=new + "key").value == "gsk-typed-in-new"
    assert "My LM Studio :green-badge[Enabled] :orange-badge[Unsaved changes]" in _titles(at)
    assert any("Unsaved: name, base URL, API key, headers, models, default model" in note
               for note in _unsaved_notes(at))

    at.button(key=slot + "discard").click().run()
    assert at.text_input(key=slot + "name").value == "My LM Studio"
    assert at.text_input(key=slot + "key").value == ""
    assert _typed_rows(at, slot) == []
    assert at.multiselect(key=slot + "models").value == ["qwen2.5-7b", "typed-by-hand"]
    assert "My LM Studio :green-badge[Enabled]" in _titles(at)
    assert _stored()[0].name == "My LM Studio"


def test_fetch_and_test_use_the_typed_values_and_go_stale_when_they_change(katan_server, recording_proxy):
    proxy, recorder = recording_proxy(katan_server)
    at = open_app("settings")
    slot = _add(at, "llama-cpp")
    at.text_input(key=slot + "base_url").set_value(proxy.base_url).run()
    at.text_input(key=slot + "key").set_value(proxy.api_key).run()
    _type_header(at, slot, "X-Title", HEADER_VALUE)
    at.button(key=slot + "fetch").click().run()
    assert at.multiselect(key=slot + "models").options == [katan_server.model]
    at.text_input(key=slot + "filter").set_value("no-such-model").run()
    assert at.multiselect(key=slot + "models").options == []
    at.text_input(key=slot + "filter").set_value(katan_server.model.upper()[:4]).run()
    at.multiselect(key=slot + "models").set_value([katan_server.model]).run()
    at.button(key=slot + "test").click().run()
    assert any(s.value.startswith("Connection works") for s in at.success)
    (listing, *_), chats = recorder.requests, recorder.chat_requests
    assert listing.path == "/v1/models" and listing.sent_bearer(proxy.api_key)
    assert listing.headers["x-title"] == HEADER_VALUE
    assert chats and chats[-1].body["model"] == katan_server.model
    assert chats[-1].headers["x-title"] == HEADER_VALUE

    at.text_input(key=slot + "base_url").set_value(proxy.base_url.replace("127.0.0.1", "localhost")).run()
    assert not any(s.value.startswith("Connection works") for s in at.success)
    assert at.multiselect(key=slot + "models").options == [katan_server.model]  # picked stays
    assert not any(b.key == slot + "filter" for b in at.text_input)


def test_limits_say_so_past_50_connections_and_200_models():
    store = connection_store()
    for number in range(MAX_CONNECTIONS - 1):
        store.add(Connection(name=f"c{number}", base_url="http://127.0.0.1:1/v1"))
    at = open_app("settings")
    last = _add(at, "ollama")
    at.multiselect(key=last + "models").set_value([f"m{i}" for i in range(201)]).run()
    at.button(key=last + "save").click().run()
    assert any("Too many models offered: at most 200" in e for e in _errors(at))
    at.multiselect(key=last + "models").set_value(["m1"]).run()
    at.button(key=last + "save").click().run()
    assert len(_stored()) == MAX_CONNECTIONS
    extra = _add(at, "ollama")
    at.button(key=extra + "save").click().run()
    assert not at.exception, at.exception
    assert any(f"at most {MAX_CONNECTIONS}" in e for e in _errors(at))
    assert at.text_input(key=extra + "name").value == "Ollama 2"  # still there to retry
    assert len(_stored()) == MAX_CONNECTIONS


def test_an_administrators_connection_is_shown_read_only_without_its_key(monkeypatch):
    monkeypatch.setenv("SWITCHBOARD_CONNECTIONS", """
[connections.team]
name = "Groq"
base_url = "http://127.0.0.1:8000/v1"
api_key = "operator-secret-key-5555"
models = ["team-model"]
headers = { "X-Team" = "operator-header-secret" }
""")
    at = open_app("settings")
    assert "Groq :blue-badge[Set by the administrator]" in _titles(at)
    texts = [t.value for t in at.text]
    assert "Base URL: http://127.0.0.1:8000/v1" in texts and "Models: team-model" in texts
    shown = shown_text(at)
    assert "operator-secret-key-5555" not in shown and "operator-header-secret" not in shown
    assert not any(b.key and "operator:" in b.key for b in (*at.text_input, *at.button))
    added = _add(at, "groq")  # its name is not the administrator's
    assert at.text_input(key=added + "name").value == "Groq 2"


def test_the_seeds_expanders_come_first_and_behave_as_before():
    at = open_app("settings")
    _fill_and_save_lm_studio(at)
    titles = _titles(at)
    assert titles[:2] == ["OpenAI", "OpenAI-compatible"]
    assert [h.value for h in at.header] == ["Connections", "Saved prompts", "Your chats"]
    configure_compatible(at, "http://localhost:1234/v1", "sk-seed-key-0000", "seed-model")
    assert any(s.value == "OpenAI-compatible settings saved." for s in at.success)
    restarted = open_app("settings")
    assert restarted.text_input(key=compatible("model")).value == "seed-model"
    assert _stored()[0].name == "My LM Studio" and _stored()[0].api_key == KEY


def test_hosted_a_private_base_url_is_refused_on_save_fetch_and_test(supabase_mode):
    """In Supabase mode the network guard refuses a loopback URL on Save, Fetch models and
    Test connection of a connection, saved or not; the listener there is never reached."""
    listener = CountingListener()
    try:
        email, _, _ = _sign_up_through_the_api(supabase_mode)
        at = _sign_in(email)
        at.switch_page("pages/settings.py").run()
        slot = _add(at, "ollama")
        at.text_input(key=slot + "base_url").set_value(f"http://127.0.0.1:{listener.port}/v1").run()
        at.text_input(key=slot + "default_model").set_value("llama3").run()
        at.button(key=slot + "save").click().run()
        assert any(REFUSAL in e and "127.0.0.1" in e for e in _errors(at)), _errors(at)
        assert at.text_input(key=slot + "default_model").value == "llama3"  # kept
        assert "Ollama :blue-badge[Not saved yet]" in _titles(at)
        at.button(key=slot + "fetch").click().run()
        assert any(REFUSAL in w.value for w in at.warning)
        at.button(key=slot + "test").click().run()
        assert any(REFUSAL in e and "Connection test failed" in e for e in _errors(at))
        assert listener.accepted == 0
        assert supabase_mode.sql(
            "select count(*) as n from public.connections c join auth.users u "
            "on u.id = c.user_id where u.email = %s", email)[0]["n"] == 0
    finally:
        listener.close()
