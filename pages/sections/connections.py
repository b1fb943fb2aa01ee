"""The "Connections" section of Settings: the user's connections, each in its own
expander, the administrator's (read-only), and Add from a preset or blank.

Drawn by pages/settings.py below the seed's two providers; the logic is in core/forms.py (the
same as theirs), so this holds widgets and their state only.
"""

import streamlit as st

from core import forms, session
from core.auth import SessionEnded
from core.chat.netguard import policy_for
from core.failures import UserFacingError
from core.forms import ConnectionForm, ConnectionRefused, models_to_offer, save_connection
from core.providers.connections import Connection, connection_problems, header_problem
from core.providers.presets import load_presets, preset
from core.providers.profile import describe_saved_key
from core.providers.urls import PLACEHOLDER_BASE_URL, url_problem
from core.store.errors import ConnectionChanged
from pages.sections import checks

# Each connection's inputs are keyed by its slot: its id once stored, "new-<n>" before its
# first Save. Every input keeps its draft across pages (session.keeping), like the forms above.

CONNECTIONS = "settings:connections"
NEW_SLOTS = f"{CONNECTIONS}:new"  # slots of added connections not saved yet, in order
SHOWN = f"{CONNECTIONS}:list"  # the list read (see session.page_read)
FLASH = f"{CONNECTIONS}:flash"  # (slot or None, "success" | "error", message), shown once
OPEN = f"{CONNECTIONS}:open"  # slots whose expanders start open (added or saved here)
ADD_PRESET = f"{CONNECTIONS}:add:preset"
COUNTER = f"{CONNECTIONS}:counter"

# Connection input -> ConnectionForm field (header inputs are per name and per row).
_CONNECTION_INPUTS = {"name": "name", "base_url": "base_url", "key": "new_key",
                      "remove_key": "remove_key", "enabled": "enabled", "models": "models",
                      "default_model": "default_model"}


def _ck(slot: str, name: str) -> str:
    return f"settings:connection:{slot}:{name}"


def _next_number() -> int:
    number = st.session_state.get(COUNTER, 0) + 1
    st.session_state[COUNTER] = number
    return number


def _based_on(slot: str) -> Connection:
    """The stored connection (or the new one) the slot's form was filled from."""
    return st.session_state[_ck(slot, "base")]


def _header_rows(slot: str) -> list[int]:
    return st.session_state.setdefault(_ck(slot, "rows"), [])


def _forget(key: str) -> None:
    st.session_state.pop(key, None)
    st.session_state.pop(session.KEPT + key, None)


def _set_header_rows(slot: str, rows) -> None:
    """Replace the typed header rows (in a callback, or before drawing)."""
    for row in _header_rows(slot):
        _forget(_ck(slot, f"header_name:{row}"))
        _forget(_ck(slot, f"header_value:{row}"))
    numbers = []
    for name, value in rows:
        number = _next_number()  # never reused: a kept value of a removed row stays gone
        session.put(_ck(slot, f"header_name:{number}"), name)
        session.put(_ck(slot, f"header_value:{number}"), value)
        numbers.append(number)
    st.session_state[_ck(slot, "rows")] = numbers


def _show_connection(slot: str, saved: Connection, form: ConnectionForm) -> None:
    """Put `form` in the slot's inputs (in a callback, or before drawing)."""
    for name, field in _CONNECTION_INPUTS.items():
        value = getattr(form, field)
        session.put(_ck(slot, name), list(value) if name == "models" else value)
    for header in saved.header_names:
        session.put(_ck(slot, f"drop:{header}"), header in form.removed_headers)
    _set_header_rows(slot, form.new_headers)


def _restore_connection(slot: str, saved: Connection) -> None:
    """Give each input its unsaved draft (kept across pages), or else the saved value."""
    shown = forms.saved_form(saved)
    for name, field in _CONNECTION_INPUTS.items():
        value = getattr(shown, field)
        session.restore(_ck(slot, name), list(value) if name == "models" else value)
    for header in saved.header_names:
        session.restore(_ck(slot, f"drop:{header}"), False)
    for row in _header_rows(slot):
        session.restore(_ck(slot, f"header_name:{row}"), "")
        session.restore(_ck(slot, f"header_value:{row}"), "")
    session.restore(_ck(slot, "filter"), "")


