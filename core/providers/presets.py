"""Presets: well-known services and local servers, read from presets.toml beside this module
(each entry names the documentation its facts come from). A preset fills a new connection."""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass
from pathlib import Path

from core.providers.connections import QUIRKS, Connection
from core.providers.kinds import KINDS

PRESETS_FILE = Path(__file__).with_name("presets.toml")

# field -> the TOML type it must have; suggested_models may be left out
_FIELDS: dict[str, type] = {
    "id": str, "name": str, "kind": str, "base_url": str, "needs_key": bool, "key_url": str,
    "local": bool, "quirks": list, "notes": str, "source": str, "suggested_models": list,
}
_OPTIONAL = frozenset({"suggested_models"})


@dataclass(frozen=True)
class Preset:
    id: str
    name: str
    kind: str
    base_url: str
    needs_key: bool
    key_url: str
    local: bool
    quirks: tuple[str, ...]
    notes: str
    source: str
    suggested_models: tuple[str, ...] = ()

    def connection(self) -> Connection:
        """A user's, not saved yet."""
        return Connection(name=self.name, kind=self.kind, base_url=self.base_url,
                          needs_key=self.needs_key, quirks=frozenset(self.quirks))


def read_presets(path: Path) -> tuple[Preset, ...]:
    """ValueError naming the entry if one is malformed."""
    with path.open("rb") as file:
        data = tomllib.load(file)
    entries = data.get("preset")
    if not isinstance(entries, list) or not entries:
        raise ValueError(f"{path.name}: no [[preset]] entries")
    presets = tuple(_preset(entry, number) for number, entry in enumerate(entries, start=1))
    ids = [p.id for p in presets]
    if duplicated := sorted({i for i in ids if ids.count(i) > 1}):
        raise ValueError(f"{path.name}: preset id given twice: {', '.join(duplicated)}")
    return presets


def _preset(entry: object, number: int) -> Preset:
    label = f"preset #{number}"
    if not isinstance(entry, dict):
        raise ValueError(f"{label} is not a table")
    label = f"preset #{number} ({entry.get('id', 'no id')!s})"
    if unknown := sorted(set(entry) - set(_FIELDS)):
        raise ValueError(f"{label}: unknown fields {', '.join(unknown)}")
    if missing := sorted(set(_FIELDS) - set(entry) - _OPTIONAL):
        raise ValueError(f"{label}: missing fields {', '.join(missing)}")
    for field, expected in _FIELDS.items():
        if field in entry and type(entry[field]) is not expected:  # bool is not an int here
            raise ValueError(f"{label}: {field} must be a {expected.__name__}")
    for field in ("quirks", "suggested_models"):
        if not all(isinstance(item, str) for item in entry.get(field, [])):
            raise ValueError(f"{label}: {field} must list strings")
    if entry["kind"] not in KINDS:
        raise ValueError(f"{label}: unknown kind {entry['kind']!r}")
    if unknown_quirks := sorted(set(entry["quirks"]) - set(QUIRKS)):
        raise ValueError(f"{label}: unknown quirks {', '.join(unknown_quirks)}")
    return Preset(**{**entry, "quirks": tuple(entry["quirks"]),
                     "suggested_models": tuple(entry.get("suggested_models", []))})


@functools.cache
def load_presets() -> tuple[Preset, ...]:
    """Read once per process (plain data, no user data)."""
    return read_presets(PRESETS_FILE)


def preset(preset_id: str) -> Preset:
    for candidate in load_presets():
        if candidate.id == preset_id:
            return candidate
    raise KeyError(preset_id)
