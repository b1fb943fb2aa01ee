"""What a connection's settings form decides without a page (core/connection_form.py): the
connection it describes, what Save writes, what is unsaved, how saved header values stay on
the server, the model filter, unique names."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from core.chat.client import connection_for
from core.config import load_settings
from core.forms import (
    FETCH_INPUTS,
    TEST_INPUTS,
    CheckResult,
    FIELD_WORDS,
    ConnectionRefused,
    check_connection,
    draft_connection,
    draft_target,
    expander_title,
    form_changes,
    merge_headers,
    models_to_offer,
    new_connection,
    plain_markdown,
    rebase_form,
    save_connection,
    saved_form,
    unique_name,
    unsaved_changes,
)
from core.chat.netguard import BlockedAddress, NetworkPolicy
from core.providers.connections import MAX_NAME_LENGTH, Connection

# Values the form keeps as they are (already trimmed and normalised), so a saved connection
# is a fixed point of the form.
_words = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-._", min_size=1, max_size=20)
_header_names = st.sampled_from(["X-Title", "HTTP-Referer", "X-Api-Version", "OpenAI-Beta",
                                 "x-trace", "X-Custom-Auth"])
_header_values = st.builds(lambda s: "v-" + s, _words)
_saved_headers = st.lists(st.tuples(_header_names, _header_values), max_size=4,
                          unique_by=lambda h: h[0].lower()).map(tuple)
_urls = st.builds(lambda host, port, path: f"http://{host}:{port}/{path}",
                  st.sampled_from(["localhost", "127.0.0.1", "models.example.com"]),
                  st.integers(1, 65535), st.sampled_from(["v1", "api/v1", "openai/v1"]))
_connections = st.builds(
    Connection,
    name=_words,
    base_url=_urls,
    api_key=st.one_of(st.just(""), st.builds(lambda s: "sk-" + s, _words)),
    headers=_saved_headers,
    enabled=st.booleans(),
    models=st.lists(_words, max_size=4, unique=True).map(tuple),
    default_model=st.one_of(st.just(""), _words),
    id=st.just("c1"),
    version=st.just("v1"),
)


@given(_connections)
def test_a_form_showing_the_saved_connection_has_nothing_unsaved(connection):
    """Property: for any saved connection, the form as it first shows it changes nothing, and
    it holds no secret (key and header values stay on the server)."""
    form = saved_form(connection)
    assert unsaved_changes(connection, form) == [] and form_changes(connection, form) == {}
    assert form.new_key == "" and form.new_headers == ()
    if connection.api_key:
        assert connection.api_key not in repr(form)
    shown_anyway = repr(saved_form(connection.with_changes(headers=())))  # e.g. the name
    assert all(value not in repr(form) or value in shown_anyway
               for _, value in connection.headers)


# One edit per field, as a user makes it in the form, and the field Save then writes.
_EDITS = {
    "name": lambda c, v: ({"name": v + "-renamed"}, "name"),
    "base_url": lambda c, v: ({"base_url": f"http://edited-{v}.example.com/v1"}, "base_url"),
    "new_key": lambda c, v: ({"new_key": "sk-new-" + v}, "api_key"),
    "enabled": lambda c, v: ({"enabled": not c.enabled}, "enabled"),
    "models": lambda c, v: ({"models": (*c.models, v + "-new")}, "models"),
    "default_model": lambda c, v: ({"default_model": v + "-default"}, "default_model"),
    "new_headers": lambda c, v: ({"new_headers": (("X-Added", "added-" + v),)}, "headers"),
}


@given(_connections, st.sampled_from(sorted(_EDITS)), _words)
def test_each_edit_is_named_and_written_and_only_it(connection, edit, value):
    """Property: changing one input lists exactly its field as unsaved, and Save writes exactly
    that field; typing the saved value back lists nothing."""
    changed, field = _EDITS[edit](connection, value)
    form = replace(saved_form(connection), **changed)
    assert unsaved_changes(connection, form) == [FIELD_WORDS[field]]
    assert list(form_changes(connection, form)) == [field]
    assert form_changes(connection, form)[field] == getattr(draft_connection(connection, form), field)
    if edit == "new_key" and connection.api_key:
        same = replace(saved_form(connection), new_key=connection.api_key)
        assert unsaved_changes(connection, same) == []


@given(_connections)
def test_removing_a_saved_header_or_the_key_is_a_change(connection):
    """Property: ticking 'remove' on a saved header or key writes it without that secret; with
    nothing saved, 'remove key' changes nothing."""
    form = replace(saved_form(connection), remove_key=True,
                   removed_headers=frozenset(connection.header_names[:1]))
    changes = form_changes(connection, form)
    assert ("api_key" in changes) == bool(connection.api_key)
    if connection.api_key:
        assert changes["api_key"] == ""
    if connection.headers:
        assert changes["headers"] == connection.headers[1:]
    else:
        assert "headers" not in changes


def test_removing_a_key_no_secret_opens_is_a_change():
    unreadable = Connection(name="n", base_url="http://h:1/v1", unreadable=frozenset({"api_key"}))
    form = replace(saved_form(unreadable), remove_key=True)
    assert form_changes(unreadable, form) == {"api_key": ""}
    assert unsaved_changes(unreadable, form) == ["API key"]


_typed_rows = st.lists(
    st.tuples(st.one_of(_header_names, st.just(""), st.just("  "), _words),
              st.one_of(_header_values, st.just(""), st.just(" padded ")))
    , max_size=4).map(tuple)


@given(_saved_headers, st.sets(_header_names), _typed_rows)
def test_header_merging_keeps_saved_values_by_name(saved, removed, typed):
    """Property: the merged headers are the saved ones (same value) not removed and not typed
    again under any case of their name, then every non-blank typed row trimmed, in order;
    a saved value is never taken from anything the browser sent."""
    merged = merge_headers(saved, removed, typed)
    rows = [(n.strip(), v.strip()) for n, v in typed if n.strip() or v.strip()]
    retyped = {n.lower() for n, _ in rows}
    kept = [(n, v) for n, v in saved if n not in removed and n.lower() not in retyped]
    assert list(merged) == kept + rows
    assert all(pair in saved for pair in merged[:len(kept)])


def test_a_typed_row_replaces_a_saved_header_of_the_same_name():
    saved = (("X-Title", "old"), ("OpenAI-Beta", "assistants=v2"))
    assert merge_headers(saved, (), (("x-title", "new"),)) == (
        ("OpenAI-Beta", "assistants=v2"), ("x-title", "new"))


@given(st.lists(_words, max_size=8), st.lists(_words, max_size=4),
       st.one_of(st.just(""), _words, st.builds(lambda a, b: f" {a.upper()}  {b} ", _words, _words)))
def test_the_model_filter_keeps_picked_models_and_matches_every_word(found, picked, typed):
    """Property: the options are each model found holding every word of the filter (any case)
    plus every picked model, each once; nothing else."""
    options = models_to_offer(found, picked, typed)
    words = typed.casefold().split()
    assert len(options) == len(set(options))
    assert set(picked) <= set(options)
    for model in found:
        matches = all(w in model.casefold() for w in words)
        assert (model in options) == (matches or model in picked)
    assert set(options) <= set(found) | set(picked)


def test_the_model_filter_narrows_the_list():
    found = ["llama-3.1-8b", "Llama-3.1-70B", "qwen2.5-7b", "mistral-7b"]
    assert models_to_offer(found, [], "LLAMA 70") == ["Llama-3.1-70B"]
    assert models_to_offer(found, ["mistral-7b", "typed-by-hand"], "qwen") == [
        "qwen2.5-7b", "mistral-7b", "typed-by-hand"]
    assert models_to_offer(found, [], "") == found


_names = st.text(min_size=1, max_size=MAX_NAME_LENGTH).filter(lambda s: s.strip())


@given(_names, st.lists(st.one_of(_names, st.sampled_from(["Groq", "groq 2", "GROQ 3"])), max_size=12))
def test_a_new_name_is_unique_and_fits(wanted, taken):
    """Property: the name given is used by no other connection (in any case), fits the limit,
    and is the wanted name itself when that is free."""
    name = unique_name(wanted, taken)
    assert name.casefold() not in {t.casefold() for t in taken}
    assert len(name) <= MAX_NAME_LENGTH
    if wanted.strip().casefold() not in {t.casefold() for t in taken}:
        assert name == wanted.strip()


def test_a_preset_added_twice_gets_a_numbered_name():
    assert unique_name("Groq", ["Groq"]) == "Groq 2"
    assert unique_name("Groq", ["groq", "Groq 2"]) == "Groq 3"
    assert unique_name("x" * MAX_NAME_LENGTH, ["x" * MAX_NAME_LENGTH]) == "x" * 98 + " 2"
    added = new_connection(Connection(name="Groq", base_url="https://api.groq.com/openai/v1",
                                      id="old", origin="operator", version="v"), ["Groq"])
    assert (added.name, added.base_url, added.id, added.origin, added.version) == (
        "Groq 2", "https://api.groq.com/openai/v1", "", "user", None)
    assert new_connection(None, ["New connection"]).name == "New connection 2"


@given(_connections, _connections, st.sampled_from(["name", "base_url", "models", "default_model"]))
def test_a_form_rebased_on_a_save_elsewhere_keeps_only_the_users_edits(old, new, edited):
    """Property: after the saved connection moved from `old` to `new`, each field the user
    left as it was shows `new`'s value; the one they edited keeps their text."""
    typed = {"name": "mine", "base_url": "http://mine.example.com/v1", "models": ("mine",),
             "default_model": "mine"}[edited]
    assume(typed != getattr(saved_form(old), edited))
    form = replace(saved_form(old), new_key="sk-typed", **{edited: typed})
    rebased = rebase_form(form, old, new)
    expected = replace(saved_form(new), new_key="sk-typed", **{edited: typed})
    assert rebased == expected