def _typed(slot: str, name: str, default=""):
    value = session.kept(_ck(slot, name), default)
    return default if value is None else value


def _connection_form(slot: str) -> ConnectionForm:
    """What the slot's inputs hold now."""
    saved = _based_on(slot)
    return ConnectionForm(
        name=_typed(slot, "name"),
        base_url=_typed(slot, "base_url"),
        new_key=_typed(slot, "key"),
        remove_key=bool(_typed(slot, "remove_key", False)),
        enabled=bool(_typed(slot, "enabled", True)),
        models=tuple(_typed(slot, "models", ())),
        default_model=_typed(slot, "default_model"),
        removed_headers=frozenset(h for h in saved.header_names if _typed(slot, f"drop:{h}", False)),
        new_headers=tuple((_typed(slot, f"header_name:{row}"), _typed(slot, f"header_value:{row}"))
                          for row in _header_rows(slot)),
    )


def _flash(slot: str | None, kind: str, message: str) -> None:
    st.session_state[FLASH] = (slot, kind, message)


def _forget_slot(slot: str) -> None:
    """Drop every input, draft and result of a slot (deleted, discarded, or saved anew)."""
    prefix = _ck(slot, "")
    for key in [k for k in st.session_state if str(k).startswith((prefix, session.KEPT + prefix))]:
        del st.session_state[key]


def _stored_now(connection_id: str) -> Connection | None:
    """The stored connection read fresh, for a callback; None if gone or unreadable now."""
    try:
        return next((c for c in session.connection_store().list() if c.id == connection_id), None)
    except UserFacingError:
        return None


def _save_connection(slot: str) -> None:
    """Save button callback: runs before the page, so it may clear the typed secrets."""
    state = st.session_state
    saved, form = _based_on(slot), _connection_form(slot)
    fetched = checks.current(_ck(slot, "found"), forms.draft_target(saved, form))
    try:
        stored = save_connection(session.connection_store(), saved, form,
                                 policy_for(session.settings()),
                                 found=fetched.detail if fetched and fetched.ok else ())
    except SessionEnded:  # the frame says so and shows sign-in; the form keeps what was typed
        return
    except ConnectionChanged as exc:  # changed elsewhere: say so, keep what was typed
        if exc.gone:  # deleted elsewhere: what was typed stays, as a new connection
            state[_ck(slot, "base")] = saved.with_changes(id="", version=None)
            state.setdefault(NEW_SLOTS, []).append(slot)
        elif (fresh := _stored_now(saved.id)) is not None:
            state[_ck(slot, "base")] = fresh
            _show_connection(slot, fresh, forms.rebase_form(form, saved, fresh))
        _flash(slot, "error", str(exc))
        return
    except ConnectionRefused as exc:
        _flash(slot, "error", "\n".join(f"- {problem}" for problem in exc.problems))
        return
    except UserFacingError as exc:  # the network guard, the store's refusal or outage
        _flash(slot, "error", str(exc))
        return
    if slot in state.get(NEW_SLOTS, []):  # its first save: from now on its slot is its id
        state[NEW_SLOTS].remove(slot)
        results = {name: state.get(_ck(slot, name)) for name in ("found", "tested")}
        _forget_slot(slot)
        state.update({_ck(stored.id, name): r for name, r in results.items() if r is not None})
        state.setdefault(OPEN, set()).add(stored.id)
    state[_ck(stored.id, "base")] = stored
    _show_connection(stored.id, stored, forms.saved_form(stored))
    _flash(stored.id, "success", forms.saved_message(stored))


def _discard_connection(slot: str) -> None:
    """'Discard changes' callback: show the saved connection again (a new one goes away)."""
    state = st.session_state
    if slot in state.get(NEW_SLOTS, []):
        state[NEW_SLOTS].remove(slot)
        _forget_slot(slot)
        return
    saved = _stored_now(slot) or _based_on(slot)
    state[_ck(slot, "base")] = saved
    _show_connection(slot, saved, forms.saved_form(saved))


