"""What a fault is said with: the words fit who reads them and where they are.

Real components where it matters: the data file locked by another real connection, the
encryption secret file moved away under a running app (AppTest), a real SQLite chat store.
"""

from __future__ import annotations

import httpx
from supabase_auth.errors import AuthRetryableError

from core.auth import AuthUnavailable, User, describe_auth_error
from core.history.conversation import Conversation
from core.history.replies import Replies
from core.store.errors import backend_failure
from core.store.keybox import LOCAL_KEY_FILE
from core.store.sqlite import SQLiteChatStore, SQLiteConnectionStore, SQLiteProfileStore
from core.failures import UserFacingError
from tests.apptest import open_app
from tests.chatting import save_compatible
from tests.fixtures.faults import another_window_writing
from tests.fixtures.llm_servers import SSE_DONE, sse_chunk
from tests.replying import ask, show_ended


def test_an_auth_outage_tells_only_someone_signed_in_that_they_still_are():
    assert "still signed in" not in str(AuthUnavailable(None))
    assert "unavailable" in str(AuthUnavailable(None))
    assert "still signed in" in str(AuthUnavailable(User("u1", "a@example.com")))
    # a sign-in attempt by a signed-out visitor during an outage
    said = describe_auth_error(AuthRetryableError("Connection refused", 0))
    assert "still signed in" not in said and "unavailable" in said, said


def test_a_database_outage_names_no_profile_for_chats_and_connections():
    said = str(backend_failure(httpx.ConnectError("refused")))
    assert said.startswith("The database is unavailable"), said
    assert "profile" not in said


def _said_while_locked(folder, call) -> str:
    with another_window_writing(folder, "exclusive"):
        try:
            call()
        except UserFacingError as exc:
            return str(exc)
    raise AssertionError("the locked store answered")


def test_a_local_store_names_its_own_data_and_a_chat_needs_no_save_button(tmp_path):
    SQLiteProfileStore(tmp_path)  # the file, made and migrated
    chats = SQLiteChatStore(tmp_path, busy_timeout=0.2)
    connections = SQLiteConnectionStore(tmp_path, busy_timeout=0.2)
    read = _said_while_locked(tmp_path, lambda: chats.list_chats())
    assert "Your chats could not be read" in read and "settings" not in read, read
    read = _said_while_locked(tmp_path, lambda: connections.list())
    assert "Your connections could not be read" in read, read
    conversation = Conversation(store=chats)
    with another_window_writing(tmp_path, "exclusive"):
        conversation.add_user("hello")
    assert conversation.unsaved and "save again" not in conversation.unsaved
    assert "Nothing was saved" not in conversation.unsaved, conversation.unsaved


def test_a_failed_retry_keeps_no_empty_version_in_the_store(tmp_path, canned_server):
    store = SQLiteChatStore(tmp_path)
    conversation = Conversation(store=store)
    conversation.add_user("tell me a story")
    replies = Replies(workers=1, writers=1, save_every=0.2)
    dropped = canned_server(200, [sse_chunk({"role": "assistant", "content": "Once upon a"})],
                            chunked=True)  # the connection ends with no finish
    first = show_ended(conversation, ask(replies, conversation, dropped))
    assert (first.content, first.status) == ("Once upon a", "interrupted")
    assert conversation.prepare_regenerate()
    refusing = canned_server(500, {"error": {"message": "The model server is overloaded."}})
    show_ended(conversation, ask(replies, conversation, refusing))

    last = conversation.turns[-1]
    assert (last.id, last.content, last.status) == (first.id, "Once upon a", "interrupted")
    assert "overloaded" in last.error
    assert conversation.thread().version(last).count == 1  # no "2 / 2" beside an empty failed one
    stored = store.messages(conversation.chat.id)
    assert [m.content for m in stored] == ["tell me a story", "Once upon a"]
    assert stored[-1].error == last.error
    assert store.get_chat(conversation.chat.id).current_id == last.id


