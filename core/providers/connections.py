"""A connection: a named way to reach one server, from the profile's columns ("profile"), a
`connections` row ("user") or the deployment ("operator", read-only). Secret fields are
declared once, in field metadata."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field, fields, replace

from core.providers.kinds import KINDS, Target
from core.providers.profile import MAX_KEY_LENGTH, is_header_text
from core.providers.urls import (
    INVISIBLE_CHARACTERS_REASON,
    has_control_characters,
    has_invisible_characters,
    url_problem,
)

MAX_NAME_LENGTH = 100
MAX_CONNECTIONS = 50  # per user
MAX_MODELS = 200  # offered per connection
MAX_MODEL_NAME_LENGTH = 200
MAX_HEADERS = 20
MAX_HEADER_NAME_LENGTH = 100
MAX_HEADER_VALUE_LENGTH = 1000

# What a server turned out not to support, learned once and kept with the connection.
NO_STREAM_OPTIONS = "no_stream_options"  # refuses stream_options.include_usage
MAX_COMPLETION_TOKENS = "max_completion_tokens"  # refuses max_tokens, wants this instead
QUIRKS = (NO_STREAM_OPTIONS, MAX_COMPLETION_TOKENS)
# Per model: "no_images:<model>", the model refused a message with an image.
NO_IMAGES = "no_images:"


def no_images(model: str) -> str:
    return NO_IMAGES + model


def is_quirk(quirk: str) -> bool:
    """A name of QUIRKS, or a per-model one whose model name could be a model's (one line, no
    comma: the seed's column keeps quirks as a comma-separated list)."""
    if quirk in QUIRKS:
        return True
    model = quirk.removeprefix(NO_IMAGES)
    return (quirk.startswith(NO_IMAGES) and 0 < len(model) <= MAX_MODEL_NAME_LENGTH
            and "," not in model and not has_control_characters(model))

# Set by the client or the key: a custom one would break the request, smuggle a second one or
# replace the key (lower case).
RESERVED_HEADERS = frozenset({
    "authorization", "proxy-authorization", "host", "content-length", "content-type",
    "content-encoding", "transfer-encoding", "te", "trailer", "connection", "keep-alive",
    "upgrade", "expect", "accept-encoding", "cookie", "proxy-connection",
})
_KEY_TEXT = ("The API key may only contain plain letters, digits and symbols (ASCII, no spaces, "
             "accents or emoji).")
_ORGANIZATION_TEXT = ("The organization ID may only contain plain letters, digits and symbols "
                      "(ASCII, no spaces).")
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # RFC 9110 field-name
# Joiners shape Persian, Indic and emoji text; they cannot reorder or hide it.
JOINERS = frozenset("\u200c\u200d")

SECRET = {"secret": True}  # encrypted at rest, never sent back to a browser
HEADER = {"header": True}  # sent as an HTTP header value: printable ASCII, no spaces

Headers = tuple[tuple[str, str], ...]  # (name, value) pairs, in the order the user gave


@dataclass(frozen=True)
class Connection:
    name: str
    kind: str = "openai-compatible"  # a key of core.providers.kinds.KINDS
    base_url: str = ""
    api_key: str = field(default="", repr=False, metadata={**SECRET, **HEADER})
    headers: Headers = field(default=(), repr=False, metadata=SECRET)
    enabled: bool = True
    models: tuple[str, ...] = ()  # offered in the chat selector
    default_model: str = ""
    quirks: frozenset[str] = frozenset()
    fallback_model: str = ""  # sent when no model is named (the seed's compatible provider)
    organization: str = field(default="", metadata=HEADER)  # OpenAI's organization header
    needs_key: bool = False  # not offered without a key (the kind's rule for stored rows)
    id: str = ""  # the store's id; "profile:<kind>" or "operator:<name>" for the others
    origin: str = "user"
    version: object = None  # the row as its store read it, for compare-and-set on save
    unreadable: frozenset[str] = frozenset()  # secret fields no current encryption secret opens
    key_from_operator: bool = False  # the operator's key stands in for the user's

    @property
    def header_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.headers)

    def offered_models(self) -> tuple[str, ...]:
        """The chosen models, else the default model alone."""
        if self.models:
            return self.models
        model = self.default_model or self.fallback_model
        return (model,) if model else ()

    def with_changes(self, **changes) -> "Connection":
        return replace(self, **changes)


