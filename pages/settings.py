"""Settings: one expander per seed provider (OpenAI, OpenAI-compatible), saved to the user's
profile; then the Connections and Your chats sections. Every expander is a connection's form
(core/forms.py): this page draws the inputs and keeps what was typed."""

from dataclasses import replace

import streamlit as st

from core import session
from core.auth import SessionEnded
from core.chat.netguard import policy_for
from core.failures import UserFacingError
from core.forms import (
    KEY_LOST,
    ConnectionForm,
    draft_target,
    lost_key,
    rebase_form,
    save_connection,
    saved_form,
    unsaved_changes,
)
from core.providers.connections import Connection, connection_problems
from core.providers.kinds import REGISTRY, Provider
from core.providers.profile import describe_saved_key
from core.providers.urls import PLACEHOLDER_BASE_URL, url_problem
from core.store.errors import ProfileChanged
from core.store.keybox import describe_unreadable_key
from pages.sections import chats as chats_section
from pages.sections import usage as usage_section
from pages.sections import tally as tally_section
from pages.sections import titles as titles_section
from pages.sections import checks
from pages.sections import connections as connections_section
from pages.sections import prompts as prompts_section

session.run_in_frame()  # never drawn without the frame's gate

FLASH = "settings:flash"  # ("saved" | "error", provider id, message), shown once
SHOWN = "settings:seed"  # the seed connections read (see session.page_read)


def _widget(provider: Provider, name: str) -> str:
    return f"settings:{provider.id}:{name}"


def _inputs(provider: Provider) -> dict[str, str]:
    """The provider's inputs: widget name -> ConnectionForm field."""
    inputs = {"key": "new_key", "remove_key": "remove_key"}
    for name, field in (("organization", "organization"), ("base_url", "base_url"),
                        ("model", "default_model")):
        if field in provider.columns:
            inputs[name] = field
    return inputs


def _based_on(provider: Provider) -> Connection:
    """The saved connection the provider's form was filled from."""
    return st.session_state[_widget(provider, "base")]


def _show_form(provider: Provider, form: ConnectionForm) -> None:
    """Put `form` in the inputs (and their kept copies): in a callback, or before drawing."""
    for name, field in _inputs(provider).items():
        session.put(_widget(provider, name), getattr(form, field))


def _form(provider: Provider) -> ConnectionForm:
    """What the inputs hold now; the fields the expander does not show stay as saved."""
    typed = {field: session.kept(_widget(provider, name)) or ""
             for name, field in _inputs(provider).items()}
    typed["remove_key"] = bool(typed["remove_key"])
    return replace(saved_form(_based_on(provider)), **typed)


def _follow_store(provider: Provider, current: Connection, made_again: bool) -> Connection:
    """The connection the form is based on: with no edits pending it follows the store (a
    save in another tab shows here and is never written back); with edits it stays, so Save
    can say a field was changed elsewhere. Once the data file was made again, empty, it is
    the new file's and the form keeps what it showed, as unsaved changes."""
    key = _widget(provider, "base")
    base = st.session_state.setdefault(key, current)
    shown = saved_form(base)
    for name, field in _inputs(provider).items():
        session.restore(_widget(provider, name), getattr(shown, field))
    form = _form(provider)
    if made_again:
        if lost_key(base):
            st.session_state[_widget(provider, "key_lost")] = True
        st.session_state[key] = base = current
    elif base.version != current.version and not unsaved_changes(base, form):
        _show_form(provider, rebase_form(form, base, current))
        st.session_state[key] = base = current
    return base


def _fresh(provider: Provider) -> Connection | None:
    try:
        return next(c for c in session.seed_store().list() if c.kind == provider.id)
    except UserFacingError:
        return None


def _save(provider: Provider) -> None:
    """Save button callback: runs before the page, so it may clear the key input."""
    saved, form = _based_on(provider), _form(provider)
    try:
        stored = save_connection(session.seed_store(), saved, form,
                                 policy_for(session.settings()))
    except SessionEnded:  # the frame says so and shows sign-in; the form keeps what was typed
        return
    except ProfileChanged as exc:  # saved elsewhere meanwhile: show that, keep what was typed
        if (fresh := _fresh(provider)) is not None:
            st.session_state[_widget(provider, "base")] = fresh
            _show_form(provider, rebase_form(form, saved, fresh))
        st.session_state[FLASH] = ("error", provider.id, str(exc))
        return
    except UserFacingError as exc:  # refused values, the network guard, the store
        st.session_state[FLASH] = ("error", provider.id, str(exc))
        return
    st.session_state[_widget(provider, "base")] = stored
    st.session_state.pop(_widget(provider, "key_lost"), None)
    _show_form(provider, saved_form(stored))
    st.session_state[FLASH] = ("saved", provider.id, f"{provider.label} settings saved.")


def _discard(provider: Provider) -> None:
    """'Discard changes' callback: show the saved settings again."""
    saved = _fresh(provider) or _based_on(provider)
    st.session_state[_widget(provider, "base")] = saved
    _show_form(provider, saved_form(saved))


def _target(provider: Provider):
    return draft_target(_based_on(provider), _form(provider))


def _pick_model(provider: Provider) -> None:
    picked = st.session_state.get(_widget(provider, "model_pick"))
    if picked:
        session.put(_widget(provider, "model"), picked)


