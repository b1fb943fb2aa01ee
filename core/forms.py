"""A connection form's logic without widgets, for seed and user connections alike: what Save
writes, what is unsaved, whether a check still applies. Saved secrets never enter a form: only
what was typed, merged here on the server by name."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

import hashlib

import httpx2

from core.chat.client import Limits
from core.chat.discovery import ConnectionReport, DiscoveryError, list_models, test_connection
from core.failures import UserFacingError
from core.chat.netguard import NetworkPolicy, check_base_url
from core.providers.connections import (
    MAX_NAME_LENGTH,
    Connection,
    Headers,
    connection_problems,
    target_for,
)
from core.store.contracts import ConnectionStore
from core.providers.kinds import Target
from core.providers.presets import load_presets
from core.providers.urls import as_saved, url_problem

NEW_CONNECTION_NAME = "New connection"

# The parts of a target that a check's outcome depends on.
FETCH_INPUTS = ("provider_id", "base_url", "api_key", "organization", "headers")
TEST_INPUTS = (*FETCH_INPUTS, "model")


@dataclass(frozen=True)
class ConnectionForm:
    name: str = ""
    base_url: str = ""
    new_key: str = ""  # empty keeps the saved key
    remove_key: bool = False
    enabled: bool = True
    models: tuple[str, ...] = ()
    default_model: str = ""
    removed_headers: frozenset[str] = frozenset()  # saved header names to drop
    new_headers: Headers = ()  # rows typed: (name, value)
    organization: str = ""  # the seed's OpenAI only


# The fields Save writes, and how "Unsaved: ..." names each.
FIELD_WORDS = {
    "name": "name",
    "base_url": "base URL",
    "api_key": "API key",
    "headers": "headers",
    "enabled": "enabled",
    "models": "models",
    "default_model": "default model",
    "organization": "organization ID",
}
# The seed's expanders' fields, in order; their one model is the model name.
SEED_WORDS = {"api_key": "API key", "organization": "organization ID", "base_url": "base URL",
              "default_model": "model name"}


def _words(saved: Connection) -> dict[str, str]:
    return SEED_WORDS if saved.origin == "profile" else FIELD_WORDS


class ConnectionRefused(UserFacingError):
    """`problems`: each reason, for the user."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(" ".join(problems))
        self.problems = problems


# The form's fields a saved connection fills; the others are what the user typed.
SAVED_FIELDS = ("name", "base_url", "enabled", "models", "default_model", "organization")


def saved_form(connection: Connection) -> ConnectionForm:
    """Nothing typed, no secret in it."""
    return ConnectionForm(**{name: getattr(connection, name) for name in SAVED_FIELDS})


def merge_headers(saved: Headers, removed: Iterable[str], typed: Headers) -> Headers:
    """Saved headers kept by name (their values never left the server) unless removed or
    retyped, then typed rows; a half-filled row stays so validation can say what it lacks."""
    rows = tuple((name.strip(), value.strip()) for name, value in typed
                 if name.strip() or value.strip())
    retyped = {name.lower() for name, _ in rows}
    dropped = set(removed)
    kept = tuple((name, value) for name, value in saved
                 if name not in dropped and name.lower() not in retyped)
    return kept + rows


def draft_connection(saved: Connection, form: ConnectionForm) -> Connection:
    """With the saved secrets."""
    key = "" if form.remove_key else (form.new_key.strip() or saved.api_key)
    return saved.with_changes(
        name=form.name.strip(),
        base_url=as_saved(form.base_url),
        api_key=key,
        headers=merge_headers(saved.headers, form.removed_headers, form.new_headers),
        enabled=form.enabled,
        models=tuple(dict.fromkeys(m.strip() for m in form.models if m.strip())),
        default_model=form.default_model.strip(),
        organization=form.organization.strip(),
    )


def _removes_a_saved_key(saved: Connection, form: ConnectionForm) -> bool:
    # A key no secret opens reads as "" but is still stored: removing it is a change.
    return form.remove_key and bool(saved.api_key or "api_key" in saved.unreadable)


def form_changes(saved: Connection, form: ConnectionForm) -> dict[str, object]:
    """What Save writes: field -> new value."""
    draft = draft_connection(saved, form)
    changes = {name: getattr(draft, name) for name in _words(saved)
               if getattr(draft, name) != getattr(saved, name)}
    if _removes_a_saved_key(saved, form):
        changes["api_key"] = ""
    return changes


def unsaved_changes(saved: Connection, form: ConnectionForm) -> list[str]:
    """In words for the user."""
    changes = form_changes(saved, form)
    return [words for name, words in _words(saved).items() if name in changes]


def rebase_form(form: ConnectionForm, old: Connection, new: Connection) -> ConnectionForm:
    """Saved elsewhere meanwhile: untouched fields follow the store, edited ones stay."""
    follow = {name: getattr(new, name) for name in SAVED_FIELDS
              if getattr(form, name) == getattr(old, name)}
    still_saved = form.removed_headers & set(new.header_names)
    return replace(form, removed_headers=still_saved, **follow)


def model_to_offer(draft: Connection, found: Iterable[str] = ()) -> str:
    """For a connection with no model, so it shows in Chat: the one model found, else its
    preset's first suggestion (by base URL), else ""."""
    if draft.models or draft.default_model or draft.origin != "user":
        return ""
    found = tuple(dict.fromkeys(found))
    if len(found) == 1:
        return found[0]
    same = (p for p in load_presets() if p.base_url and p.base_url == draft.base_url
            and p.kind == draft.kind and p.suggested_models)
    return next((p.suggested_models[0] for p in same), "")


def saved_message(connection: Connection) -> str:
    if connection.enabled and not connection.offered_models():
        return (f"{connection.name}: saved; it offers no model yet: pick one so it appears in "
                "Chat.")
    return f"{connection.name} saved."


