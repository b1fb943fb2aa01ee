"""A saved prompt, the rules every store and file keeps for it, and the administrator's."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from core.failures import UserFacingError, toml_tables
from core.history.model import MAX_MODEL_LABEL_LENGTH, MAX_SYSTEM_PROMPT_LENGTH
from core.prompts.variables import variables

MAX_PROMPT_NAME = 100
MAX_PROMPT_TEXT = 100_000
MAX_PROMPTS = 500  # per user
MAX_TEMPERATURE = 2.0

ENV_NAME = "SWITCHBOARD_PROMPTS"
TABLE = "prompts"

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SavedPrompt:
    """`text` may hold `{{variables}}`; `model` (a model's label as the chat's picker shows it),
    `system_prompt` and `temperature` are applied to the chat when set."""

    name: str
    text: str
    model: str = ""
    system_prompt: str = ""
    temperature: float | None = None
    id: str = ""
    origin: str = "user"  # or "operator": the administrator's, read-only

    @property
    def variables(self) -> list[str]:
        return variables(self.text)

    @property
    def read_only(self) -> bool:
        return self.origin == "operator"


class PromptRefused(UserFacingError):
    """A prompt, or a file of prompts, that breaks a rule: nothing was saved."""


def prompt_problems(prompt: SavedPrompt) -> list[str]:
    """What is wrong with `prompt`, each said for the user; [] when it can be saved."""
    problems = []
    if not 1 <= len(prompt.name.strip()) <= MAX_PROMPT_NAME:
        problems.append(f"A prompt's name must be 1 to {MAX_PROMPT_NAME} characters.")
    if not prompt.text.strip():
        problems.append("A prompt needs some text.")
    elif len(prompt.text) > MAX_PROMPT_TEXT:
        problems.append(f"A prompt's text can be at most {MAX_PROMPT_TEXT:,} characters.")
    if len(prompt.model) > MAX_MODEL_LABEL_LENGTH:
        problems.append(f"A model's name can be at most {MAX_MODEL_LABEL_LENGTH} characters.")
    if len(prompt.system_prompt) > MAX_SYSTEM_PROMPT_LENGTH:
        problems.append("The system prompt can be at most "
                        f"{MAX_SYSTEM_PROMPT_LENGTH:,} characters.")
    t = prompt.temperature
    if t is not None and not (isinstance(t, (int, float)) and not isinstance(t, bool)
                              and math.isfinite(t) and 0 <= t <= MAX_TEMPERATURE):
        problems.append(f"The temperature must be a number from 0 to {MAX_TEMPERATURE:g}.")
    return problems


def checked(prompt: SavedPrompt) -> SavedPrompt:
    """`prompt` with its name trimmed, or PromptRefused saying every problem."""
    prompt = replace(prompt, name=prompt.name.strip())
    if problems := prompt_problems(prompt):
        raise PromptRefused(" ".join(problems) + " Nothing was saved.")
    return prompt


def name_taken(name: str) -> str:
    return (f"You already have a prompt named “{name}” (names are compared without regard to "
            "case). Choose another name; nothing was saved.")


def too_many_prompts() -> str:
    return (f"You have the most saved prompts Switchboard keeps: {MAX_PROMPTS}. Delete one you "
            "no longer use to add another; nothing was saved.")


def offered(own: Iterable[SavedPrompt], operators: Iterable[SavedPrompt]) -> list[SavedPrompt]:
    """What `/` offers: the user's prompts, then the administrator's whose names the user's do
    not already use, each list by name."""
    own = sorted(own, key=lambda p: p.name.casefold())
    names = {p.name.casefold() for p in own}
    return own + sorted((p for p in operators if p.name.casefold() not in names),
                        key=lambda p: p.name.casefold())


# ---- the administrator's: `[prompts.<id>]` tables in secrets, or SWITCHBOARD_PROMPTS

_FIELDS = {"name", "text", "model", "system_prompt", "temperature"}


def parse_toml(text: str) -> Mapping[str, object]:
    """Misconfigured when not TOML: never silently none of the administrator's prompts."""
    return toml_tables(text, TABLE, ENV_NAME)


def operator_prompts(table: Mapping[str, object]) -> tuple[SavedPrompt, ...]:
    """One per valid entry, in the order given; an invalid one is left out and logged for the
    administrator, never shown to users."""
    found = (_operator_prompt(str(key), entry) for key, entry in table.items())
    return tuple(prompt for prompt in found if prompt is not None)


def _operator_prompt(key: str, entry: object) -> SavedPrompt | None:
    if not isinstance(entry, Mapping):
        return _skip(key, "it is not a table")
    if unknown := set(entry) - _FIELDS:
        return _skip(key, f"unknown fields {sorted(unknown)}")
    try:
        prompt = prompt_from_fields(entry, default_name=key)
    except (TypeError, ValueError) as exc:
        return _skip(key, str(exc))
    if problems := prompt_problems(prompt):
        return _skip(key, " ".join(problems))
    return replace(prompt, id=f"operator:{key}", origin="operator")


def _skip(key: str, why: str) -> None:
    logger.warning("Administrator prompt [prompts.%s] is left out: %s", key, why)
    return None


def prompt_from_fields(entry: Mapping[str, object], default_name: str = "") -> SavedPrompt:
    """A prompt from a file's or the secrets' fields; TypeError when one has the wrong type."""
    def text(field: str, default: str = "") -> str:
        value = entry.get(field, default)
        if not isinstance(value, str):
            raise TypeError(f"“{field}” must be text")
        return value

    temperature = entry.get("temperature")
    if temperature is not None and (isinstance(temperature, bool)
                                    or not isinstance(temperature, (int, float))):
        raise TypeError("“temperature” must be a number")
    return SavedPrompt(name=text("name", default_name).strip(), text=text("text"),
                       model=text("model"), system_prompt=text("system_prompt"),
                       temperature=None if temperature is None else float(temperature))
