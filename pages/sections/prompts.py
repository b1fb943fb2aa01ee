"""Settings' "Saved prompts" section: the user's prompts (add, edit, delete, import and export
as JSON) and the administrator's, read-only."""

import streamlit as st

from core.auth import SessionEnded
from core.failures import UserFacingError
from core.prompts.library import SavedPrompt
from core.prompts.transfer import to_json
from core.session import prompts

FLASH = "prompts:flash"  # ("success" | "error", message), shown once
EDITING = "prompts:editing"  # the id of the prompt in the form; "" for a new one
IMPORTS = "prompts:imports"  # files imported in this session: the uploader's key
FIELDS = ("name", "text", "model", "system_prompt", "temperature")


def _key(prompt_id: str, field: str) -> str:
    return f"prompts:{prompt_id or 'new'}:{field}"


def _typed(prompt_id: str) -> SavedPrompt:
    state = st.session_state
    return SavedPrompt(**{field: state.get(_key(prompt_id, field)) if field == "temperature"
                          else str(state.get(_key(prompt_id, field)) or "") for field in FIELDS})


def _say(kind: str, message: str) -> None:
    st.session_state[FLASH] = (kind, message)


def _save(prompt_id: str) -> None:
    try:
        stored = prompts.save_prompt(prompt_id, _typed(prompt_id))
    except SessionEnded:
        return
    except UserFacingError as exc:  # what was typed stays in the form
        _say("error", str(exc))
        return
    if not prompt_id:  # the next new prompt starts empty
        for field in FIELDS:
            st.session_state.pop(_key("", field), None)
    for field in FIELDS:  # the form shows it as stored
        st.session_state[_key(stored.id, field)] = getattr(stored, field)
    st.session_state[EDITING] = stored.id
    _say("success", f"Saved the prompt “{stored.name}”.")


def _delete(prompt: SavedPrompt) -> None:
    try:
        prompts.delete_prompt(prompt.id)
    except SessionEnded:
        return
    except UserFacingError as exc:
        _say("error", str(exc))
        return
    st.session_state[EDITING] = ""
    _say("success", f"Deleted the prompt “{prompt.name}”.")


def _uploader_key() -> str:
    """Each file once: after an import the uploader starts empty (a new key)."""
    return f"prompts:import_file:{st.session_state.get(IMPORTS, 0)}"


def _import() -> None:
    upload = st.session_state.get(_uploader_key())
    if upload is None:
        _say("error", "Choose a JSON file of prompts first, then press Import prompts.")
        return
    st.session_state[IMPORTS] = st.session_state.get(IMPORTS, 0) + 1
    try:
        _say("success", prompts.import_prompts(upload.getvalue()))
    except SessionEnded:
        return
    except UserFacingError as exc:
        _say("error", str(exc))


def _form(prompt: SavedPrompt | None) -> None:
    prompt_id = prompt.id if prompt else ""
    for field in FIELDS:  # what the prompt holds, unless something was typed since
        st.session_state.setdefault(_key(prompt_id, field),
                                    getattr(prompt, field) if prompt else
                                    (None if field == "temperature" else ""))
    with st.form(f"prompts:form:{prompt_id or 'new'}", border=True):
        st.text_input("Name", max_chars=100, key=_key(prompt_id, "name"),
                      help="What you type after / to find it.")
        st.text_area("Text", key=_key(prompt_id, "text"), height=140,
                     help="Write {{name}} where a value goes: you fill each one in when you "
                          "use the prompt.")
        st.text_input("Model (optional)", key=_key(prompt_id, "model"),
                      help="As the chat's Model picker names it; the chat switches to it "
                           "when it is offered.")
        st.text_area("System prompt (optional)", key=_key(prompt_id, "system_prompt"),
                     height=80)
        st.number_input("Temperature (optional)", min_value=0.0, max_value=2.0, step=0.1,
                        key=_key(prompt_id, "temperature"), placeholder="As the chat has it")
        st.form_submit_button("Save prompt", type="primary", on_click=_save, args=(prompt_id,))
    if prompt is not None:
        if prompt.variables:
            st.caption("Variables: " + ", ".join(prompt.variables))
        st.button("Delete this prompt", key=f"prompts:delete:{prompt_id}", on_click=_delete,
                  args=(prompt,))


def _transfer(own: list[SavedPrompt]) -> None:
    left, right = st.columns(2)
    with left:
        st.download_button("Export saved prompts", data=to_json(own),
                           file_name="switchboard-prompts.json", mime="application/json",
                           disabled=not own, key="prompts:export")
    with right:
        st.file_uploader("Import prompts (JSON)", type=["json"], key=_uploader_key())
        st.button("Import prompts", on_click=_import, key="prompts:import")


def draw() -> None:
    st.header("Saved prompts")
    st.caption("Type / at the start of the chat's message box to use one.")
    if flash := st.session_state.pop(FLASH, None):
        (st.success if flash[0] == "success" else st.error)(flash[1])
    try:
        own = prompts.own_prompts()
    except SessionEnded:
        st.rerun()
    except UserFacingError as exc:
        st.error(str(exc))
        own = None
    if own is not None:
        by_id = {p.id: p for p in own}
        if st.session_state.get(EDITING) not in by_id:
            st.session_state[EDITING] = ""
        editing = st.selectbox("Prompt", ["", *by_id], key=EDITING,
                               format_func=lambda i: by_id[i].name if i else "New prompt")
        _form(by_id.get(editing))
        _transfer(own)
    if operators := prompts.operators_prompts():
        st.subheader("From the administrator")
        st.caption("Offered to everyone; they cannot be changed here.")
        for prompt in operators:
            with st.expander(prompt.name):
                st.text(prompt.text)
                if prompt.model:
                    st.caption(f"Model: {prompt.model}")
