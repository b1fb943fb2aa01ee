"""The one module of core that touches Streamlit: secrets and per-session state.

Everything here belongs to one browser session. Nothing per-user is ever put in
st.cache_resource (SPEC: Scale, Security): the signed-in client, the store and the
conversation all live in st.session_state.
"""

from __future__ import annotations

import runpy
import threading
import time
import tomllib
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import streamlit as st
from streamlit.errors import StreamlitSecretNotFoundError

from core.auth import SupabaseAuth, User
from core.auth import AuthUnavailable, SessionEnded
from core.failures import Misconfigured, UserFacingError, toml_problem
from core.config import Settings, load_settings
from core.history.conversation import Conversation
from core.history.listing import RECENT_ENOUGH
from core.history.model import Chat
from core.store.errors import ChatGone, StoreUnavailable
from core.store.contracts import ChatStore
from core.store.keybox import (
    EncryptedConnectionStore,
    EncryptedProfileStore,
    keybox_for,
    local_secret,
)
from core.providers.profile import Profile
from core.store.contracts import ProfileStore
from core.providers import sources
from core.providers.connections import Connection
from core.providers.kinds import Target
from core.store.seed import SeedConnectionStore
from core.store.sqlite import (
    LOCAL_USER_ID,
    SQLiteChatStore,
    SQLiteConnectionStore,
    SQLiteProfileStore,
)
from core.store.answering import Answering, Guarded
from core.store.supabase import (
    SupabaseChatStore,
    SupabaseConnectionStore,
    SupabaseProfileStore,
)

LOCAL_USER = User(LOCAL_USER_ID, "")
T = TypeVar("T")


FRAME = Path(__file__).resolve().parents[1] / "streamlit_app.py"
# Whether the script run on this thread is inside the frame: a flag of the run, not of a user.
# Not in st.session_state: after st.stop() every session_state call stops the run again.
_run = threading.local()


@contextmanager
def framing() -> Iterator[None]:
    """The frame runs the page inside this: the page then knows it was gated and drawn by it.
    At the end of the run, the stores found busy or down in it are asked again in the next
    (its callbacks included, which run before the frame)."""
    _run.in_frame = True
    found = answering()
    try:
        yield
    finally:
        _run.in_frame = False
        found.new_run()  # the object, not st.session_state: that stops a stopped run again


def run_in_frame() -> None:
    """First thing on every page. Until something in the process has called st.navigation
    (the first request after a start; every AppTest run), Streamlit runs a file of pages/ by
    itself, as its old folder navigation: then run the frame instead, which checks who may see
    the page, and draws it or another, and stop here."""
    if getattr(_run, "in_frame", False):
        return
    runpy.run_path(str(FRAME), run_name="__main__")
    st.stop()


# Streamlit's identifier for "no secrets file at any of its paths" (its other refusals of
# st.secrets mean a file or folder is there but cannot be loaded).
NO_SECRETS = "no-secrets-found"


def _secrets() -> Mapping[str, object]:
    """st.secrets as a plain dict (its `connections` table too); {} when there is no secrets
    file. Raises Misconfigured, naming the file, when one is there but cannot be read: the app
    must not start without the settings it holds (on a hosted server: without sign-in)."""
    try:
        found = st.secrets.items()
    except StreamlitSecretNotFoundError as exc:  # none at all, or one Streamlit cannot load
        if exc.error_id == NO_SECRETS:
            return {}
        raise _unreadable_secrets(exc) from None
    except (OSError, UnicodeDecodeError) as exc:  # Streamlit's own reading of the file failed
        raise _unreadable_secrets(exc) from None
    return {k: (_plain(v) if isinstance(v, Mapping) else v) for k, v in found}


def _unreadable_secrets(exc: Exception) -> Misconfigured:
    """What to say when st.secrets cannot be loaded: the file and why, never its text (the
    parser's words without what they quote from it)."""
    places = [str(place) for place in st.get_option("secrets.files")]
    for place in places:
        why = _secrets_file_problem(Path(place))
        if why:
            return Misconfigured(f"the secrets file {place} cannot be read: {why}")
    return Misconfigured(f"the secrets in {', '.join(places)} cannot be loaded "
                         f"({type(exc).__name__})")


