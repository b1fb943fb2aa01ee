"""The user's profile: what it holds, what a valid one is, and the store interface."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Protocol

from core.errors import UserFacingError
from core.urls import has_control_characters, url_problem

MAX_TEXT_LENGTH = 1000  # the database's CHECK on every text column
# Keys are stored encrypted; an encrypted 600-character key still fits in 1000.
MAX_KEY_LENGTH = 600

KEY_FIELDS = ("openai_api_key", "openai_compatible_api_key")


@dataclass(frozen=True)
class Profile:
    display_name: str = ""
    openai_api_key: str = ""
    openai_organization_id: str = ""
    openai_compatible_api_key: str = ""
    openai_compatible_base_url: str = ""
    openai_compatible_model_name: str = ""

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
    if has_control_characters(value):
        return f"{label} contains control characters."
    if (name in KEY_FIELDS or name == "openai_organization_id") and any(
        ch.isspace() for ch in value
    ):
        return f"{label} must not contain spaces."
    return None


def validate_profile(profile: Profile) -> None:
    """Raise UserFacingError naming every invalid field; the profile itself is untouched."""
    problems = [
        p for name in PROFILE_FIELDS if (p := field_problem(name, getattr(profile, name)))
    ]
    if problems:
        raise UserFacingError(" ".join(problems))


class ProfileStore(Protocol):
    """One user's profile, wherever it lives. Implementations are bound to that user."""

    def load(self) -> Profile:
        """The saved profile, or an empty one if nothing was saved yet."""
        ...

    def save(self, profile: Profile) -> Profile:
        """Persist the whole profile and return what was stored.

        Raises UserFacingError when the store refuses it; nothing is half-written.
        """
        ...



def describe_saved_key(key: str) -> str:
    """How the page mentions a saved key: that it is set, and at most its last four."""
    if not key:
        return "No key saved."
    if len(key) < 12:  # showing 4 of a very short key would give too much of it away
        return "A key is saved."
    return f"A key is saved, ending in …{key[-4:]}."
