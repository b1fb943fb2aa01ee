"""Settings: one expander per provider, saved to the user's profile; then the Connections
section (pages/sections/connections.py)."""

import streamlit as st

from core import session
from core.chat.client import connection_for
from core.chat.discovery import list_models, test_connection
from core.store.errors import ProfileChanged
from core.auth import SessionEnded
from core.failures import UserFacingError
from core.chat.netguard import policy_for
from core.providers.profile import Profile, describe_saved_key
from core.providers.kinds import REGISTRY, Provider, server_key
from core.settings_form import (
    FETCH_INPUTS,
    TEST_INPUTS,
    CheckResult,
    ProviderForm,
    draft_target,
    rebase_form,
    save_form,
    saved_form,
    unsaved_changes,
)
from core.store.keybox import describe_unreadable_key
from core.providers.urls import PLACEHOLDER_BASE_URL, url_problem
from pages.sections import chats as chats_section
from pages.sections import connections as connections_section

session.run_in_frame()  # never drawn without the frame's gate

BASE = "settings:base"  # the stored row the forms were filled from (compare-and-set on save)


def _widget(provider: Provider, name: str) -> str:
    return f"settings:{provider.id}:{name}"


def _inputs(provider: Provider) -> dict[str, str]:
    """The provider's inputs: widget name -> ProviderForm field."""
    inputs = {"key": "new_key", "remove_key": "remove_key"}
    for name, profile_field in (("organization", provider.organization_field),
                                ("base_url", provider.base_url_field),
                                ("model", provider.model_field)):
        if profile_field:
            inputs[name] = name
    return inputs


def _show_form(provider: Provider, form: ProviderForm) -> None:
    """Put `form` in the inputs (and their kept copies): in a callback, or before drawing."""
    for name, field in _inputs(provider).items():
        session.put(_widget(provider, name), getattr(form, field))


def _restore_fields(provider: Provider, profile: Profile) -> None:
    """Give each input its unsaved draft (kept across pages), or else the saved value."""
    saved = saved_form(provider, profile)
    for name, field in _inputs(provider).items():
        session.restore(_widget(provider, name), getattr(saved, field))


def _keeps(provider: Provider, name: str) -> dict:
    """An input keeps its value for the whole browser session (see _restore_fields)."""
    return session.keeping(_widget(provider, name))


def _form(provider: Provider) -> ProviderForm:
    """What the inputs hold now (typed text is never None: an empty input gives '')."""
    values = {field: session.kept(_widget(provider, name)) or ""
              for name, field in _inputs(provider).items()}
    values["remove_key"] = bool(values["remove_key"])
    return ProviderForm(**values)


def _follow(store, row: Profile) -> None:
    """The forms now start from `row`: fields the user did not edit show its values."""
    old, new = store.open(st.session_state.get(BASE) or row), store.open(row)
    for provider in REGISTRY:
        form = _form(provider)
        rebased = rebase_form(form, saved_form(provider, old), saved_form(provider, new))
        if rebased != form:
            _show_form(provider, rebased)
    st.session_state[BASE] = row


def _save(provider: Provider) -> None:
    """Save button callback: runs before the page, so it may clear the key input."""
    state = st.session_state
    form = _form(provider)
    try:
        store = session.store()
        if state.get(BASE) is None and store.base is None:
            store.load()
        base = state.get(BASE) or store.base
        saved = save_form(store, provider, form, base, policy_for(session.settings()))
    except SessionEnded:  # the frame says so and shows sign-in; the form keeps what was typed
        return
    except ProfileChanged as exc:  # saved elsewhere meanwhile: show that, keep what was typed
        try:
            store.load()
            _follow(store, store.base)
        except UserFacingError:
            pass
        state["settings:flash"] = ("error", provider.id, str(exc))
        return
    except (UserFacingError, ValueError) as exc:
        state["settings:flash"] = ("error", provider.id, str(exc))
        return
    _follow(store, store.base)
    _show_form(provider, saved_form(provider, saved))
    state["settings:flash"] = ("saved", provider.id, f"{provider.label} settings saved.")


