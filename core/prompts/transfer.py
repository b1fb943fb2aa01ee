"""Saved prompts as a JSON file, out and in: a file is taken whole or not at all."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace

from core.prompts.library import (
    MAX_PROMPT_NAME,
    MAX_PROMPTS,
    PromptRefused,
    SavedPrompt,
    prompt_from_fields,
    prompt_problems,
)

FORMAT = "switchboard-prompts"
VERSION = 1
MAX_FILE_BYTES = 60_000_000  # MAX_PROMPTS prompts of the longest text, with room


def to_json(prompts: Iterable[SavedPrompt]) -> str:
    """The prompts as a file another Switchboard (or this one) imports."""
    rows = []
    for prompt in prompts:
        row = {"name": prompt.name, "text": prompt.text}
        row.update({k: v for k, v in (("model", prompt.model),
                                      ("system_prompt", prompt.system_prompt)) if v})
        if prompt.temperature is not None:
            row["temperature"] = prompt.temperature
        rows.append(row)
    return json.dumps({"format": FORMAT, "version": VERSION, "prompts": rows},
                      ensure_ascii=False, indent=2)


def _refuse(why: str) -> PromptRefused:
    return PromptRefused(f"This file cannot be imported: {why} Nothing was imported.")


def from_json(data: bytes) -> list[SavedPrompt]:
    """The file's prompts, or PromptRefused saying what is wrong (the first few problems)."""
    if len(data) > MAX_FILE_BYTES:
        raise _refuse(f"it is larger than {MAX_FILE_BYTES // 1_000_000} MB.")
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise _refuse("it is not a JSON file.") from None
    if isinstance(document, dict) and document.get("format") == FORMAT:
        rows = document.get("prompts")
    elif isinstance(document, list):  # a bare list of prompts, as other apps share them
        rows = document
    else:
        raise _refuse("it is not a file of saved prompts (exported from Settings → Saved "
                      "prompts).")
    if not isinstance(rows, list):
        raise _refuse("its “prompts” is not a list.")
    if len(rows) > MAX_PROMPTS:
        raise _refuse(f"it holds {len(rows):,} prompts; at most {MAX_PROMPTS} are kept.")
    prompts, problems = [], []
    for number, row in enumerate(rows, 1):
        try:
            if not isinstance(row, dict):
                raise TypeError("it is not an object with a name and a text")
            prompt = prompt_from_fields(row)
        except TypeError as exc:
            problems.append(f"prompt {number}: {exc}.")
            continue
        problems += [f"prompt {number} ({prompt.name[:MAX_PROMPT_NAME] or 'no name'}): {p}"
                     for p in prompt_problems(prompt)]
        prompts.append(prompt)
    if problems:
        shown = " ".join(problems[:3]) + (f" (and {len(problems) - 3} more)"
                                          if len(problems) > 3 else "")
        raise _refuse(shown)
    return prompts


_NUMBERED = re.compile(r"(.*) \((\d+)\)")  # "name (2)": a name taken when it was imported


@dataclass(frozen=True)
class ImportPlan:
    added: list[SavedPrompt]  # to store, all at once
    skipped: int  # the same as a prompt the user has
    renamed: int  # among `added`: given a number after their name

    @property
    def summary(self) -> str:
        said = [f"Imported {len(self.added)} prompt{'' if len(self.added) == 1 else 's'}."]
        if self.renamed:
            said.append(f"{self.renamed} had the name of a different prompt of yours, so a "
                        "number was added to the name.")
        if self.skipped:
            said.append(f"{self.skipped} you already had, unchanged, "
                        f"{'was' if self.skipped == 1 else 'were'} left as "
                        f"{'it is' if self.skipped == 1 else 'they are'}.")
        return " ".join(said)


def plan_import(existing: Iterable[SavedPrompt], incoming: Iterable[SavedPrompt]) -> ImportPlan:
    """What to add: a prompt the user already has, the same in every field, is skipped
    (importing a file twice adds nothing); one whose name is taken by a different prompt is
    added as "name (2)", "name (3)", ... so nothing is lost. PromptRefused when the user's
    prompts would be more than MAX_PROMPTS."""
    def same(new: SavedPrompt, had: SavedPrompt) -> bool:  # had: maybe numbered when imported
        numbered = _NUMBERED.fullmatch(had.name)
        stem = numbered.group(1) if numbered else had.name
        name, stem = new.name.casefold(), stem.casefold()
        named = name == had.name.casefold() or numbered is not None and (
            name == stem or len(had.name) == MAX_PROMPT_NAME and name.startswith(stem))
        return named and replace(new, name="", id="", origin="user") == replace(
            had, name="", id="", origin="user")

    kept = list(existing)
    names = {p.name.casefold() for p in kept}
    added, skipped, renamed = [], 0, 0
    for prompt in incoming:
        if any(same(prompt, other) for other in kept):
            skipped += 1
            continue
        name, n = prompt.name, 1
        while name.casefold() in names:
            n += 1
            suffix = f" ({n})"
            name = prompt.name[:MAX_PROMPT_NAME - len(suffix)] + suffix
        renamed += name != prompt.name
        prompt = replace(prompt, name=name, id="", origin="user")
        names.add(name.casefold())
        kept.append(prompt)
        added.append(prompt)
    if len(kept) > MAX_PROMPTS:
        raise _refuse(f"with its {len(added)} new prompts you would have {len(kept)}; at most "
                      f"{MAX_PROMPTS} are kept. Delete some first.")
    return ImportPlan(added, skipped, renamed)
