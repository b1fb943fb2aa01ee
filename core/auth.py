"""Sign-up, sign-in and sign-out against Supabase Auth, one client per browser session."""

from __future__ import annotations

from dataclasses import dataclass

from supabase import ClientOptions, create_client

from core.config import Settings
from core.errors import UserFacingError, describe_auth_error

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
        """The signed-in user, refreshing an expired session; None once it cannot be."""
        try:
            session = self.client.auth.get_session()
        except Exception:  # a refresh token that was revoked or expired: sign in again
            return None
        if session is None or session.user is None:
            return None
        return User(session.user.id, session.user.email or "")

    def sign_out(self) -> None:
        try:
            self.client.auth.sign_out()
        except Exception:  # the local session is dropped whatever the server says
            pass