def secret_fields() -> tuple[str, ...]:
    return tuple(f.name for f in fields(Connection) if f.metadata.get("secret"))


def header_fields() -> tuple[str, ...]:
    return tuple(f.name for f in fields(Connection) if f.metadata.get("header"))


# ---------------------------------------------------------------- validation


def text_problem(label: str, value: str, limit: int, required: bool = True,
                 allowed: frozenset[str] = JOINERS) -> str | None:
    """A name or model name: one line, nothing invisible but `allowed`."""
    if required and not value.strip():
        return f"{label} is empty."
    if len(value) > limit:
        return f"{label} is too long: at most {limit} characters, got {len(value)}."
    if has_control_characters(value):
        return f"{label} contains control characters."
    if has_invisible_characters(value, allowed):
        return f"{label} contains {INVISIBLE_CHARACTERS_REASON}."
    return None


def name_problem(name: str) -> str | None:
    return text_problem("The connection's name", name, MAX_NAME_LENGTH)


def header_problem(name: str, value: str) -> str | None:
    if not name:
        return "A header has no name."
    if len(name) > MAX_HEADER_NAME_LENGTH or not _TOKEN.match(name):
        return (f"The header name {name[:MAX_HEADER_NAME_LENGTH]!r} is not valid: use letters, "
                "digits and - (like X-Title), at most 100 characters.")
    if name.lower() in RESERVED_HEADERS or name.lower().startswith(("proxy-", "sec-")):
        return (f"The header {name} cannot be set here: the connection sets it itself "
                "(put a key in the API key field).")
    if "\r" in value or "\n" in value:
        return f"The value of {name} contains a line break."
    if len(value) > MAX_HEADER_VALUE_LENGTH:
        return (f"The value of {name} is too long: at most {MAX_HEADER_VALUE_LENGTH} "
                f"characters, got {len(value)}.")
    if not all("\x20" <= ch <= "\x7e" for ch in value):
        return (f"The value of {name} may only contain plain letters, digits, spaces and "
                "symbols (ASCII, no accents or emoji).")
    return None


def headers_problems(headers: Headers) -> list[str]:
    problems = [p for name, value in headers if (p := header_problem(name, value))]
    lowered = [name.lower() for name, _ in headers]
    if len(set(lowered)) != len(lowered):
        problems.append("A header is given twice; give each header once.")
    if len(headers) > MAX_HEADERS:
        problems.append(f"Too many headers: at most {MAX_HEADERS}, got {len(headers)}.")
    return problems


def model_problems(models: Iterable[str]) -> list[str]:
    models = tuple(models)
    problems = []
    if len(models) > MAX_MODELS:
        problems.append(f"Too many models offered: at most {MAX_MODELS} per connection, "
                        f"got {len(models)}. Pick the ones you use.")
    if len(set(models)) != len(models):
        problems.append("A model is listed twice.")
    for model in models:
        if problem := text_problem(f"The model name {model[:40]!r}", model, MAX_MODEL_NAME_LENGTH):
            problems.append(problem)
    return problems


