"""Whose failure it is. A component's failures become a `UserFacingError` (safe to show) where
that component is called (core.chat.errors, core.store.errors, core.auth); anything else is our
bug: `describe_bug` / `ours` log it with its traceback under a reference and say so. A setting
that cannot be used is `Misconfigured`: the app does not start, and names it."""

from __future__ import annotations

import logging
import re
import secrets as _random
import traceback
from collections.abc import Iterable, Iterator

from core.redaction import collapse, redact

logger = logging.getLogger(__name__)


class UserFacingError(Exception):
    """An error whose text is written for the user and is safe to show as it is."""


class OurBug(UserFacingError):
    """Switchboard's own code failed: already logged, with its traceback, under `reference`;
    the text says so. Made by `ours`."""

    def __init__(self, message: str, reference: str) -> None:
        super().__init__(message)
        self.reference = reference


class Misconfigured(UserFacingError):
    """A setting the operator gave (or the secrets file holding them) cannot be used, so
    Switchboard does not start. The text names the setting or file, never a secret value."""


def causes(exc: BaseException | None) -> Iterator[BaseException]:
    """`exc`, then what caused it, and so on, each once."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def _logged(exc: BaseException, secrets: Iterable[str]) -> str:
    """Log `exc` with its traceback (keys redacted) at ERROR; its reference."""
    reference = _random.token_hex(4)
    trace = "".join(traceback.format_exception(exc))
    logger.error("Switchboard bug, reference %s:\n%s", reference, redact(trace, secrets))
    return reference


def _said(reference: str) -> str:
    return (
        f"Switchboard itself failed (reference {reference}); "
        "this is a bug in Switchboard, not the server."
    )


def describe_bug(exc: BaseException, secrets: Iterable[str] = ()) -> str:
    """Log a failure of Switchboard's own code (keys redacted) and say so, with a reference."""
    if isinstance(exc, OurBug):  # logged once already, where it happened
        return str(exc)
    return _said(_logged(exc, secrets))


def ours(exc: BaseException, secrets: Iterable[str] = ()) -> OurBug:
    """What to raise (`from exc`) for an exception no component raises when it fails: a bug of
    ours, logged here with its traceback and said with its reference."""
    if isinstance(exc, OurBug):
        return exc
    reference = _logged(exc, secrets)
    return OurBug(_said(reference), reference)


_TOML_PLACE = re.compile(r"\s*\((at line \d+, column \d+|at end of document)\)\s*$")
_QUOTED = re.compile(r"""'[^']*'|"[^"]*"|\([^)]*\)""")


def toml_problem(exc: ValueError) -> str:
    """Why a TOML text does not parse, and where, as tomllib says it, without what it quotes
    from the text (a character of a value, a key): the text may hold secrets."""
    said = str(exc)
    place = _TOML_PLACE.search(said)
    what = said[:place.start()] if place else said
    what = " ".join(_QUOTED.sub("…", what).split()) or "not valid TOML"
    return collapse(f"{what} ({place.group(1)})" if place else what)
