"""A bug of ours on the sign-in and store paths is said as ours, never as an outage.

Where Switchboard calls a component that can fail (Supabase Auth, PostgREST, SQLite, the disk),
it catches what that component raises and says it for the user ("unavailable, try again",
"refused", ...). Anything else caught there is a bug of ours: it must be logged at ERROR with
its traceback under a reference, and the page must say "Switchboard itself failed (reference
...)", rather than pass it off as an outage or a refusal, or show a traceback.

Each site below gets an exception no component raises (TypeError, AttributeError, KeyError,
or sqlite3's own words for a wrong statement), injected into a function the site calls, and is
reached from the real page, in AppTest: the local default's SQLite store, or the Supabase
stand-in stack (PostgREST, PostgreSQL, auth) for the hosted paths.

The inventory, and what each site does with a failure of its component:
  sign-in path (core.auth, core.session.current_user, the sign-in/up/out pages)
    auth-sign-in         SupabaseAuth._call (sign-in page): Auth's errors said, by code
    auth-sign-up         SupabaseAuth._call (sign-up page): the same
    auth-current-user    SupabaseAuth.current_user (the frame, every run): outage kept signed in,
                         refusal ends the session
    auth-forget-session  SupabaseAuth._forget_session (an ended session dropped here)
    auth-sign-out        SupabaseAuth.sign_out (sign-out page): on failure, dropped here
  store paths (core.store.*)
    supabase-profile     SupabaseProfileStore._rows -> errors.backend_failure
    supabase-connections SupabaseConnectionStore._rows -> errors.connection_failure
    supabase-chats       SupabaseChatStore._rows -> errors.chat_failure
    supabase-save-chat   SupabaseChatStore.save_chat's insert -> errors.chat_failure
    supabase-add-message SupabaseChatStore.add_message's insert -> errors.chat_failure
    supabase-delete-all  SupabaseChatStore.delete_all -> errors.chat_failure
    sqlite-other         _LocalFile._guarded: neither SQLite's nor the disk's error
    sqlite-misuse        _LocalFile._guarded: sqlite3.ProgrammingError (our use of sqlite3)
    sqlite-bad-sql       _LocalFile._guarded: SQLITE_ERROR (our SQL), once said as a disk error
  the frame (streamlit_app.py)
    frame-before-page    everything before st.navigation
    frame-page           a page's own run: a bug no page catches
"""

from __future__ import annotations

import logging
import re
import sqlite3
import uuid

import pytest
from supabase import Client
from supabase_auth import SyncGoTrueClient
from supabase_auth.errors import AuthApiError

import core.session
from core.store.sqlite import SQLiteProfileStore, _LocalFile
from tests.apptest import open_app, shown_text
from tests.chatting import send

PASSWORD = "a long enough password"
BUG = re.compile(r"Switchboard itself failed \(reference ([0-9a-f]{8})\)")
TRACEBACK = "Traceback (most recent call last)"


def injected(kind: type[Exception], site: str) -> Exception:
    """The unexpected exception for `site`, marked so its traceback can be found in the log."""
    return kind(f"injected into {site}")


def raising(error: Exception):
    def call(*args, **kwargs):
        raise error
    return call


def assert_said_as_ours(at, caplog, error: Exception) -> None:
    """The page says our bug with a reference; the log has that reference at ERROR, with the
    traceback of `error`; no exception reached the page."""
    assert not at.exception, at.exception
    shown = shown_text(at)
    references = set(BUG.findall(shown))
    assert references, shown
    assert "unavailable" not in shown and "refused the request" not in shown, shown
    for reference in references:
        logged = [r.getMessage() for r in caplog.records
                  if r.levelno == logging.ERROR and reference in r.getMessage()]
        assert len(logged) == 1, (reference, caplog.text)
        assert TRACEBACK in logged[0] and str(error) in logged[0], logged[0]
        assert type(error).__name__ in logged[0], logged[0]


# ---------------------------------------------------------------- the local default (SQLite)

def _sqlite_other(monkeypatch, site):
    error = injected(TypeError, site)
    monkeypatch.setattr(_LocalFile, "_connect", raising(error))
    return error


def _sqlite_misuse(monkeypatch, site):
    monkeypatch.setattr(SQLiteProfileStore, "_row",
                        lambda self, db: db.execute("select ?").fetchone())  # no value bound
    return sqlite3.ProgrammingError("Incorrect number of bindings")


