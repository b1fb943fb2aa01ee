"""Saving the profile never puts a value in a request's URL: the Supabase store compares and
writes in one call of update_own_profile (supabase/migrations/
20261207063200_save_profile_in_one_call.sql), its values in the request body. A save used to
filter on each changed column's old value in the query string, so a key's ciphertext landed
in the app's log (httpx logs every request's URL) and would land in PostgREST's, proxies' and
the hosted API's.

The compare itself is unchanged, and the same in both stores: each changed column against
the value the page read, so two tabs saving different fields keep both (a key among them
too), and a field changed elsewhere since it was read is refused.
"""

from __future__ import annotations

import logging
import uuid

import httpx
import pytest
import supabase
from cryptography.fernet import Fernet

from core.auth import SupabaseAuth
from core.config import Settings
from core.providers.profile import Profile
from core.providers.seed import KEY_FIELDS
from core.store.errors import ProfileChanged
from core.store.keybox import EncryptedProfileStore, KeyBox
from core.store.supabase import SupabaseProfileStore
from tests.test_rls import Account, RawProfiles, new_account
from tests.test_store_contract import FULL, make_store  # noqa: F401 (a fixture)

PASSWORD = "correct horse battery"


class SignedIn:
    """One user of the stack, whose every `store()` is a new browser session."""

    def __init__(self, stack) -> None:
        self.settings = Settings(supabase_url=stack.url, supabase_anon_key=stack.anon_key)
        self.email = f"urls-{uuid.uuid4().hex[:12]}@example.com"
        self.id = SupabaseAuth(self.settings).sign_up(self.email, PASSWORD).id
        self.box = KeyBox([Fernet.generate_key().decode()])

    def store(self) -> EncryptedProfileStore:
        auth = SupabaseAuth(self.settings)
        auth.sign_in(self.email, PASSWORD)
        return EncryptedProfileStore(SupabaseProfileStore(auth.client, self.id), self.box)


def request_lines(caplog) -> list[str]:
    """What httpx logged of each request: its method and URL."""
    return [record.getMessage() for record in caplog.records
            if record.name == "httpx" and record.getMessage().startswith("HTTP Request:")]


def stored_keys(stack, user_id) -> list[str]:
    """The key columns as stored: ciphertext, whatever its form."""
    [row] = stack.sql(f"select {', '.join(KEY_FIELDS)} from public.profiles"
                      " where user_id = %s", user_id)
    return [value for value in row.values() if value]


def test_no_request_url_of_a_save_holds_a_key_or_its_ciphertext(supabase_stack, caplog):
    caplog.set_level(logging.INFO, logger="httpx")
    user = SignedIn(supabase_stack)
    ciphertexts: set[str] = set()
    plain = {FULL.openai_api_key, FULL.openai_compatible_api_key}

    def saved(store, profile) -> None:
        store.save(profile)
        ciphertexts.update(stored_keys(supabase_stack, user.id))

    store = user.store()
    saved(store, FULL)  # over the empty row a new user has
    changed_key = "sk-changed-0123456789abcdef"
    plain.add(changed_key)
    saved(store, store.load().with_changes(openai_api_key=changed_key))  # compared on a key
    one, two = user.store(), user.store()
    shown_one, shown_two = one.load(), two.load()
    saved(one, shown_one.with_changes(openai_compatible_model_name="from-tab-one"))
    other_key = "sk-from-tab-two-0123456789"
    plain.add(other_key)
    saved(two, shown_two.with_changes(openai_compatible_api_key=other_key))
    store = user.store()
    store.save(store.load().with_changes(openai_api_key=""), remove_keys=("openai_api_key",))

    lines = request_lines(caplog)
    assert len(ciphertexts) >= 3
    for line in lines:
        for secret in ciphertexts | plain:
            assert secret[:24] not in line, line
    assert any("POST" in line and "/rest/v1/rpc/update_own_profile" in line for line in lines)
    assert user.store().load() == FULL.with_changes(
        openai_api_key="", openai_compatible_api_key=other_key,
        openai_compatible_model_name="from-tab-one")


# ---- the compare: each changed column, a key among them, in both stores -------------------


def test_two_tabs_saving_a_key_and_another_field_keep_both(make_store):  # noqa: F811
    make_store().save(FULL)
    one, two = make_store(), make_store()
    shown_one, shown_two = one.load(), two.load()
    one.save(shown_one.with_changes(openai_compatible_model_name="from-tab-one"))
    two.save(shown_two.with_changes(openai_compatible_api_key="sk-from-tab-two-0001"))
    assert make_store().load() == FULL.with_changes(
        openai_compatible_model_name="from-tab-one",
        openai_compatible_api_key="sk-from-tab-two-0001")


