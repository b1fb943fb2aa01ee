"""Sign-up, sign-in and sign-out against Supabase Auth, one client per browser session."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from supabase import ClientOptions, create_client

from core.config import Settings
from core.errors import (
    AuthUnavailable,
    SessionEnded,
    UserFacingError,
    describe_auth_error,
    is_auth_outage,
    redact,
)

logger = logging.getLogger(__name__)

MIN_PASSWORD_LENGTH = 8


@dataclass(frozen=True)
class User:
    id: str
    email: str


def _check_credentials(email: str, password: str) -> tuple[str, str]:
    email = email.strip()
    if "@" not in email or email.startswith("@") or email.endswith("@") or " " in email:
        raise UserFacingError("Please enter a valid email address.")
    if not password:
        raise UserFacingError("Please enter your password.")
    return email, password


class SupabaseAuth:
    """A supabase-py client for one browser session: never share it between sessions."""

    def __init__(self, settings: Settings):
        # Refreshed on demand by current_user(); no background timer per session.
        options = ClientOptions(auto_refresh_token=False, persist_session=True)
        self.client = create_client(settings.supabase_url, settings.supabase_anon_key, options)
        self.last_user: User | None = None  # who current_user() last found signed in

    def _call(self, action, *args):
        try:
            return action(*args)
        except UserFacingError:
            raise
        except Exception as exc:
            raise UserFacingError(describe_auth_error(exc)) from exc

    def sign_up(self, email: str, password: str) -> User:
        email, password = _check_credentials(email, password)
        if len(password) < MIN_PASSWORD_LENGTH:
            raise UserFacingError(
                f"Please choose a password of at least {MIN_PASSWORD_LENGTH} characters."
            )
        response = self._call(
            self.client.auth.sign_up, {"email": email, "password": password}
        )
        if response.session is None:  # the project asks users to confirm their email
            raise UserFacingError(
                "Account created. Check your email to confirm it, then sign in."
            )
        return User(response.user.id, response.user.email or email)

    def sign_in(self, email: str, password: str) -> User:
        email, password = _check_credentials(email, password)
        response = self._call(
            self.client.auth.sign_in_with_password, {"email": email, "password": password}
        )
        return User(response.user.id, response.user.email or email)

    def current_user(self) -> User | None:
        """The signed-in user, refreshing an expired session; None when nobody is signed in.

        Raises SessionEnded when Auth refuses to renew the session (revoked, expired, signed
        out elsewhere): it is forgotten here, and the next call returns None. Raises
        AuthUnavailable when Auth cannot be reached or fails: the session is kept, so a short
        outage is not a sign-out, and the next call tries again.
        """
        try:
            session = self.client.auth.get_session()
        except Exception as exc:  # whatever the refresh raised: sorted below, never passed on
            if is_auth_outage(exc):
                logger.warning("Could not renew a session: %s", redact(repr(exc)))
                raise AuthUnavailable(self.last_user) from exc
            self._forget_session()
            raise SessionEnded() from exc
        if session is None or session.user is None:
            self.last_user = None
            return None
        self.last_user = User(session.user.id, session.user.email or "")
        return self.last_user

    def _forget_session(self) -> None:
        try:
            self.client.auth.sign_out({"scope": "local"})  # removes it here; no request needed
        except Exception:
            logger.info("Forgetting an ended session raised; it is dropped anyway")

    def sign_out(self) -> None:
        """End the session on the server; when Auth is unreachable, at least here."""
        try:
            self.client.auth.sign_out()
        except Exception:
            self._forget_session()