def _discovery(provider: Provider, disabled: bool) -> None:
    """Fetch models and Test connection, with their results while they still apply."""
    left, right = st.columns(2)
    target = _target(provider)
    left.button("Fetch models", key=_widget(provider, "fetch"), disabled=disabled,
                on_click=lambda: checks.fetch_models(_widget(provider, "models"), _target(provider)),
                width="stretch")
    right.button("Test connection", key=_widget(provider, "test_button"), disabled=disabled,
                 on_click=lambda: checks.test_connection(_widget(provider, "test"),
                                                         _target(provider)),
                 width="stretch")
    found = checks.current(_widget(provider, "models"), target)
    if found and not found.ok:
        st.warning(found.detail)
    elif found and not found.detail:
        st.info("The server lists no models; type the model name by hand.")
    elif found:
        st.selectbox(f"Models served here ({len(found.detail)})", found.detail, index=None,
                     placeholder="Pick one to fill in the model name",
                     key=_widget(provider, "model_pick"), on_change=_pick_model, args=(provider,))
    checks.show_test(checks.current(_widget(provider, "test"), target))


def _key_input(provider: Provider, saved: Connection) -> None:
    if saved.key_from_operator:
        st.text_input("API key", value="Set by the administrator", disabled=True,
                      key=_widget(provider, "admin_key"))
        return
    st.text_input(
        "API key",
        type="password",
        placeholder="Type a new key to replace the saved one" if saved.api_key else "sk-…",
        autocomplete="off",
        help="Stored in your profile and never shown again once saved.",
        # Commit on every change, not on leaving the field: Tab moves the focus to the
        # field's own show-password button, which does not commit (the key was lost).
        live="0ms",
        **session.keeping(_widget(provider, "key")),
    )
    unreadable = "api_key" in saved.unreadable
    if st.session_state.get(_widget(provider, "key_lost")) and not saved.api_key:
        st.warning(KEY_LOST)
    else:
        st.caption("A key is saved, but it cannot be read now (see above)." if unreadable
                   else describe_saved_key(saved.api_key))
    if saved.api_key or unreadable:
        st.checkbox("Remove the saved key", **session.keeping(_widget(provider, "remove_key")))


def _provider_section(provider: Provider, saved: Connection, unsaved: list[str]) -> None:
    if problems := connection_problems(saved):  # saved by an earlier release, or by hand
        st.error("These saved settings are refused by today's rules, so this provider is not "
                 "offered in Chat: " + " ".join(problems) + " Correct them and save.")
    _key_input(provider, saved)
    if "organization" in provider.columns:
        st.text_input("Organization ID (optional)",
                      **session.keeping(_widget(provider, "organization")))
    problem = None
    if "base_url" in provider.columns:
        url = st.text_input(
            "Base URL", placeholder=PLACEHOLDER_BASE_URL, live=True,
            help="The server's OpenAI-compatible API root. Leave empty to turn this provider off.",
            **session.keeping(_widget(provider, "base_url")),
        )
        problem = url_problem(url or "")
        if problem:
            st.error(problem)
    if "default_model" in provider.columns:
        st.text_input("Model name", placeholder=provider.default_model,
                      help=f"Leave empty to use the default, {provider.default_model}.",
                      **session.keeping(_widget(provider, "model")))
        st.caption(f"Default when empty: `{provider.default_model}`")
    if "base_url" in provider.columns:
        _discovery(provider, disabled=problem is not None or not (url or "").strip())
    with st.container(horizontal=True, vertical_alignment="center"):
        st.button("Save", key=_widget(provider, "save"), type="primary",
                  disabled=problem is not None, on_click=_save, args=(provider,))
        if unsaved:
            st.button("Discard changes", key=_widget(provider, "discard"),
                      on_click=_discard, args=(provider,))
            st.badge("Unsaved: " + ", ".join(unsaved), icon="✏️", color="orange")


def _seed_now() -> tuple[list[Connection], list[str]]:
    store = session.seed_store()
    return store.list(), store.profiles.unreadable_keys


def _read_seed() -> session.PageRead:
    """The seed connections and their unreadable key columns (see session.page_read): when
    the store fails, the forms stay on screen from what was read last in this session, so
    nothing typed disappears."""
    try:
        read = session.page_read(SHOWN, _seed_now)
    except SessionEnded:
        st.rerun()  # the frame says the session ended and shows sign-in
    if read.value is None:  # nothing read yet: nothing to show
        st.error(read.problem)
        st.stop()
    return read


st.title("Settings")
flash = st.session_state.pop(FLASH, None)
seed_read = _read_seed()
(seeds, unreadable_keys), read_problem = seed_read.value, seed_read.problem
if read_problem and not (flash and flash[2] == read_problem):  # said once
    st.error(read_problem)
for column in unreadable_keys:
    st.warning(describe_unreadable_key(column, session.settings()))

for provider, current in zip(REGISTRY, seeds):
    base = _follow_store(provider, current, made_again=seed_read.lost is not None)
    unsaved = unsaved_changes(base, _form(provider))
    label = provider.label + (" :orange-badge[Unsaved changes]" if unsaved else "")
    open_it = "base_url" in provider.columns or (bool(current.api_key)
                                                 and not current.key_from_operator)
    with st.expander(label, expanded=open_it, key=_widget(provider, "expander")):
        _provider_section(provider, base, unsaved)
        if flash and flash[1] == provider.id:
            if flash[0] == "saved":
                st.toast(flash[2], icon="✅")
                st.success(flash[2])
            else:
                st.error(flash[2])

connections_section.draw()
prompts_section.draw()
chats_section.draw()
titles_section.draw()
usage_section.draw()
tally_section.draw()