class _RecordingStore:
    """An in-process stand-in for a ConnectionStore: records the updates it is asked for."""

    def __init__(self) -> None:
        self.updates: list[tuple] = []
        self.added: list[Connection] = []

    def update(self, connection_id, changes, version, *, remove_secrets=()):
        self.updates.append((connection_id, dict(changes), version, tuple(remove_secrets)))
        return Connection(name="stored", id=connection_id, version="v2")

    def add(self, connection):
        self.added.append(connection)
        return connection.with_changes(id="new-id", version="v1")


_LOCAL = NetworkPolicy(allow_private=True)
_SAVED = Connection(name="Groq", base_url="https://api.groq.com/openai/v1", api_key="sk-saved-1",
                    headers=(("X-Title", "switchboard"),), id="c7", version="v1")


def test_save_writes_only_the_changed_fields_against_the_version_read():
    store = _RecordingStore()
    form = replace(saved_form(_SAVED), base_url="https://api.groq.com/openai/v1/chat/completions/",
                   models=("llama-3.1-8b-instant",), new_headers=(("OpenAI-Beta", "x"),))
    save_connection(store, _SAVED, form, _LOCAL)
    assert store.updates == [("c7", {
        "models": ("llama-3.1-8b-instant",),
        "headers": (("X-Title", "switchboard"), ("OpenAI-Beta", "x")),
    }, "v1", ())]
    assert save_connection(store, _SAVED, saved_form(_SAVED), _LOCAL) == _SAVED  # nothing to write
    assert len(store.updates) == 1


