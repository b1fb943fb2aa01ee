"""Provider kinds: what each kind of server needs, and the seed's two providers (R1-R5).

A kind is the only code per provider; the servers themselves are connections, rows of data
(core.providers.connections), and the seed's profile columns are read as two of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from core.providers.profile import Profile
from core.providers.urls import InvalidBaseURL, normalize_base_url

DEFAULT_COMPATIBLE_MODEL = "local-model"
OPENAI_BASE_URL = "https://api.openai.com/v1"


@dataclass(frozen=True)
class Provider:
    """What one provider needs, named by the profile fields and secrets that hold it."""

    id: str
    label: str
    key_field: str  # Profile attribute holding the user's key
    server_key_name: str  # secret / environment variable that stands in for it (R5.1)
    needs_key: bool
    base_url: str | None = None  # fixed base URL; None means the profile's base_url_field
    base_url_field: str | None = None
    model_field: str | None = None  # a single model named in the profile
    default_model: str | None = None
    models: tuple[str, ...] = ()  # a fixed list of models
    organization_field: str | None = None
    quirks_field: str | None = None  # where what the server turned out not to support is kept


OPENAI = Provider(
    id="openai",
    label="OpenAI",
    key_field="openai_api_key",
    server_key_name="OPENAI_API_KEY",
    needs_key=True,
    base_url=OPENAI_BASE_URL,
    models=("gpt-4.1-mini", "gpt-4.1", "gpt-4o-mini", "gpt-4o", "o4-mini"),
    organization_field="openai_organization_id",
)

OPENAI_COMPATIBLE = Provider(
    id="openai-compatible",
    label="OpenAI-compatible",
    key_field="openai_compatible_api_key",
    server_key_name="OPENAI_COMPATIBLE_API_KEY",
    # Local servers (LM Studio, Ollama, llama.cpp) usually take no key.
    needs_key=False,
    base_url_field="openai_compatible_base_url",
    model_field="openai_compatible_model_name",
    default_model=DEFAULT_COMPATIBLE_MODEL,
    quirks_field="openai_compatible_quirks",
)

REGISTRY: tuple[Provider, ...] = (OPENAI, OPENAI_COMPATIBLE)
PROVIDERS = {p.id: p for p in REGISTRY}
KINDS = PROVIDERS  # a connection's kind names one of these


@dataclass(frozen=True)
class Target:
    """Everything one chat request needs: where, with which key, which model."""

    provider_id: str
    provider_label: str
    base_url: str
    api_key: str = field(repr=False)  # never in a log line or a traceback
    model: str = ""
    organization: str | None = None
    connection_id: str = ""
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)  # secret values
    quirks: frozenset[str] = frozenset()

    @property
    def label(self) -> str:
        return f"{self.model} · {self.provider_label}"


def target_secrets(target: Target) -> list[str]:
    """What must never appear in a message or a log line about this target."""
    return [target.api_key, *(value for _, value in target.headers)]


def server_key(provider: Provider, server_keys: Mapping[str, str]) -> str:
    """The operator's key for this provider, or ''."""
    return (server_keys.get(provider.server_key_name) or "").strip()


def resolve_key(provider: Provider, profile: Profile, server_keys: Mapping[str, str]) -> str:
    """The key to send: the operator's key wins, then the user's, else ''."""
    return server_key(provider, server_keys) or getattr(profile, provider.key_field)


def resolve_base_url(provider: Provider, profile: Profile) -> str | None:
    """The normalised base URL, or None when it is not set or not valid."""
    if provider.base_url is not None:
        return provider.base_url
    raw = getattr(profile, provider.base_url_field or "", "")
    if not raw.strip():
        return None
    try:
        return normalize_base_url(raw)
    except InvalidBaseURL:
        return None


def model_names(provider: Provider, profile: Profile) -> tuple[str, ...]:
    if provider.model_field:
        name = getattr(profile, provider.model_field).strip()
        return (name or provider.default_model or "",)
    return provider.models