def _secrets_file_problem(path: Path) -> str | None:
    """Why the TOML secrets file `path` cannot be read; None when it is missing or reads well
    (a folder of secrets is Streamlit's to check)."""
    if path.suffix != ".toml":
        return None
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except UnicodeDecodeError:
        return "it is not UTF-8 text"
    except OSError as exc:
        return exc.strerror or type(exc).__name__
    try:
        tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        return f"it is not valid TOML: {toml_problem(exc)}"
    return None


def _plain(table: Mapping) -> dict:
    return {k: (_plain(v) if isinstance(v, Mapping) else v) for k, v in table.items()}


def settings() -> Settings:
    if "settings" not in st.session_state:
        st.session_state.settings = load_settings(_secrets())
    return st.session_state.settings


def auth() -> SupabaseAuth:
    """This session's own Supabase client (it carries the user's token)."""
    if "auth" not in st.session_state:
        st.session_state.auth = SupabaseAuth(settings())
    return st.session_state.auth


SESSION_ENDED = "auth:ended"  # kept until the frame says it, wherever it was found
AUTH_OUTAGE = "auth:outage"  # said only in the run that found it


def current_user() -> User | None:
    """Who this session acts for: the local user, or the signed-in Supabase user.

    An ended session (revoked, expired) is None from now on, and said once, even when a
    callback or a page found it; a sign-in service that cannot be reached keeps the user signed
    in (a short outage is not a sign-out). The frame shows `take_auth_notice()`; nothing typed
    here is dropped.
    """
    if settings().mode == "local":
        return LOCAL_USER
    try:
        user = auth().current_user()
    except SessionEnded as ended:
        st.session_state[SESSION_ENDED] = str(ended)
        return None
    except AuthUnavailable as outage:
        st.session_state[AUTH_OUTAGE] = str(outage)
        return outage.user
    if user is not None:
        _forget_other_users_work(user)
    return user


OWNER = "session:owner"  # whose drafts and conversation this browser session holds


def _forget_other_users_work(user: User) -> None:
    """Drafts and a conversation kept through an ended session are given back only to the
    user who typed them: another account signing in here starts clean."""
    state = st.session_state
    owner = state.get(OWNER)
    if owner is not None and owner != user.id:
        for name in list(state.keys()):
            if name not in ("settings", "auth"):
                del state[name]
    state[OWNER] = user.id


def forget_old_outage() -> None:
    """Before the frame asks who is signed in: an outage found earlier may be over now."""
    st.session_state.pop(AUTH_OUTAGE, None)


ANSWERING = "store:answering"


def answering() -> Answering:
    """Whether this session's stores were found busy or down in this run (see Answering)."""
    if ANSWERING not in st.session_state:
        st.session_state[ANSWERING] = Answering()
    return st.session_state[ANSWERING]


def take_auth_notice() -> str | None:
    """What the frame says about the sign-in session, once: it ended, or Auth is out."""
    ended = st.session_state.pop(SESSION_ENDED, None)
    outage = st.session_state.pop(AUTH_OUTAGE, None)
    return ended or outage


UNSENT = "chat:unsent"  # a chat message submitted in the run that found the session ended


UNSENT_WHY = "chat:unsent:why"  # why it was not sent, said with it


def keep_unsent_message(why: str = "your session had ended") -> bool:
    """The chat page is not drawn once the session has ended (or the app cannot start): keep
    its submitted message, to offer it back once it is drawn again (the input's own state is
    dropped at the end of this run). True when there was one."""
    text = st.session_state.get("chat:input")
    if text:
        st.session_state[UNSENT] = text
        st.session_state[UNSENT_WHY] = why
    return bool(text)


def discard_unsent_message() -> None:
    st.session_state.pop(UNSENT, None)
    st.session_state.pop(UNSENT_WHY, None)


def _secret_in_use(config: Settings) -> tuple[str, ...]:
    """The encryption secrets now: the local file is read again, so a secret put back (or
    moved away) counts from the next run, in the same browser session."""
    if config.encryption_keys or config.mode != "local":
        return config.encryption_keys
    return (local_secret(config.data_dir),)


