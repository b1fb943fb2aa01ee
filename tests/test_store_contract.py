"""The ProfileStore contract: every backend must pass these same tests."""

from __future__ import annotations

import uuid

import pytest
from cryptography.fernet import Fernet
from hypothesis import HealthCheck, given, settings

from core.auth import SupabaseAuth
from core.config import Settings
from core.errors import UserFacingError
from core.keybox import EncryptedProfileStore, KeyBox, local_secret
from core.profiles import MAX_KEY_LENGTH, Profile
from core.store_sqlite import SQLiteProfileStore
from core.store_supabase import SupabaseProfileStore
from tests.test_properties import keys, tokens, valid_urls

FULL = Profile(
    display_name="Ada",
    openai_api_key="sk-openai-0123456789",
    openai_organization_id="org-123",
    openai_compatible_api_key="local-key-abcdef",
    openai_compatible_base_url="http://localhost:1234/v1",
    openai_compatible_model_name="llama-3.1-8b-instruct",
)


@pytest.fixture(params=["sqlite", "supabase"])
def make_store(request, tmp_path):
    """A factory of stores for one user; calling it again is the app restarted."""
    if request.param == "sqlite":
        box = KeyBox([local_secret(tmp_path / "store")])
        return lambda: EncryptedProfileStore(SQLiteProfileStore(tmp_path / "store"), box)
    stack = request.getfixturevalue("supabase_stack")
    settings = Settings(supabase_url=stack.url, supabase_anon_key=stack.anon_key)
    email, password = f"contract-{uuid.uuid4().hex[:12]}@example.com", "correct horse battery"
    SupabaseAuth(settings).sign_up(email, password)
    box = KeyBox([Fernet.generate_key().decode()])

    def signed_in_store():  # a new browser session: a new client, signed in again
        auth = SupabaseAuth(settings)
        user = auth.sign_in(email, password)
        return EncryptedProfileStore(SupabaseProfileStore(auth.client, user.id), box)

    return signed_in_store


def test_a_new_user_has_an_empty_profile(make_store):
    assert make_store().load() == Profile()


def test_save_then_load_gives_the_same(make_store):
    assert make_store().save(FULL) == FULL
    assert make_store().load() == FULL


def test_saving_again_replaces_every_field(make_store):
    make_store().save(FULL)
    changed = FULL.with_changes(openai_compatible_base_url="", openai_api_key="")
    make_store().save(changed)
    assert make_store().load() == changed


def test_unicode_survives(make_store):
    profile = FULL.with_changes(display_name="Zoë 🚀 名前", openai_compatible_model_name="qwen2.5:7b")
    make_store().save(profile)
    assert make_store().load() == profile


@pytest.mark.parametrize(
    "field, value",
    [
        ("openai_compatible_base_url", "http://localhost/" + "a" * 1000),
        ("openai_compatible_model_name", "m" * 1001),
        ("display_name", "x" * 1001),
        ("openai_compatible_api_key", "k" * 601),
        ("openai_compatible_base_url", "ftp://example.com"),
        ("openai_compatible_api_key", "key with spaces"),
        ("display_name", "bell\x07"),
    ],
)
def test_bad_values_are_refused_and_nothing_saved_is_lost(make_store, field, value):
    make_store().save(FULL)
    with pytest.raises(UserFacingError) as refused:
        make_store().save(FULL.with_changes(**{field: value}))
    assert str(refused.value)  # a message for the user
    assert make_store().load() == FULL


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=keys, url=valid_urls, model=tokens)
def test_p2_settings_round_trip(make_store, key, url, model):
    """P2: for any valid key, URL and model name, save then load gives the same."""
    profile = Profile(
        openai_compatible_api_key=key,
        openai_compatible_base_url=url,
        openai_compatible_model_name=model,
    )
    assert make_store().save(profile) == profile
    assert make_store().load() == profile


def test_the_longest_key_the_form_accepts_fits_the_database(make_store):
    """Printable ASCII up to the limit: encrypted, it stays within the 1000-character CHECK."""
    printable = "".join(chr(code) for code in range(0x21, 0x7F))
    longest = (printable * 7)[:MAX_KEY_LENGTH]
    profile = FULL.with_changes(openai_compatible_api_key=longest, openai_api_key=longest[::-1])
    make_store().save(profile)
    assert make_store().load() == profile


@pytest.mark.parametrize("key", ["é" * MAX_KEY_LENGTH, "sk-🔑" + "k" * 100, "sk-\u200bkey"])
def test_a_key_an_http_header_cannot_carry_is_refused_before_encryption(make_store, key):
    make_store().save(FULL)
    with pytest.raises(UserFacingError) as refused:
        make_store().save(FULL.with_changes(openai_compatible_api_key=key))
    assert str(refused.value) == (
        "OpenAI-compatible API key may only contain plain letters, digits and symbols "
        "(ASCII, no spaces, accents or emoji)."
    )
    assert make_store().load() == FULL