def _ask_to_delete(slot: str, asking: bool) -> None:
    st.session_state[_ck(slot, "confirm")] = asking


def _delete_connection(slot: str) -> None:
    name = _based_on(slot).name
    try:
        session.connection_store().delete(slot)
    except SessionEnded:
        return
    except UserFacingError as exc:
        _flash(slot, "error", str(exc))
        return
    _forget_slot(slot)
    _flash(None, "success", f"{name} deleted.")


def _run_check(slot: str, check: str) -> None:
    """Fetch models / Test connection callback, on what the form holds now, saved or not."""
    target = forms.draft_target(_based_on(slot), _connection_form(slot))
    run = checks.fetch_models if check == "found" else checks.test_connection
    run(_ck(slot, check), target)


def _add_header_row(slot: str) -> None:
    _header_rows(slot).append(_next_number())


def _remove_header_row(slot: str, row: int) -> None:
    _header_rows(slot).remove(row)
    _forget(_ck(slot, f"header_name:{row}"))
    _forget(_ck(slot, f"header_value:{row}"))


def _connection_key(slot: str, saved: Connection) -> None:
    st.text_input(
        "API key", type="password", autocomplete="off",
        placeholder="Type a new key to replace the saved one" if saved.api_key else "sk-…",
        help="Stored encrypted and never shown again once saved.",
        live="0ms",  # commit on every change: Tab alone does not (see the forms above)
        **session.keeping(_ck(slot, "key")),
    )
    unreadable = "api_key" in saved.unreadable
    st.caption("A key is saved, but it cannot be read now: type it again or remove it."
               if unreadable else describe_saved_key(saved.api_key))
    if saved.api_key or unreadable:
        st.checkbox("Remove the saved key", **session.keeping(_ck(slot, "remove_key")))


def _connection_headers(slot: str, saved: Connection) -> None:
    """Saved headers by name only (their values never leave the server), then typed rows."""
    st.markdown("**Custom headers**")
    if "headers" in saved.unreadable:
        st.warning("Saved headers cannot be read now; headers you add here replace them.")
    for header in saved.header_names:
        with st.container(horizontal=True, vertical_alignment="center"):
            st.text(f"{header}: value saved")
            st.checkbox("Remove", **session.keeping(_ck(slot, f"drop:{header}")))
    for row in _header_rows(slot):
        name_column, value_column, remove_column = st.columns([2, 3, 1], vertical_alignment="bottom")
        name = name_column.text_input("Header name", placeholder="X-Title",
                                      **session.keeping(_ck(slot, f"header_name:{row}")))
        value = value_column.text_input("Header value", type="password", autocomplete="off",
                                        live="0ms",
                                        **session.keeping(_ck(slot, f"header_value:{row}")))
        remove_column.button("Remove", key=_ck(slot, f"header_remove:{row}"),
                             on_click=_remove_header_row, args=(slot, row))
        if (name or value) and (problem := header_problem((name or "").strip(),
                                                          (value or "").strip())):
            st.error(problem)
    st.button("Add a header", key=_ck(slot, "header_add"), on_click=_add_header_row, args=(slot,))


def _connection_models(slot: str, target, disabled: bool) -> None:
    """Fetch models and Test connection, their results while they apply, the model picker."""
    left, right = st.columns(2)
    left.button("Fetch models", key=_ck(slot, "fetch"), disabled=disabled, width="stretch",
                on_click=_run_check, args=(slot, "found"))
    right.button("Test connection", key=_ck(slot, "test"), disabled=disabled, width="stretch",
                 on_click=_run_check, args=(slot, "tested"))
    found = checks.current(_ck(slot, "found"), target)
    fetched = found.detail if found and found.ok else ()
    if found and not found.ok:
        st.warning(found.detail)
    elif found and not fetched:
        st.info("The server lists no models; type the model names by hand.")
    if fetched:
        st.text_input("Filter the models", placeholder=f"{len(fetched)} found: type part of a name",
                      **session.keeping(_ck(slot, "filter")))
    picked = _typed(slot, "models", [])
    options = models_to_offer(fetched, picked, _typed(slot, "filter"))
    st.multiselect("Models offered in chat", options, accept_new_options=True,
                   placeholder="Pick fetched models, or type a name and press Enter",
                   **session.keeping(_ck(slot, "models")))
    st.text_input("Default model (optional)", placeholder="offered when none is picked",
                  help="Offered in chat when no model is picked; Test connection uses it.",
                  **session.keeping(_ck(slot, "default_model")))
    checks.show_test(checks.current(_ck(slot, "tested"), target))


