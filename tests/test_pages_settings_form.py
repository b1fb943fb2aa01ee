"""What the seed providers' settings forms know without a page: unsaved changes, and whether a
check's result still applies to what the form shows. The seed's providers are connections read
from the profile (core/providers/seed.py), edited through the one form logic (core/forms.py)."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from core.forms import FETCH_INPUTS, TEST_INPUTS, CheckResult, saved_form, unsaved_changes
from core.providers.kinds import OPENAI, OPENAI_COMPATIBLE, Target
from core.providers.profile import Profile
from core.providers.seed import seed_connection

# Values the form accepts as they are (already normalised), so a saved profile is a fixed point.
_words = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-._", min_size=1, max_size=20)
_keys = st.builds(lambda s: "sk-" + s, _words)
_urls = st.builds(lambda host, port, path: f"http://{host}:{port}/{path}",
                  st.sampled_from(["localhost", "127.0.0.1", "models.example.com"]),
                  st.integers(1, 65535), st.sampled_from(["v1", "api/v1", "openai/v1"]))
_profiles = st.builds(
    Profile,
    openai_api_key=st.one_of(st.just(""), _keys),
    openai_organization_id=st.one_of(st.just(""), _words),
    openai_compatible_api_key=st.one_of(st.just(""), _keys),
    openai_compatible_base_url=st.one_of(st.just(""), _urls),
    openai_compatible_model_name=st.one_of(st.just(""), _words),
)
_providers = st.sampled_from([OPENAI, OPENAI_COMPATIBLE])


def _saved(provider, profile):
    return seed_connection(provider, profile, {})


@given(_profiles, _providers)
def test_a_form_showing_the_saved_profile_has_no_unsaved_changes(profile, provider):
    """Property: for any saved profile, the form as it first shows it has nothing unsaved."""
    saved = _saved(provider, profile)
    assert unsaved_changes(saved, saved_form(saved)) == []


# One edit per field the user can make, and the word the page uses for it.
_EDITS = {
    "new_key": "API key",
    "organization": "organization ID",
    "base_url": "base URL",
    "default_model": "model name",
}


@given(_profiles, st.sampled_from(sorted(_EDITS)), st.one_of(_keys, _urls, _words))
def test_each_edit_is_named_and_only_it(profile, field, value):
    """Property: changing one field of the compatible form (or OpenAI's) to a different value
    lists exactly that field as unsaved; typing the saved value back lists nothing."""
    provider = OPENAI if field == "organization" else OPENAI_COMPATIBLE
    saved = _saved(provider, profile)
    shown = saved_form(saved)
    saved_value = saved.api_key if field == "new_key" else getattr(shown, field)
    if field == "base_url":
        value = "http://edited.example.com/v1" if value == saved_value or not value.startswith("http") else value
    edited = replace(shown, **{field: value})
    expected = [] if value == saved_value else [_EDITS[field]]
    assert unsaved_changes(saved, edited) == expected


def test_an_invalid_url_and_a_key_removal_are_unsaved_changes():
    saved = _saved(OPENAI_COMPATIBLE, Profile(openai_compatible_api_key="sk-saved",
                                              openai_compatible_base_url="http://h:1/v1"))
    form = saved_form(saved)
    assert unsaved_changes(saved, replace(form, base_url="not a url")) == ["base URL"]
    assert unsaved_changes(saved, replace(form, remove_key=True)) == ["API key"]
    # A pasted endpoint or a trailing slash saves as the same URL: nothing to save.
    for same in ("http://h:1/v1/", " http://h:1/v1/chat/completions "):
        assert unsaved_changes(saved, replace(form, base_url=same)) == []
    empty = _saved(OPENAI_COMPATIBLE, Profile())
    assert unsaved_changes(empty, replace(saved_form(empty), remove_key=True)) == []


def test_a_saved_url_that_todays_rules_refuse_shows_as_saved_and_is_not_a_change():
    """An address an earlier release accepted opens in the form as it was saved."""
    saved = _saved(OPENAI_COMPATIBLE, Profile(openai_compatible_base_url="http://0177.0.0.1/v1"))
    assert saved.base_url == "http://0177.0.0.1/v1"
    assert saved_form(saved).base_url == "http://0177.0.0.1/v1"
    assert unsaved_changes(saved, saved_form(saved)) == []


_targets = st.builds(
    Target,
    provider_id=st.just("openai-compatible"),
    provider_label=st.just("OpenAI-compatible"),
    base_url=_urls,
    api_key=st.one_of(st.just(""), _keys),
    model=_words,
    organization=st.one_of(st.none(), _words),
)


@given(_targets, st.sampled_from(TEST_INPUTS), st.sampled_from(["fetch", "test"]))
def test_a_check_result_applies_only_to_the_inputs_it_was_made_for(target, changed, kind):
    """Property: a result applies to the target it was made for; changing any input it
    depends on makes it stale, while the model may change under a Fetch models result."""
    inputs = FETCH_INPUTS if kind == "fetch" else TEST_INPUTS
    result = CheckResult.of(target, inputs, True, "Connection works")
    assert result.applies_to(target)
    assert result.applies_to(replace(target, provider_label="renamed"))  # not an input
    current = getattr(target, changed) or ""
    edited = replace(target, **{changed: current + "x"})
    assert result.applies_to(edited) is (changed not in inputs)
    assert not result.applies_to(None)


def test_a_result_for_no_usable_target_goes_once_the_form_is_usable():
    missing = CheckResult.of(None, TEST_INPUTS, False, "Enter a valid base URL first.")
    assert missing.applies_to(None)
    target = Target("openai-compatible", "OpenAI-compatible", "http://h:1/v1", "sk-k", "m")
    assert not missing.applies_to(target)


def test_a_result_keeps_no_copy_of_the_key():
    target = Target("openai-compatible", "OpenAI-compatible", "http://h:1/v1", "sk-secret-key-42", "m")
    result = CheckResult.of(target, TEST_INPUTS, True, "Connection works")
    assert "sk-secret-key-42" not in repr(result)