def _sqlite_bad_sql(monkeypatch, site):
    monkeypatch.setattr(SQLiteProfileStore, "_row",
                        lambda self, db: db.execute("select * from no_such_table").fetchone())
    return sqlite3.OperationalError("no such table: no_such_table")


def _frame_before_page(monkeypatch, site):
    error = injected(KeyError, site)
    monkeypatch.setattr(core.session, "take_auth_notice", raising(error))
    return error


def _frame_page(monkeypatch, site):
    error = injected(AttributeError, site)
    monkeypatch.setattr(core.session, "conversation", raising(error))
    return error


LOCAL_SITES = {
    "sqlite-other": _sqlite_other,
    "sqlite-misuse": _sqlite_misuse,
    "sqlite-bad-sql": _sqlite_bad_sql,
    "frame-before-page": _frame_before_page,
    "frame-page": _frame_page,
}


@pytest.mark.parametrize("site", list(LOCAL_SITES))
def test_a_bug_at_a_local_site_is_said_as_ours(site, monkeypatch, caplog):
    error = LOCAL_SITES[site](monkeypatch, site)
    caplog.set_level(logging.ERROR)
    at = open_app(timeout=60)  # the chat page: it reads the profile and the chats
    assert_said_as_ours(at, caplog, error)


# ---------------------------------------------------------------- Supabase mode

@pytest.fixture
def hosted(supabase_mode, katan_server, monkeypatch):
    """Supabase mode with one administrator connection to a real model server (loopback
    allowed), so the chat page can send."""
    monkeypatch.setenv("SWITCHBOARD_ALLOWED_HOSTS", "127.0.0.1")
    monkeypatch.setenv("SWITCHBOARD_CONNECTIONS", (
        f'[connections.katan]\nname = "Katan"\nbase_url = "{katan_server.base_url}"\n'
        f'api_key = "{katan_server.api_key}"\nmodels = ["{katan_server.model}"]\n'))
    return supabase_mode


def _email() -> str:
    return f"ours-{uuid.uuid4().hex[:10]}@example.com"


def _signed_up(email: str = ""):
    """A new user signed up through the page; the session is on the chat page."""
    at = open_app(timeout=60)
    at.switch_page("pages/sign_up.py").run()
    at.text_input(key="sign_up:email").set_value(email or _email())
    at.text_input(key="sign_up:password").set_value(PASSWORD)
    at.button[0].click().run()
    at.switch_page("pages/chat.py").run()  # the page the next runs are of
    assert not at.exception, at.exception
    assert [t.value for t in at.title] == ["Chat"], shown_text(at)
    return at


class _Exploding:
    """A PostgREST query builder whose execute() raises `error` once the chain has called
    `after` (None: at once); every other call goes to the real builder."""

    def __init__(self, inner, error: Exception, after: str | None, armed: bool) -> None:
        self.inner, self.error, self.after, self.armed = inner, error, after, armed

    def __getattr__(self, name: str):
        if name == "execute" and self.armed:
            return raising(self.error)
        attribute = getattr(self.inner, name)
        if not callable(attribute):
            return attribute

        def call(*args, **kwargs):
            return _Exploding(attribute(*args, **kwargs), self.error, self.after,
                              self.armed or name == self.after)
        return call


def _break_table(monkeypatch, table: str, error: Exception, after: str | None = None) -> None:
    real = Client.table

    def table_(self, name):
        builder = real(self, name)
        return _Exploding(builder, error, after, after is None) if name == table else builder

    monkeypatch.setattr(Client, "table", table_)


def _auth_sign_in(monkeypatch, site):
    email = _email()
    _signed_up(email)
    error = injected(AttributeError, site)
    monkeypatch.setattr(SyncGoTrueClient, "sign_in_with_password", raising(error))
    at = open_app(timeout=60)  # another browser session: the sign-in page
    at.text_input(key="sign_in:email").set_value(email)
    at.text_input(key="sign_in:password").set_value(PASSWORD)
    return at.button[0].click().run(), error


def _auth_sign_up(monkeypatch, site):
    error = injected(TypeError, site)
    monkeypatch.setattr(SyncGoTrueClient, "sign_up", raising(error))
    at = open_app(timeout=60)
    at.switch_page("pages/sign_up.py").run()
    at.text_input(key="sign_up:email").set_value(_email())
    at.text_input(key="sign_up:password").set_value(PASSWORD)
    return at.button[0].click().run(), error


def _auth_current_user(monkeypatch, site):
    at = _signed_up()
    error = injected(KeyError, site)
    monkeypatch.setattr(SyncGoTrueClient, "get_session", raising(error))
    return at.run(), error