def _connection_buttons(slot: str, saved: Connection, new: bool, unsaved: list[str],
                        url_invalid: bool) -> None:
    with st.container(horizontal=True, vertical_alignment="center"):
        st.button("Save", key=_ck(slot, "save"), type="primary", disabled=url_invalid,
                  on_click=_save_connection, args=(slot,))
        if new or unsaved:
            st.button("Discard" if new else "Discard changes", key=_ck(slot, "discard"),
                      on_click=_discard_connection, args=(slot,))
        if not new:
            st.button("Delete", key=_ck(slot, "delete"), on_click=_ask_to_delete,
                      args=(slot, True))
        if unsaved and not new:
            st.badge("Unsaved: " + ", ".join(unsaved), icon="✏️", color="orange")
    if not new and st.session_state.get(_ck(slot, "confirm")):
        st.warning(f"Delete the connection {saved.name}? Chats with it keep their messages.")
        with st.container(horizontal=True):
            st.button("Delete for good", key=_ck(slot, "delete_confirmed"), type="primary",
                      on_click=_delete_connection, args=(slot,))
            st.button("Cancel", key=_ck(slot, "delete_cancelled"), on_click=_ask_to_delete,
                      args=(slot, False))


def _connection_section(slot: str, saved: Connection, new: bool, unsaved: list[str],
                        flash) -> None:
    """One connection's inputs, checks and buttons."""
    if not new and (problems := connection_problems(saved)):  # saved before today's rules
        st.error("This connection's saved settings are refused by today's rules, so it is not "
                 "offered in Chat: " + " ".join(problems) + " Correct them and save.")
    st.text_input("Name", **session.keeping(_ck(slot, "name")))
    url = st.text_input("Base URL", placeholder=PLACEHOLDER_BASE_URL, live=True,
                        help="The server's OpenAI-compatible API root.",
                        **session.keeping(_ck(slot, "base_url")))
    problem = url_problem(url or "")
    if problem:
        st.error(problem)
    _connection_key(slot, saved)
    _connection_headers(slot, saved)
    st.toggle("Enabled", help="A disabled connection's models are not offered in chat.",
              **session.keeping(_ck(slot, "enabled")))
    target = forms.draft_target(saved, _connection_form(slot))
    _connection_models(slot, target, disabled=target is None)
    _connection_buttons(slot, saved, new, unsaved, url_invalid=problem is not None)
    if flash and flash[0] == slot:
        (st.success if flash[1] == "success" else st.error)(flash[2])


def _follow_store(slot: str, current: Connection) -> Connection:
    """The row the slot's form is based on: with no edits pending it follows the store (a
    save in another tab shows here); with edits pending it stays, so Save can say so."""
    base = st.session_state.setdefault(_ck(slot, "base"), current)
    _restore_connection(slot, base)
    form = _connection_form(slot)
    if base.version != current.version and not forms.unsaved_changes(base, form):
        _show_connection(slot, current, forms.rebase_form(form, base, current))
        st.session_state[_ck(slot, "base")] = base = current
    return base


def _saved_connection(current: Connection, flash) -> None:
    slot = current.id
    base = _follow_store(slot, current)
    unsaved = forms.unsaved_changes(base, _connection_form(slot))
    with st.expander(forms.expander_title(current, bool(unsaved)),
                     expanded=slot in st.session_state.get(OPEN, ()), key=_ck(slot, "expander")):
        _connection_section(slot, base, False, unsaved, flash)


