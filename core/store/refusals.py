"""What the connections stores refuse, said for the user: the same words for SQLite and
Supabase (the constraints have the same names in both)."""

from __future__ import annotations

from core.errors import UserFacingError, backend_failure, collapse
from core.profiles import MAX_TEXT_LENGTH
from core.providers.connections import (
    MAX_CONNECTIONS,
    MAX_MODEL_NAME_LENGTH,
    MAX_MODELS,
    MAX_NAME_LENGTH,
)

# Raised by the connections table's limit trigger (a code of our own, class "SB").
CONNECTIONS_LIMIT_SQLSTATE = "SB050"
NAME_TAKEN_SQLSTATE = "23505"  # unique_violation: the (user, lower(name)) index
CHECK_SQLSTATE = "23514"


def name_taken(name: str = "") -> str:
    named = f"named {collapse(name)}" if name.strip() else "with that name"
    return (f"You already have a connection {named} (names are compared without regard to "
            "case). Choose another name; nothing was saved.")


def too_many_connections() -> str:
    return (f"You have the most connections Switchboard keeps: at most {MAX_CONNECTIONS}. "
            "Delete one you no longer use to add another; nothing was saved.")


def connection_value_refused(detail: str) -> str:
    """A CHECK of the connections table refused a value: `detail` names its constraint."""
    limits = {  # the start of each constraint's name (the same on both backends)
        "connections_default_model": "The default model's name is too long: at most "
                                     f"{MAX_MODEL_NAME_LENGTH} characters.",
        "connections_base_url": f"The base URL is too long: at most {MAX_TEXT_LENGTH} "
                                "characters.",
        "connections_api_key": "The API key is too long to store.",
        "connections_headers": "The custom headers are too long to store.",
        "connections_models": f"Too many models offered: at most {MAX_MODELS} per connection.",
        "connections_quirks": "The connection's learned settings could not be stored.",
        "connections_kind": "Unknown kind of connection.",
        "connections_name": f"A connection's name must be 1 to {MAX_NAME_LENGTH} characters.",
    }
    said = next((text for constraint, text in limits.items() if constraint in detail),
                "A value of the connection is longer than the store allows.")
    return f"{said} Nothing was saved."


def connection_failure(exc: BaseException, name: str = "") -> UserFacingError:
    """The error to raise for a failed PostgREST call on the connections table."""
    code = getattr(exc, "code", None)
    if code == NAME_TAKEN_SQLSTATE:
        return UserFacingError(name_taken(name))
    if code == CONNECTIONS_LIMIT_SQLSTATE:
        return UserFacingError(too_many_connections())
    if code == CHECK_SQLSTATE:
        detail = f"{getattr(exc, 'message', '')} {getattr(exc, 'details', '')}"
        if "connections_" in detail:
            return UserFacingError(connection_value_refused(detail))
    return backend_failure(exc)
