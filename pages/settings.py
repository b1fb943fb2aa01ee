"""Settings: one expander per provider, saved to the user's profile."""

import streamlit as st

from core import session
from core.errors import UserFacingError
from core.profiles import FIELD_LABELS, Profile, describe_saved_key
from core.providers import REGISTRY, Provider, server_key
from core.settings_form import ProviderForm, apply_form
from core.urls import PLACEHOLDER_BASE_URL, url_problem


def _widget(provider: Provider, name: str) -> str:
    return f"settings:{provider.id}:{name}"


def _init_fields(provider: Provider, profile: Profile) -> None:
    """Fill the inputs from the saved profile the first time they are shown."""
    saved = {
        "organization": provider.organization_field,
        "base_url": provider.base_url_field,
        "model": provider.model_field,
    }
    for name, profile_field in saved.items():
        key = _widget(provider, name)
        if profile_field and key not in st.session_state:
            st.session_state[key] = getattr(profile, profile_field)


def _save(provider: Provider) -> None:
    """Save button callback: runs before the page, so it may clear the key input."""
    state = st.session_state
    form = ProviderForm(
        new_key=state.get(_widget(provider, "key"), "") or "",
        remove_key=bool(state.get(_widget(provider, "remove_key"))),
        organization=state.get(_widget(provider, "organization"), "") or "",
        base_url=state.get(_widget(provider, "base_url"), "") or "",
        model=state.get(_widget(provider, "model"), "") or "",
    )
    try:
        store = session.store()
        saved = store.save(apply_form(provider, store.load(), form))
    except (UserFacingError, ValueError) as exc:
        state["settings:flash"] = ("error", provider.id, str(exc))
        return
    state[_widget(provider, "key")] = ""
    state[_widget(provider, "remove_key")] = False
    if provider.base_url_field:
        state[_widget(provider, "base_url")] = getattr(saved, provider.base_url_field)
    state["settings:flash"] = ("saved", provider.id, f"{provider.label} settings saved.")


def _key_input(provider: Provider, profile: Profile) -> None:
    if server_key(provider, session.settings().server_keys):
        st.text_input("API key", value="Set by the administrator", disabled=True,
                      key=_widget(provider, "admin_key"))
        return
    saved_key = getattr(profile, provider.key_field)
    st.text_input(
        "API key",
        type="password",
        key=_widget(provider, "key"),
        placeholder="Type a new key to replace the saved one" if saved_key else "sk-…",
        autocomplete="off",
        help="Stored in your profile and never shown again once saved.",
    )
    st.caption(describe_saved_key(saved_key))
    if saved_key:
        st.checkbox("Remove the saved key", key=_widget(provider, "remove_key"))


def _provider_section(provider: Provider, profile: Profile) -> None:
    _init_fields(provider, profile)
    _key_input(provider, profile)
    if provider.organization_field:
        st.text_input("Organization ID (optional)", key=_widget(provider, "organization"))
    problem = None
    if provider.base_url_field:
        url = st.text_input(
            "Base URL",
            key=_widget(provider, "base_url"),
            placeholder=PLACEHOLDER_BASE_URL,
            live=True,
            help="The server's OpenAI-compatible API root. Leave empty to turn this provider off.",
        )
        problem = url_problem(url or "")
        if problem:
            st.error(problem)
    if provider.model_field:
        st.text_input(
            "Model name",
            key=_widget(provider, "model"),
            placeholder=provider.default_model,
            help=f"Leave empty to use the default, {provider.default_model}.",
        )
        st.caption(f"Default when empty: `{provider.default_model}`")
    st.button(
        "Save",
        key=_widget(provider, "save"),
        type="primary",
        disabled=problem is not None,
        on_click=_save,
        args=(provider,),
    )


st.title("Settings")
flash = st.session_state.pop("settings:flash", None)
try:
    current = session.profile()
except UserFacingError as exc:
    st.error(str(exc))
    st.stop()
for field in getattr(session.store(), "unreadable_keys", ()):
    st.warning(
        f"Your saved {FIELD_LABELS[field]} can no longer be decrypted (the server's encryption "
        "secret changed). Please enter it again."
    )

for provider in REGISTRY:
    configured = bool(getattr(current, provider.base_url_field or provider.key_field, ""))
    with st.expander(provider.label, expanded=provider.base_url_field is not None or configured):
        _provider_section(provider, current)
        if flash and flash[1] == provider.id:
            if flash[0] == "saved":
                st.toast(flash[2], icon="✅")
                st.success(flash[2])
            else:
                st.error(flash[2])
