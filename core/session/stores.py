"""This session's stores, bound to its user and secret, and its copies of what it read."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import NamedTuple, TypeVar

import streamlit as st

from core.auth import SessionEnded
from core.config import Settings
from core.failures import UserFacingError
from core.history.listing import RECENT_ENOUGH
from core.history.model import Chat
from core.session.people import auth, current_user, settings
from core.store.answering import Answering, Guarded
from core.store.contracts import ChatStore, ProfileStore
from core.store.errors import StoreUnavailable
from core.store.keybox import (
    EncryptedConnectionStore,
    EncryptedProfileStore,
    keybox_for,
    local_secret,
)
from core.store.seed import SeedConnectionStore
from core.store.sqlite import (
    SQLiteChatStore,
    SQLiteConnectionStore,
    SQLiteProfileStore,
    times_made_again,
)
from core.store.supabase import (
    SupabaseChatStore,
    SupabaseConnectionStore,
    SupabaseProfileStore,
)

T = TypeVar("T")


ANSWERING = "store:answering"


def answering() -> Answering:
    if ANSWERING not in st.session_state:
        st.session_state[ANSWERING] = Answering()
    return st.session_state[ANSWERING]


def _secret_in_use(config: Settings) -> tuple[str, ...]:
    """The local file is read again, so a secret put back or moved away counts next run."""
    if config.encryption_keys or config.mode != "local":
        return config.encryption_keys
    return (local_secret(config.data_dir),)


def _opener(local, hosted, user_id: str) -> Callable:
    """How to open the user's backend of a store (local or hosted, as configured)."""
    config = settings()
    if config.mode == "local":
        return lambda: local(config.data_dir)
    client = auth().client
    return lambda: hosted(client, user_id)


def _bound(name: str, local, hosted, encrypted):
    """Made anew when the user or secret changes. SessionEnded, not a RuntimeError, when
    nobody is signed in: a callback can run as the session ends, before the frame notices."""
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
            backend = _opener(local, hosted, user.id)()
        except StoreUnavailable as exc:
            found.note(exc)
            raise
        cached = (user.id, secret, encrypted(Guarded(backend, found), keybox_for(config)))
        st.session_state[name] = cached
        forget()  # what was read through the store it replaces
    return cached[2]


def store() -> ProfileStore:
    return _bound("store", SQLiteProfileStore, SupabaseProfileStore, EncryptedProfileStore)


def connection_store() -> EncryptedConnectionStore:
    """Plain Connections in and out."""
    return _bound("connection_store", SQLiteConnectionStore, SupabaseConnectionStore,
                  EncryptedConnectionStore)


def chat_store_opener() -> Callable[[], ChatStore]:
    """How a reply's worker opens its own chat store (its writes never wait behind the page's,
    nor on this session's record of a store found busy), again at each save until it opens."""
    user = current_user()
    if user is None:
        raise SessionEnded()
    return _opener(SQLiteChatStore, SupabaseChatStore, user.id)


def chat_store() -> ChatStore:
    """Chats are not encrypted."""
    return _bound("chat_store", SQLiteChatStore, SupabaseChatStore, lambda backend, box: backend)


READ = "read:"  # this session's copies of what it read from the stores: (read at, value)


def remembered(name: str, read: Callable[[], T]) -> T:
    """This session's copy while fresh: a rerun reads nothing. Other tabs' changes show after
    RECENT_ENOUGH or on another page (`on_page`); this session's writes call `forget`."""
    key = READ + name
    copy = st.session_state.get(key)
    now = time.monotonic()
    if copy is None or now - copy[0] > RECENT_ENOUGH.total_seconds():
        copy = (now, read())
        st.session_state[key] = copy
    return copy[1]


def forget(*names: str) -> None:
    """Read these again next time; none named: everything."""
    for key in [k for k in st.session_state.keys() if str(k).startswith(READ)]:
        if not names or key[len(READ):] in names or key[len(READ):].split(":")[0] in names:
            del st.session_state[key]


def on_page(title: str) -> None:
    """Every run: a visit to another page reads everything afresh."""
    if st.session_state.get("page:shown") != title:
        st.session_state["page:shown"] = title
        forget()


def chat_list(limit: int) -> list[Chat]:
    return remembered(f"chats:{limit}", lambda: chat_store().list_chats(limit))


def history_changed() -> None:
    forget("chats")


def seed_store() -> SeedConnectionStore:
    return SeedConnectionStore(store(), settings().server_keys)


def quirk_stores() -> dict:
    """Where a learned quirk is kept, by the connection's origin (None: in this process only,
    the store says why elsewhere); see core.providers.sources.learn."""
    stores = {}
    for origin, opened in (("profile", seed_store), ("user", connection_store)):
        try:
            stores[origin] = opened()
        except UserFacingError:
            stores[origin] = None
    return stores


SHOWN = "shown:"  # what a page read last, and from which data file: (value, times made again)


class PageRead(NamedTuple):
    value: object  # what the store holds now; while it cannot be read, what was read last
    lost: object  # what was read before the data file was made again (it went missing), else None
    problem: str | None  # why the store cannot be read now


def page_read(name: str, read: Callable[[], T]) -> PageRead:
    """While the store cannot be read, what was read last under `name`; after the data file was
    made again, also what was read before, to offer back. SessionEnded propagates."""
    state, config = st.session_state, settings()
    last = state.get(SHOWN + name)  # (value, data file)
    # Before reading, so a file made again during the read counts (Supabase has no file: 0).
    made_again = times_made_again(config.data_dir) if config.mode == "local" else 0
    try:
        value = read()
    except SessionEnded:
        raise
    except UserFacingError as exc:
        return PageRead(last[0] if last else None, None, str(exc))
    state[SHOWN + name] = (value, made_again)
    lost = last[0] if last is not None and last[1] != made_again else None
    return PageRead(value, lost, None)
