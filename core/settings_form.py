"""What a provider's settings form changes in the profile, apart from any widget."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace

from core.chat.netguard import NetworkPolicy, check_base_url
from core.providers.profile import Profile
from core.providers.connections import available_targets
from core.providers.kinds import Provider, Target
from core.providers.urls import InvalidBaseURL, normalize_base_url


@dataclass(frozen=True)
class ProviderForm:
    """The values typed into one provider's expander."""

    new_key: str = ""  # empty keeps the saved key
    remove_key: bool = False
    organization: str = ""
    base_url: str = ""
    model: str = ""


def apply_form(provider: Provider, profile: Profile, form: ProviderForm) -> Profile:
    """The profile after saving `form`; only this provider's fields change.

    The base URL is stored normalised (no trailing slash, no pasted endpoint); an invalid
    one raises InvalidBaseURL, which the page prevents by disabling Save.
    """
    changes: dict[str, str] = {}
    if form.remove_key:
        changes[provider.key_field] = ""
    elif form.new_key.strip():
        changes[provider.key_field] = form.new_key.strip()
    if provider.organization_field:
        changes[provider.organization_field] = form.organization.strip()
    if provider.base_url_field:
        url = form.base_url.strip()
        changes[provider.base_url_field] = normalize_base_url(url) if url else ""
        if provider.quirks_field and changes[provider.base_url_field] != getattr(
                profile, provider.base_url_field):
            changes[provider.quirks_field] = ""  # learned of the old server, not the new one
    if provider.model_field:
        changes[provider.model_field] = form.model.strip()
    return profile.with_changes(**changes)


def draft_target(
    provider: Provider, saved: Profile, form: ProviderForm, server_keys
) -> Target | None:
    """The target the form describes right now, saved or not; None if it is not usable."""
    try:
        draft = apply_form(provider, saved, form)
    except InvalidBaseURL:
        return None
    targets = available_targets(draft, server_keys, registry=(provider,))
    return targets[0] if targets else None


def saved_form(provider: Provider, saved: Profile) -> ProviderForm:
    """The form as it shows the saved profile: no new key typed, the saved values in place."""
    def value(field: str | None) -> str:
        return getattr(saved, field) if field else ""

    return ProviderForm(
        organization=value(provider.organization_field),
        base_url=value(provider.base_url_field),
        model=value(provider.model_field),
    )


def rebase_form(form: ProviderForm, old: ProviderForm, new: ProviderForm) -> ProviderForm:
    """The form once the saved settings moved from `old` to `new` (saved elsewhere): what the
    user left as it was follows the store, what they edited stays theirs."""
    follow = {name: getattr(new, name) for name in ("organization", "base_url", "model")
              if getattr(form, name) == getattr(old, name)}
    return replace(form, **follow)


def save_form(store, provider: Provider, form: ProviderForm, base: Profile,
              policy: NetworkPolicy) -> Profile:
    """Save what `form` changes from `base`, the stored row the form was filled from.

    Only the fields the user changed are written, and only while the store still holds them
    as `base` had them (else ProfileChanged); a saved key no secret opens is kept unless the
    user replaces or removes it. A base URL the network guard refuses is not saved.
    """
    updated = apply_form(provider, store.open(base), form)
    url = getattr(updated, provider.base_url_field) if provider.base_url_field else ""
    if url:
        check_base_url(url, policy)
    remove = (provider.key_field,) if form.remove_key else ()
    return store.save(updated, base=base, remove_keys=remove)


# What each of a provider's profile fields is called in "Unsaved changes: ...".
_FIELD_WORDS = {
    "key_field": "API key",
    "organization_field": "organization ID",
    "base_url_field": "base URL",
    "model_field": "model name",
}


def unsaved_changes(provider: Provider, saved: Profile, form: ProviderForm) -> list[str]:
    """What Save would change, in words for the user; [] when the form shows what is saved."""
    invalid_url = False
    try:
        draft = apply_form(provider, saved, form)
    except InvalidBaseURL:  # an invalid URL is never what is saved; compare the rest
        invalid_url = True
        draft = apply_form(provider, saved, replace(form, base_url=saved_form(provider, saved).base_url))
    changed = []
    for attribute, words in _FIELD_WORDS.items():
        field = getattr(provider, attribute)
        if field and (getattr(draft, field) != getattr(saved, field)
                      or (invalid_url and attribute == "base_url_field")):
            changed.append(words)
    return changed


# The parts of a target that a check's outcome depends on.
FETCH_INPUTS = ("provider_id", "base_url", "api_key", "organization")
TEST_INPUTS = (*FETCH_INPUTS, "model")


def _digest(target: Target | None, inputs: tuple[str, ...]) -> str:
    """A fingerprint of those inputs (a digest, so no second copy of the key is kept)."""
    if target is None:
        return ""
    values = "\0".join(str(getattr(target, name) or "") for name in inputs)
    return hashlib.sha256(values.encode()).hexdigest()


@dataclass(frozen=True)
class CheckResult:
    """A Fetch models or Test connection outcome, and the inputs it was made for."""

    ok: bool
    detail: str | tuple[str, ...]  # the summary, or the model ids found
    inputs: tuple[str, ...]
    made_for: str

    @classmethod
    def of(cls, target: Target | None, inputs: tuple[str, ...], ok: bool,
           detail: str | tuple[str, ...]) -> "CheckResult":
        return cls(ok, detail, inputs, _digest(target, inputs))

    def applies_to(self, target: Target | None) -> bool:
        """True while the form still describes what was checked; else the result is stale."""
        return self.made_for == _digest(target, self.inputs)
