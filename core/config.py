"""Settings: from st.secrets, then the environment, then a local .env file."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from dotenv import dotenv_values

from core.failures import Misconfigured
from core.providers.connections import Connection
from core.providers.kinds import REGISTRY
from core.providers.operator import ENV_NAME as CONNECTIONS_ENV
from core.providers.operator import TABLE as CONNECTIONS_TABLE
from core.providers.operator import operator_connections, parse_toml
from core.prompts.library import ENV_NAME as PROMPTS_ENV
from core.prompts.library import TABLE as PROMPTS_TABLE
from core.prompts.library import SavedPrompt, operator_prompts
from core.prompts.library import parse_toml as parse_prompts_toml

DATA_DIR_ENV = "SWITCHBOARD_DATA_DIR"
DEFAULT_DATA_DIR = Path.home() / ".switchboard"

# Every setting the app reads; the README documents each one.
SETTING_NAMES = (
    "SUPABASE_URL",
    "SUPABASE_ANON_KEY",
    "SWITCHBOARD_DATA_DIR",
    "SWITCHBOARD_ENCRYPTION_KEYS",
    "SWITCHBOARD_ALLOWED_HOSTS",
    "SWITCHBOARD_CONNECT_TIMEOUT",
    "SWITCHBOARD_FIRST_TOKEN_TIMEOUT",
    "SWITCHBOARD_IDLE_TIMEOUT",
    "SWITCHBOARD_CONNECTIONS",
    "SWITCHBOARD_CHAT_TITLES",
    "SWITCHBOARD_PROMPTS",
    "OPENAI_API_KEY",
    "OPENAI_COMPATIBLE_API_KEY",
)


@dataclass(frozen=True)
class Settings:
    supabase_url: str = ""
    supabase_anon_key: str = field(default="", repr=False)
    data_dir: Path = DEFAULT_DATA_DIR
    encryption_keys: tuple[str, ...] = field(default=(), repr=False)
    allowed_hosts: tuple[str, ...] = ()
    # Seconds to connect, to wait for the first token, and of silence mid-reply.
    connect_timeout: float = 5.0
    first_token_timeout: float = 60.0
    idle_timeout: float = 30.0
    server_keys: Mapping[str, str] = field(default_factory=dict, repr=False)
    # The administrator's connections, offered to every user (keys inside: never shown).
    operator_connections: tuple[Connection, ...] = field(default=(), repr=False)
    # Models write new chats' titles (one short request each); off: chats keep their first words.
    chat_titles: bool = True
    # The administrator's saved prompts, offered to every user, read-only.
    operator_prompts: tuple[SavedPrompt, ...] = ()

    @property
    def mode(self) -> str:
        return "supabase" if self.supabase_url and self.supabase_anon_key else "local"


SWITCHES = {"on": True, "true": True, "yes": True, "1": True,
            "off": False, "false": False, "no": False, "0": False}


def _split(raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def load_settings(
    secrets: Mapping[str, object] | None = None,
    environ: Mapping[str, str] | None = None,
    dotenv_path: str | os.PathLike | None = ".env",
) -> Settings:
    environ = os.environ if environ is None else environ
    dotenv = dotenv_values(dotenv_path) if dotenv_path and Path(dotenv_path).is_file() else {}
    secrets = secrets or {}

    def get(name: str) -> str:
        for source in (secrets, environ, dotenv):
            value = source.get(name)
            if value not in (None, ""):
                return str(value).strip()
        return ""

    def seconds(name: str, default: float) -> float:
        if not (raw := get(name)):
            return default
        try:
            value = float(raw)
        except ValueError:
            raise Misconfigured(f"{name} must be a number of seconds, got {raw!r}") from None
        if value <= 0:
            raise Misconfigured(f"{name} must be more than 0 seconds, got {raw!r}")
        return value

    def switch(name: str, default: bool) -> bool:
        raw = get(name).lower()
        if not raw:
            return default
        if raw not in SWITCHES:
            raise Misconfigured(f"{name} must be on or off, got {raw!r}")
        return SWITCHES[raw]

    url, anon_key = get("SUPABASE_URL"), get("SUPABASE_ANON_KEY")
    if bool(url) != bool(anon_key):  # half a project: never fall back to the local default
        given, lacking = ("SUPABASE_URL", "SUPABASE_ANON_KEY") if url else (
            "SUPABASE_ANON_KEY", "SUPABASE_URL")
        raise Misconfigured(f"{given} is set but {lacking} is not: set both to use Supabase, "
                            "or neither for the local default.")
    data_dir = get(DATA_DIR_ENV)
    table = secrets.get(CONNECTIONS_TABLE)
    if not isinstance(table, Mapping):  # not in secrets: the same TOML text in a variable
        table = parse_toml(get(CONNECTIONS_ENV))
    prompts = secrets.get(PROMPTS_TABLE)
    if not isinstance(prompts, Mapping):  # as the connections: the TOML text in a variable
        prompts = parse_prompts_toml(get(PROMPTS_ENV))
    return Settings(
        supabase_url=url.rstrip("/"),
        supabase_anon_key=anon_key,
        data_dir=Path(data_dir).expanduser() if data_dir else DEFAULT_DATA_DIR,
        encryption_keys=_split(get("SWITCHBOARD_ENCRYPTION_KEYS")),
        allowed_hosts=_split(get("SWITCHBOARD_ALLOWED_HOSTS")),
        connect_timeout=seconds("SWITCHBOARD_CONNECT_TIMEOUT", Settings.connect_timeout),
        first_token_timeout=seconds("SWITCHBOARD_FIRST_TOKEN_TIMEOUT",
                                    Settings.first_token_timeout),
        idle_timeout=seconds("SWITCHBOARD_IDLE_TIMEOUT", Settings.idle_timeout),
        server_keys={
            p.server_key_name: get(p.server_key_name) for p in REGISTRY if get(p.server_key_name)
        },
        operator_connections=operator_connections(table),
        chat_titles=switch("SWITCHBOARD_CHAT_TITLES", Settings.chat_titles),
        operator_prompts=operator_prompts(prompts),
    )
