"""What a provider's settings form changes in the profile, apart from any widget."""

from __future__ import annotations

from dataclasses import dataclass

from core.profiles import Profile
from core.providers import Provider, Target, available_targets
from core.urls import InvalidBaseURL, normalize_base_url


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
