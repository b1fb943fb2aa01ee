"""Sign-up, sign-in and sign-out against Supabase Auth, one client per browser session."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from supabase import ClientOptions, create_client
from supabase_auth.errors import AuthApiError, AuthError, AuthRetryableError

from core.store.answering import STORE_TIMEOUT
from core.config import Settings
from core.failures import UserFacingError, ours
from core.redaction import collapse, redact

logger = logging.getLogger(__name__)

MIN_PASSWORD_LENGTH = 8


_AUTH_MESSAGES = {
    "invalid_credentials": "Wrong email or password.",
    "user_already_exists": "An account with this email already exists. Sign in instead.",
    "email_exists": "An account with this email already exists. Sign in instead.",
    "weak_password": "That password is too weak: choose a longer one.",
    "email_not_confirmed": "Please confirm your email address first (see your inbox).",
    "over_request_rate_limit": "Too many attempts: wait a minute and try again.",
    "validation_failed": "Please check the email address and password.",
    "session_not_found": "Your session has ended. Please sign in again.",
    "refresh_token_not_found": "Your session has ended. Please sign in again.",
}


class SessionEnded(UserFacingError):
    """Revoked, expired or signed out elsewhere; raised once, the session forgotten here."""

    def __init__(self) -> None:
        super().__init__("Your session has ended. Please sign in again.")


class AuthUnavailable(UserFacingError):
    """The session is kept: the next try may succeed. `user`: who was signed in, if known."""

    def __init__(self, user=None) -> None:
        super().__init__(AUTH_UNAVAILABLE if user is None else STILL_SIGNED_IN)
        self.user = user


AUTH_UNAVAILABLE = "The sign-in service is unavailable right now; please try again in a moment."
# Said only to someone who was signed in: nobody else is.
STILL_SIGNED_IN = ("The sign-in service is unavailable right now. You are still signed in; "
                   "please try again in a moment.")


def is_auth_outage(exc: BaseException) -> bool:
    """5xx, 429, network, an unreadable answer; not a refusal, nor a non-Auth exception."""
    if isinstance(exc, AuthRetryableError):  # connection failures and gateway statuses
        return True
    if isinstance(exc, AuthApiError):
        return exc.status >= 500 or exc.status == 429
    # An answer supabase-auth could not read (a proxy's HTML 500) carries no status.
    return isinstance(exc, AuthError) and getattr(exc, "status", None) is None


def describe_auth_error(exc: AuthError) -> str:
    """HTTP and transport failures arrive as AuthError too."""
    code = getattr(exc, "code", None)
    if code in _AUTH_MESSAGES:
        message = _AUTH_MESSAGES[code]
        said = getattr(exc, "message", "")
        if code == "weak_password" and said:
            message += f" ({collapse(said)})"
        return message
    if is_auth_outage(exc):
        logger.warning("Supabase Auth unavailable: %s", redact(repr(exc)))
        return AUTH_UNAVAILABLE
    said = getattr(exc, "message", None) or str(exc)
    return redact(f"The sign-in service refused the request: {collapse(said)}")


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
    """One per browser session: never share it between sessions."""

    def __init__(self, settings: Settings):
        # Refreshed on demand by current_user(), no timer per session; a database silent for
        # STORE_TIMEOUT is said down at once, without retries pausing 1, 2, 4 s.
        options = ClientOptions(auto_refresh_token=False, persist_session=True,
                                postgrest_client_timeout=STORE_TIMEOUT,
                                postgrest_client_retry=False)
        self.client = create_client(settings.supabase_url, settings.supabase_anon_key, options)
        self.last_user: User | None = None  # who current_user() last found signed in

    def _call(self, action, *args):
        try:
            return action(*args)
        except AuthError as exc:
            raise UserFacingError(describe_auth_error(exc)) from exc
        except Exception as exc:  # anything else is our bug
            raise ours(exc) from exc

    def sign_up(self, email: str, password: str) -> User:
        email, password = _check_credentials(email, password)
        if len(password) < MIN_PASSWORD_LENGTH:
            raise UserFacingError(
                f"Please choose a password of at least {MIN_PASSWORD_LENGTH} characters.")
        response = self._call(self.client.auth.sign_up, {"email": email, "password": password})
        if response.session is None:  # the project asks users to confirm their email
            raise UserFacingError("Account created. Check your email to confirm it, then sign in.")
        return User(response.user.id, response.user.email or email)

    def sign_in(self, email: str, password: str) -> User:
        email, password = _check_credentials(email, password)
        response = self._call(
            self.client.auth.sign_in_with_password, {"email": email, "password": password}
        )
        return User(response.user.id, response.user.email or email)

    def current_user(self) -> User | None:
        """Refreshes an expired session. SessionEnded when Auth refuses to renew it;
        AuthUnavailable when unreachable (kept: a short outage is not a sign-out)."""
        try:
            session = self.client.auth.get_session()
        except AuthError as exc:  # what the refresh raised: an outage, or the session is over
            if is_auth_outage(exc):
                logger.warning("Could not renew a session: %s", redact(repr(exc)))
                raise AuthUnavailable(self.last_user) from exc
            self._forget_session()
            raise SessionEnded() from exc
        except Exception as exc:
            raise ours(exc) from exc
        if session is None or session.user is None:
            self.last_user = None
            return None
        self.last_user = User(session.user.id, session.user.email or "")
        return self.last_user

    def _forget_session(self) -> None:
        try:
            self.client.auth.sign_out({"scope": "local"})  # removes it here, whatever Auth says
        except AuthError:
            logger.info("Forgetting an ended session raised; it is dropped anyway")
        except Exception as exc:
            raise ours(exc) from exc

    def sign_out(self) -> None:
        """On the server; when Auth is unreachable or refuses, at least here."""
        try:
            self.client.auth.sign_out()
        except AuthError:
            self._forget_session()
        except Exception as exc:
            raise ours(exc) from exc
