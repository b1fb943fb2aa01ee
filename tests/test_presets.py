"""The presets catalog (issue 10, acceptance 5): every entry passes the app's own checks.

`catalog_problems` says what is wrong with one preset; it is run over the shipped file, and
over broken presets to show each of its checks can fail.
"""

from dataclasses import replace
from urllib.parse import urlsplit

import pytest

from core.providers.connections import QUIRKS, Connection, connection_problems, name_problem
from core.providers.kinds import KINDS
from core.providers.presets import Preset, load_presets, preset, read_presets
from core.providers.urls import normalize_base_url, url_problem

# The presets issue 10 asks for, by the start of their names.
REQUESTED = (
    "OpenAI", "Anthropic", "Google Gemini", "Groq", "OpenRouter", "Together", "DeepSeek",
    "Mistral", "Fireworks", "xAI", "Cerebras", "Perplexity",
    "Ollama", "LM Studio", "llama.cpp", "vLLM", "LocalAI", "LiteLLM", "Jan",
)
LOCAL_HOSTS = {"localhost", "127.0.0.1"}
PRESETS = load_presets()


def is_https(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme == "https" and bool(parts.hostname)


def catalog_problems(entry: Preset) -> list[str]:
    """What is wrong with one preset by the rules of acceptance 5; [] when nothing."""
    problems = []
    if url_problem(entry.base_url) is not None:
        problems.append(f"base URL refused: {url_problem(entry.base_url)}")
    elif normalize_base_url(entry.base_url) != entry.base_url:
        problems.append(f"base URL not in normal form: {normalize_base_url(entry.base_url)}")
    if not is_https(entry.source):
        problems.append("source is not an https URL")
    if entry.kind not in KINDS:
        problems.append(f"unknown kind {entry.kind}")
    if unknown := set(entry.quirks) - set(QUIRKS):
        problems.append(f"unknown quirks {sorted(unknown)}")
    if problem := name_problem(entry.name):
        problems.append(problem)
    if entry.local and urlsplit(entry.base_url).hostname not in LOCAL_HOSTS:
        problems.append("a local server not on localhost")
    if not entry.local and not (entry.needs_key and is_https(entry.key_url)):
        problems.append("a hosted service without a key or an https page to get one")
    return problems


@pytest.mark.parametrize("entry", PRESETS, ids=lambda p: p.id)
def test_each_preset_passes_the_apps_checks(entry):
    assert catalog_problems(entry) == []


GROQ = Preset(
    id="groq", name="Groq", kind="openai-compatible", base_url="https://api.groq.com/openai/v1",
    needs_key=True, key_url="https://console.groq.com/keys", local=False, quirks=(),
    notes="", source="https://console.groq.com/docs/openai",
)
OLLAMA = replace(GROQ, id="ollama", name="Ollama", base_url="http://localhost:11434/v1",
                 needs_key=False, key_url="", local=True)


@pytest.mark.parametrize("broken", [
    pytest.param(replace(GROQ, base_url="https://api.groq.com/openai/v1/"), id="trailing-slash"),
    pytest.param(replace(GROQ, base_url="ftp://api.groq.com/openai/v1"), id="not-http"),
    pytest.param(replace(GROQ, base_url="https://api.groq.com/openai/v1/chat/completions"),
                 id="pasted-endpoint"),
    pytest.param(replace(GROQ, source=""), id="no-source"),
    pytest.param(replace(GROQ, source="http://console.groq.com/docs/openai"), id="http-source"),
    pytest.param(replace(GROQ, kind="anthropic"), id="unknown-kind"),
    pytest.param(replace(GROQ, quirks=("no_streaming",)), id="unknown-quirk"),
    pytest.param(replace(GROQ, name="x" * 101), id="long-name"),
    pytest.param(replace(GROQ, needs_key=False), id="hosted-without-key"),
    pytest.param(replace(GROQ, key_url=""), id="hosted-without-key-page"),
    pytest.param(replace(GROQ, key_url="http://console.groq.com/keys"), id="http-key-page"),
    pytest.param(replace(OLLAMA, base_url="http://192.168.1.20:11434/v1"), id="local-on-lan"),
    pytest.param(replace(OLLAMA, base_url="https://ollama.com/v1"), id="local-hosted"),
])
def test_a_broken_preset_is_caught(broken):
    assert catalog_problems(GROQ) == [] and catalog_problems(OLLAMA) == []
    assert catalog_problems(broken)


def test_ids_are_unique():
    ids = [p.id for p in PRESETS]
    assert len(ids) == len(set(ids))


def test_names_are_unique_ignoring_case():
    names = [p.name.casefold() for p in PRESETS]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("wanted", REQUESTED)
def test_every_requested_preset_is_there(wanted):
    assert [p for p in PRESETS if p.name == wanted or p.name.startswith(wanted + " ")]


@pytest.mark.parametrize("entry", PRESETS, ids=lambda p: p.id)
def test_a_preset_fills_a_connection_that_can_be_saved(entry):
    connection = entry.connection()
    if entry.needs_key:
        connection = connection.with_changes(api_key="sk-test-1234")
    assert connection_problems(connection) == []
    assert (connection.name, connection.kind, connection.base_url, connection.needs_key) == (
        entry.name, entry.kind, entry.base_url, entry.needs_key)
    assert connection.quirks == frozenset(entry.quirks)
    assert (connection.origin, connection.id, connection.default_model, connection.models) == (
        "user", "", "", ())


def test_preset_finds_by_id_and_refuses_an_unknown_one():
    assert preset("ollama").base_url == "http://localhost:11434/v1"
    with pytest.raises(KeyError):
        preset("no-such-preset")


def test_the_catalog_is_read_once():
    assert load_presets() is load_presets()
    assert isinstance(PRESETS[0].connection(), Connection)


VALID_ENTRY = """
[[preset]]
id = "groq"
name = "Groq"
kind = "openai-compatible"
base_url = "https://api.groq.com/openai/v1"
needs_key = true
key_url = "https://console.groq.com/keys"
local = false
quirks = []
notes = "Fast."
source = "https://console.groq.com/docs/openai"
"""


def write(tmp_path, text):
    path = tmp_path / "presets.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_well_formed_file_is_read(tmp_path):
    (groq,) = read_presets(write(tmp_path, VALID_ENTRY))
    assert groq == replace(GROQ, notes="Fast.")


@pytest.mark.parametrize("change, says", [
    (('kind = "openai-compatible"', 'kind = "claude"'), "unknown kind"),
    (("quirks = []", 'quirks = ["no_streaming"]'), "unknown quirks"),
    (("quirks = []", "quirks = [1]"), "quirks must list strings"),
    (('source = "https://console.groq.com/docs/openai"\n', ""), "missing fields source"),
    (("needs_key = true", 'needs_key = "yes"'), "needs_key must be a bool"),
    (("local = false", "local = 0"), "local must be a bool"),
    (("local = false", 'local = false\nhomepage = "https://groq.com"'), "unknown fields homepage"),
])
def test_a_malformed_entry_is_refused_naming_it(tmp_path, change, says):
    old, new = change
    assert VALID_ENTRY.count(old) == 1
    with pytest.raises(ValueError, match=r"preset #1 \(groq\)") as refused:
        read_presets(write(tmp_path, VALID_ENTRY.replace(old, new)))
    assert says in str(refused.value)


def test_a_preset_given_twice_is_refused(tmp_path):
    with pytest.raises(ValueError, match="id given twice: groq"):
        read_presets(write(tmp_path, VALID_ENTRY + VALID_ENTRY))


def test_a_file_without_presets_is_refused(tmp_path):
    with pytest.raises(ValueError, match="no \\[\\[preset\\]\\] entries"):
        read_presets(write(tmp_path, "[presets]\n"))