def test_an_unreadable_saved_key_is_said_once_on_chat_and_not_as_no_provider(isolated_data_dir):
    save_compatible("http://127.0.0.1:9/v1", "sk-saved-key-1234", "some-model")
    (isolated_data_dir / LOCAL_KEY_FILE).rename(isolated_data_dir.parent / "moved.key")
    at = open_app(timeout=60)
    assert not at.exception, at.exception
    warnings = [w.value for w in at.warning]
    about_the_key = [w for w in warnings if "cannot be read" in w]
    assert len(about_the_key) == 1, warnings
    infos = " ".join(i.value for i in at.info)
    assert "No provider is configured yet" not in infos, infos
    assert "cannot be read" in infos, infos


# ---- a connection saved without a model picked -----------------------------------------------


def _saved_without_a_model(tmp_path, found=()):
    from core.chat.netguard import NetworkPolicy
    from core.forms import ConnectionForm, save_connection
    from core.providers.connections import Connection

    store = SQLiteConnectionStore(tmp_path)
    form = ConnectionForm(name="My server", base_url="http://127.0.0.1:9/v1")
    return save_connection(store, Connection(name="My server"), form,
                           NetworkPolicy(allow_private=True), found=found)


def test_the_one_model_fetch_found_is_offered_when_none_was_picked(tmp_path):
    from core.forms import saved_message

    stored = _saved_without_a_model(tmp_path, found=("the-only-model",))
    assert stored.offered_models() == ("the-only-model",)
    assert saved_message(stored) == "My server saved."


def test_save_says_when_a_connection_offers_no_model_yet(tmp_path):
    from core.forms import saved_message

    stored = _saved_without_a_model(tmp_path, found=("one", "two"))
    assert stored.offered_models() == ()
    said = saved_message(stored)
    assert "offers no model yet" in said and "pick one so it appears in Chat" in said, said


def test_a_preset_s_first_suggested_model_is_offered_when_none_was_picked(monkeypatch):
    from dataclasses import replace

    from core import forms
    from core.forms import model_to_offer
    from core.providers.presets import load_presets

    # today's presets name no model (presets.toml: the docs change them often): one that does
    base = next(p for p in load_presets() if p.base_url)
    suggesting = replace(base, suggested_models=("suggested-1", "suggested-2"))
    monkeypatch.setattr(forms, "load_presets", lambda: (suggesting,))
    draft = suggesting.connection()
    assert model_to_offer(draft) == suggesting.suggested_models[0]
    assert model_to_offer(draft.with_changes(default_model="picked")) == ""


# ---- the data file deleted while the app runs ---------------------------------------------------


def test_a_data_file_deleted_while_running_is_said_made_private_and_the_chat_saved_again(
        tmp_path, canned_server):
    import stat

    from core.store.sqlite import DB_FILENAME

    chats = SQLiteChatStore(tmp_path)
    conversation = Conversation(store=chats)
    conversation.add_user("tell me a story")
    story = canned_server(200, [sse_chunk({"role": "assistant", "content": "Once upon a time."},
                                          "stop"), SSE_DONE], chunked=True)
    ended = show_ended(conversation, ask(Replies(workers=1, writers=1), conversation, story))
    assert (ended.content, ended.status) == ("Once upon a time.", "complete")
    path = tmp_path / DB_FILENAME
    path.unlink()

    conversation.add_user("and another")  # the next change finds the file gone
    assert conversation.unsaved and "went missing" in conversation.unsaved, conversation.unsaved
    assert "disk" not in conversation.unsaved and "no longer exists" not in conversation.unsaved
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    conversation.store_again()  # the next run: the conversation on screen, written again
    assert conversation.unsaved is None, conversation.unsaved
    stored = [m.content for m in chats.messages(conversation.chat.id)]
    assert stored == ["tell me a story", "Once upon a time.", "and another"]


