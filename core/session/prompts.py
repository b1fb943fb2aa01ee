"""This session's saved prompts: the user's (their store) and the administrator's."""

from __future__ import annotations

from core.failures import UserFacingError
from core.prompts.library import SavedPrompt, offered
from core.prompts.stores import PromptStore, SQLitePromptStore, SupabasePromptStore
from core.prompts.transfer import from_json, plan_import
from core.session.drafts import put
from core.session.people import settings
from core.session.stores import _bound, forget, remembered

READ_NAME = "prompts"


def prompt_store() -> PromptStore:
    """Prompts are not encrypted."""
    return _bound("prompt_store", SQLitePromptStore, SupabasePromptStore,
                  lambda backend, box: backend)


def own_prompts() -> list[SavedPrompt]:
    return remembered(READ_NAME, lambda: prompt_store().list())


def operators_prompts() -> list[SavedPrompt]:
    return list(settings().operator_prompts)


def offered_prompts() -> tuple[list[SavedPrompt], str | None]:
    """What `/` offers, and why the user's own are missing (their store failed), if so."""
    try:
        own, problem = own_prompts(), None
    except UserFacingError as exc:
        own, problem = [], str(exc)
    return offered(own, operators_prompts()), problem


def save_prompt(prompt_id: str, prompt: SavedPrompt) -> SavedPrompt:
    """Add it (`prompt_id` empty) or replace the user's prompt `prompt_id`."""
    store = prompt_store()
    try:
        return store.update(prompt_id, prompt) if prompt_id else store.add(prompt)
    finally:
        forget(READ_NAME)


def delete_prompt(prompt_id: str) -> None:
    try:
        prompt_store().delete(prompt_id)
    finally:
        forget(READ_NAME)


def import_prompts(data: bytes) -> str:
    """Import a file of prompts whole, or raise saying why nothing was; say what was done."""
    incoming = from_json(data)
    store = prompt_store()
    plan = plan_import(store.list(), incoming)
    try:
        store.add_many(plan.added)
    finally:
        forget(READ_NAME)
    return plan.summary


def apply_settings(prompt_id: str, model_labels: list[str]) -> None:
    """Make the chat's model (when offered) and options the picked prompt's: in a callback,
    before the chat page draws its pickers."""
    prompt = next((p for p in offered_prompts()[0] if p.id == prompt_id), None)
    if prompt is None:
        return
    if prompt.model and prompt.model in model_labels:
        put("chat:model", prompt.model)
    if prompt.system_prompt:
        put("chat:system_prompt", prompt.system_prompt)
    if prompt.temperature is not None:
        put("chat:custom_temperature", True)
        put("chat:temperature", prompt.temperature)


def sets_something(prompt: SavedPrompt, model_labels: list[str]) -> bool:
    """Whether picking it changes the chat's model or options."""
    return bool((prompt.model and prompt.model in model_labels) or prompt.system_prompt
                or prompt.temperature is not None)
