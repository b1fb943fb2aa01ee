"""The provider registry: each provider is data, and one function says what is available."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from core.profiles import Profile
from core.urls import InvalidBaseURL, normalize_base_url

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
)

REGISTRY: tuple[Provider, ...] = (OPENAI, OPENAI_COMPATIBLE)
PROVIDERS = {p.id: p for p in REGISTRY}


@dataclass(frozen=True)
class Target:
    """Everything one chat request needs: where, with which key, which model."""

    provider_id: str
    provider_label: str
    base_url: str
    api_key: str = field(repr=False)  # never in a log line or a traceback
    model: str = ""
    organization: str | None = None

    @property
    def label(self) -> str:
        return f"{self.model} · {self.provider_label}"


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


def is_available(provider: Provider, profile: Profile, server_keys: Mapping[str, str]) -> bool:
    """P3: offered iff its base URL is known and a key is there or not needed."""
    if resolve_base_url(provider, profile) is None:
        return False
    return bool(resolve_key(provider, profile, server_keys)) or not provider.needs_key


def available_targets(
    profile: Profile,
    server_keys: Mapping[str, str],
    registry: tuple[Provider, ...] = REGISTRY,
    unreadable: Collection[str] = (),
) -> list[Target]:
    """Every model the user can chat with now, across all providers (R2.1, R5.3).

    A provider whose saved key no current secret opens (`unreadable` key fields) is left out
    unless the operator's key stands in: sending no key would only earn a 401.
    """
    targets = []
    for provider in registry:
        if not is_available(provider, profile, server_keys):
            continue
        if provider.key_field in unreadable and not server_key(provider, server_keys):
            continue
        base_url = resolve_base_url(provider, profile)
        key = resolve_key(provider, profile, server_keys)
        org = getattr(profile, provider.organization_field) if provider.organization_field else ""
        for model in model_names(provider, profile):
            targets.append(
                Target(provider.id, provider.label, base_url, key, model, org.strip() or None)
            )
    return targets
