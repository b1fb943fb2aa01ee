"""Who this browser session acts for: settings and secrets, the sign-in client and user, the
frame's notices, and a message the page could not send."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path

import streamlit as st
from streamlit.errors import StreamlitSecretNotFoundError

from core.auth import AuthUnavailable, SessionEnded, SupabaseAuth, User
from core.config import Settings, load_settings
from core.failures import Misconfigured, toml_problem
from core.store.sqlite import LOCAL_USER_ID

LOCAL_USER = User(LOCAL_USER_ID, "")


# Streamlit's id for "no secrets file anywhere"; its other refusals mean one cannot be loaded.
NO_SECRETS = "no-secrets-found"


def _secrets() -> Mapping[str, object]:
    """{} without a secrets file; Misconfigured when one cannot be read: the app must not start
    without its settings (when hosted: without sign-in)."""
    try:
        return st.secrets.to_dict()  # nested tables as plain dicts
    except StreamlitSecretNotFoundError as exc:  # none at all, or one Streamlit cannot load
        if exc.error_id == NO_SECRETS:
            return {}
        raise _unreadable_secrets(exc) from None
    except (OSError, UnicodeDecodeError) as exc:  # Streamlit's own reading of the file failed
        raise _unreadable_secrets(exc) from None


def _unreadable_secrets(exc: Exception) -> Misconfigured:
    """The file and why, never its text (the parser's words without what they quote)."""
    places = [str(place) for place in st.get_option("secrets.files")]
    for place in places:
        why = _secrets_file_problem(Path(place))
        if why:
            return Misconfigured(f"the secrets file {place} cannot be read: {why}")
    return Misconfigured(f"the secrets in {', '.join(places)} cannot be loaded "
                         f"({type(exc).__name__})")


def _secrets_file_problem(path: Path) -> str | None:
    """None when missing or fine (a folder of secrets is Streamlit's to check)."""
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


def settings() -> Settings:
    if "settings" not in st.session_state:
        st.session_state.settings = load_settings(_secrets())
    return st.session_state.settings


def auth() -> SupabaseAuth:
    """Per session: it carries the user's token."""
    if "auth" not in st.session_state:
        st.session_state.auth = SupabaseAuth(settings())
    return st.session_state.auth


SESSION_ENDED = "auth:ended"  # kept until the frame says it, wherever it was found
AUTH_OUTAGE = "auth:outage"  # said only in the run that found it


def current_user() -> User | None:
    """An ended session is None from now on, said once by the frame (`take_auth_notice`); an
    unreachable Auth keeps the user signed in: a short outage is not a sign-out."""
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
    """Work kept through an ended session goes back only to its user; another starts clean."""
    state = st.session_state
    owner = state.get(OWNER)
    if owner is not None and owner != user.id:
        for name in list(state.keys()):
            if name not in ("settings", "auth"):
                del state[name]
    state[OWNER] = user.id


def forget_old_outage() -> None:
    """An outage found earlier may be over now."""
    st.session_state.pop(AUTH_OUTAGE, None)


def take_auth_notice() -> str | None:
    ended = st.session_state.pop(SESSION_ENDED, None)
    outage = st.session_state.pop(AUTH_OUTAGE, None)
    return ended or outage


UNSENT = "chat:unsent"  # a chat message submitted in the run that found the session ended
UNSENT_WHY = "chat:unsent:why"  # why it was not sent, said with it


def keep_unsent_message(why: str = "your session had ended") -> bool:
    """The chat page is not drawn now: keep its submitted message to offer back later (the
    input's state is dropped at the end of this run). True when there was one."""
    value = st.session_state.get("chat:input")
    text = getattr(value, "text", value)  # the box takes files too: its words are kept
    if text:
        st.session_state[UNSENT] = text
        st.session_state[UNSENT_WHY] = why
    return bool(text)


def discard_unsent_message() -> None:
    st.session_state.pop(UNSENT, None)
    st.session_state.pop(UNSENT_WHY, None)


def sign_out() -> None:
    """Forgets everything this browser session held."""
    if "auth" in st.session_state:
        st.session_state.auth.sign_out()
    for name in list(st.session_state.keys()):
        if name != "settings":
            del st.session_state[name]
