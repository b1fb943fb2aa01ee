"""The user's profile row; the seed's providers live in its columns (read by
core.providers.seed)."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace


MAX_TEXT_LENGTH = 1000  # the database's CHECK on every text column
# 600 ASCII characters seal (core.store.keybox) to ~844, within the CHECK's 1000; an earlier
# release's Fernet token (up to 888) fits too.
MAX_KEY_LENGTH = 600


@dataclass(frozen=True)
class Profile:
    display_name: str = ""
    openai_api_key: str = ""
    openai_organization_id: str = ""
    openai_compatible_api_key: str = ""
    openai_compatible_base_url: str = ""
    openai_compatible_model_name: str = ""
    # What that server turned out not to support, comma-separated.
    openai_compatible_quirks: str = ""
    # Who writes a new chat's title: "" the chat's own model, NO_TITLES nobody (its first words
    # stay), else the label of the model picked for titles ("model · connection").
    title_model: str = ""

    def with_changes(self, **changes: str) -> "Profile":
        return replace(self, **changes)

    def as_dict(self) -> dict[str, str]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_row(cls, row: dict) -> "Profile":
        """Unknown columns are ignored; NULL reads as ''."""
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
    "title_model": "The model that writes chat titles",
}
NO_TITLES = "none"


def is_header_text(value: str) -> bool:
    """Printable ASCII without space (0x21-0x7E)."""
    return all("\x21" <= ch <= "\x7e" for ch in value)


def describe_saved_key(key: str) -> str:
    """That a key is set, and at most its last four characters."""
    if not key:
        return "No key saved."
    if len(key) < 12:  # showing 4 of a very short key would give too much of it away
        return "A key is saved."
    return f"A key is saved, ending in …{key[-4:]}."
