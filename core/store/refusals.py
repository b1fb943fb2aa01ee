"""What the connections and chats stores refuse, said for the user: the same words for SQLite
and Supabase (the constraints have the same names in both)."""

from __future__ import annotations

from core.errors import UserFacingError, backend_failure, collapse
from core.history.model import MAX_CONTENT_LENGTH, MAX_SYSTEM_PROMPT_LENGTH, MAX_TITLE_LENGTH
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


# ---- chats and messages (core.history.model): constraint names shared by both backends

CHAT_LIMITS = {  # the start of each constraint's name, and what it means for the user
    "chats_title": f"A chat's title can be at most {MAX_TITLE_LENGTH} characters.",
    "chats_system_prompt": "The system prompt is too long: at most "
                           f"{MAX_SYSTEM_PROMPT_LENGTH:,} characters.",
    "chats_temperature": "The temperature must be between 0 and 2.",
    "chats_connection_id": "The chat's connection could not be stored.",
    "chats_model": "The model's name is too long to store with the chat.",
    "messages_content": f"A message can be at most {MAX_CONTENT_LENGTH:,} characters; this one "
                        "is longer.",
    "messages_reasoning": "The model's reasoning is too long to store.",
    "messages_error": "The error text is too long to store.",
    "messages_model_label": "The model's label is too long to store.",
    "messages_role": "A message must come from the user or the assistant.",
    "messages_status": "Unknown state of a message.",
    "messages_usage": "The token usage could not be stored.",
    "messages_parent_in_chat": "The message it follows is not in this chat.",
    "messages_chat": "This chat no longer exists (it may have been deleted in another tab).",
}
CHAT_GONE = "messages_chat"
FOREIGN_KEY_SQLSTATE = "23503"
ROW_SECURITY_SQLSTATE = "42501"  # a write that row-level security refused


def chat_value_refused(detail: str) -> str:
    """What a chats or messages constraint named in `detail` refused, said for the user."""
    said = next((text for constraint, text in CHAT_LIMITS.items() if constraint in detail),
                "A value of the chat is longer than the store allows.")
    return f"{said} Nothing was saved."


def chat_failure(exc: BaseException) -> UserFacingError:
    """The error to raise for a failed PostgREST call on chats or messages."""
    code = getattr(exc, "code", None)
    detail = f"{getattr(exc, 'message', '')} {getattr(exc, 'details', '')}"
    if code in (CHECK_SQLSTATE, FOREIGN_KEY_SQLSTATE) and ("chats_" in detail
                                                           or "messages_" in detail):
        return UserFacingError(chat_value_refused(detail))
    if code == ROW_SECURITY_SQLSTATE and "messages" in detail:
        return UserFacingError(chat_value_refused(CHAT_GONE))  # not the writer's chat
    return backend_failure(exc)
