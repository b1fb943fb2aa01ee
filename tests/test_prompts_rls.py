"""Row-level security, grants, CHECKs and the bound of `prompts` through the real PostgREST with
two real users, A (alice) and B (bob), and anonymous requests; every attempt over raw HTTP and
through supabase-py. Raw SQL (as the superuser) shows what is at rest."""

from __future__ import annotations

import uuid

import pytest
import supabase

from core.prompts.library import MAX_PROMPTS, SavedPrompt
from core.prompts.stores import SupabasePromptStore
from tests.test_history_rls import api_as  # noqa: F401 (a fixture)
from tests.test_rls import Account, Refused

ROW_SECURITY = NO_PRIVILEGE = "42501"
CHECK, UNIQUE = "23514", "23505"
PROMPTS_BOUND = "SB071"


def app_store(stack, account: Account) -> SupabasePromptStore:
    client = supabase.create_client(stack.url, stack.anon_key)
    client.auth.sign_in_with_password({"email": account.email, "password": account.password})
    return SupabasePromptStore(client, account.id)


def prompts_of(stack, user_id: str) -> list[dict]:
    return stack.sql("select * from public.prompts where user_id = %s order by id", user_id)


@pytest.fixture
def bobs(supabase_stack, bob) -> SavedPrompt:
    return app_store(supabase_stack, bob).add(SavedPrompt("Bob's review", "Review {{code}}"))


@pytest.fixture
def alices(supabase_stack, alice) -> SavedPrompt:
    return app_store(supabase_stack, alice).add(SavedPrompt("Alice's plan", "Plan {{trip}}"))


def test_a_user_reads_none_of_another_users_prompts(api_as, supabase_stack, alice, bob, bobs,
                                                    alices):
    as_alice = api_as(alice)
    assert [row["id"] for row in as_alice.select("prompts")] == [alices.id]
    assert as_alice.select("prompts", id=bobs.id) == []
    assert as_alice.select("prompts", user_id=bob.id) == []
    assert app_store(supabase_stack, alice).list() == [alices]
    assert [row["id"] for row in api_as(bob).select("prompts")] == [bobs.id]
    with pytest.raises(Refused) as refused:
        api_as(None).select("prompts")
    assert refused.value.code == NO_PRIVILEGE


def test_a_user_cannot_create_a_prompt_for_another_user(api_as, supabase_stack, alice, bob,
                                                        bobs):
    before = prompts_of(supabase_stack, bob.id)
    with pytest.raises(Refused) as refused:
        api_as(alice).insert("prompts", {"user_id": bob.id, "name": "planted", "text": "t"})
    assert refused.value.code == ROW_SECURITY
    with pytest.raises(Refused) as refused:
        api_as(None).insert("prompts", {"user_id": bob.id, "name": "planted", "text": "t"})
    assert refused.value.code == NO_PRIVILEGE
    assert prompts_of(supabase_stack, bob.id) == before
    assert prompts_of(supabase_stack, alice.id) == []


def test_a_user_cannot_change_or_delete_another_users_prompt(api_as, supabase_stack, alice,
                                                             bob, bobs):
    before = prompts_of(supabase_stack, bob.id)
    as_alice = api_as(alice)
    assert as_alice.update("prompts", {"text": "taken over"}, id=bobs.id) == []
    assert as_alice.update("prompts", {"name": "mine"}, user_id=bob.id) == []
    assert as_alice.delete("prompts", id=bobs.id) == []
    assert prompts_of(supabase_stack, bob.id) == before
    for anonymous in (lambda: api_as(None).update("prompts", {"text": "x"}, id=bobs.id),
                      lambda: api_as(None).delete("prompts", id=bobs.id)):
        with pytest.raises(Refused) as refused:
            anonymous()
        assert refused.value.code == NO_PRIVILEGE
    assert prompts_of(supabase_stack, bob.id) == before


def test_the_owner_writes_only_the_data_columns(api_as, supabase_stack, alice, bob, bobs):
    as_bob = api_as(bob)
    for values in ({"user_id": alice.id}, {"id": str(uuid.uuid4())},
                   {"created_at": "2020-01-01T00:00:00Z"}, {"updated_at": "2020-01-01T00:00:00Z"}):
        with pytest.raises(Refused) as refused:
            as_bob.update("prompts", values, id=bobs.id)
        assert refused.value.code == NO_PRIVILEGE
    [row] = as_bob.update("prompts", {"text": "Review {{code}} again", "temperature": 1.5},
                          id=bobs.id)
    assert (row["text"], row["temperature"], row["user_id"]) == (
        "Review {{code}} again", 1.5, bob.id)
    [at_rest] = prompts_of(supabase_stack, bob.id)
    assert at_rest["updated_at"] > at_rest["created_at"]  # moved by the database, not the user
    as_bob.delete("prompts", id=bobs.id)
    assert prompts_of(supabase_stack, bob.id) == []


@pytest.mark.parametrize("values", [
    {"name": "", "text": "t"}, {"name": "n" * 101, "text": "t"}, {"name": "n", "text": ""},
    {"name": "n", "text": "t" * 100_001}, {"name": "n", "text": "t", "model": "m" * 501},
    {"name": "n", "text": "t", "temperature": 2.5}, {"name": "n", "text": "t", "temperature": -1},
])
def test_the_database_refuses_what_breaks_a_rule(api_as, supabase_stack, bob, values):
    with pytest.raises(Refused) as refused:
        api_as(bob).insert("prompts", values)
    assert refused.value.code == CHECK
    assert prompts_of(supabase_stack, bob.id) == []


def test_names_are_unique_per_user_whatever_their_case(api_as, supabase_stack, alice, bob,
                                                       bobs):
    with pytest.raises(Refused) as refused:
        api_as(bob).insert("prompts", {"name": "BOB'S REVIEW", "text": "t"})
    assert refused.value.code == UNIQUE
    [row] = api_as(alice).insert("prompts", {"name": "Bob's review", "text": "hers"})
    assert row["user_id"] == alice.id


def test_each_user_keeps_at_most_the_bound(api_as, supabase_stack, alice, bob):
    supabase_stack.sql("insert into public.prompts (user_id, name, text) select %s, "
                       "'filler ' || i, 't' from generate_series(1, %s) as i",
                       bob.id, MAX_PROMPTS)
    with pytest.raises(Refused) as refused:
        api_as(bob).insert("prompts", {"name": "one more", "text": "t"})
    assert refused.value.code == PROMPTS_BOUND
    assert len(prompts_of(supabase_stack, bob.id)) == MAX_PROMPTS
    [row] = api_as(alice).insert("prompts", {"name": "one more", "text": "t"})
    assert row["user_id"] == alice.id