def connection_problems(connection: Connection) -> list[str]:
    """Each problem said for the user; [] when it can be saved."""
    problems = []
    if problem := name_problem(connection.name):
        problems.append(problem)
    if connection.kind not in KINDS:
        problems.append(f"Unknown kind of connection: {connection.kind!r}.")
    if not connection.base_url.strip():
        if connection.origin != "profile":  # an empty one turns the seed's provider off
            problems.append("The base URL is empty.")
    elif problem := url_problem(connection.base_url):
        problems.append(f"Base URL: {problem}")
    if len(connection.api_key) > MAX_KEY_LENGTH:
        problems.append(f"The API key is too long: at most {MAX_KEY_LENGTH} characters, "
                        f"got {len(connection.api_key)}.")
    elif not is_header_text(connection.api_key):
        problems.append(_KEY_TEXT)
    if not is_header_text(connection.organization):
        problems.append(_ORGANIZATION_TEXT)
    problems += headers_problems(connection.headers)
    problems += model_problems(connection.models)
    if connection.default_model and (
            problem := text_problem("The default model", connection.default_model,
                                    MAX_MODEL_NAME_LENGTH)):
        problems.append(problem)
    unknown = {quirk for quirk in connection.quirks if not is_quirk(quirk)}
    if unknown:
        problems.append(f"Unknown quirks: {', '.join(sorted(unknown))}.")
    return problems


def sending_problems(target: Target) -> list[tuple[str, str]]:
    """(field, message) pairs, checked again where a request is built: a value may have
    bypassed the form (written into the store directly, or by an earlier release)."""
    problems = []
    if not target.base_url.strip():
        problems.append(("base_url", "The base URL is empty."))
    elif problem := url_problem(target.base_url):
        problems.append(("base_url", problem))
    if not is_header_text(target.api_key):
        problems.append(("api_key", _KEY_TEXT))
    if not is_header_text(target.organization or ""):
        problems.append(("organization", _ORGANIZATION_TEXT))
    problems += [("headers", problem) for problem in headers_problems(target.headers)]
    return problems


# ---------------------------------------------------------------- chat targets


def targets(connections: Iterable[Connection]) -> list[Target]:
    """Every model of every usable connection, grouped; left out: no base URL, no readable key
    it needs, or saved values today's rules refuse."""
    found = []
    names: dict[str, int] = {}  # a label names one target: a repeated name is numbered
    for connection in connections:
        if not connection.enabled or not connection.base_url:
            continue
        if "api_key" in connection.unreadable or (connection.needs_key and not connection.api_key):
            continue
        if connection_problems(connection):
            continue
        shown = connection.name + (" (administrator)" if connection.origin == "operator" else "")
        names[shown.lower()] = names.get(shown.lower(), 0) + 1
        if names[shown.lower()] > 1:
            shown = f"{shown} ({names[shown.lower()]})"
        for model in connection.offered_models():
            found.append(target_for(connection, model, shown))
    return found


def target_for(connection: Connection, model: str, shown_name: str = "") -> Target:
    return Target(
        provider_id=connection.kind,
        provider_label=shown_name or connection.name,
        base_url=connection.base_url,
        api_key=connection.api_key,
        model=model,
        organization=connection.organization.strip() or None,
        connection_id=connection.id,
        headers=connection.headers,
        quirks=connection.quirks,
        operator_fields=_operator_fields(connection),
    )


def _operator_fields(connection: Connection) -> frozenset[str]:
    """All of an operator connection; the key of a seed provider using the operator's key."""
    if connection.origin == "operator":
        return frozenset({"key", "base_url", "model"})
    return frozenset({"key"}) if connection.key_from_operator else frozenset()


def describe_unreadable_secrets(connection: Connection) -> str:
    """For a saved key or headers no current encryption secret opens."""
    what = " and ".join({"api_key": "key", "headers": "headers"}[f]
                        for f in sorted(connection.unreadable))
    left_out = " It is left out of the model list until then." if "api_key" in connection.unreadable else ""
    return (f"The saved {what} of the connection {connection.name} cannot be read with the "
            "current encryption secret; kept as saved. Once the secret it was saved with is "
            f"back, it works again; or enter it again in Settings.{left_out}")
