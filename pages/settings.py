"""Settings: one expander per provider, saved to the user's profile."""

import streamlit as st

from core import session
from core.errors import UserFacingError
from core.profiles import FIELD_LABELS, Profile, describe_saved_key
from core.providers import REGISTRY, Provider, server_key
from core.client import connection_for
from core.discovery import list_models, test_connection
from core.netguard import check_base_url, policy_for
from core.settings_form import ProviderForm, apply_form, draft_target
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


def _form(provider: Provider) -> ProviderForm:
    state = st.session_state
    return ProviderForm(
        new_key=state.get(_widget(provider, "key"), "") or "",
        remove_key=bool(state.get(_widget(provider, "remove_key"))),
        organization=state.get(_widget(provider, "organization"), "") or "",
        base_url=state.get(_widget(provider, "base_url"), "") or "",
        model=state.get(_widget(provider, "model"), "") or "",
    )


def _save(provider: Provider) -> None:
    """Save button callback: runs before the page, so it may clear the key input."""
    state = st.session_state
    form = _form(provider)
    try:
        store = session.store()
        updated = apply_form(provider, store.load(), form)
        if provider.base_url_field and getattr(updated, provider.base_url_field):
            check_base_url(getattr(updated, provider.base_url_field), policy_for(session.settings()))
        saved = store.save(updated)
    except (UserFacingError, ValueError) as exc:
        state["settings:flash"] = ("error", provider.id, str(exc))
        return
    state[_widget(provider, "key")] = ""
    state[_widget(provider, "remove_key")] = False
    if provider.base_url_field:
        state[_widget(provider, "base_url")] = getattr(saved, provider.base_url_field)
    state["settings:flash"] = ("saved", provider.id, f"{provider.label} settings saved.")


def _draft_target(provider: Provider):
    config = session.settings()
    return draft_target(provider, session.store().load(), _form(provider), config.server_keys)


def _fetch_models(provider: Provider) -> None:
    """'Fetch models' callback: offer the server's model ids in a selector."""
    target = _draft_target(provider)
    if target is None:
        st.session_state[_widget(provider, "models")] = ("error", "Enter a valid base URL first.")
        return
    try:
        models = list_models(target, *connection_for(session.settings()))
    except UserFacingError as exc:
        st.session_state[_widget(provider, "models")] = ("error", str(exc))
        return
    st.session_state[_widget(provider, "models")] = ("ok", models)


def _pick_model(provider: Provider) -> None:
    picked = st.session_state.get(_widget(provider, "model_pick"))
    if picked:
        st.session_state[_widget(provider, "model")] = picked


def _test_connection(provider: Provider) -> None:
    target = _draft_target(provider)
    if target is None:
        st.session_state[_widget(provider, "test")] = (False, "Enter a valid base URL first.")
        return
    report = test_connection(target, *connection_for(session.settings()))
    st.session_state[_widget(provider, "test")] = (report.ok, report.summary)


def _discovery(provider: Provider, disabled: bool) -> None:
    """Fetch models and Test connection, with their results; manual entry is untouched."""
    left, right = st.columns(2)
    left.button("Fetch models", key=_widget(provider, "fetch"), disabled=disabled,
                on_click=_fetch_models, args=(provider,), width="stretch")
    right.button("Test connection", key=_widget(provider, "test_button"), disabled=disabled,
                 on_click=_test_connection, args=(provider,), width="stretch")
    found = st.session_state.get(_widget(provider, "models"))
    if found and found[0] == "error":
        st.warning(found[1])
    elif found and not found[1]:
        st.info("The server lists no models; type the model name by hand.")
    elif found:
        st.selectbox(f"Models served here ({len(found[1])})", found[1], index=None,
                     placeholder="Pick one to fill in the model name",
                     key=_widget(provider, "model_pick"), on_change=_pick_model, args=(provider,))
    tested = st.session_state.get(_widget(provider, "test"))
    if tested:
        (st.success if tested[0] else st.error)(tested[1].replace("\n", "  \n"))


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
    if provider.base_url_field:
        _discovery(provider, disabled=problem is not None or not (url or "").strip())
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
