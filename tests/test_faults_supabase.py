"""Faults of the hosted backend, injected for real on a stack of its own (`fault_stack`):
PostgREST, PostgreSQL and the auth stand-in stopped and started, and a session revoked.

Each test checks the message (an outage says unavailable and try again, never "refused", never
a raw "[Errno ...]"), that the session and everything saved are kept, and that it all works
again once the part is back. Every part is running again after each test, even a failed one.
"""

from __future__ import annotations

import time
import uuid

import pytest
from cryptography.fernet import Fernet

from core.auth import SupabaseAuth
from core.config import Settings
from core.auth import AuthUnavailable, SessionEnded
from core.store.errors import StoreUnavailable
from core.failures import UserFacingError
from core.store.keybox import EncryptedProfileStore, KeyBox
from core.providers.profile import Profile
from core.store.supabase import SupabaseProfileStore
from tests.supabase_stack.stack import Stack

PASSWORD = "correct horse battery"
SECRET = Fernet.generate_key().decode()
SAVED = Profile(
    display_name="Ada",
    openai_compatible_api_key="sk-hosted-0123456789abcdef",
    openai_compatible_base_url="https://models.example.com/v1",
    openai_compatible_model_name="qwen2.5:7b",
)
RECOVERY_SECONDS = 60  # PostgREST reconnects to PostgreSQL with a growing back-off


@pytest.fixture
def stack(fault_stack_restored: Stack):
    return fault_stack_restored


class Session:
    """One browser session of a signed-in user: its own auth client and profile store."""

    def __init__(self, stack: Stack, email: str, secret: str = SECRET):
        self.settings = Settings(supabase_url=stack.url, supabase_anon_key=stack.anon_key)
        self.auth = SupabaseAuth(self.settings)
        self.user = self.auth.sign_in(email, PASSWORD)
        self.store = EncryptedProfileStore(
            SupabaseProfileStore(self.auth.client, self.user.id), KeyBox([secret]))

    def load(self) -> Profile:
        self.auth.current_user()  # as the frame does first on every run: renews the token
        return self.store.load()


def new_user(stack: Stack) -> str:
    email = f"fault-{uuid.uuid4().hex[:12]}@example.com"
    SupabaseAuth(Settings(supabase_url=stack.url, supabase_anon_key=stack.anon_key)
                 ).sign_up(email, PASSWORD)
    return email


def assert_outage(message: str) -> None:
    assert "unavailable" in message and "try again" in message, message
    assert "refused" not in message and "Errno" not in message, message


def wait_until_it_works(action):
    """Recovery: `action` succeeds once the part is back (PostgREST reconnects by itself)."""
    deadline = time.monotonic() + RECOVERY_SECONDS
    while True:
        try:
            return action()
        except UserFacingError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


PARTS = {
    "postgrest": ("stop_postgrest", "start_postgrest"),
    "postgresql": ("stop_postgres", "start_postgres"),
    "gateway-and-auth": ("stop_gateway", "start_gateway"),
}


@pytest.mark.parametrize("part", list(PARTS))
def test_a_stopped_part_is_said_as_an_outage_loses_nothing_and_recovers(stack, part):
    session = Session(stack, new_user(stack))
    session.load()
    session.store.save(SAVED)
    changed = SAVED.with_changes(openai_compatible_model_name="llama3")
    stop, start = (getattr(stack, name) for name in PARTS[part])

    stop()
    with pytest.raises(StoreUnavailable) as on_read:
        session.store.load()
    with pytest.raises(StoreUnavailable) as on_save:
        session.store.save(changed)
    assert on_read.value.kind == on_save.value.kind == "outage"
    assert_outage(str(on_read.value))
    assert_outage(str(on_save.value))
    if part != "postgrest":  # Auth itself is down: the session is kept, not ended
        with pytest.raises(AuthUnavailable) as renewing:
            session.auth.current_user()
        assert_outage(str(renewing.value))
        assert renewing.value.user == session.user
    start()

    assert wait_until_it_works(session.load) == SAVED  # nothing saved was lost
    assert session.auth.current_user() == session.user  # still signed in
    session.store.save(changed)
    assert Session(stack, session.user.email).load() == changed


def test_a_revoked_session_ends_with_a_message_and_signing_in_again_finds_everything(stack):
    email = new_user(stack)
    session = Session(stack, email)
    session.load()
    session.store.save(SAVED)
    elsewhere = Session(stack, email)
    elsewhere.auth.sign_out()  # "sign out everywhere": the server revokes every session

    with pytest.raises(SessionEnded) as ended:
        session.auth.current_user()
    assert str(ended.value) == "Your session has ended. Please sign in again."
    assert session.auth.current_user() is None  # forgotten here: the sign-in page is next
    assert Session(stack, email).load() == SAVED


def test_a_revoked_refresh_token_in_the_auth_database_ends_the_session(stack):
    session = Session(stack, new_user(stack))
    session.load()
    stack.sql("update auth.refresh_tokens set revoked = true where user_id = %s",
              uuid.UUID(session.user.id))
    with pytest.raises(SessionEnded):
        session.auth.current_user()
    assert session.auth.current_user() is None
