"""Keys never reach a message or a log line: `redact` hides every secret (and any piece of
one), `collapse` makes a server's text one short line."""

from __future__ import annotations

import re
from collections.abc import Iterable

_MAX_PROVIDER_MESSAGE = 300

# Strings that look like credentials, hidden even when we were not told the key.
_KEYLIKE = re.compile(r"\b(sk-[A-Za-z0-9_\-]{8,}|Bearer\s+\S{8,})")

KEY_FRAGMENT = 8  # no run of this many characters of a secret may reach the user


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with every secret, any 8-character piece of one, and key-like strings hidden."""
    secrets = [s for s in secrets if s]
    for short in (s for s in secrets if 4 <= len(s) < KEY_FRAGMENT):
        text = text.replace(short, "[redacted]")
    windows = {
        secret[i : i + KEY_FRAGMENT]
        for secret in secrets
        if len(secret) >= KEY_FRAGMENT
        for i in range(len(secret) - KEY_FRAGMENT + 1)
    }
    hidden = [False] * len(text)
    for start in range(len(text)):
        piece = text[start : start + KEY_FRAGMENT]
        if piece in windows:
            hidden[start : start + len(piece)] = [True] * len(piece)
    if any(hidden):
        out, previous = [], False
        for ch, hide in zip(text, hidden):
            if hide and not previous:
                out.append("[redacted]")
            elif not hide:
                out.append(ch)
            previous = hide
        text = "".join(out)
    return _KEYLIKE.sub("[redacted]", text)


def collapse(text: str) -> str:
    """`text` on one line, cut to the length of a message for the user."""
    text = " ".join(text.split())
    if len(text) > _MAX_PROVIDER_MESSAGE:
        text = text[: _MAX_PROVIDER_MESSAGE - 1].rstrip() + "…"
    return text
