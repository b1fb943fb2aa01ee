"""The seed's two providers (OpenAI, OpenAI-compatible) as connections, kept in profile columns:
`columns` maps a field to its column; all else (secret, header, rules) is derived."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

from core.failures import UserFacingError
from core.providers.connections import (
    JOINERS,
    is_quirk,
    Connection,
    header_fields,
    secret_fields,
    text_problem,
)
from core.providers.kinds import PROVIDERS, REGISTRY, Provider
from core.providers.profile import (
    FIELD_LABELS,
    MAX_KEY_LENGTH,
    MAX_TEXT_LENGTH,
    PROFILE_FIELDS,
    Profile,
    is_header_text,
)
from core.providers.urls import as_saved, url_problem

SEED_ORIGIN = "profile"


def _columns_of(fields: Iterable[str]) -> tuple[str, ...]:
    fields = tuple(fields)
    return tuple(p.columns[f] for p in REGISTRY for f in fields if f in p.columns)


KEY_FIELDS = _columns_of(secret_fields())  # encrypted, never sent back to a browser
HEADER_FIELDS = _columns_of(header_fields())  # printable ASCII, no spaces
BASE_URL_FIELDS = _columns_of(("base_url",))


def provider_of(connection_id: str) -> Provider:
    """From a "profile:<kind>" id."""
    origin, _, kind = connection_id.partition(":")
    if origin != SEED_ORIGIN or kind not in PROVIDERS:
        raise KeyError(connection_id)
    return PROVIDERS[kind]


# ---------------------------------------------------------------- the columns' rules


def field_problem(name: str, value: str) -> str | None:
    label = FIELD_LABELS[name]
    limit = MAX_KEY_LENGTH if name in KEY_FIELDS else MAX_TEXT_LENGTH
    if name not in BASE_URL_FIELDS and name not in HEADER_FIELDS:
        allowed = JOINERS if name == "display_name" else frozenset()
        return text_problem(label, value, limit, required=False, allowed=allowed)
    if len(value) > limit:
        return f"{label} is too long: at most {limit} characters, got {len(value)}."
    if name in BASE_URL_FIELDS:
        problem = url_problem(value)
        return f"{label}: {problem}" if problem else None
    if not is_header_text(value):
        return (f"{label} may only contain plain letters, digits and symbols "
                "(ASCII, no spaces, accents or emoji).")
    return None


def validate_profile(profile: Profile) -> None:
    """Raise UserFacingError naming every invalid column."""
    problems = [
        p for name in PROFILE_FIELDS if (p := field_problem(name, getattr(profile, name)))
    ]
    if problems:
        raise UserFacingError(" ".join(problems))


# ---------------------------------------------------------------- profile <-> connection


def read_quirks(text: str) -> frozenset[str]:
    """Unknown names are ignored: a newer replica may have written them."""
    return frozenset(q for q in (part.strip() for part in text.split(",")) if is_quirk(q))


def write_quirks(quirks: Iterable[str]) -> str:
    return ",".join(sorted(set(quirks)))


def seed_connection(provider: Provider, profile: Profile, server_keys: Mapping[str, str],
                    unreadable: Collection[str] = (), version: object = None) -> Connection:
    """The operator's key, when set, stands in for the user's."""
    def value(field: str) -> str:
        column = provider.columns.get(field)
        return getattr(profile, column) if column else ""

    operator_key = (server_keys.get(provider.server_key_name) or "").strip()
    lost = provider.columns["api_key"] in unreadable and not operator_key
    return Connection(
        name=provider.label,
        kind=provider.id,
        base_url=provider.base_url or as_saved(value("base_url")),
        api_key=operator_key or value("api_key"),
        models=provider.models,
        default_model=value("default_model").strip(),
        fallback_model=provider.default_model or "",
        organization=value("organization"),
        quirks=read_quirks(value("quirks")),
        needs_key=provider.needs_key,
        id=f"{SEED_ORIGIN}:{provider.id}",
        origin=SEED_ORIGIN,
        version=version,
        unreadable=frozenset({"api_key"}) if lost else frozenset(),
        key_from_operator=bool(operator_key),
    )


def seed_connections(profile: Profile, server_keys: Mapping[str, str],
                     unreadable: Collection[str] = (), version: object = None
                     ) -> list[Connection]:
    return [seed_connection(p, profile, server_keys, unreadable, version) for p in REGISTRY]


def column_changes(provider: Provider, changes: Mapping[str, object]) -> dict[str, str]:
    """A new base URL forgets what was learned of the old server."""
    unknown = set(changes) - set(provider.columns)
    if unknown:  # the form shows no other field for the seed's providers
        raise ValueError(f"{provider.label} keeps no {sorted(unknown)} in the profile")
    columns = {provider.columns[f]: (write_quirks(v) if f == "quirks" else str(v))
               for f, v in changes.items()}
    if "base_url" in changes and "quirks" in provider.columns and "quirks" not in changes:
        columns[provider.columns["quirks"]] = ""
    return columns
