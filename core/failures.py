"""Whose failure: a component's become UserFacingError where it is called; anything else is our
bug, logged with a reference (`ours`). An unusable setting is `Misconfigured`: the app does
not start, and names it."""

from __future__ import annotations

import logging
import re
import secrets as _random
import tomllib
import traceback
from collections.abc import Iterable, Iterator, Mapping

from core.redaction import collapse, redact

logger = logging.getLogger(__name__)


class UserFacingError(Exception):
    """Its text is written for the user and safe to show as it is."""


class OurBug(UserFacingError):
    """Already logged, with its traceback, under `reference`. Made by `ours`."""

    def __init__(self, message: str, reference: str) -> None:
        super().__init__(message)
        self.reference = reference


class Misconfigured(UserFacingError):
    """The app does not start; the text names the setting or file, never a secret value."""


def causes(exc: BaseException | None) -> Iterator[BaseException]:
    """`exc`, then its causes, each once."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def ours(exc: BaseException, secrets: Iterable[str] = ()) -> OurBug:
    """To raise `from exc` for what no component raises: logged here with its traceback (keys
    redacted), said with a reference."""
    if isinstance(exc, OurBug):  # logged once already, where it happened
        return exc
    reference = _random.token_hex(4)
    trace = "".join(traceback.format_exception(exc))
    logger.error("Switchboard bug, reference %s:\n%s", reference, redact(trace, secrets))
    return OurBug(f"Switchboard itself failed (reference {reference}); "
                  "this is a bug in Switchboard, not the server.", reference)


_TOML_PLACE = re.compile(r"\s*\((at line \d+, column \d+|at end of document)\)\s*$")
_QUOTED = re.compile(r"""'[^']*'|"[^"]*"|\([^)]*\)""")


def toml_problem(exc: ValueError) -> str:
    """tomllib's reason and place, without what it quotes: the text may hold secrets."""
    said = str(exc)
    place = _TOML_PLACE.search(said)
    what = said[:place.start()] if place else said
    what = " ".join(_QUOTED.sub("…", what).split()) or "not valid TOML"
    return collapse(f"{what} ({place.group(1)})" if place else what)


def toml_tables(text: str, table: str, setting: str) -> Mapping[str, object]:
    """The `[table.<id>]` entries of an administrator's TOML text given in `setting`; '' gives
    none. Misconfigured when it is not TOML: never silently none of what was meant."""
    if not text.strip():
        return {}
    try:
        return tomllib.loads(text).get(table, {})
    except tomllib.TOMLDecodeError as exc:
        raise Misconfigured(f"{setting} is not valid TOML: {toml_problem(exc)}") from None
