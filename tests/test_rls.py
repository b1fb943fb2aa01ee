"""Row-level security and column grants on profiles through the real REST API (issue 3,
acceptance 3; issue 8), and sign-up / sign-in through supabase-py against the stack's auth
stand-in.

Every RLS test runs twice: over raw HTTP to `/rest/v1/profiles`, and through supabase-py.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import httpx
import postgrest
import pytest
import supabase
from supabase_auth.errors import AuthApiError, AuthWeakPasswordError

from core.providers.profile import Profile
from core.store.supabase import SupabaseProfileStore

PASSWORD = "correct horse battery"


@dataclass(frozen=True)
class Account:
    id: str
    email: str
    password: str
    access_token: str


class Refused(Exception):
    """PostgREST said no; `code` is its error code (a SQLSTATE such as 42501)."""

    def __init__(self, code: str | None) -> None:
        super().__init__(code)
        self.code = code


class RawProfiles:
    """`/rest/v1/profiles` over plain HTTP, as the user whose token it holds (None: anonymous)."""

    def __init__(self, stack, access_token: str | None) -> None:
        self.headers = {"apikey": stack.anon_key, "Prefer": "return=representation"}
        if access_token:
            self.headers["Authorization"] = f"Bearer {access_token}"
        self.url = f"{stack.url}/rest/v1/profiles"

    def select(self, user_id: str | None = None) -> list[dict]:
        return self._send("GET", params=owner_filter(user_id))

    def update(self, user_id: str, values: dict) -> list[dict]:
        return self._send("PATCH", params=owner_filter(user_id), json=values)

    def insert(self, values: dict) -> list[dict]:
        return self._send("POST", json=values)

    def delete(self, user_id: str) -> list[dict]:
        return self._send("DELETE", params=owner_filter(user_id))

    def _send(self, method: str, **request) -> list[dict]:
        response = httpx.request(method, self.url, headers=self.headers, **request)
        if response.status_code >= 400:
            raise Refused(response.json().get("code"))
        return response.json()


class SupabasePyProfiles:
    """The same operations through supabase-py, signed in as the account (None: anonymous)."""

    def __init__(self, stack, account: Account | None) -> None:
        self.client = supabase.create_client(stack.url, stack.anon_key)
        if account:
            self.client.auth.sign_in_with_password(
                {"email": account.email, "password": account.password}
            )

    def select(self, user_id: str | None = None) -> list[dict]:
        query = self.client.table("profiles").select("*")
        return self._run(query.eq("user_id", user_id) if user_id else query)

    def update(self, user_id: str, values: dict) -> list[dict]:
        return self._run(self.client.table("profiles").update(values).eq("user_id", user_id))

    def insert(self, values: dict) -> list[dict]:
        return self._run(self.client.table("profiles").insert(values))

    def delete(self, user_id: str) -> list[dict]:
        return self._run(self.client.table("profiles").delete().eq("user_id", user_id))

    @staticmethod
    def _run(query) -> list[dict]:
        try:
            return query.execute().data
        except postgrest.APIError as error:
            raise Refused(error.code) from error


def owner_filter(user_id: str | None) -> dict:
    return {"user_id": f"eq.{user_id}"} if user_id else {}


def new_email() -> str:
    return f"user-{uuid.uuid4().hex[:12]}@example.com"


def sign_up(stack, email: str | None = None, password: str = PASSWORD) -> httpx.Response:
    return httpx.post(
        f"{stack.url}/auth/v1/signup",
        json={"email": email or new_email(), "password": password},
        headers={"apikey": stack.anon_key, "X-Supabase-Api-Version": "2024-01-01"},
    )


def new_account(stack) -> Account:
    email = new_email()
    session = sign_up(stack, email).raise_for_status().json()
    return Account(session["user"]["id"], email, PASSWORD, session["access_token"])


def stored_profile(stack, user_id: str) -> dict | None:
    rows = stack.sql("select * from public.profiles where user_id = %s", user_id)
    return rows[0] if rows else None


@pytest.fixture
def carol(supabase_stack) -> Account:
    """A user whose profile is gone, so only security (not uniqueness) can stop a write."""
    account = new_account(supabase_stack)
    supabase_stack.sql("delete from public.profiles where user_id = %s", account.id)
    return account


@pytest.fixture(params=["raw HTTP", "supabase-py"])
def profiles_as(request, supabase_stack):
    """Open the profiles table as an account (or None for anonymous) over one transport."""
    if request.param == "raw HTTP":
        return lambda account: RawProfiles(supabase_stack, account and account.access_token)
    return lambda account: SupabasePyProfiles(supabase_stack, account)


# ---- row-level security -----------------------------------------------------------------------


def test_a_user_reads_their_own_profile_and_no_other(profiles_as, alice, bob):
    as_alice = profiles_as(alice)

    assert [row["user_id"] for row in as_alice.select()] == [alice.id]
    assert as_alice.select(bob.id) == []


def test_a_user_updates_their_own_profile(profiles_as, supabase_stack, alice):
    before = stored_profile(supabase_stack, alice.id)

    [row] = profiles_as(alice).update(alice.id, {"openai_compatible_base_url": "http://h:1/v1"})

    assert row["openai_compatible_base_url"] == "http://h:1/v1"
    assert stored_profile(supabase_stack, alice.id)["updated_at"] > before["updated_at"]


def test_a_user_cannot_update_another_users_profile(profiles_as, supabase_stack, alice, bob):
    before = stored_profile(supabase_stack, bob.id)

    assert profiles_as(alice).update(bob.id, {"display_name": "taken over"}) == []
    assert stored_profile(supabase_stack, bob.id) == before


def test_a_user_cannot_delete_another_users_profile(profiles_as, supabase_stack, alice, bob):
    assert profiles_as(alice).delete(bob.id) == []
    assert stored_profile(supabase_stack, bob.id) is not None


@pytest.mark.parametrize("victim", ["bob", "carol"])
def test_a_user_cannot_create_a_profile_for_another_user(
    profiles_as, supabase_stack, alice, victim, request
):
    target = request.getfixturevalue(victim)
    before = stored_profile(supabase_stack, target.id)

    with pytest.raises(Refused) as refused:
        profiles_as(alice).insert({"user_id": target.id, "display_name": "planted"})

    assert refused.value.code == "42501"  # new row violates row-level security policy
    assert stored_profile(supabase_stack, target.id) == before


@pytest.mark.parametrize("victim", ["bob", "carol"])
def test_a_user_cannot_move_their_profile_to_another_user(
    profiles_as, supabase_stack, alice, victim, request
):
    target = request.getfixturevalue(victim)
    before = stored_profile(supabase_stack, alice.id), stored_profile(supabase_stack, target.id)

    with pytest.raises(Refused):
        profiles_as(alice).update(alice.id, {"user_id": target.id})

    after = stored_profile(supabase_stack, alice.id), stored_profile(supabase_stack, target.id)
    assert after == before


def test_an_over_long_value_refuses_the_whole_update(profiles_as, supabase_stack, alice):
    before = stored_profile(supabase_stack, alice.id)

    with pytest.raises(Refused) as refused:
        profiles_as(alice).update(alice.id, {"display_name": "Ada",
                                             "openai_compatible_model_name": "m" * 1001})

    assert refused.value.code == "23514"  # check_violation
    assert stored_profile(supabase_stack, alice.id) == before


def test_anonymous_requests_see_no_profile(profiles_as, alice):
    anonymous = profiles_as(None)

    for attempt in (anonymous.select, lambda: anonymous.select(alice.id)):
        with pytest.raises(Refused) as refused:
            attempt()
        assert refused.value.code == "42501"  # anon holds no privilege on profiles
    with pytest.raises(Refused):
        anonymous.update(alice.id, {"display_name": "anonymous"})


def test_requests_without_the_api_key_are_refused(supabase_stack, alice):
    response = httpx.get(f"{supabase_stack.url}/rest/v1/profiles",
                         headers={"Authorization": f"Bearer {alice.access_token}"})
    assert response.status_code == 401


# ---- sign-up and sign-in through supabase-py ----------------------------------------------


@pytest.fixture
def client(supabase_stack) -> supabase.Client:
    return supabase.create_client(supabase_stack.url, supabase_stack.anon_key)


def test_sign_up_creates_one_user_with_one_profile_and_signs_in(client, supabase_stack):
    email = new_email()

    response = client.auth.sign_up({"email": email, "password": PASSWORD})

    assert response.user.email == email
    assert response.session is not None
    assert len(supabase_stack.sql("select 1 from auth.users where email = %s", email)) == 1
    [row] = client.table("profiles").select("*").execute().data
    assert row["user_id"] == response.user.id
    assert row["openai_compatible_model_name"] == ""


def test_sign_in_reaches_the_users_own_profile(client, alice):
    response = client.auth.sign_in_with_password({"email": alice.email, "password": PASSWORD})

    assert response.user.id == alice.id
    assert client.auth.get_user().user.email == alice.email
    assert [row["user_id"] for row in client.table("profiles").select("*").execute().data] == [
        alice.id
    ]


def test_a_wrong_password_is_refused(client, alice):
    with pytest.raises(AuthApiError) as refused:
        client.auth.sign_in_with_password({"email": alice.email, "password": "not it"})
    assert (refused.value.code, refused.value.status) == ("invalid_credentials", 400)
    assert refused.value.message == "Invalid login credentials"


def test_an_existing_email_is_refused(client, alice):
    with pytest.raises(AuthApiError) as refused:
        client.auth.sign_up({"email": alice.email, "password": PASSWORD})
    assert (refused.value.code, refused.value.status) == ("user_already_exists", 422)


def test_a_weak_password_is_refused(client, supabase_stack):
    email = new_email()
    with pytest.raises(AuthWeakPasswordError) as refused:
        client.auth.sign_up({"email": email, "password": "12345"})
    assert (refused.value.code, refused.value.status) == ("weak_password", 422)
    assert refused.value.reasons == ["length"]
    assert supabase_stack.sql("select 1 from auth.users where email = %s", email) == []


def test_a_malformed_email_is_refused(client):
    with pytest.raises(AuthApiError) as refused:
        client.auth.sign_up({"email": "not-an-email", "password": PASSWORD})
    assert refused.value.code == "validation_failed"


def test_refresh_session_rotates_the_tokens(client, alice):
    first = client.auth.sign_in_with_password({"email": alice.email, "password": PASSWORD})

    second = client.auth.refresh_session()

    assert second.session.refresh_token != first.session.refresh_token
    assert second.user.id == alice.id
    assert len(client.table("profiles").select("*").execute().data) == 1
    with pytest.raises(AuthApiError) as reused:
        client.auth.refresh_session(first.session.refresh_token)
    assert reused.value.code == "refresh_token_already_used"


def test_sign_out_ends_the_session(client, alice):
    session = client.auth.sign_in_with_password(
        {"email": alice.email, "password": PASSWORD}
    ).session

    client.auth.sign_out()

    assert client.auth.get_session() is None
    with pytest.raises(AuthApiError) as refused:
        client.auth.get_user(session.access_token)
    assert refused.value.code == "session_not_found"
    with pytest.raises(AuthApiError) as refused:
        client.auth.refresh_session(session.refresh_token)
    assert refused.value.code == "refresh_token_not_found"


# ---- column grants and trigger functions (20261126004831_harden_grants.sql) ----------------

NOT_USER_DATA = {
    "id": lambda account: str(uuid.uuid4()),
    "user_id": lambda account: account.id,  # even unchanged: the owner is not a data column
    "created_at": lambda account: "2000-01-01T00:00:00+00:00",
    "updated_at": lambda account: "2000-01-01T00:00:00+00:00",
}


@pytest.mark.parametrize("column", sorted(NOT_USER_DATA))
def test_a_user_cannot_rewrite_the_bookkeeping_columns_of_their_own_row(
    profiles_as, supabase_stack, alice, column
):
    before = stored_profile(supabase_stack, alice.id)

    with pytest.raises(Refused) as refused:
        profiles_as(alice).update(alice.id, {"display_name": "Ada",
                                             column: NOT_USER_DATA[column](alice)})

    assert refused.value.code == "42501"  # permission denied for table profiles
    assert stored_profile(supabase_stack, alice.id) == before


@pytest.mark.parametrize("column", ["id", "created_at", "updated_at"])
def test_a_user_cannot_choose_the_bookkeeping_columns_of_a_row_they_create(
    profiles_as, supabase_stack, carol, column
):
    with pytest.raises(Refused) as refused:
        profiles_as(carol).insert({"user_id": carol.id, column: NOT_USER_DATA[column](carol)})

    assert refused.value.code == "42501"
    assert stored_profile(supabase_stack, carol.id) is None
    [row] = profiles_as(carol).insert({"user_id": carol.id, "display_name": "Carol"})
    assert row["display_name"] == "Carol"  # the data columns stay writable


def test_the_app_recreates_a_missing_profile_as_its_user(supabase_stack, carol):
    """SupabaseProfileStore's insert-if-missing path, through the column grants."""
    client = supabase.create_client(supabase_stack.url, supabase_stack.anon_key)
    client.auth.sign_in_with_password({"email": carol.email, "password": carol.password})
    store = SupabaseProfileStore(client, carol.id)

    saved = store.update({"display_name": "Carol", "openai_compatible_model_name": "qwen"}, None)

    assert saved == store.load() == Profile(display_name="Carol",
                                            openai_compatible_model_name="qwen")
    assert stored_profile(supabase_stack, carol.id)["user_id"] == uuid.UUID(carol.id)


@pytest.mark.parametrize("function", ["set_updated_at", "keep_profile_owner", "handle_new_user"])
@pytest.mark.parametrize("caller", ["alice", "anonymous"])
def test_the_trigger_functions_cannot_be_called_through_the_api(
    supabase_stack, alice, function, caller
):
    headers = {"apikey": supabase_stack.anon_key}
    if caller == "alice":
        headers["Authorization"] = f"Bearer {alice.access_token}"
    before = stored_profile(supabase_stack, alice.id)
    url = f"{supabase_stack.url}/rest/v1/rpc/{function}"

    for response in (httpx.post(url, headers=headers, json={}), httpx.get(url, headers=headers)):
        assert response.status_code in (401, 403, 404), response.text
        assert response.json()["code"] in ("42501", "PGRST202")  # denied, or not exposed at all
    assert stored_profile(supabase_stack, alice.id) == before