def save_connection(store: ConnectionStore, saved: Connection, form: ConnectionForm,
                    policy: NetworkPolicy, found: Iterable[str] = ()) -> Connection:
    """Adds a connection without id; else writes changed fields while the row is at
    `saved.version`. Raises ConnectionRefused, BlockedAddress, or the store's ConnectionChanged."""
    draft = draft_connection(saved, form)
    problems = connection_problems(draft)
    if problems:
        raise ConnectionRefused(problems)
    if draft.base_url:  # an empty one turns the seed's provider off
        check_base_url(draft.base_url, policy)
    offered = model_to_offer(draft, found)
    if not saved.id:
        return store.add(draft.with_changes(models=(offered,)) if offered else draft)
    changes = form_changes(saved, form)
    if offered:
        changes["models"] = (offered,)
    if not changes:
        return saved
    removed = ("api_key",) if _removes_a_saved_key(saved, form) else ()  # even if unreadable
    return store.update(saved.id, changes, saved.version, remove_secrets=removed)


def draft_target(saved: Connection, form: ConnectionForm) -> Target | None:
    """What the checks test; None while the base URL is empty or invalid."""
    draft = draft_connection(saved, form)
    if not draft.base_url or url_problem(draft.base_url):
        return None
    model = draft.default_model or next(iter(draft.offered_models()), "")
    return target_for(draft, model)


def _digest(target: Target | None, inputs: tuple[str, ...]) -> str:
    """A digest, so no second copy of the key is kept."""
    if target is None:
        return ""
    values = "\0".join(str(getattr(target, name) or "") for name in inputs)
    return hashlib.sha256(values.encode()).hexdigest()


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    detail: str | tuple[str, ...]  # the summary, or the model ids found
    inputs: tuple[str, ...]
    made_for: str

    @classmethod
    def of(cls, target: Target | None, inputs: tuple[str, ...], ok: bool,
           detail: str | tuple[str, ...]) -> "CheckResult":
        return cls(ok, detail, inputs, _digest(target, inputs))

    def applies_to(self, target: Target | None) -> bool:
        return self.made_for == _digest(target, self.inputs)


def check_connection(target: Target, limits: Limits, http_client: httpx2.Client) -> ConnectionReport:
    """With no model named yet (none before Fetch models), the first listed one is tried."""
    if not target.model:
        try:
            listed = list_models(target, limits, http_client)
        except DiscoveryError:  # the test's own listing step says why
            listed = []
        if listed:
            target = replace(target, model=listed[0])
    return test_connection(target, limits, http_client)


def models_to_offer(found: Iterable[str], picked: Iterable[str], typed_filter: str) -> list[str]:
    """Found models matching every filter word, then all picked ones (else they'd be unpicked)."""
    words = typed_filter.casefold().split()
    matching = [m for m in found if all(word in m.casefold() for word in words)]
    return list(dict.fromkeys([*matching, *picked]))


def unique_name(wanted: str, taken: Iterable[str]) -> str:
    """`wanted`, `wanted 2`, ...: the first unused (any case), within the length limit."""
    wanted = wanted.strip() or NEW_CONNECTION_NAME
    used = {name.casefold() for name in taken}
    name, number = wanted[:MAX_NAME_LENGTH], 1
    while name.casefold() in used:
        number += 1
        suffix = f" {number}"
        name = wanted[:MAX_NAME_LENGTH - len(suffix)].rstrip() + suffix
    return name


def new_connection(template: Connection | None, taken: Iterable[str]) -> Connection:
    """Not stored until its first Save; a preset's values, or blank, under an unused name."""
    template = template or Connection(name=NEW_CONNECTION_NAME)
    return template.with_changes(name=unique_name(template.name, taken), id="", origin="user",
                                 version=None)


# Characters Markdown (and Streamlit's :badge[] and $math$) would read as syntax.
_MARKDOWN_SYNTAX = set("\\`*_{}[]()#+-.!|:<>~$&")


def plain_markdown(text: str) -> str:
    """Shown as typed where Streamlit reads Markdown (an expander's title)."""
    return "".join("\\" + ch if ch in _MARKDOWN_SYNTAX else ch for ch in text)


def expander_title(connection: Connection, unsaved: bool) -> str:
    mark = ":green-badge[Enabled]" if connection.enabled else ":gray-badge[Disabled]"
    title = f"{plain_markdown(connection.name)} {mark}"
    return title + (" :orange-badge[Unsaved changes]" if unsaved else "")


# ---- what a form offers back once the data file went missing and was made again, empty

KEY_LOST = ("The saved key was lost with the data file: it is never shown, so it could not be "
            "kept. Type it again.")


def lost_key(saved: Connection) -> bool:
    """The data file took the key with it (the administrator's stays)."""
    return not saved.key_from_operator and bool(saved.api_key or "api_key" in saved.unreadable)


def offer_back(lost: Connection, form: ConnectionForm) -> tuple[Connection, ConnectionForm, str]:
    """(connection to add, its form, what to say); its secrets were never on screen, so the
    key and headers must be typed again."""
    headers = [name for name in lost.header_names if name not in form.removed_headers]
    retype = (["its API key"] if lost_key(lost) and not form.remove_key else []) + (
        [f"its headers ({', '.join(headers)})"] if headers else [])
    said = "Lost with the data file, which went missing: press Save to keep it again."
    if retype:
        said += (f" Saved secrets are never shown, so they could not be kept: type "
                 f"{' and '.join(retype)} again.")
    base = lost.with_changes(id="", version=None, api_key="", headers=(),
                             unreadable=frozenset(), origin="user")
    return base, replace(form, remove_key=False, removed_headers=frozenset()), said