def _draft_target(provider: Provider, saved: Profile):
    config = session.settings()
    return draft_target(provider, saved, _form(provider), config.server_keys)


def _saved_for_callback(provider: Provider) -> Profile | None:
    """The saved profile, read fresh for a callback; None when it cannot be read now (the
    reason is shown under the provider; an ended session is said by the frame)."""
    try:
        return session.profile()
    except SessionEnded:
        return None
    except UserFacingError as exc:
        st.session_state["settings:flash"] = ("error", provider.id, str(exc))
        return None


def _discard(provider: Provider) -> None:
    """'Discard changes' callback: show the saved settings again."""
    saved = _saved_for_callback(provider)
    if saved is not None:
        _show_form(provider, saved_form(provider, saved))


def _fetch_models(provider: Provider) -> None:
    """'Fetch models' callback: offer the server's model ids in a selector."""
    saved = _saved_for_callback(provider)
    if saved is None:
        return
    target = _draft_target(provider, saved)
    if target is None:
        found = CheckResult.of(target, FETCH_INPUTS, False, "Enter a valid base URL first.")
    else:
        try:
            models = list_models(target, *connection_for(session.settings()))
            found = CheckResult.of(target, FETCH_INPUTS, True, tuple(models))
        except UserFacingError as exc:
            found = CheckResult.of(target, FETCH_INPUTS, False, str(exc))
    st.session_state[_widget(provider, "models")] = found


def _pick_model(provider: Provider) -> None:
    picked = st.session_state.get(_widget(provider, "model_pick"))
    if picked:
        session.put(_widget(provider, "model"), picked)


def _test_connection(provider: Provider) -> None:
    saved = _saved_for_callback(provider)
    if saved is None:
        return
    target = _draft_target(provider, saved)
    if target is None:
        tested = CheckResult.of(target, TEST_INPUTS, False, "Enter a valid base URL first.")
    else:
        report = test_connection(target, *connection_for(session.settings()))
        tested = CheckResult.of(target, TEST_INPUTS, report.ok, report.summary)
    st.session_state[_widget(provider, "test")] = tested


def _current(provider: Provider, name: str, target) -> CheckResult | None:
    """A check's result, or None once the inputs it was made for have changed."""
    result = st.session_state.get(_widget(provider, name))
    if result is not None and not result.applies_to(target):
        del st.session_state[_widget(provider, name)]
        return None
    return result


def _discovery(provider: Provider, profile: Profile, disabled: bool) -> None:
    """Fetch models and Test connection, with their results while they still apply."""
    left, right = st.columns(2)
    left.button("Fetch models", key=_widget(provider, "fetch"), disabled=disabled,
                on_click=_fetch_models, args=(provider,), width="stretch")
    right.button("Test connection", key=_widget(provider, "test_button"), disabled=disabled,
                 on_click=_test_connection, args=(provider,), width="stretch")
    target = _draft_target(provider, profile)
    found = _current(provider, "models", target)
    if found and not found.ok:
        st.warning(found.detail)
    elif found and not found.detail:
        st.info("The server lists no models; type the model name by hand.")
    elif found:
        st.selectbox(f"Models served here ({len(found.detail)})", found.detail, index=None,
                     placeholder="Pick one to fill in the model name",
                     key=_widget(provider, "model_pick"), on_change=_pick_model, args=(provider,))
    tested = _current(provider, "test", target)
    if tested:
        (st.success if tested.ok else st.error)(tested.detail.replace("\n", "  \n"))


