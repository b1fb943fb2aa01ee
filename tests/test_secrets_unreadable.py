"""A settings source that cannot be read stops the app with one page saying which, never a
silent start in the local default (on a hosted server: an app without sign-in).

`.streamlit/secrets.toml` in the working directory is where Streamlit looks (each test runs
in its own temporary directory, see conftest.py; HOME is moved too, so ~/.streamlit holds
nothing). The file below holds a Supabase project's URL and key, as a hosted deployment's
does, and cannot be parsed: the frame must show "Switchboard cannot start: the secrets file
<path> cannot be read: <why>", in the local default and with Supabase configured in the
environment alike, and no secret value from the file may reach the page.
"""

from __future__ import annotations

import tomllib

import pytest
from cryptography.fernet import Fernet
from streamlit.testing.v1 import AppTest

from core.failures import toml_problem
from core.redaction import KEY_FRAGMENT
from tests.apptest import APP, shown_text

ANON_KEY = "eyJhbGciOiJIUzI1NiJ9.c2VjcmV0LWFub24ta2V5LXZhbHVl.c2lnbmF0dXJlLXZhbHVl"
SECRET = "sk-SECRET_0123456789abcdef"

# Each file: what a hosted deployment's secrets could look like, broken one way.
BROKEN = {
    "unclosed-string": (
        'SUPABASE_URL = "https://project.supabase.co"\n'
        f'SUPABASE_ANON_KEY = "{ANON_KEY}\n'
        f'OPENAI_API_KEY = "{SECRET}"\n'
    ),
    "control-character-in-a-value": (
        'SUPABASE_URL = "https://project.supabase.co"\n'
        f'SUPABASE_ANON_KEY = "{ANON_KEY}"\n'
        f'OPENAI_API_KEY = "{SECRET[:10]}\x7f{SECRET[10:]}"\n'
    ),
    "missing-equals": (
        'SUPABASE_URL = "https://project.supabase.co"\n'
        f'SUPABASE_ANON_KEY "{ANON_KEY}"\n'
    ),
    "not-utf-8": (
        'SUPABASE_URL = "https://project.supabase.co"\n'
        f'SUPABASE_ANON_KEY = "{ANON_KEY}"\n'
        'DISPLAY = "caf\udce9"\n'  # a Latin-1 é, as an old editor might save it
    ),
}