def _bound(name: str, local, hosted, encrypted):
    """This session's store kept under `name`, bound to its current user and encryption
    secret: made anew (`local(data_dir)` or `hosted(client, user id)`, wrapped in
    `encrypted(backend, keybox)`) when either changes.

    Raises SessionEnded (a message, never a RuntimeError) when nobody is signed in any more:
    a callback can run just as the session ends, before the frame shows sign-in.
    """
    user = current_user()
    if user is None:
        raise SessionEnded()
    config = settings()
    secret = _secret_in_use(config)
    cached = st.session_state.get(name)
    if cached is None or cached[:2] != (user.id, secret):
        found = answering()
        found.check()  # found busy or down in this run: said at once, not waited for again
        try:
            if config.mode == "local":
                backend = local(config.data_dir)
            else:
                backend = hosted(auth().client, user.id)
        except StoreUnavailable as exc:
            found.note(exc)
            raise
        cached = (user.id, secret, encrypted(Guarded(backend, found), keybox_for(config)))
        st.session_state[name] = cached
        forget()  # what was read through the store it replaces
    return cached[2]


def store() -> ProfileStore:
    """This session's profile store (see `_bound`)."""
    return _bound("store", SQLiteProfileStore, SupabaseProfileStore, EncryptedProfileStore)


def connection_store() -> EncryptedConnectionStore:
    """This session's store of the user's own connections, plain Connections in and out
    (see `_bound`)."""
    return _bound("connection_store", SQLiteConnectionStore, SupabaseConnectionStore,
                  EncryptedConnectionStore)


def profile() -> Profile:
    """The saved profile, read fresh (another replica may have changed it)."""
    return store().load()


def chat_store() -> ChatStore:
    """This session's store of the user's chats (see `_bound`; chats are not encrypted)."""
    return _bound("chat_store", SQLiteChatStore, SupabaseChatStore, lambda backend, box: backend)


def _new_conversation() -> Conversation:
    """An empty conversation, kept in the chat store from its first message; one that cannot
    be kept now says why and stays on the page."""
    try:
        return Conversation(store=chat_store())
    except SessionEnded:
        raise
    except UserFacingError as exc:
        return Conversation(unsaved=str(exc))


def conversation() -> Conversation:
    """This session's conversation; one made while the chat store was out is kept in it once
    the store is back (what it holds is written then)."""
    if "conversation" not in st.session_state:
        st.session_state.conversation = _new_conversation()
    current = st.session_state.conversation
    if current.store is None:
        try:
            current.attach(chat_store())
        except SessionEnded:
            raise
        except UserFacingError as exc:
            current.unsaved = str(exc)
    else:
        current.store_again()
    return current


READ = "read:"  # this session's copies of what it read from the stores: (read at, value)


def remembered(name: str, read: Callable[[], T]) -> T:
    """`read()`, or this session's copy of it while it is fresh: a rerun that changes nothing
    reads nothing from the store. Another tab's or replica's changes show after
    RECENT_ENOUGH, or on the next visit to another page (`on_page`); this session's own writes
    call `forget`."""
    key = READ + name
    copy = st.session_state.get(key)
    now = time.monotonic()
    if copy is None or now - copy[0] > RECENT_ENOUGH.total_seconds():
        copy = (now, read())
        st.session_state[key] = copy
    return copy[1]


def forget(*names: str) -> None:
    """Read these again next time (this session changed them); none named: everything."""
    for key in [k for k in st.session_state.keys() if str(k).startswith(READ)]:
        if not names or key[len(READ):] in names or key[len(READ):].split(":")[0] in names:
            del st.session_state[key]


def on_page(title: str) -> None:
    """The frame, every run: a visit to another page reads everything afresh."""
    if st.session_state.get("page:shown") != title:
        st.session_state["page:shown"] = title
        forget()


def chat_list(limit: int) -> list[Chat]:
    """The user's chats, newest first (see `remembered`)."""
    return remembered(f"chats:{limit}", lambda: chat_store().list_chats(limit))


def history_changed() -> None:
    """This session wrote to the chats: the list is read again on the next run."""
    forget("chats")