@pytest.mark.parametrize("edit, said", [
    ({"new_headers": (("Host", "evil.example"),)}, "The header Host cannot be set here"),
    ({"new_headers": (("Authorization", "Bearer x"),)}, "The header Authorization cannot be set"),
    ({"new_headers": (("Content-Length", "1"),)}, "The header Content-Length cannot be set"),
    ({"new_headers": (("X Title", "a"),)}, "The header name 'X Title' is not valid"),
    ({"new_headers": (("X-Title", "a\r\nX-Evil: 1"),)}, "contains a line break"),
    ({"new_headers": (("", "value"),)}, "A header has no name."),
    ({"base_url": "ftp://h/v1"}, "Only http:// and https:// URLs are supported."),
    ({"base_url": ""}, "The base URL is empty."),
    ({"name": "  "}, "The connection's name is empty."),
    ({"models": tuple(f"m{i}" for i in range(201))}, "Too many models offered: at most 200"),
])
def test_save_refuses_what_validation_reports_and_writes_nothing(edit, said):
    store = _RecordingStore()
    with pytest.raises(ConnectionRefused) as refused:
        save_connection(store, _SAVED, replace(saved_form(_SAVED), **edit), _LOCAL)
    assert any(said in problem for problem in refused.value.problems), refused.value.problems
    assert store.updates == []


def test_save_removes_a_key_even_one_no_secret_opens():
    for saved in (_SAVED, _SAVED.with_changes(api_key="", unreadable=frozenset({"api_key"}))):
        store = _RecordingStore()
        save_connection(store, saved, replace(saved_form(saved), remove_key=True), _LOCAL)
        assert store.updates == [("c7", {"api_key": ""}, "v1", ("api_key",))]