def _key_input(provider: Provider, profile: Profile, unreadable_keys) -> None:
    if server_key(provider, session.settings().server_keys):
        st.text_input("API key", value="Set by the administrator", disabled=True,
                      key=_widget(provider, "admin_key"))
        return
    saved_key = getattr(profile, provider.key_field)
    st.text_input(
        "API key",
        type="password",
        placeholder="Type a new key to replace the saved one" if saved_key else "sk-…",
        autocomplete="off",
        help="Stored in your profile and never shown again once saved.",
        # Commit on every change, not on leaving the field: Tab moves the focus to the
        # field's own show-password button, which does not commit (the key was lost).
        live="0ms",
        **_keeps(provider, "key"),
    )
    unreadable = provider.key_field in unreadable_keys
    st.caption("A key is saved, but it cannot be read now (see above)." if unreadable
               else describe_saved_key(saved_key))
    if saved_key or unreadable:
        st.checkbox("Remove the saved key", **_keeps(provider, "remove_key"))


def _provider_section(provider: Provider, profile: Profile, unsaved: list[str],
                      unreadable_keys) -> None:
    _key_input(provider, profile, unreadable_keys)
    if provider.organization_field:
        st.text_input("Organization ID (optional)", **_keeps(provider, "organization"))
    problem = None
    if provider.base_url_field:
        url = st.text_input(
            "Base URL",
            **_keeps(provider, "base_url"),
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
            **_keeps(provider, "model"),
            placeholder=provider.default_model,
            help=f"Leave empty to use the default, {provider.default_model}.",
        )
        st.caption(f"Default when empty: `{provider.default_model}`")
    if provider.base_url_field:
        _discovery(provider, profile, disabled=problem is not None or not (url or "").strip())
    with st.container(horizontal=True, vertical_alignment="center"):
        st.button("Save", key=_widget(provider, "save"), type="primary",
                  disabled=problem is not None, on_click=_save, args=(provider,))
        if unsaved:
            st.button("Discard changes", key=_widget(provider, "discard"),
                      on_click=_discard, args=(provider,))
            st.badge("Unsaved: " + ", ".join(unsaved), icon="✏️", color="orange")


def _read_store():
    """(store, saved profile, why it could not be read now). When the store fails, the forms
    stay on screen from the row read last in this session, so nothing typed disappears."""
    try:
        store = session.store()
        return store, store.load(), None
    except SessionEnded:
        st.rerun()  # the frame says the session ended and shows sign-in
    except UserFacingError as exc:
        store = session.last_store()
        if store is None or store.base is None:  # nothing read yet: nothing to show
            st.error(str(exc))
            st.stop()
        return store, store.open(store.base), str(exc)


st.title("Settings")
flash = st.session_state.pop("settings:flash", None)
store, current, read_problem = _read_store()
if read_problem and not (flash and flash[2] == read_problem):  # said once
    st.error(read_problem)
for field in store.unreadable_keys:
    st.warning(describe_unreadable_key(field, session.settings()))

# The forms start from the row they were filled from; with no edits pending they follow the
# store, so a save in another tab shows here and is never written back.
filled_from = store.open(st.session_state.get(BASE) or store.base)
for provider in REGISTRY:
    _restore_fields(provider, filled_from)
if not any(unsaved_changes(p, filled_from, _form(p)) for p in REGISTRY):
    _follow(store, store.base)
    filled_from = current

for provider in REGISTRY:
    configured = bool(getattr(current, provider.base_url_field or provider.key_field, ""))
    unsaved = unsaved_changes(provider, filled_from, _form(provider))
    label = provider.label + (" :orange-badge[Unsaved changes]" if unsaved else "")
    with st.expander(label, expanded=provider.base_url_field is not None or configured,
                     key=_widget(provider, "expander")):
        _provider_section(provider, current, unsaved, store.unreadable_keys)
        if flash and flash[1] == provider.id:
            if flash[0] == "saved":
                st.toast(flash[2], icon="✅")
                st.success(flash[2])
            else:
                st.error(flash[2])

connections_section.draw()
chats_section.draw()
