"""Provider kinds and the seed's provider of each: a kind is the only code per provider; the
servers themselves are connections (data)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


DEFAULT_COMPATIBLE_MODEL = "local-model"
OPENAI_BASE_URL = "https://api.openai.com/v1"


@dataclass(frozen=True)
class Provider:
    """`columns`: which profile column holds which connection field; the rest stands in."""

    id: str
    label: str
    server_key_name: str  # secret / environment variable that stands in for the user's key
    needs_key: bool
    columns: Mapping[str, str] = field(hash=False)  # connection field -> its profile column
    base_url: str | None = None  # fixed base URL, when the profile holds none
    default_model: str | None = None  # sent when the profile's model name is empty
    models: tuple[str, ...] = ()  # a fixed list of models


OPENAI = Provider(
    id="openai",
    label="OpenAI",
    server_key_name="OPENAI_API_KEY",
    needs_key=True,
    columns={"api_key": "openai_api_key", "organization": "openai_organization_id"},
    base_url=OPENAI_BASE_URL,
    models=("gpt-4.1-mini", "gpt-4.1", "gpt-4o-mini", "gpt-4o", "o4-mini"),
)

OPENAI_COMPATIBLE = Provider(
    id="openai-compatible",
    label="OpenAI-compatible",
    server_key_name="OPENAI_COMPATIBLE_API_KEY",
    # Local servers (LM Studio, Ollama, llama.cpp) usually take no key.
    needs_key=False,
    columns={"api_key": "openai_compatible_api_key", "base_url": "openai_compatible_base_url",
             "default_model": "openai_compatible_model_name", "quirks": "openai_compatible_quirks"},
    default_model=DEFAULT_COMPATIBLE_MODEL,
)

REGISTRY: tuple[Provider, ...] = (OPENAI, OPENAI_COMPATIBLE)
PROVIDERS = {p.id: p for p in REGISTRY}
KINDS = PROVIDERS  # a connection's kind names one of these


@dataclass(frozen=True)
class Target:
    provider_id: str
    provider_label: str
    base_url: str
    api_key: str = field(repr=False)  # never in a log line or a traceback
    model: str = ""
    organization: str | None = None
    connection_id: str = ""
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)  # secret values
    quirks: frozenset[str] = frozenset()
    # "key", "base_url", "model" the user cannot change: an error about one says ask the admin
    operator_fields: frozenset[str] = frozenset()

    @property
    def label(self) -> str:
        return f"{self.model} · {self.provider_label}"


def target_secrets(target: Target) -> list[str]:
    """Never to appear in a message or a log line."""
    return [target.api_key, *(value for _, value in target.headers)]
