"""The app in Supabase mode, in AppTest, on the real stack (PostgreSQL + PostgREST + auth).

Sign-up through the page creates the auth user and, by the trigger, one profile; settings
are saved encrypted, survive sign-out and sign-in, and drive a chat against a real server.
"""

from __future__ import annotations

import uuid

import pytest

from core.store.keybox import BOUND_PREFIX
from tests.apptest import compatible, navigation, open_app, shown_text
from tests.chatting import chat_messages, errors, send

PASSWORD = "a long enough password"


def _email() -> str:
    return f"user-{uuid.uuid4().hex[:10]}@example.com"


def _page_titles(at) -> list[str]:
    return [t.value for t in at.title]


def sign_up(email: str, password: str = PASSWORD):
    at = open_app()
    assert _page_titles(at) == ["Sign in"]
    at.switch_page("pages/sign_up.py").run()
    at.text_input(key="sign_up:email").set_value(email)
    at.text_input(key="sign_up:password").set_value(password)
    at.button[0].click().run()
    assert not at.exception, at.exception
    return at


def sign_in(at, email: str, password: str = PASSWORD):
    at.text_input(key="sign_in:email").set_value(email)
    at.text_input(key="sign_in:password").set_value(password)
    at.button[0].click().run()
    assert not at.exception, at.exception
    return at


def test_only_the_sign_in_pages_are_shown_until_signed_in(supabase_mode):
    at = open_app()
    assert _page_titles(at) == ["Sign in"]
    assert navigation(at) == ["Sign in", "Sign up"]
    with pytest.raises(ValueError, match="Known pages.*sign_in.py.*sign_up.py"):
        at.switch_page("pages/settings.py")  # not registered for a signed-out session


def test_sign_up_creates_one_user_and_one_profile_by_the_trigger(supabase_mode):
    email = _email()
    at = sign_up(email)
    assert _page_titles(at) == ["Chat"]
    assert navigation(at) == ["Chat", "Settings", "Sign out"]
    below = list(at.sidebar.children.values())[3]
    assert below.type == "caption" and below.value == f"Signed in as {email}"
    (user,) = supabase_mode.sql("select id from auth.users where email = %s", email)
    profiles = supabase_mode.sql("select * from public.profiles where user_id = %s", user["id"])
    assert len(profiles) == 1
    for column in ("openai_compatible_api_key", "openai_compatible_base_url", "openai_compatible_model_name"):
        assert profiles[0][column] == ""


@pytest.mark.parametrize(
    "email, password, says",
    [
        ("not-an-email", PASSWORD, "valid email"),
        (None, "short", "at least 8 characters"),
    ],
)
def test_sign_up_refusals_are_clear(supabase_mode, email, password, says):
    at = sign_up(email or _email(), password)
    assert says in at.error[0].value


def test_an_existing_email_and_a_wrong_password_get_clear_messages(supabase_mode):
    email = _email()
    sign_up(email)
    again = sign_up(email)
    assert "already exists" in again.error[0].value
    at = sign_in(open_app(), email, "not the password")
    assert at.error[0].value == "Wrong email or password."
    assert _page_titles(at) == ["Sign in"]


def test_settings_survive_sign_out_and_in_and_a_chat_works(supabase_mode, katan_server, monkeypatch):
    monkeypatch.setenv("SWITCHBOARD_ALLOWED_HOSTS", "127.0.0.1")  # the operator allows loopback
    email = _email()
    at = sign_up(email)
    at.switch_page("pages/settings.py").run()
    at.text_input(key=compatible("base_url")).set_value(katan_server.base_url).run()
    at.text_input(key=compatible("key")).set_value(katan_server.api_key).run()
    at.text_input(key=compatible("model")).set_value(katan_server.model).run()
    at.button(key=compatible("save")).click().run()
    assert any("saved" in s.value for s in at.success), [e.value for e in at.error]

    at.switch_page("pages/sign_out.py").run()
    at.button(key="sign_out").click().run()
    assert _page_titles(at) == ["Sign in"]
    assert "conversation" not in at.session_state

    at = sign_in(open_app(), email)
    at.switch_page("pages/settings.py").run()
    assert at.text_input(key=compatible("base_url")).value == katan_server.base_url
    assert at.text_input(key=compatible("model")).value == katan_server.model
    assert katan_server.api_key not in shown_text(at)  # the saved key is never sent back
    assert any(f"ending in …{katan_server.api_key[-4:]}" in c.value for c in at.caption)

    (row,) = supabase_mode.sql(
        "select p.openai_compatible_api_key from public.profiles p join auth.users u "
        "on u.id = p.user_id where u.email = %s", email
    )
    assert row["openai_compatible_api_key"].startswith(BOUND_PREFIX)  # ciphertext at rest
    assert katan_server.api_key not in row["openai_compatible_api_key"]

    at.switch_page("pages/chat.py").run()
    send(at, "hello from supabase mode")
    assert errors(at) == []
    assert "User: hello from supabase mode" in chat_messages(at)[-1][1]


def test_the_network_guard_refuses_loopback_in_supabase_mode(supabase_mode, katan_server):
    at = sign_up(_email())
    at.switch_page("pages/settings.py").run()
    at.text_input(key=compatible("base_url")).set_value(katan_server.base_url).run()
    at.button(key=compatible("save")).click().run()
    (refusal,) = [e.value for e in at.error]
    assert "127.0.0.1" in refusal and "loopback" in refusal and "SWITCHBOARD_ALLOWED_HOSTS" not in refusal


def test_an_over_long_value_is_refused_by_the_database_and_nothing_is_lost(supabase_mode):
    from core.auth import SupabaseAuth
    from core.config import load_settings
    from core.failures import UserFacingError
    from core.providers.profile import Profile
    from core.store.supabase import SupabaseProfileStore

    email = _email()
    sign_up(email)
    auth = SupabaseAuth(load_settings(dotenv_path=None))
    user = auth.sign_in(email, PASSWORD)
    store = SupabaseProfileStore(auth.client, user.id)  # no app-side validation in front
    store.update({"display_name": "kept", "openai_compatible_model_name": "kept-model"}, None)
    with pytest.raises(UserFacingError) as refused:
        store.update({"openai_compatible_base_url": "http://x/" + "a" * 1000}, None)
    assert "OpenAI-compatible base URL is too long" in str(refused.value)
    assert store.load() == Profile(display_name="kept", openai_compatible_model_name="kept-model")


def test_the_app_refuses_to_start_without_an_encryption_secret(supabase_stack, monkeypatch):
    monkeypatch.setenv("SUPABASE_URL", supabase_stack.url)
    monkeypatch.setenv("SUPABASE_ANON_KEY", supabase_stack.anon_key)
    from streamlit.testing.v1 import AppTest

    from tests.apptest import APP

    at = AppTest.from_file(APP).run()
    assert "SWITCHBOARD_ENCRYPTION_KEYS is not set" in at.error[0].value
    assert not at.exception
