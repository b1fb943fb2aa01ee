"""Keys never reach a message or a log line: `redact` hides every secret (and any piece of
one), `collapse` makes a server's text one short line."""

from __future__ import annotations

import re
from collections.abc import Iterable

_MAX_PROVIDER_MESSAGE = 300

# Strings that look like credentials, hidden even when we were not told the key.
_KEYLIKE = re.compile(r"\b(sk-[A-Za-z0-9_\-]{8,}|Bearer\s+\S{8,})")

# What servers put for the hidden part of a key they echo ("sk-****abcd", "xxxxabcd", ...).
_MASK = re.compile(r"\*+|…+|\.{2,}|[xX]{3,}|•+|#{3,}")

KEY_FRAGMENT = 8  # no run of this many characters of a secret may reach the user
KEY_END = 4  # nor this many of its first or last ones, nor of any piece next to a mask
HIDDEN = "[redacted]"


def _pieces(secrets: list[str]) -> tuple[set[str], set[str]]:
    """Pieces hidden anywhere (any 8 characters, first and last 4-7), and beside a mask (4-7)."""
    anywhere, near_mask = set(), set()
    for secret in secrets:
        n = len(secret)
        anywhere.update(secret[i:i + KEY_FRAGMENT] for i in range(n - KEY_FRAGMENT + 1))
        for size in range(KEY_END, min(KEY_FRAGMENT - 1, n) + 1):
            anywhere.update((secret[:size], secret[-size:]))
            near_mask.update(secret[i:i + size] for i in range(n - size + 1))
    return anywhere, near_mask


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Hides each secret and telling piece: any 8 characters, first or last 4+, any 4+ beside a
    mask (`****`, a server's half-hidden echo, mask included); key-like strings too."""
    secrets = [s for s in secrets if len(s) >= KEY_END]
    if secrets:
        text = _hide_pieces(text, *_pieces(secrets))
    return _KEYLIKE.sub(HIDDEN, text)


def _hide_pieces(text: str, anywhere: set[str], near_mask: set[str]) -> str:
    masks = [match.span() for match in _MASK.finditer(text)]
    mask_ends = {end for _, end in masks}
    mask_starts = {start for start, _ in masks}
    hidden = [False] * len(text)
    for start in range(len(text)):
        for size in range(KEY_FRAGMENT, KEY_END - 1, -1):
            end = start + size
            if end > len(text):
                continue
            piece = text[start:end]
            if piece in anywhere or (
                    piece in near_mask and (start in mask_ends or end in mask_starts)):
                hidden[start:end] = [True] * size
                break
    for start, end in masks:  # a mask next to a hidden piece is part of the echoed key
        if (start > 0 and hidden[start - 1]) or (end < len(text) and hidden[end]):
            hidden[start:end] = [True] * (end - start)
    if not any(hidden):
        return text
    out, previous = [], False
    for ch, hide in zip(text, hidden):
        if hide and not previous:
            out.append(HIDDEN)
        elif not hide:
            out.append(ch)
        previous = hide
    return "".join(out)


def collapse(text: str) -> str:
    """One line, cut to a user message's length."""
    text = " ".join(text.split())
    if len(text) > _MAX_PROVIDER_MESSAGE:
        text = text[: _MAX_PROVIDER_MESSAGE - 1].rstrip() + "…"
    return text
