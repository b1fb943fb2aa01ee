"""Input at the edges (issue 8): keys are what an HTTP header can carry, and invisible format
characters (bidi overrides, zero-width spaces...) are refused in every text field, with a clear
message, before anything is encrypted or stored."""

from __future__ import annotations

import pytest

from core.failures import UserFacingError
from core.store.keybox import EncryptedProfileStore, KeyBox, local_secret
from core.providers.profile import FIELD_LABELS, MAX_KEY_LENGTH, Profile
from core.providers.seed import field_problem
from core.store.sqlite import SQLiteProfileStore

HEADER_TEXT = ("may only contain plain letters, digits and symbols "
               "(ASCII, no spaces, accents or emoji).")
INVISIBLE = ("contains invisible formatting characters "
             "(such as text-direction marks or zero-width spaces).")
# Unicode category Cf: bidi embeddings, overrides, isolates and marks, zero-width space, BOM,
# soft hyphen, Arabic letter mark, a language tag.
FORMAT_CHARACTERS = ["\u202a", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069", "\u200e",
                     "\u200f", "\u200b", "\u2060", "\ufeff", "\u00ad", "\u061c", "\U000e0001"]
SAVED = Profile(display_name="Ada", openai_compatible_api_key="sk-saved-0123456789",
                openai_compatible_base_url="http://localhost:1234/v1",
                openai_compatible_model_name="qwen2.5:7b")


@pytest.fixture
def store(tmp_path):
    """The local store as the app builds it; opening it again is a restart."""
    box = KeyBox([local_secret(tmp_path)])
    return lambda: EncryptedProfileStore(SQLiteProfileStore(tmp_path), box)


@pytest.mark.parametrize("field", ["openai_api_key", "openai_compatible_api_key",
                                   "openai_organization_id"])
@pytest.mark.parametrize(
    "value",
    ["sk-clé-0123", "sk-🔑-0123", "sk-\u200b0123", "sk-\u202e0123", "sk key", "sk-\x7f0123",
     "sk-\u00a00123", "ｓｋ-fullwidth"],
)
def test_header_fields_are_printable_ascii(field, value):
    assert field_problem(field, value) == f"{FIELD_LABELS[field]} {HEADER_TEXT}"


@pytest.mark.parametrize("field", ["openai_api_key", "openai_compatible_api_key"])
def test_every_printable_ascii_character_is_a_valid_key_character(field):
    everything = "".join(chr(code) for code in range(0x21, 0x7F))
    assert field_problem(field, everything) is None
    assert field_problem(field, "k" * MAX_KEY_LENGTH) is None


@pytest.mark.parametrize("field", ["display_name", "openai_compatible_model_name"])
@pytest.mark.parametrize("character", FORMAT_CHARACTERS)
def test_invisible_format_characters_are_refused_in_names(field, character):
    assert field_problem(field, f"llama{character}-3") == f"{FIELD_LABELS[field]} {INVISIBLE}"


def test_a_bidi_override_in_a_base_url_is_refused_with_the_url_message():
    problem = field_problem("openai_compatible_base_url", "http://localhost:1234/v1\u202e")
    assert problem.startswith("OpenAI-compatible base URL: Please enter a valid URL")
    assert "invisible formatting characters" in problem


def test_joiners_stay_allowed_in_a_display_name_only():
    """ZWJ and ZWNJ shape emoji and Persian or Indic words; they cannot reorder text."""
    assert field_problem("display_name", "👩\u200d💻 می\u200cخواهم") is None
    assert field_problem("openai_compatible_model_name", "a\u200db") is not None


def test_visible_unicode_stays_allowed_in_names():
    assert field_problem("display_name", "Zoë 🚀 名前 עברית") is None
    assert field_problem("openai_compatible_model_name", "qwen2.5:7b-名前") is None


@pytest.mark.parametrize(
    "field, value, says",
    [
        ("openai_compatible_api_key", "sk-ключ-0123", HEADER_TEXT),
        ("openai_organization_id", "org-\u202eevil", HEADER_TEXT),
        ("display_name", "Ada\u202egnp.exe", INVISIBLE),
        ("openai_compatible_model_name", "gpt\u200b-4o", INVISIBLE),
        ("openai_compatible_base_url", "http://0177.0.0.1:1234/v1", "not a valid IP address"),
    ],
)
def test_a_refused_field_says_why_and_nothing_saved_is_lost(store, field, value, says):
    store().save(SAVED)
    with pytest.raises(UserFacingError) as refused:
        store().save(SAVED.with_changes(**{field: value}))
    assert says in str(refused.value)
    assert store().load() == SAVED
