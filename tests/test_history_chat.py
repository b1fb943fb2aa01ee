"""Conversations that last, in the app (issue 11): AppTest against llm-katan and the real
SQLite store; each `start_chat()` is a new browser session (a reload, another tab, a restart:
the process keeps nothing of the earlier one but the data folder)."""

from __future__ import annotations

import sqlite3
import uuid

from core.history.importing import current_import
from core.history.replies import REPLIES
from core.store.sqlite import LOCAL_USER_ID

from tests.apptest import compatible, history_titles, open_app, open_from_history
from tests.chatting import chat_messages, send, start_chat, use_server
from tests.replying import settled, wait
from tests.test_supabase_app import sign_in, sign_up


def _posts(recorder):
    return [r.body for r in recorder.chat_requests]


def _versions(at) -> list[str]:
    return [c.value for c in at.caption if " / " in c.value and c.value.replace(" / ", "").isdigit()]


def test_a_chat_comes_back_after_a_reload_with_its_messages_model_and_options(katan_server):
    use_server(katan_server)
    at = start_chat()
    at.text_area(key="chat:system_prompt").set_value("You are terse.").run()
    at.toggle(key="chat:custom_temperature").set_value(True).run()
    at.slider(key="chat:temperature").set_value(0.3).run()
    send(at, "Remember me after a reload")
    before = chat_messages(at)
    assert history_titles(at) == ["Remember me after a reload"]

    again = start_chat()  # a new browser session: nothing of the first one's memory
    assert chat_messages(again) == []
    assert history_titles(again) == ["Remember me after a reload"]
    open_from_history(again, "Remember me after a reload")
    assert chat_messages(again) == before
    assert again.text_area(key="chat:system_prompt").value == "You are terse."
    assert again.toggle(key="chat:custom_temperature").value is True
    assert again.slider(key="chat:temperature").value == 0.3
    assert again.selectbox(key="chat:model").value.startswith("katan-echo")


def test_new_chats_are_listed_newest_first_and_each_opens_its_own_messages(katan_server):
    use_server(katan_server)
    at = start_chat()
    send(at, "first chat")
    at.button(key="chat:new").click().run()
    send(at, "second chat")
    assert history_titles(at) == ["second chat", "first chat"]
    open_from_history(at, "first chat")
    assert [t for r, t in chat_messages(at) if r == "user"] == ["first chat"]


def test_regenerate_twice_and_edit_an_earlier_message_keep_every_version(
        katan_server, recording_proxy):
    proxy, recorder = recording_proxy(katan_server)
    use_server(proxy)
    at = start_chat()
    send(at, "one")
    send(at, "two")
    for _ in range(2):
        at.button(key="chat:retry").click().run()
    assert "2 / 3" not in _versions(at) and "3 / 3" in _versions(at)
    first_user = [m for m in at.chat_message if m.name == "user"][0]
    edit = [b for b in first_user.button if b.key and b.key.startswith("chat:edit:")][0]
    edit.click().run()
    at.text_area(key="chat:editing").set_value("one, edited").run()
    at.button(key="chat:edit_send").click().run()
    assert [t for r, t in chat_messages(at) if r == "user"] == ["one, edited"]
    assert _posts(recorder)[-1]["messages"] == [{"role": "user", "content": "one, edited"}]
    assert "2 / 2" in _versions(at)

    previous = [b for b in at.button if b.key and b.key.startswith("chat:previous:")][0]
    previous.click().run()  # back to the first version of the first message
    assert [t for r, t in chat_messages(at) if r == "user"] == ["one", "two"]
    assert "3 / 3" in _versions(at)  # the newest reply to "two" is on screen
    recorder.clear()
    send(at, "three")
    sent = _posts(recorder)[-1]["messages"]
    assert [m["content"] for m in sent if m["role"] == "user"] == ["one", "two", "three"]

    reopened = start_chat()
    open_from_history(reopened, "one")
    assert [t for r, t in chat_messages(reopened) if r == "user"] == ["one", "two", "three"]