def test_the_first_save_of_a_new_connection_adds_it_as_the_form_shows_it():
    store = _RecordingStore()
    template = new_connection(Connection(name="llama.cpp", base_url="http://localhost:8080/v1",
                                         quirks=frozenset({"no_stream_options"})), [])
    form = replace(saved_form(template), base_url="http://127.0.0.1:9/v1/", new_key="sk-k",
                   models=("smol",), new_headers=(("X-Title", "sb"),))
    stored = save_connection(store, template, form, _LOCAL)
    assert store.updates == [] and stored.id == "new-id"
    assert store.added == [template.with_changes(
        base_url="http://127.0.0.1:9/v1", api_key="sk-k", models=("smol",),
        headers=(("X-Title", "sb"),))]
    with pytest.raises(ConnectionRefused):  # a blank one needs its base URL first
        save_connection(store, new_connection(None, []), saved_form(new_connection(None, [])), _LOCAL)
    assert len(store.added) == 1


def test_save_refuses_a_base_url_the_network_guard_refuses():
    store = _RecordingStore()
    form = replace(saved_form(_SAVED), base_url="http://127.0.0.1:8080/v1")
    with pytest.raises(BlockedAddress):
        save_connection(store, _SAVED, form, NetworkPolicy())
    assert store.updates == []
    save_connection(store, _SAVED, form, _LOCAL)  # the local default allows loopback
    assert store.updates == [("c7", {"base_url": "http://127.0.0.1:8080/v1"}, "v1", ())]


def test_the_draft_target_carries_the_typed_or_saved_secrets_and_a_model():
    form = replace(saved_form(_SAVED), models=("a", "b"))
    target = draft_target(_SAVED, form)
    assert (target.base_url, target.api_key, target.model, target.headers, target.connection_id) == (
        _SAVED.base_url, "sk-saved-1", "a", (("X-Title", "switchboard"),), "c7")
    typed = replace(form, new_key="sk-typed-2", default_model="b", removed_headers=frozenset({"X-Title"}))
    target = draft_target(_SAVED, typed)
    assert (target.api_key, target.model, target.headers) == ("sk-typed-2", "b", ())
    assert draft_target(_SAVED, replace(form, base_url="not a url")) is None
    assert draft_target(_SAVED, replace(form, base_url="")) is None


def test_a_check_result_goes_stale_when_a_header_changes():
    form = saved_form(_SAVED)
    for inputs in (FETCH_INPUTS, TEST_INPUTS):
        result = CheckResult.of(draft_target(_SAVED, form), inputs, True, ("m",))
        assert result.applies_to(draft_target(_SAVED, replace(form, name="renamed")))
        assert not result.applies_to(draft_target(_SAVED, replace(
            form, new_headers=(("X-Title", "other"),))))
        assert not result.applies_to(draft_target(_SAVED, replace(form, new_key="sk-other")))


@given(st.text(alphabet=st.one_of(st.sampled_from("\\`*_{}[]()#+-.!|:<>~$& a1"), st.characters()),
               max_size=60))
@example(":red[x] :smile: *b* _i_ [l](u) $m$ <b> `c` \\")
def test_a_name_in_a_title_reads_as_typed(name):
    """Property: every Markdown-active character of a name is escaped, and dropping the
    escapes gives the name back."""
    shown = plain_markdown(name)
    out, escaped = [], False
    for ch in shown:
        if escaped or ch != "\\":
            assert escaped or ch not in "`*_[]:$<>", shown
            out.append(ch)
            escaped = False
        else:
            escaped = True
    assert "".join(out) == name


def test_the_title_says_enabled_disabled_and_unsaved():
    assert expander_title(Connection(name="Groq [x]"), False) == r"Groq \[x\] :green-badge[Enabled]"
    assert expander_title(Connection(name="G", enabled=False), True) == (
        "G :gray-badge[Disabled] :orange-badge[Unsaved changes]")


def _server_connection(server, **fields) -> Connection:
    return Connection(name=server.name, base_url=server.base_url, api_key=server.api_key,
                      id="c1", version="v1", **fields)


def test_testing_a_new_connection_without_a_model_tries_the_first_one_listed(katan_server):
    """A connection just added names no model before Fetch models: the test still chats."""
    saved = _server_connection(katan_server)
    report = check_connection(draft_target(saved, saved_form(saved)), *connection_for(load_settings({})))
    assert report.ok, report.summary
    assert f"model '{katan_server.model}' answered" in report.summary
    named = replace(saved_form(saved), default_model="not-listed-model")
    report = check_connection(draft_target(saved, named), *connection_for(load_settings({})))
    assert "'not-listed-model' is not among the models" in report.summary  # the one named


def test_testing_without_a_model_on_a_server_that_lists_none_says_so(canned_server):
    server = canned_server(200, {"object": "list", "data": []})
    saved = _server_connection(server)
    report = check_connection(draft_target(saved, saved_form(saved)), *connection_for(load_settings({})))
    assert not report.ok and "No model name is set" in report.summary