def _new_connection(slot: str, flash) -> None:
    template = _based_on(slot)
    _restore_connection(slot, template)
    title = f"{forms.plain_markdown(template.name)} :blue-badge[Not saved yet]"
    with st.expander(title, expanded=True, key=_ck(slot, "expander")):
        if lost := st.session_state.get(_ck(slot, "lost")):
            st.warning(lost)
        _connection_section(slot, template, True, [], flash)


def _operator_connection(connection: Connection) -> None:
    """Read-only: name, base URL and models; never its key or headers."""
    title = f"{forms.plain_markdown(connection.name)} :blue-badge[Set by the administrator]"
    with st.expander(title):
        st.caption("Set by the administrator: you can chat with it, but not change it.")
        st.text(f"Base URL: {connection.base_url}")
        st.text("Models: " + (", ".join(connection.offered_models()) or "none listed"))
        if not connection.enabled:
            st.caption("Turned off by the administrator.")


def _add_connection(taken: tuple[str, ...]) -> None:
    """'Add connection' callback: a new connection from the preset picked, saved on Save."""
    state = st.session_state
    preset_id = state.get(ADD_PRESET)
    template = preset(preset_id).connection() if preset_id else None
    slots = state.setdefault(NEW_SLOTS, [])
    drafts = tuple(_based_on(s).name for s in slots)
    slot = f"new-{_next_number()}"
    state[_ck(slot, "base")] = forms.new_connection(template, taken + drafts)
    slots.append(slot)


def _add_section(taken: tuple[str, ...], flash) -> None:
    presets = {p.id: p for p in load_presets()}
    session.restore(ADD_PRESET, "")
    choice = st.selectbox("Add a connection from", ["", *presets],
                          format_func=lambda i: presets[i].name if i else "A blank connection",
                          **session.keeping(ADD_PRESET))
    picked = presets.get(choice)
    if picked is not None:
        st.caption(picked.notes)
        if picked.key_url:
            st.markdown(f"Get a key: [{picked.key_url}]({picked.key_url})")
    st.button("Add connection", key=f"{CONNECTIONS}:add", on_click=_add_connection, args=(taken,))
    if flash and flash[0] is None:
        (st.success if flash[1] == "success" else st.error)(flash[2])


def _offer_back(lost: list[Connection], listed: list[Connection]) -> None:
    """The data file was made again, empty: each connection this page showed comes back as a
    new one holding what its form showed, unless one of its name is stored again (another
    tab saved it back)."""
    state = st.session_state
    stored = {c.name.casefold() for c in listed}
    for gone in lost:
        base = state.setdefault(_ck(gone.id, "base"), gone)
        _restore_connection(gone.id, base)
        form = _connection_form(gone.id)
        _forget_slot(gone.id)
        if base.name.casefold() in stored:
            continue
        added, form, said = forms.offer_back(base, form)
        slot = f"new-{_next_number()}"
        state[_ck(slot, "base")] = added
        _show_connection(slot, added, form)
        state[_ck(slot, "lost")] = said
        state.setdefault(NEW_SLOTS, []).append(slot)


def _read_connections() -> tuple[list[Connection] | None, str | None]:
    """(the user's connections, why they cannot be read now); while the store fails, the
    list read last in this session stays on screen, so nothing typed disappears."""
    try:
        read = session.page_read(SHOWN, lambda: session.connection_store().list())
    except SessionEnded:
        st.rerun()
    if read.lost:
        _offer_back(read.lost, read.value)
    return read.value, read.problem


def draw() -> None:
    """The section, below the seed's providers."""
    st.header("Connections")
    st.caption("Any number of servers to chat with, each with its own key, headers and models.")
    flash = st.session_state.pop(FLASH, None)
    listed, problem = _read_connections()
    if problem and not session.answering().already_said(problem):  # one message per fault
        st.error(problem)
    operator = session.settings().operator_connections
    for connection in operator:
        _operator_connection(connection)
    for connection in listed or ():
        _saved_connection(connection, flash)
    for slot in list(st.session_state.get(NEW_SLOTS, [])):
        _new_connection(slot, flash)
    if listed is not None:
        _add_section(tuple(c.name for c in (*operator, *listed)), flash)
