"""Connections the operator gives every user: `[connections.<id>]` tables in secrets.toml or
SWITCHBOARD_CONNECTIONS (format in README.md), read-only for users. An invalid entry is left
out and logged for the operator, never shown to users."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from core.failures import toml_tables
from core.providers.connections import Connection, connection_problems
from core.providers.kinds import KINDS
from core.providers.urls import InvalidBaseURL, normalize_base_url

ENV_NAME = "SWITCHBOARD_CONNECTIONS"
TABLE = "connections"
_FIELDS = {"name", "kind", "base_url", "api_key", "models", "default_model", "headers",
           "quirks", "enabled", "organization"}

logger = logging.getLogger(__name__)


def parse_toml(text: str) -> Mapping[str, object]:
    """Misconfigured when not TOML: never silently none of the administrator's connections."""
    return toml_tables(text, TABLE, ENV_NAME)


def operator_connections(table: Mapping[str, object]) -> tuple[Connection, ...]:
    """One per valid entry, in the order given."""
    found = (_connection(str(key), entry) for key, entry in table.items())
    return tuple(connection for connection in found if connection is not None)


def _connection(key: str, entry: object) -> Connection | None:
    if not isinstance(entry, Mapping):
        return _skip(key, "it is not a table")
    unknown = set(entry) - _FIELDS
    if unknown:
        return _skip(key, f"unknown fields {sorted(unknown)}")
    kind = str(entry.get("kind", "openai-compatible"))
    if kind not in KINDS:
        return _skip(key, f"unknown kind {kind!r}")
    try:
        base_url = normalize_base_url(str(entry.get("base_url") or KINDS[kind].base_url or ""))
        headers = tuple((str(n), str(v)) for n, v in dict(entry.get("headers", {})).items())
        models = tuple(str(m) for m in entry.get("models", ()))
        quirks = frozenset(str(q) for q in entry.get("quirks", ()))
    except (InvalidBaseURL, TypeError, ValueError) as exc:
        return _skip(key, str(exc))
    connection = Connection(
        name=str(entry.get("name") or key), kind=kind, base_url=base_url,
        api_key=str(entry.get("api_key", "")).strip(), headers=headers,
        enabled=bool(entry.get("enabled", True)), models=models,
        default_model=str(entry.get("default_model", "")), quirks=quirks,
        organization=str(entry.get("organization", "")), needs_key=KINDS[kind].needs_key,
        id=f"operator:{key}", origin="operator",
    )
    problems = connection_problems(connection)
    if problems:
        return _skip(key, " ".join(problems))
    return connection


def _skip(key: str, why: str) -> None:
    logger.warning("Administrator connection [connections.%s] is left out: %s", key, why)
    return None
