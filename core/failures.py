"""Whose failure it is: a message written for the user, or Switchboard's own bug.

`UserFacingError` carries text that is safe to show as it is; every component's failures are
translated into one (the model server's in core.chat.errors, the stores' in core.store.errors,
sign-in's in core.auth). Anything else that reaches a page is a bug of ours: `describe_bug`
logs it with its traceback under a short reference and says so.
"""

from __future__ import annotations

import logging
import secrets as _random
import traceback
from collections.abc import Iterable, Iterator

from core.redaction import redact

logger = logging.getLogger(__name__)


class UserFacingError(Exception):
    """An error whose text is written for the user and is safe to show as it is."""


def causes(exc: BaseException | None) -> Iterator[BaseException]:
    """`exc`, then what caused it, and so on, each once."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def describe_bug(exc: BaseException, secrets: Iterable[str] = ()) -> str:
    """Log a failure of Switchboard's own code (keys redacted) and say so, with a reference."""
    reference = _random.token_hex(4)
    trace = "".join(traceback.format_exception(exc))
    logger.error("Switchboard bug, reference %s:\n%s", reference, redact(trace, secrets))
    return (
        f"Switchboard itself failed (reference {reference}); "
        "this is a bug in Switchboard, not the server."
    )