def _auth_forget_session(monkeypatch, site):
    at = _signed_up()
    error = injected(TypeError, site)
    ended = AuthApiError("Session not found", 403, "session_not_found")  # as Auth answers
    monkeypatch.setattr(SyncGoTrueClient, "get_session", raising(ended))
    monkeypatch.setattr(SyncGoTrueClient, "sign_out", raising(error))
    return at.run(), error


def _auth_sign_out(monkeypatch, site):
    at = _signed_up()
    at.switch_page("pages/sign_out.py").run()
    error = injected(AttributeError, site)
    monkeypatch.setattr(SyncGoTrueClient, "sign_out", raising(error))
    return at.button(key="sign_out").click().run(), error


def _supabase_profile(monkeypatch, site):
    at = _signed_up()
    error = injected(TypeError, site)
    _break_table(monkeypatch, "profiles", error)
    at.switch_page("pages/settings.py").run()  # another page: everything is read afresh
    return at.switch_page("pages/chat.py").run(), error


def _supabase_connections(monkeypatch, site):
    at = _signed_up()
    error = injected(KeyError, site)
    _break_table(monkeypatch, "connections", error)
    at.switch_page("pages/settings.py").run()
    return at.switch_page("pages/chat.py").run(), error


def _supabase_chats(monkeypatch, site):
    at = _signed_up()
    error = injected(AttributeError, site)
    _break_table(monkeypatch, "chats", error)
    at.switch_page("pages/settings.py").run()
    return at.switch_page("pages/chat.py").run(), error


def _supabase_save_chat(monkeypatch, site):
    at = _signed_up()
    error = injected(TypeError, site)
    _break_table(monkeypatch, "chats", error, after="insert")
    return send(at, "hello"), error


def _supabase_add_message(monkeypatch, site):
    at = _signed_up()
    error = injected(KeyError, site)
    _break_table(monkeypatch, "messages", error, after="insert")
    return send(at, "hello"), error


def _supabase_delete_all(monkeypatch, site):
    at = _signed_up()
    error = injected(AttributeError, site)
    _break_table(monkeypatch, "chats", error, after="delete")
    at.switch_page("pages/settings.py").run()
    at.button(key="chats:delete").click().run()
    return at.button(key="chats:delete_yes").click().run(), error


SUPABASE_SITES = {
    "auth-sign-in": _auth_sign_in,
    "auth-sign-up": _auth_sign_up,
    "auth-current-user": _auth_current_user,
    "auth-forget-session": _auth_forget_session,
    "auth-sign-out": _auth_sign_out,
    "supabase-profile": _supabase_profile,
    "supabase-connections": _supabase_connections,
    "supabase-chats": _supabase_chats,
    "supabase-save-chat": _supabase_save_chat,
    "supabase-add-message": _supabase_add_message,
    "supabase-delete-all": _supabase_delete_all,
}


@pytest.mark.parametrize("site", list(SUPABASE_SITES))
def test_a_bug_at_a_hosted_site_is_said_as_ours(site, hosted, monkeypatch, caplog):
    caplog.set_level(logging.ERROR)
    at, error = SUPABASE_SITES[site](monkeypatch, site)
    assert_said_as_ours(at, caplog, error)


def test_an_outage_is_still_said_as_one_not_as_ours(hosted, monkeypatch, caplog):
    """The other side: a transport failure of PostgREST (what supabase-py raises when it
    cannot connect) is still an outage, said as before, and no bug is logged."""
    import httpx

    at = _signed_up()
    _break_table(monkeypatch, "profiles", httpx.ConnectError("connection refused"))
    caplog.set_level(logging.ERROR)
    at.switch_page("pages/settings.py").run()
    at.switch_page("pages/chat.py").run()
    assert not at.exception, at.exception
    shown = shown_text(at)
    assert "The database is unavailable right now" in shown, shown
    assert not BUG.search(shown) and not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_refused_session_is_still_ended_not_ours(hosted, monkeypatch, caplog):
    """And Auth's answer that the session is over still ends it, with its message."""
    at = _signed_up()
    ended = AuthApiError("Session not found", 403, "session_not_found")
    monkeypatch.setattr(SyncGoTrueClient, "get_session", raising(ended))
    caplog.set_level(logging.ERROR)
    at.run()
    assert not at.exception, at.exception
    assert "Your session has ended. Please sign in again." in shown_text(at)
    assert [t.value for t in at.title] == ["Sign in"]  # signed out: the sign-in page
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
