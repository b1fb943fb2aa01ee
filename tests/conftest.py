"""Suite-wide fixtures: every test gets its own data folder, never the user's real one."""

from __future__ import annotations

import pytest

pytest_plugins = [
    "tests.fixtures.llm_servers",
    "tests.fixtures.supabase_stack",
]

# Settings a developer may have exported that would change what the app does under test.
_LEAKY_SETTINGS = (
    "SUPABASE_URL",
    "SUPABASE_ANON_KEY",
    "OPENAI_API_KEY",
    "OPENAI_COMPATIBLE_API_KEY",
    "OPENAI_BASE_URL",
    "OPENAI_ORG_ID",
    "OPENAI_PROJECT_ID",
    "OPENAI_CUSTOM_HEADERS",
    "OPENAI_ADMIN_KEY",
    "OPENAI_WEBHOOK_SECRET",
    "SWITCHBOARD_ENCRYPTION_KEYS",
    "SWITCHBOARD_ALLOWED_HOSTS",
)


@pytest.fixture(autouse=True)
def isolated_data_dir(tmp_path, monkeypatch):
    """Point the data folder at a temp dir and drop settings leaked from the shell."""
    for name in _LEAKY_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    data_dir = tmp_path / "switchboard-data"
    monkeypatch.setenv("SWITCHBOARD_DATA_DIR", str(data_dir))
    # No title requests: most tests read and count the chat requests a server gets, and a
    # chat's title as its first words. Titles are tested with them on (test_titles*.py).
    monkeypatch.setenv("SWITCHBOARD_CHAT_TITLES", "off")
    monkeypatch.chdir(tmp_path)  # no stray .env from the checkout is read
    return data_dir
