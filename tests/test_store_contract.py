"""The ProfileStore contract: every backend must pass these same tests."""

from __future__ import annotations

import uuid

import pytest
from cryptography.fernet import Fernet
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.auth import SupabaseAuth
from core.config import Settings
from core.store.errors import ProfileChanged
from core.failures import UserFacingError
from core.store.keybox import EncryptedProfileStore, KeyBox, local_secret
from core.providers.profile import MAX_KEY_LENGTH, Profile
from core.store.sqlite import SQLiteProfileStore
from core.store.supabase import SupabaseProfileStore
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
    """A factory of stores for one user; calling it again is the app restarted, or another
    tab. `box` replaces the encryption secrets the app runs with."""
    if request.param == "sqlite":
        default = KeyBox([local_secret(tmp_path / "store")])
        return lambda box=None: EncryptedProfileStore(SQLiteProfileStore(tmp_path / "store"),
                                                      box or default)
    stack = request.getfixturevalue("supabase_stack")
    settings = Settings(supabase_url=stack.url, supabase_anon_key=stack.anon_key)
    email, password = f"contract-{uuid.uuid4().hex[:12]}@example.com", "correct horse battery"
    SupabaseAuth(settings).sign_up(email, password)
    default = KeyBox([Fernet.generate_key().decode()])

    def signed_in_store(box=None):  # a new browser session: a new client, signed in again
        auth = SupabaseAuth(settings)
        user = auth.sign_in(email, password)
        return EncryptedProfileStore(SupabaseProfileStore(auth.client, user.id), box or default)

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


# ---- saving only what changed, and only over what was read (issue 9) ------------------------

OPENAI_CHANGES = {"openai_api_key": "sk-openai-from-tab-one-0001", "openai_organization_id": "o"}
COMPATIBLE_CHANGES = {"openai_compatible_base_url": "http://127.0.0.1:8080/v1",
                      "openai_compatible_model_name": "from-tab-two"}


def test_two_tabs_saving_different_providers_keep_both(make_store):
    make_store().save(FULL)
    one, two = make_store(), make_store()
    shown_one, shown_two = one.load(), two.load()  # both pages drawn before either saves
    one.save(shown_one.with_changes(**OPENAI_CHANGES))
    two.save(shown_two.with_changes(**COMPATIBLE_CHANGES))
    assert make_store().load() == FULL.with_changes(**OPENAI_CHANGES, **COMPATIBLE_CHANGES)


def test_the_same_field_changed_in_two_tabs_refuses_the_second_and_keeps_the_first(make_store):
    make_store().save(FULL)
    one, two = make_store(), make_store()
    shown_one, shown_two = one.load(), two.load()
    one.save(shown_one.with_changes(openai_compatible_model_name="first"))
    with pytest.raises(ProfileChanged) as refused:
        two.save(shown_two.with_changes(openai_compatible_model_name="second", display_name="B"))
    assert "changed in another tab or session" in str(refused.value)
    assert make_store().load() == FULL.with_changes(openai_compatible_model_name="first")


def test_a_key_no_secret_opens_is_kept_through_a_save_and_reads_again_with_its_secret(make_store):
    """Acceptance 2, both backends: key saved, secret removed, a model name saved, secret
    restored: the key works again."""
    original = make_store()
    original.save(FULL)
    without_secret = make_store(KeyBox([Fernet.generate_key().decode()]))
    shown = without_secret.load()
    assert shown.openai_compatible_api_key == "" == shown.openai_api_key
    assert set(without_secret.unreadable_keys) == {"openai_api_key", "openai_compatible_api_key"}
    without_secret.save(shown.with_changes(openai_compatible_model_name="after"))
    assert make_store().load() == FULL.with_changes(openai_compatible_model_name="after")


def test_an_unreadable_key_is_replaced_or_removed_only_when_the_user_says_so(make_store):
    make_store().save(FULL)
    without_secret = make_store(KeyBox([Fernet.generate_key().decode()]))
    shown = without_secret.load()
    without_secret.save(shown.with_changes(openai_api_key="sk-typed-again-0123456789"))
    without_secret.save(without_secret.load().with_changes(openai_compatible_api_key=""),
                        remove_keys=("openai_compatible_api_key",))
    assert without_secret.unreadable_keys == ()
    assert without_secret.load() == FULL.with_changes(openai_api_key="sk-typed-again-0123456789",
                                                      openai_compatible_api_key="")


# Text a query string or SQL could misread: separators, quotes, wildcards, escapes, "null".
awkward_text = st.lists(
    st.sampled_from([*',.:()"\\\'%*_&=?#+ ;[]{}<>/', "null", "a", "é", "名", "🚀"]), max_size=20,
).map("".join)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(first=awkward_text, second=awkward_text)
def test_p2_saves_over_what_was_read_whatever_the_text(make_store, first, second):
    """P2 under compare-and-set: for any display names, a save based on what is stored is
    written and read back, and a save based on a stale read of that field is refused."""
    base = make_store()
    base.save(FULL.with_changes(display_name=first))
    stale = make_store()
    stale_view = stale.load()
    assert base.load().display_name == first
    base.save(FULL.with_changes(display_name=second))
    assert make_store().load().display_name == second
    if second != first:
        with pytest.raises(ProfileChanged):
            stale.save(stale_view.with_changes(display_name=first + "x"))
    assert make_store().load().display_name == second


def test_long_values_still_save_over_what_was_read_only(make_store):
    """Values too long to compare in a URL are checked through the row's version."""
    long_name = "名" * 1000
    make_store().save(FULL.with_changes(display_name=long_name))
    one, two = make_store(), make_store()
    shown_one, shown_two = one.load(), two.load()
    one.save(shown_one.with_changes(display_name="短" * 999))
    with pytest.raises(ProfileChanged):
        two.save(shown_two.with_changes(display_name="長" * 1000))
    assert make_store().load().display_name == "短" * 999