@pytest.fixture(autouse=True)
def no_home_secrets(tmp_path, monkeypatch):
    """~/.streamlit/secrets.toml is one of the places Streamlit reads: an empty home here."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))


def _write_secrets(tmp_path, text: str):
    folder = tmp_path / ".streamlit"
    folder.mkdir()
    path = folder / "secrets.toml"
    path.write_bytes(text.encode("utf-8", errors="surrogateescape"))
    return path


def _run() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=30).run()
    assert not at.exception, at.exception
    return at


def _assert_no_secret_shown(at: AppTest) -> None:
    shown = shown_text(at)
    for secret in (ANON_KEY, SECRET):
        for start in range(len(secret) - KEY_FRAGMENT + 1):
            assert secret[start:start + KEY_FRAGMENT] not in shown, shown


def _supabase_in_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("SUPABASE_URL", "https://project.supabase.co")
    monkeypatch.setenv("SUPABASE_ANON_KEY", ANON_KEY)
    monkeypatch.setenv("SWITCHBOARD_ENCRYPTION_KEYS", Fernet.generate_key().decode())


@pytest.mark.parametrize("mode", ["local", "supabase"])
@pytest.mark.parametrize("broken", list(BROKEN))
def test_a_secrets_file_that_cannot_be_read_stops_the_app_naming_it(
        tmp_path, monkeypatch, mode, broken):
    if mode == "supabase":
        _supabase_in_the_environment(monkeypatch)
    path = _write_secrets(tmp_path, BROKEN[broken])
    at = _run()
    (error,) = [e.value for e in at.error]
    assert error.startswith(f"Switchboard cannot start: the secrets file {path} cannot be read: ")
    why = error.rsplit("cannot be read: ", 1)[1]
    assert why.startswith("it is not UTF-8 text" if broken == "not-utf-8"
                          else "it is not valid TOML: "), why
    assert [t.value for t in at.title] == ["Switchboard"]  # the error page, and nothing else
    _assert_no_secret_shown(at)


@pytest.mark.parametrize("mode", ["local", "supabase"])
def test_without_a_secrets_file_the_app_starts_in_its_mode(tmp_path, monkeypatch, mode):
    """The other side: no secrets file at all is no error (the local default, or Supabase
    configured in the environment)."""
    if mode == "supabase":
        _supabase_in_the_environment(monkeypatch)
    at = _run()
    assert "cannot start" not in shown_text(at)
    assert [t.value for t in at.title] == (["Sign in"] if mode == "supabase" else ["Chat"])


def test_a_secrets_table_reaches_the_app_as_plain_data():
    """The other side again: readable secrets' nested table (an administrator's connection) is
    read whole, and Chat offers its model. Given as AppTest's secrets, which it puts back after
    the run: a real file would stay parsed in this process for every later test."""
    at = AppTest.from_file(APP, default_timeout=30)
    at.secrets["connections"] = {"team": {"name": "Team server", "models": ["team-model"],
                                          "base_url": "http://127.0.0.1:9/v1"}}
    at.run()
    assert not at.exception, at.exception
    assert "cannot start" not in shown_text(at)
    (model,) = [box for box in at.selectbox if box.label == "Model"]
    assert "team-model · Team server (administrator)" in model.options


def test_the_parsers_words_keep_where_but_not_what_they_quote():
    text = f'OPENAI_API_KEY = "{SECRET[:10]}\x7f{SECRET[10:]}"\n'
    with pytest.raises(tomllib.TOMLDecodeError) as parsed:
        tomllib.loads(text)
    assert "'\\x7f'" in str(parsed.value)  # tomllib quotes the character from the value
    said = toml_problem(parsed.value)
    assert said == "Illegal character … (at line 1, column 29)", said


def test_administrator_connections_that_are_not_toml_stop_the_app_naming_the_variable(
        monkeypatch):
    monkeypatch.setenv("SWITCHBOARD_CONNECTIONS",
                       f'[connections.team]\nbase_url = "https://api.example.com/v1"\n'
                       f'api_key = "{SECRET}\n')
    at = _run()
    (error,) = [e.value for e in at.error]
    assert error.startswith("Switchboard cannot start: SWITCHBOARD_CONNECTIONS is not valid "
                            "TOML: "), error
    assert [t.value for t in at.title] == ["Switchboard"]
    _assert_no_secret_shown(at)


def test_a_timeout_that_is_not_a_number_stops_the_app_naming_it(monkeypatch):
    monkeypatch.setenv("SWITCHBOARD_CONNECT_TIMEOUT", "abc")
    at = _run()
    assert [e.value for e in at.error] == [
        "Switchboard cannot start: SWITCHBOARD_CONNECT_TIMEOUT must be a number of seconds, "
        "got 'abc'"]


@pytest.mark.parametrize("given, lacking", [("SUPABASE_URL", "SUPABASE_ANON_KEY"),
                                            ("SUPABASE_ANON_KEY", "SUPABASE_URL")])
def test_half_a_supabase_project_stops_the_app_instead_of_starting_without_sign_in(
        monkeypatch, given, lacking):
    monkeypatch.setenv(given, "https://project.supabase.co" if given == "SUPABASE_URL"
                       else SECRET)
    monkeypatch.delenv(lacking, raising=False)
    at = _run()
    assert [e.value for e in at.error] == [
        f"Switchboard cannot start: {given} is set but {lacking} is not: set both to use "
        "Supabase, or neither for the local default."]
    _assert_no_secret_shown(at)