def test_a_key_changed_in_another_tab_refuses_the_second_save_of_it(make_store):  # noqa: F811
    make_store().save(FULL)
    one, two = make_store(), make_store()
    shown_one, shown_two = one.load(), two.load()
    one.save(shown_one.with_changes(openai_api_key="sk-from-tab-one-0001"))
    with pytest.raises(ProfileChanged):
        two.save(shown_two.with_changes(openai_api_key="sk-from-tab-two-0002",
                                        display_name="Two"))
    assert make_store().load() == FULL.with_changes(openai_api_key="sk-from-tab-one-0001")


# ---- update_own_profile through the REST API ----------------------------------------------


def call(stack, account: Account | None, changes: dict, expected: dict) -> httpx.Response:
    headers = {"apikey": stack.anon_key}
    if account is not None:
        headers["Authorization"] = f"Bearer {account.access_token}"
    return httpx.post(f"{stack.url}/rest/v1/rpc/update_own_profile", headers=headers,
                      json={"changes": changes, "expected": expected})


def profile_of(stack, user_id) -> dict:
    [row] = stack.sql("select * from public.profiles where user_id = %s", user_id)
    return row


def test_the_call_writes_only_over_what_was_read(supabase_stack, alice):
    RawProfiles(supabase_stack, alice.access_token).update(alice.id, {"display_name": "Ada"})

    stale = call(supabase_stack, alice, {"display_name": "Bea"}, {"display_name": "Old"})
    fresh = call(supabase_stack, alice, {"display_name": "Bea", "openai_compatible_model_name":
                                         "q"}, {"display_name": "Ada"})

    assert (stale.status_code, stale.json()) == (200, [])
    assert fresh.status_code == 200
    [row] = fresh.json()
    assert (row["display_name"], row["openai_compatible_model_name"]) == ("Bea", "q")
    assert profile_of(supabase_stack, alice.id)["display_name"] == "Bea"


def test_the_call_changes_only_the_callers_data_columns(supabase_stack, alice, bob):
    bobs = profile_of(supabase_stack, bob.id)
    alices = profile_of(supabase_stack, alice.id)

    for changes in ({"user_id": bob.id}, {"updated_at": "2000-01-01T00:00:00Z"},
                    {"id": str(uuid.uuid4())}):
        response = call(supabase_stack, alice, changes, {})
        assert response.status_code >= 400, response.text
    # A column name is an identifier, never SQL: this names no column.
    injected = call(supabase_stack, alice, {"display_name = 'x', openai_api_key": "y"}, {})
    assert injected.status_code >= 400
    assert injected.json()["code"] == "42703"  # undefined column
    anonymous = call(supabase_stack, None, {"display_name": "anon"}, {})
    assert anonymous.status_code in (401, 403) and anonymous.json()["code"] == "42501"

    assert profile_of(supabase_stack, bob.id) == bobs
    assert profile_of(supabase_stack, alice.id) == alices


def test_the_call_runs_as_its_caller_and_only_signed_in_users_may_make_it(supabase_stack):
    [function] = supabase_stack.sql(
        "select prosecdef, proconfig from pg_proc"
        " where oid = 'public.update_own_profile(jsonb, jsonb)'::regprocedure")
    assert function == {"prosecdef": False, "proconfig": ['search_path=""']}
    for role in ("anon", "authenticated", "public"):
        [row] = supabase_stack.sql(
            "select has_function_privilege(%s, 'public.update_own_profile(jsonb, jsonb)',"
            " 'execute') as allowed", role)
        assert row["allowed"] is (role == "authenticated"), role


def test_the_app_still_creates_a_missing_profile(supabase_stack):
    """A user whose profile row is gone (the sign-up trigger never made it): the save finds
    no row to compare and creates it, as before."""
    account = new_account(supabase_stack)
    supabase_stack.sql("delete from public.profiles where user_id = %s", account.id)
    client = supabase.create_client(supabase_stack.url, supabase_stack.anon_key)
    client.auth.sign_in_with_password({"email": account.email, "password": account.password})
    store = EncryptedProfileStore(SupabaseProfileStore(client, account.id),
                                  KeyBox([Fernet.generate_key().decode()]))

    saved = store.save(Profile(display_name="Carol", openai_api_key="sk-carol-0123456789"))

    assert saved == store.load() == Profile(display_name="Carol",
                                            openai_api_key="sk-carol-0123456789")
