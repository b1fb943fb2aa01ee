"""What the stores refuse or fail at, said for the user: an outage, a change made elsewhere,
a value a constraint refuses (the same words for SQLite and Supabase: the constraints have
the same names in both), and PostgREST's own errors."""

from __future__ import annotations

import logging

import httpx
from postgrest.exceptions import APIError

from core.failures import UserFacingError, ours
from core.history.model import (
    MAX_ATTACHMENT_NAME_LENGTH,
    MAX_ATTACHMENTS,
    MAX_COMPARED,
    MAX_CONTENT_LENGTH,
    MAX_DOCUMENT_CHARS,
    MAX_IMAGE_BYTES,
    MAX_MODEL_LABEL_LENGTH,
    MAX_SYSTEM_PROMPT_LENGTH,
    MAX_TITLE_LENGTH,
    MIN_COMPARED,
)
from core.providers.connections import (
    MAX_CONNECTIONS,
    MAX_MODEL_NAME_LENGTH,
    MAX_MODELS,
    MAX_NAME_LENGTH,
)
from core.providers.profile import FIELD_LABELS, MAX_TEXT_LENGTH
from core.redaction import collapse, redact

logger = logging.getLogger(__name__)


class StoreUnavailable(UserFacingError):
    """The store cannot be read or written right now; the text says what to do, `kind` why:
    "busy", "damaged", "read_only", "full", "no_access", "disk_error", "missing", "outage"."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


class WritesTooFast(UserFacingError):
    """The user's write-rate bound refused a write (its statement wrote nothing): the same
    write passes once the allowance has grown back (WRITE_BURST rows, WRITE_RATE a second)."""


class ProfileChanged(UserFacingError):
    """A save refused because a field it changes was changed elsewhere since it was read."""

    def __init__(self) -> None:
        super().__init__(
            "These settings were changed in another tab or session since this page read them, "
            "so nothing was saved. What you typed is still in the form: check it and press Save "
            "again to keep it."
        )


BACKEND_UNAVAILABLE = ("The database is unavailable right now, so nothing was read or "
                       "saved. Please try again in a moment.")

# PostgreSQL's codes (SQLSTATE) that PostgREST passes on, and our own (class "SB").
CHECK_SQLSTATE = "23514"
UNIQUE_SQLSTATE = "23505"  # a connection's (user, lower(name)), a chat's or message's id
FOREIGN_KEY_SQLSTATE = "23503"
ROW_SECURITY_SQLSTATE = "42501"  # a write that row-level security refused
CONNECTIONS_LIMIT_SQLSTATE = "SB050"  # raised by the connections table's limit trigger

_PG_MESSAGES = {
    CHECK_SQLSTATE: "A value is longer than the database allows (1000 characters). "
                    "Nothing was saved.",
    "42501": "You are not allowed to change that profile.",
    "PGRST301": "Your session has expired. Please sign in again.",
    "PGRST303": "Your session has expired. Please sign in again.",
}

# PostgREST cannot reach or use the database (https://postgrest.org/en/v12/references/errors.html),
# and PostgreSQL classes that mean the server, not the request: connection, resources,
# operator intervention (a shutdown), system errors, internal errors.
_OUTAGE_CODES = {"PGRST000", "PGRST001", "PGRST002", "PGRST003"}

_OUTAGE_SQLSTATE_CLASSES = ("08", "53", "57", "58", "XX")

# What Supabase's API gateway (Kong) answers, without a code, about the project's API key.
_GATEWAY_REFUSALS = ("No API key found in request", "Invalid API key")


def is_backend_failure(exc: BaseException) -> bool:
    """True for what supabase-py's PostgREST client raises when the database refuses, fails
    or cannot be reached (httpx wraps httpcore's errors); anything else is a bug of ours."""
    return isinstance(exc, (APIError, httpx.HTTPError))


def _detail(exc: BaseException) -> str:
    """PostgREST's message and details: where a refused constraint is named."""
    return f"{getattr(exc, 'message', '')} {getattr(exc, 'details', '')}"


def is_backend_outage(exc: BaseException) -> bool:
    """True when PostgREST or PostgreSQL could not be reached or failed; false for a refusal
    (a 4xx carrying a PostgREST or PostgreSQL code) or no backend failure."""
    if isinstance(exc, httpx.HTTPError):  # supabase-py's transport
        return True
    if not isinstance(exc, APIError):
        return False
    code = exc.code
    if code is None:  # no PostgREST or PostgreSQL code: a proxy's answer
        return exc.message not in _GATEWAY_REFUSALS
    code = str(code)
    if code.isdigit() and len(code) == 3:  # a bare HTTP status: the body was no PostgREST error
        return int(code) >= 500
    return code in _OUTAGE_CODES or code.startswith(_OUTAGE_SQLSTATE_CLASSES)


def backend_failure(exc: BaseException) -> UserFacingError:
    """The error to raise (`from exc`) for a failed PostgREST call, said for the user:
    StoreUnavailable for an outage, OurBug for anything but a backend failure."""
    if not is_backend_failure(exc):
        return ours(exc)
    code = getattr(exc, "code", None)
    if code == CHECK_SQLSTATE:  # name the column whose limit was passed
        detail = _detail(exc)
        for column in sorted(FIELD_LABELS, key=len, reverse=True):
            if column in detail:
                return UserFacingError(f"{FIELD_LABELS[column]} is too long: the database keeps "
                                       "at most 1000 characters. Nothing was saved.")
    if code in _PG_MESSAGES:
        return UserFacingError(_PG_MESSAGES[code])
    if is_backend_outage(exc):
        logger.warning("The database is unavailable: %s", redact(repr(exc)))
        return StoreUnavailable(BACKEND_UNAVAILABLE, "outage")
    said = getattr(exc, "message", None) or type(exc).__name__
    return UserFacingError(redact(f"The database refused the request: {collapse(str(said))}"))


class ConnectionChanged(UserFacingError):
    """A save refused: the connection was changed or deleted elsewhere since it was read."""

    def __init__(self, name: str = "This connection", gone: bool = False) -> None:
        super().__init__(
            f"{name} was deleted in another tab or session; nothing was saved." if gone else
            f"{name} was changed in another tab or session since this page read it, so nothing "
            "was saved. What you typed is still in the form: check it and save again.")
        self.gone = gone


class ChatGone(UserFacingError):
    def __init__(self) -> None:
        super().__init__("That chat was deleted (in another tab or session).")


def name_taken(name: str = "") -> str:
    named = f"named {collapse(name)}" if name.strip() else "with that name"
    return (f"You already have a connection {named} (names are compared without regard to "
            "case). Choose another name; nothing was saved.")


def too_many_connections() -> str:
    return (f"You have the most connections Switchboard keeps: at most {MAX_CONNECTIONS}. "
            "Delete one you no longer use to add another; nothing was saved.")


# The start of each constraint's name (the same on both backends), and what it means for the user.
CONNECTION_LIMITS = {
    "connections_model_names": f"A model's name is too long: at most {MAX_MODEL_NAME_LENGTH} "
                               "characters.",
    "connections_default_model": "The default model's name is too long: at most "
                                 f"{MAX_MODEL_NAME_LENGTH} characters.",
    "connections_base_url": f"The base URL is too long: at most {MAX_TEXT_LENGTH} characters.",
    "connections_api_key": "The API key is too long to store.",
    "connections_headers": "The custom headers are too long to store.",
    "connections_models": f"Too many models offered: at most {MAX_MODELS} per connection.",
    "connections_quirks": "The connection's learned settings could not be stored.",
    "connections_kind": "Unknown kind of connection.",
    "connections_name": f"A connection's name must be 1 to {MAX_NAME_LENGTH} characters.",
}


def _refused(limits: dict[str, str], detail: str, otherwise: str) -> str:
    said = next((text for constraint, text in limits.items() if constraint in detail), otherwise)
    return f"{said} Nothing was saved."


def connection_value_refused(detail: str) -> str:
    """What a connections constraint named in `detail` refused, said for the user."""
    return _refused(CONNECTION_LIMITS, detail,
                    "A value of the connection is longer than the store allows.")


def connection_failure(exc: BaseException, name: str = "") -> UserFacingError:
    """`backend_failure` for a call on the connections table."""
    code = exc.code if isinstance(exc, APIError) else None  # the rest: backend_failure
    if code == UNIQUE_SQLSTATE:
        return UserFacingError(name_taken(name))
    if code == CONNECTIONS_LIMIT_SQLSTATE:
        return UserFacingError(too_many_connections())
    if code == CHECK_SQLSTATE and "connections_" in (detail := _detail(exc)):
        return UserFacingError(connection_value_refused(detail))
    return backend_failure(exc)


# ---- chats and messages (core.history.model): constraint names shared by both backends

# Each user's bounds, kept by the database's user_totals triggers: far beyond what a person
# stores, reached at once by a script filling the database.
MAX_CHATS_PER_USER = 10_000
MAX_MESSAGES_PER_USER = 200_000
MAX_BYTES_PER_USER = 2_000_000_000  # of text in chats and messages, 2 GB
MAX_ATTACHMENTS_PER_USER = 10_000
MAX_ATTACHMENT_BYTES_PER_USER = 2_000_000_000  # images' bytes and documents' text, 2 GB
MAX_COMPARISONS_PER_USER = 100_000
# New chats and messages a user may write at once, then a second (the hosted store's
# user_totals: 20261207063100_bound_each_user.sql; a local file has no such bound).
WRITE_BURST = 2_000
WRITE_RATE = 200
# A chat's options, as both backends bound them: far beyond any model's.
MAX_REPLY_TOKENS = 10_000_000
MAX_CONTEXT_WINDOW = 100_000_000
USER_TOTALS = {  # each bound's SQLSTATE (our own, class "SB") and its name (both backends)
    "SB051": "user_totals_chats",
    "SB052": "user_totals_messages",
    "SB053": "user_totals_bytes",
    "SB054": "user_totals_rate",
    "SB056": "user_totals_attachments",
    "SB057": "user_totals_attachment_bytes",
    "SB058": "user_totals_comparisons",
}
CHAT_LIMITS = {  # as CONNECTION_LIMITS
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
    "chats_max_tokens": f"The room kept for a reply must be 1 to {MAX_REPLY_TOKENS:,} tokens.",
    "chats_context_window": f"The context window must be 1 to {MAX_CONTEXT_WINDOW:,} tokens.",
    "chats_folder": "A folder's name can be at most 100 characters.",
    "attachments_position": f"A message can carry at most {MAX_ATTACHMENTS} files.",
    "attachments_kind": "Only images and documents can be attached.",
    "attachments_name": "A file's name must be 1 to "
                        f"{MAX_ATTACHMENT_NAME_LENGTH} characters; rename the file and attach "
                        "it again.",
    "attachments_mime": "The file's type could not be stored.",
    "attachments_data": f"An image can be at most {MAX_IMAGE_BYTES // 1_000_000} MB once "
                        "made smaller; this one is bigger.",
    "attachments_text": f"A document's text can be at most {MAX_DOCUMENT_CHARS:,} characters; "
                        "this one is longer. Attach a part of it.",
    "attachments_size": "The file's size could not be stored.",
    "attachments_width": "The image's size could not be stored.",
    "attachments_height": "The image's size could not be stored.",
    "attachments_message": "This message is gone, or not yours: its files were not stored.",
    "attachments_immutable": "A file sent with a message cannot be changed.",
    # A file's id stored already (SQLite names the column, PostgreSQL the key).
    "attachments.id": "A file of this message is stored with another message already. "
                      "Attach it again.",
    "attachments_pkey": "A file of this message is stored with another message already. "
                        "Attach it again.",
    "user_totals_attachments": "Your chats hold the most files Switchboard keeps: "
                               f"{MAX_ATTACHMENTS_PER_USER:,} in all. Delete chats you no "
                               "longer need to attach more.",
    "user_totals_attachment_bytes": "Your chats' files take the most room Switchboard keeps: "
                                    f"{MAX_ATTACHMENT_BYTES_PER_USER // 1_000_000_000} GB in "
                                    "all. Delete chats you no longer need to attach more.",
    "comparisons_replies": f"A comparison holds {MIN_COMPARED} to {MAX_COMPARED} replies.",
    "comparisons_labels_count": "A comparison needs one model label for each of its replies.",
    "comparisons_labels_length": "A model's label is too long to store with the comparison: "
                                 f"at most {MAX_MODEL_LABEL_LENGTH} characters.",
    "comparisons_picked_among_replies": "The reply picked is not one of the replies compared. "
                                        "Pick one of the columns shown.",
    "comparisons_picked_or_tie": "A verdict is one reply picked, or a tie, not both.",
    "comparisons_ids": "The comparison could not be stored: its message or replies are not "
                       "named properly.",
    "comparisons_verdict_kept": "This comparison was decided already; the first verdict is "
                                "kept.",
    "comparisons_keep_place": "Only a comparison's verdict can be changed.",
    "comparisons_chat": "This chat no longer exists (it may have been deleted in another tab).",
    # A comparison's id stored already (another user's).
    "comparisons.id": "This chat no longer exists (it may have been deleted in another tab).",
    "comparisons_pkey": "This chat no longer exists (it may have been deleted in another tab).",
    "user_totals_comparisons": "Your chats hold the most comparisons Switchboard keeps: "
                               f"{MAX_COMPARISONS_PER_USER:,} in all. Delete chats you no "
                               "longer need to compare more.",
    "user_totals_chats": f"You have the most chats Switchboard keeps: {MAX_CHATS_PER_USER:,}. "
                         "Delete chats you no longer need to start new ones.",
    "user_totals_messages": "Your chats hold the most messages Switchboard keeps: "
                            f"{MAX_MESSAGES_PER_USER:,} in all. Delete chats you no longer "
                            "need to add more.",
    "user_totals_bytes": "Your chats hold the most text Switchboard keeps: "
                         f"{MAX_BYTES_PER_USER // 1_000_000_000} GB in all. Delete chats you no "
                         "longer need (long ones free the most) to add more.",
    "user_totals_rate": "Too many chats and messages were saved in a short time. Wait a few "
                        "seconds, then try again.",
    "message_pieces_missing": "A long message is sent to the database in pieces, and a piece "
                              "of this one did not arrive. Try again.",
}
CHAT_GONE = "messages_chat"
RATE_SQLSTATE = "SB054"  # user_totals_rate
PIECES_MISSING_SQLSTATE = "SB055"  # a long message's staged pieces were not all there


def chat_value_refused(detail: str) -> str:
    """What a chats or messages constraint named in `detail` refused, said for the user."""
    return _refused(CHAT_LIMITS, detail, "A value of the chat is longer than the store allows.")


def chat_failure(exc: BaseException) -> UserFacingError:
    """`backend_failure` for a call on chats or messages."""
    code = exc.code if isinstance(exc, APIError) else None  # the rest: backend_failure
    detail = _detail(exc)
    if code in USER_TOTALS:
        said = chat_value_refused(USER_TOTALS[code])
        return WritesTooFast(said) if code == RATE_SQLSTATE else UserFacingError(said)
    if code == PIECES_MISSING_SQLSTATE:
        return UserFacingError(chat_value_refused("message_pieces_missing"))
    if code in (CHECK_SQLSTATE, FOREIGN_KEY_SQLSTATE) and any(
            table in detail for table in ("chats_", "messages_", "attachments_",
                                          "comparisons_")):
        return UserFacingError(chat_value_refused(detail))
    if code == UNIQUE_SQLSTATE or (code == ROW_SECURITY_SQLSTATE and any(
            table in detail for table in ("messages", "comparisons"))):
        return UserFacingError(chat_value_refused(CHAT_GONE))  # another user's id, or chat
    return backend_failure(exc)
