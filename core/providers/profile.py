"""The user's profile: what it holds, and what a valid one is."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

from core.failures import UserFacingError
from core.providers.urls import (
    INVISIBLE_CHARACTERS_REASON,
    has_control_characters,
    has_invisible_characters,
    url_problem,
)

MAX_TEXT_LENGTH = 1000  # the database's CHECK on every text column
# Keys are printable ASCII, stored encrypted: 600 characters are 600 bytes, and their Fernet
# token is 888 characters, within the 1000 of the CHECK.
MAX_KEY_LENGTH = 600

KEY_FIELDS = ("openai_api_key", "openai_compatible_api_key")
# Sent as HTTP header values: printable ASCII, no spaces.
HEADER_FIELDS = (*KEY_FIELDS, "openai_organization_id")
# Joiners shape Persian, Indic and emoji text; they cannot reorder or hide it.
_JOINERS = frozenset("\u200c\u200d")


@dataclass(frozen=True)
class Profile:
    display_name: str = ""
    openai_api_key: str = ""
    openai_organization_id: str = ""
    openai_compatible_api_key: str = ""
    openai_compatible_base_url: str = ""
    openai_compatible_model_name: str = ""
    # What that server turned out not to support, comma-separated (core.providers.connections).
    openai_compatible_quirks: str = ""

    def with_changes(self, **changes: str) -> "Profile":
        return replace(self, **changes)

    def as_dict(self) -> dict[str, str]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_row(cls, row: dict) -> "Profile":
        """A profile from a store row; unknown columns are ignored, NULL reads as ''."""
        return cls(**{f.name: row.get(f.name) or "" for f in fields(cls)})


PROFILE_FIELDS = tuple(f.name for f in fields(Profile))

FIELD_LABELS = {
    "display_name": "Display name",
    "openai_api_key": "OpenAI API key",
    "openai_organization_id": "OpenAI organization ID",
    "openai_compatible_api_key": "OpenAI-compatible API key",
    "openai_compatible_base_url": "OpenAI-compatible base URL",
    "openai_compatible_model_name": "OpenAI-compatible model name",
    "openai_compatible_quirks": "What the OpenAI-compatible server does not support",
}


def field_problem(name: str, value: str) -> str | None:
    """What is wrong with one field's value, said for the user, or None."""
    label = FIELD_LABELS[name]
    limit = MAX_KEY_LENGTH if name in KEY_FIELDS else MAX_TEXT_LENGTH
    if len(value) > limit:
        return f"{label} is too long: at most {limit} characters, got {len(value)}."
    if name == "openai_compatible_base_url":
        problem = url_problem(value)
        return f"{label}: {problem}" if problem else None
    if name in HEADER_FIELDS:
        if not is_header_text(value):
            return (f"{label} may only contain plain letters, digits and symbols "
                    "(ASCII, no spaces, accents or emoji).")
        return None
    if has_control_characters(value):
        return f"{label} contains control characters."
    allowed = _JOINERS if name == "display_name" else frozenset()
    if has_invisible_characters(value, allowed):
        return f"{label} contains {INVISIBLE_CHARACTERS_REASON}."
    return None


def is_header_text(value: str) -> bool:
    """True if every character is printable ASCII other than space (0x21-0x7E)."""
    return all("\x21" <= ch <= "\x7e" for ch in value)


def validate_profile(profile: Profile) -> None:
    """Raise UserFacingError naming every invalid field; the profile itself is untouched."""
    problems = [
        p for name in PROFILE_FIELDS if (p := field_problem(name, getattr(profile, name)))
    ]
    if problems:
        raise UserFacingError(" ".join(problems))




def describe_saved_key(key: str) -> str:
    """How the page mentions a saved key: that it is set, and at most its last four."""
    if not key:
        return "No key saved."
    if len(key) < 12:  # showing 4 of a very short key would give too much of it away
        return "A key is saved."
    return f"A key is saved, ending in …{key[-4:]}."
