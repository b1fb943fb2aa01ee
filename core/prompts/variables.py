"""A prompt's `{{variables}}`: found in its text, and filled with what the user typed.

A variable is `{{name}}`: a name of 1 to MAX_VARIABLE_NAME characters, none of them a brace or
a line break, spaces around it ignored (`{{ topic }}` is `topic`). Any other `{{` is plain text.
Filling is one pass over the text: a value that itself holds `{{name}}` is kept as typed.
The chat page's script (message_box_js/prompts.js) reads and fills them with the same pattern.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

MAX_VARIABLE_NAME = 64
VARIABLE = re.compile(r"\{\{[ \t]*([^{}\r\n]{1,%d}?)[ \t]*\}\}" % MAX_VARIABLE_NAME)


def _name(match: re.Match) -> str | None:
    name = match.group(1).strip()
    return name or None


def variables(text: str) -> list[str]:
    """The text's variable names, each once, in the order they first appear."""
    found: dict[str, None] = {}
    for match in VARIABLE.finditer(text):
        if (name := _name(match)) is not None:
            found.setdefault(name)
    return list(found)


def fill(text: str, values: Mapping[str, str]) -> str:
    """The text with each variable replaced by its value; one without a value stays as it is."""
    def value(match: re.Match) -> str:
        name = _name(match)
        return values[name] if name is not None and name in values else match.group(0)

    return VARIABLE.sub(value, text)