def test_a_settings_save_after_the_file_was_made_again_is_not_refused_as_changed(tmp_path):
    from core.store.sqlite import DB_FILENAME

    profiles = SQLiteProfileStore(tmp_path)
    profiles.update({"openai_compatible_base_url": "http://127.0.0.1:1234/v1"}, None)
    read = profiles.load()
    (tmp_path / DB_FILENAME).unlink()
    try:
        profiles.load()
    except UserFacingError as exc:
        assert "went missing" in str(exc)
    saved = profiles.update({"openai_compatible_model_name": "typed"},
                            {"openai_compatible_model_name": read.openai_compatible_model_name})
    assert saved.openai_compatible_model_name == "typed"


def test_settings_on_screen_stay_when_the_data_file_is_made_again_and_one_save_keeps_them(
        isolated_data_dir):
    import stat

    from core.providers.connections import Connection
    from core.store.sqlite import DB_FILENAME
    from tests.apptest import compatible, configure_compatible, shown_text
    from tests.chatting import connection_store

    key, header_value = "sk-only-ever-stored-encrypted-5150", "header-secret-6160"
    at = configure_compatible(open_app("settings"), "http://127.0.0.1:9/v1", key, "some-model")
    connection_store().add(Connection(name="Mine", base_url="http://127.0.0.1:8/v1",
                                      api_key=key, headers=(("X-Title", header_value),),
                                      models=("m1",)))
    at.run()  # the page reads the connection
    path = isolated_data_dir / DB_FILENAME
    path.unlink()

    at.run()  # the page's read finds the file gone and makes it again
    said = " ".join(e.value for e in at.error)
    assert "went missing" in said and "type them again" in said, said
    for _ in range(2):  # later runs read the new, empty file: what was shown stays
        at.run()
        assert not at.exception, at.exception
        assert at.text_input(key=compatible("base_url")).value == "http://127.0.0.1:9/v1"
        assert at.text_input(key=compatible("model")).value == "some-model"
        notes = " ".join(m.value for m in at.markdown if "Unsaved:" in m.value)
        assert "base URL" in notes and "model name" in notes, notes
        warned = " ".join(w.value for w in at.warning)
        assert "key was lost with the data file" in warned and "Type it again" in warned, warned
        assert "Lost with the data file" in warned and "X-Title" in warned, warned
        mine = [b for b in at.text_input if b.key.endswith(":name") and b.value == "Mine"]
        assert len(mine) == 1, [b.key for b in at.text_input]
        shown = shown_text(at)
        assert key not in shown and header_value not in shown

    at.button(key=compatible("save")).click().run()
    at.button(key=mine[0].key.removesuffix("name") + "save").click().run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    profile = SQLiteProfileStore(isolated_data_dir).load()
    assert (profile.openai_compatible_base_url, profile.openai_compatible_model_name) == (
        "http://127.0.0.1:9/v1", "some-model")
    assert not profile.openai_compatible_api_key  # typed again, never written from memory
    (stored,) = connection_store().list()
    assert (stored.name, stored.base_url, stored.models, stored.headers) == (
        "Mine", "http://127.0.0.1:8/v1", ("m1",), ())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


# ---- the encryption secret damaged under an open chat ------------------------------------------


def test_a_message_sent_as_the_secret_is_damaged_is_kept_and_offered_back(isolated_data_dir):
    save_compatible("http://127.0.0.1:9/v1", "", "some-model")
    at = open_app(timeout=60)
    secret_file = isolated_data_dir / LOCAL_KEY_FILE
    good = secret_file.read_text()
    secret_file.write_text("half-a-secret")

    at.chat_input(key="chat:input").set_value("do not lose me").run()
    assert not at.exception, at.exception
    shown = " ".join(e.value for e in at.error)
    assert "is damaged" in shown and "was kept" in shown, shown

    secret_file.write_text(good)
    at.run()
    assert not at.exception, at.exception
    captions = [c.value for c in at.caption]
    assert any(c.startswith("Your message was not sent") for c in captions), captions
    assert any("do not lose me" in md.value for md in at.markdown)
    assert at.button(key="chat:unsent_send") and at.button(key="chat:unsent_discard")