def test_a_rerun_that_changes_nothing_reads_nothing_from_the_store(katan_server, monkeypatch):
    use_server(katan_server)
    at = start_chat()
    send(at, "hello")
    at.run()
    job = REPLIES.find(at.session_state["conversation"].turns[-1].id, LOCAL_USER_ID)
    wait(lambda: job is None or settled(job))  # the reply's own last write (its own thread)
    opened = []
    connect = sqlite3.connect
    monkeypatch.setattr(sqlite3, "connect", lambda *args, **kw: opened.append(args) or connect(*args, **kw))
    at.run()
    at.run()
    assert opened == []  # the profile, the connections and the chat list: this session's copies
    at.switch_page("pages/settings.py").run()
    at.switch_page("pages/chat.py").run()
    assert opened  # another page was visited: everything is read afresh


def _import_ended(at) -> None:
    """The local user's import runs in the background: when the page was drawn before it
    ended, wait for it and draw the page again (as its progress bar does by itself)."""
    job = current_import(LOCAL_USER_ID)
    if job is not None:
        assert not job.wait(60).running
        at.run()


def test_export_all_delete_all_and_import_back_from_settings(katan_server):
    use_server(katan_server)
    at = start_chat()
    send(at, "keep this one")
    at.button(key="chat:retry").click().run()  # a second version of the reply
    before = chat_messages(at)
    at.switch_page("pages/settings.py").run()
    at.button(key="chats:prepare").click().run()
    exported = at.session_state["chats:export"]
    assert "keep this one" in exported and at.download_button(key="chats:download") is not None

    at.button(key="chats:delete").click().run()
    at.button(key="chats:delete_yes").click().run()
    assert "1 chats deleted." in [s.value for s in at.success]
    assert "chats:download" not in [d.key for d in at.download_button]  # it held those chats
    at.switch_page("pages/chat.py").run()
    assert history_titles(at) == [] and chat_messages(at) == []

    at.switch_page("pages/settings.py").run()
    at.file_uploader(key="chats:import_file").set_value(("chats.json", exported.encode(), "application/json")).run()
    at.button(key="chats:import").click().run()
    _import_ended(at)
    assert "Imported 1 chat." in [s.value for s in at.success]
    at.button(key="chats:import").click().run()  # the same file again: nothing new
    _import_ended(at)
    assert "Nothing new was imported. 1 chat was already here (left as it was)." in [
        s.value for s in at.success]
    at.switch_page("pages/chat.py").run()
    open_from_history(at, "keep this one")
    assert chat_messages(at) == before
    assert "2 / 2" in _versions(at)


def test_a_broken_import_says_why_and_imports_nothing(katan_server):
    use_server(katan_server)
    at = start_chat()
    at.switch_page("pages/settings.py").run()
    at.file_uploader(key="chats:import_file").set_value(("chats.json", b'{"format": "nope"}', "application/json")).run()
    at.button(key="chats:import").click().run()
    _import_ended(at)
    assert at.error and at.error[0].value.startswith("Nothing was imported")
    at.switch_page("pages/chat.py").run()
    assert history_titles(at) == []