def open_chat(chat_id: str) -> None:
    """Show a stored chat, with its model and options (a callback)."""
    store = chat_store()
    chat = store.get_chat(chat_id)
    if chat is None:
        history_changed()
        raise ChatGone()
    st.session_state.conversation = Conversation.open(store, chat)
    put("chat:system_prompt", chat.system_prompt)
    put("chat:custom_temperature", chat.temperature is not None)
    put("chat:temperature", chat.temperature if chat.temperature is not None else 0.7)
    if chat.model:
        put("chat:model", chat.model)
    st.session_state.pop("chat:editing", None)


# Streamlit drops a widget's state in a run that does not draw it (another page is shown),
# so what the user typed is also kept under this prefix, outside any widget (FACTS.md).
KEPT = "kept:"


def restore(key: str, default: object) -> None:
    """Before drawing the widget keyed `key`: give it the value kept for it, else `default`."""
    state = st.session_state
    if key not in state:
        state[key] = state.get(KEPT + key, default)


def keep(key: str) -> None:
    """A widget's on_change callback: keep its new value for when the widget is gone."""
    st.session_state[KEPT + key] = st.session_state[key]


def keeping(key: str) -> dict:
    """Options for the widget keyed `key` that keep each new value (restore gives it back)."""
    return {"key": key, "on_change": keep, "args": (key,)}


def put(key: str, value: object) -> None:
    """Set a widget's value and its kept copy (in a callback, or before it is drawn)."""
    st.session_state[key] = value
    st.session_state[KEPT + key] = value


def kept(key: str, default: object = None) -> object:
    """The widget's value in this run, or its kept copy when it is not drawn."""
    state = st.session_state
    return state[key] if key in state else state.get(KEPT + key, default)


# A browser keeps a widget's value unless it is set: New chat sets the defaults back.
CHAT_OPTION_DEFAULTS = {
    "chat:system_prompt": "",
    "chat:custom_temperature": False,
    "chat:temperature": 0.7,
}


# The open chat's id in the page's address (?chat=...): a reload, a bookmark or a copied link
# opens it again. A chat with nothing stored yet is not named.
CHAT_PARAM = "chat"


def chat_in_address() -> str | None:
    """The chat id the page's address names, if it is one (chat ids are UUIDs)."""
    value = st.query_params.get(CHAT_PARAM)
    try:
        return str(uuid.UUID(value)) if value else None
    except ValueError:
        return None


def reopen_addressed_chat() -> None:
    """A new browser session (a reload, a bookmark, a new tab) opens the chat its address
    names. Raises ChatGone when the store has no such chat of this user's."""
    if "conversation" not in st.session_state and (chat_id := chat_in_address()):
        open_chat(chat_id)


def show_in_address(conversation: Conversation) -> None:
    """Name the open chat in the page's address once it is stored; otherwise name none."""
    stored = conversation.turns and conversation.store is not None and not conversation.unsaved
    wanted = conversation.chat.id if stored else None
    if st.query_params.get(CHAT_PARAM) != wanted:
        if wanted:
            st.query_params[CHAT_PARAM] = wanted
        else:
            st.query_params.pop(CHAT_PARAM, None)


def new_chat() -> None:
    """Start over: an empty conversation with default options (the model stays)."""
    st.session_state.conversation = _new_conversation()
    for key, value in CHAT_OPTION_DEFAULTS.items():
        put(key, value)
    st.session_state.pop("chat:editing", None)


def operator_connections() -> tuple[Connection, ...]:
    """The administrator's connections (read-only for users)."""
    return settings().operator_connections


def seed_store() -> SeedConnectionStore:
    """The seed's two providers of this session's profile, as a connection store."""
    return SeedConnectionStore(store(), settings().server_keys)


def learn_quirk(target: Target, quirk: str) -> None:
    """The chat's on_quirk: keep what the server turned out not to support, where the
    connection lives (never raises: see core.providers.sources.learn)."""
    stores = {}
    for origin, opened in (("profile", seed_store), ("user", connection_store)):
        try:
            stores[origin] = opened()
        except UserFacingError:  # kept for this process only; the store says why elsewhere
            stores[origin] = None
    sources.learn(target, quirk, stores)
    forget("profile", "connections")


def sign_out() -> None:
    """End the Supabase session and forget everything this browser session held."""
    if "auth" in st.session_state:
        st.session_state.auth.sign_out()
    for name in list(st.session_state.keys()):
        if name != "settings":
            del st.session_state[name]