def test_hosted_a_chat_comes_back_after_signing_in_again_and_stays_the_users_own(
        supabase_mode, katan_server, monkeypatch):
    """Supabase mode, the real stack: the chat is in the chats table under row-level
    security; after signing out and in it is listed and opens; another user sees nothing."""
    monkeypatch.setenv("SWITCHBOARD_ALLOWED_HOSTS", "127.0.0.1")  # the operator allows loopback
    email = f"user-{uuid.uuid4().hex[:10]}@example.com"
    at = sign_up(email)
    at.switch_page("pages/settings.py").run()
    at.text_input(key=compatible("base_url")).set_value(katan_server.base_url).run()
    at.text_input(key=compatible("key")).set_value(katan_server.api_key).run()
    at.text_input(key=compatible("model")).set_value(katan_server.model).run()
    at.button(key=compatible("save")).click().run()
    at.switch_page("pages/chat.py").run()
    send(at, "a hosted conversation")
    before = chat_messages(at)

    again = sign_in(open_app(), email)  # another browser session
    assert history_titles(again) == ["a hosted conversation"]
    open_from_history(again, "a hosted conversation")
    assert chat_messages(again) == before

    # The chat's address, opened in a new session: sign in, and it is the chat on screen.
    by_address = sign_in(_reloaded(dict(at.query_params)), email)
    assert chat_messages(by_address) == before
    by_address.switch_page("pages/sign_out.py").run()
    by_address.button(key="sign_out").click().run()
    assert "chat" not in by_address.query_params  # going to Sign out leaves the address

    stranger = sign_up(f"user-{uuid.uuid4().hex[:10]}@example.com")
    assert history_titles(stranger) == []
    [row] = supabase_mode.sql(
        "select count(*) as n from public.messages m join auth.users u on u.id = m.user_id "
        "where u.email = %s", email)
    assert row["n"] == 2


def _reloaded(address: dict[str, str]):
    """A new browser session on the chat page whose address carries `address`."""
    from streamlit.testing.v1 import AppTest

    from tests.apptest import APP

    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params.update(address)
    at.run()
    assert not at.exception, at.exception
    return at


def test_a_reload_opens_the_chat_its_address_names_and_new_chat_clears_it(katan_server):
    use_server(katan_server)
    at = start_chat()
    assert "chat" not in at.query_params  # nothing stored yet: no chat named
    send(at, "Open me again after a reload")
    address = dict(at.query_params)
    chat_id = address["chat"]
    assert str(uuid.UUID(chat_id)) == chat_id

    again = _reloaded(address)
    assert chat_messages(again) == chat_messages(at)
    assert again.query_params["chat"] == chat_id

    again.button(key="chat:new").click().run()
    assert chat_messages(again) == [] and "chat" not in again.query_params


def test_an_address_naming_no_chat_of_this_user_opens_a_new_chat_and_says_so(katan_server):
    use_server(katan_server)
    gone = _reloaded({"chat": str(uuid.uuid4())})  # deleted, or never this user's
    assert chat_messages(gone) == []
    assert [e.value for e in gone.sidebar.error] == [
        "That chat was deleted (in another tab or session)."]
    assert "chat" not in gone.query_params
    junk = _reloaded({"chat": "../../etc/passwd"})  # not a chat id: ignored
    assert chat_messages(junk) == [] and not junk.sidebar.error
    assert "chat" not in junk.query_params


def test_a_message_the_store_refuses_is_said_beside_it_and_every_later_one_is_stored(
        katan_server, isolated_data_dir):
    """The store's own refusal, forced by a trigger of the test's: the page says it beside that
    message, a note takes its place in the store, and the next messages and replies are stored."""
    use_server(katan_server)
    at = start_chat()
    send(at, "a first message")
    with sqlite3.connect(isolated_data_dir / "switchboard.db") as db:
        db.execute("create trigger refuse_marked before insert on messages when new.role = "
                   "'user' and new.content like '%REFUSE-ME%' begin select raise(abort, "
                   "'messages_content_length'); end")
    send(at, "a second message REFUSE-ME")
    send(at, "a third message")
    shown = [w.value for w in at.warning]
    assert any("not stored in full" in w for w in shown), shown
    assert [r for r, _ in chat_messages(at)] == ["user", "assistant"] * 3
    assert "REFUSE-ME" in chat_messages(at)[2][1]  # still on the page, whole

    again = start_chat()  # what the store kept
    open_from_history(again, "a first message")
    texts = [t for _, t in chat_messages(again)]
    assert texts[0] == "a first message"
    assert "REFUSE-ME" not in texts[2]
    assert texts[4] == "a third message" and "a third message" in texts[5]
    notes = [w.value for w in again.warning]
    assert any("Not stored in full" in n for n in notes), notes
