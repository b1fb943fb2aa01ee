"""The ChatStore contract (issue 11, Data): the same tests against both real backends, an SQLite
file and the Supabase stack through PostgREST, as the app's own stores."""

from __future__ import annotations

from datetime import datetime, timezone

import json
import sqlite3
import uuid
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass

import httpx
import pytest
import supabase
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from supabase.lib.client_options import SyncClientOptions

from core.auth import SupabaseAuth
from core.config import Settings
from core.failures import UserFacingError
from core.history.model import MAX_CONTENT_LENGTH, Chat, Message
from core.store.sqlite import DB_FILENAME, NUL_STAND_IN, SQLiteChatStore
from core.store.supabase import MAX_REQUEST_BYTES, SupabaseChatStore

PASSWORD = "correct horse battery"


@dataclass
class Backend:
    """One user's chats on one backend. `store()` is a new browser session (or the app
    restarted); `other_user()` a second user's store on the same backend; `stored_messages()`
    how many message rows the database holds, for every user."""

    store: Callable[[], object]
    other_user: Callable[[], object]
    stored_messages: Callable[[], int]
    stored_attachments: Callable[[], int] = lambda: 0  # rows of every user


def sqlite_backend(tmp_path) -> Backend:
    folder = tmp_path / "store"
    SQLiteChatStore(folder)

    def stored_messages() -> int:
        with closing(sqlite3.connect(folder / DB_FILENAME)) as db:
            return db.execute("select count(*) from messages").fetchone()[0]

    def stored_attachments() -> int:
        with closing(sqlite3.connect(folder / DB_FILENAME)) as db:
            return db.execute("select count(*) from attachments").fetchone()[0]

    return Backend(store=lambda: SQLiteChatStore(folder),
                   other_user=lambda: SQLiteChatStore(folder, user_id="someone-else"),
                   stored_messages=stored_messages, stored_attachments=stored_attachments)


def supabase_backend(stack) -> Backend:
    settings = Settings(supabase_url=stack.url, supabase_anon_key=stack.anon_key)
    users = []

    def signed_up() -> str:
        email = f"chats-{uuid.uuid4().hex[:12]}@example.com"
        users.append(SupabaseAuth(settings).sign_up(email, PASSWORD).id)
        return email

    def store_for(email: str) -> SupabaseChatStore:  # a new client, signed in again
        auth = SupabaseAuth(settings)
        user = auth.sign_in(email, PASSWORD)
        return SupabaseChatStore(auth.client, user.id)

    email = signed_up()

    def stored_messages() -> int:
        return stack.sql("select count(*) as n from public.messages"
                         " where user_id = any(%s::uuid[])", users)[0]["n"]

    def stored_attachments() -> int:
        return stack.sql("select count(*) as n from public.attachments"
                         " where user_id = any(%s::uuid[])", users)[0]["n"]

    return Backend(store=lambda: store_for(email), other_user=lambda: store_for(signed_up()),
                   stored_messages=stored_messages, stored_attachments=stored_attachments)


@pytest.fixture(params=["sqlite", "supabase"])
def backend(request, tmp_path) -> Backend:
    if request.param == "sqlite":
        return sqlite_backend(tmp_path)
    return supabase_backend(request.getfixturevalue("supabase_stack"))


def as_saved(chat: Chat, stored: Chat) -> Chat:
    """`chat` as the store gives it back: with the times the store set."""
    return chat.with_changes(created_at=stored.created_at, updated_at=stored.updated_at)


def as_added(message: Message, stored: Message) -> Message:
    return message.with_changes(created_at=stored.created_at)


def a_chat_with_messages(store, title: str, *texts: str) -> Chat:
    """A chat holding one branch: `texts` alternate user, assistant."""
    chat = store.save_chat(Chat(title=title))
    parent = None
    for number, text in enumerate(texts):
        parent = store.add_message(Message(chat_id=chat.id, parent_id=parent,
                                           role=("user", "assistant")[number % 2],
                                           content=text)).id
    return store.save_chat(chat.with_changes(current_id=parent))


# ---- chats: create, get, list, rename, options ------------------------------------------------


def test_a_new_user_has_no_chats(backend):
    store = backend.store()
    assert store.list_chats() == []
    assert store.get_chat(str(uuid.uuid4())) is None
    assert store.search("anything") == []


def test_a_saved_chat_reads_back_as_given_in_a_new_session(backend):
    chat = Chat(title="Trip to Lisbon", connection_id="c-1", model="qwen2.5:7b · Ollama",
                system_prompt="Answer briefly.", temperature=0.7, pinned=True)

    saved = backend.store().save_chat(chat)

    assert saved.created_at and saved.updated_at
    assert saved == as_saved(chat, saved)
    assert backend.store().get_chat(chat.id) == saved
    assert backend.store().list_chats() == [saved]


titles = st.text(st.characters(blacklist_categories=("Cs",)), max_size=200)
prompts = st.text(st.characters(blacklist_categories=("Cs",)), max_size=2000)
temperatures = st.none() | st.integers(0, 200).map(lambda hundredths: hundredths / 100)


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(title=titles, prompt=prompts, temperature=temperatures, pinned=st.booleans())
def test_every_chat_option_round_trips(backend, title, prompt, temperature, pinned):
    """Options round trip: for any title (up to 200 characters, any Unicode), system prompt,
    temperature (none, or 0 to 2 in the steps the page offers) and pin, a saved chat reads
    back equal from a new session (a NUL character as U+FFFD), then again after a change of
    each."""
    store = backend.store()
    given_chat = Chat(title=title, system_prompt=prompt, temperature=temperature, pinned=pinned)
    chat = store.save_chat(given_chat)
    assert chat == as_saved(given_chat.with_changes(
        title=title.replace("\x00", NUL_STAND_IN),
        system_prompt=prompt.replace("\x00", NUL_STAND_IN)), chat)
    assert backend.store().get_chat(chat.id) == chat

    changed = store.save_chat(chat.with_changes(
        title=title[::-1], system_prompt=prompt + "!", pinned=not pinned,
        temperature=None if temperature is not None else 1.5))

    assert changed.updated_at > chat.updated_at
    assert backend.store().get_chat(chat.id) == changed
    store.delete_chat(chat.id)


def test_chats_are_listed_newest_first_and_a_change_moves_one_up(backend):
    store = backend.store()
    first, second, third = (store.save_chat(Chat(title=t)) for t in ("one", "two", "three"))
    assert [c.title for c in store.list_chats()] == ["three", "two", "one"]

    renamed = store.save_chat(first.with_changes(title="one, renamed"))
    assert [c.title for c in backend.store().list_chats()] == ["one, renamed", "three", "two"]
    assert renamed.updated_at > third.updated_at

    store.add_message(Message(chat_id=second.id, role="user", content="hello"))
    assert [c.title for c in backend.store().list_chats()] == ["two", "one, renamed", "three"]


def test_paging_with_the_cursor_gives_every_chat_once_in_order(backend):
    store = backend.store()
    made = [store.save_chat(Chat(title=f"chat {n}")) for n in range(7)]

    pages, before = [], None
    while True:
        page = store.list_chats(limit=3, before=before)
        if not page:
            break
        pages.append(page)
        before = (page[-1].updated_at, page[-1].id)

    assert [len(page) for page in pages] == [3, 3, 1]
    assert [c.id for page in pages for c in page] == [c.id for c in reversed(made)]


def test_chats_with_the_same_time_are_paged_by_id(backend):
    """The cursor is (updated_at, id): the id breaks ties, so none is skipped or repeated."""
    store = backend.store()
    made = [store.save_chat(Chat(title=f"chat {n}")) for n in range(4)]
    newest = store.list_chats(limit=1)[0]

    rest = store.list_chats(limit=10, before=(newest.updated_at, "f" * 8 + "-ffff-ffff-ffff-"
                                              + "f" * 12))

    assert [c.id for c in rest] == [c.id for c in reversed(made)]


# ---- messages ---------------------------------------------------------------------------------


def test_messages_keep_every_branch_oldest_first(backend):
    """Regenerate twice, then edit the question: five messages, two branches from the top."""
    store = backend.store()
    chat = store.save_chat(Chat(title="versions"))
    question = Message(chat_id=chat.id, role="user", content="Name a colour")
    replies = [Message(chat_id=chat.id, parent_id=question.id, role="assistant", content=c,
                       model_label="qwen · Ollama") for c in ("Red", "Blue", "Green")]
    edited = Message(chat_id=chat.id, role="user", content="Name a fruit")
    answer = Message(chat_id=chat.id, parent_id=edited.id, role="assistant", content="Pear",
                     usage={"prompt_tokens": 5, "completion_tokens": 1})
    written = [question, *replies, edited, answer]

    stored = [store.add_message(message) for message in written]
    store.save_chat(chat.with_changes(current_id=answer.id))

    assert stored == [as_added(m, s) for m, s in zip(written, stored)]
    assert backend.store().messages(chat.id) == stored
    assert len({m.created_at for m in stored}) == len(stored)
    assert backend.store().get_chat(chat.id).current_id == answer.id


def test_adding_a_message_twice_changes_nothing(backend):
    store = backend.store()
    chat = store.save_chat(Chat(title="retry"))
    message = Message(chat_id=chat.id, role="user", content="first")
    first = store.add_message(message)
    moved = store.get_chat(chat.id).updated_at

    again = backend.store().add_message(message.with_changes(content="changed meanwhile"))

    assert again == first
    assert backend.store().messages(chat.id) == [first]
    assert backend.store().get_chat(chat.id).updated_at == moved


def test_a_reply_is_updated_as_it_streams_and_as_it_ends(backend):
    store = backend.store()
    chat = a_chat_with_messages(store, "streaming", "Hi")
    reply = store.add_message(Message(chat_id=chat.id, parent_id=chat.current_id,
                                      role="assistant", content="", status="streaming"))

    store.update_message(reply.id, {"content": "Hel"})
    ended = backend.store().update_message(reply.id, {
        "content": "Hello!", "status": "stopped", "reasoning": "greet back",
        "error": "Stopped by you", "model_label": "qwen · Ollama",
        "usage": {"prompt_tokens": 3, "completion_tokens": 2}})

    assert ended == reply.with_changes(
        content="Hello!", status="stopped", reasoning="greet back", error="Stopped by you",
        model_label="qwen · Ollama", usage={"prompt_tokens": 3, "completion_tokens": 2})
    assert backend.store().messages(chat.id)[-1] == ended
    with pytest.raises(ValueError):
        store.update_message(reply.id, {"chat_id": str(uuid.uuid4())})


def test_a_nul_character_is_kept_as_a_visible_stand_in_on_both_backends(backend):
    """PostgreSQL's text cannot hold U+0000; neither backend refuses it or loses the rest."""
    store = backend.store()
    chat = store.save_chat(Chat(title="a\x00b"))
    message = store.add_message(Message(chat_id=chat.id, role="assistant", content="x\x00y",
                                        reasoning="\x00"))
    store.update_message(message.id, {"error": "e\x00"})

    [kept] = backend.store().messages(chat.id)
    assert (kept.content, kept.reasoning, kept.error) == ("x\ufffdy", "\ufffd", "e\ufffd")
    assert backend.store().get_chat(chat.id).title == "a\ufffdb"
    assert [f.chat.id for f in store.search("y\x00")] == [chat.id]  # a NUL typed: a space


def test_a_message_of_32_000_000_characters_is_kept_and_one_more_is_refused(backend):
    """Characters, not bytes: it takes more bytes than the limit's number (sent to Supabase in
    pieces). Mostly ASCII, so it travels in 32 MB: 64 MB of "é" could outlast the store's 2 s
    request timeout on a loaded machine (a figure of bench/long_messages.py, not a refusal)."""
    store = backend.store()
    chat = store.save_chat(Chat(title="long"))
    longest = "é" * 1000 + "x" * (MAX_CONTENT_LENGTH - 1012) + " last words."

    kept = store.add_message(Message(chat_id=chat.id, role="user", content=longest))
    with pytest.raises(UserFacingError) as refused:
        store.add_message(Message(chat_id=chat.id, role="user", content=longest + "!"))
    with pytest.raises(UserFacingError) as refused_update:
        store.update_message(kept.id, {"content": longest + "!"})

    assert [m.content for m in backend.store().messages(chat.id)] == [longest]
    for error in (refused.value, refused_update.value):
        assert str(error) == ("A message can be at most 32,000,000 characters; this one is "
                              "longer. Nothing was saved.")


@pytest.mark.parametrize("changes, said", [
    ({"title": "t" * 201}, "A chat's title can be at most 200 characters."),
    ({"system_prompt": "p" * 100_001}, "The system prompt is too long: at most 100,000"),
    ({"temperature": 2.5}, "The temperature must be between 0 and 2."),
    ({"temperature": -0.1}, "The temperature must be between 0 and 2."),
])
def test_a_chat_value_that_does_not_fit_is_refused_in_plain_words(backend, changes, said):
    store = backend.store()
    chat = store.save_chat(Chat(title="fits"))

    for attempt in (Chat(title="new").with_changes(**changes), chat.with_changes(**changes)):
        with pytest.raises(UserFacingError) as refused:
            store.save_chat(attempt)
        assert str(refused.value).startswith(said)
        assert str(refused.value).endswith("Nothing was saved.")
    assert backend.store().list_chats() == [chat]


def test_a_parent_from_another_chat_or_a_missing_chat_is_refused(backend):
    store = backend.store()
    one = a_chat_with_messages(store, "one", "question")
    two = store.save_chat(Chat(title="two"))

    with pytest.raises(UserFacingError) as wrong_parent:
        store.add_message(Message(chat_id=two.id, parent_id=one.current_id, role="assistant",
                                  content="stray"))
    with pytest.raises(UserFacingError) as no_chat:
        store.add_message(Message(chat_id=str(uuid.uuid4()), role="user", content="lost"))

    assert str(wrong_parent.value) == ("The message it follows is not in this chat. "
                                       "Nothing was saved.")
    assert "This chat no longer exists" in str(no_chat.value)
    assert backend.store().messages(two.id) == []
    assert backend.stored_messages() == 1


def test_two_tabs_adding_to_one_chat_keep_both(backend):
    tab_one, tab_two = backend.store(), backend.store()
    chat = a_chat_with_messages(tab_one, "shared", "question")

    from_one = tab_one.add_message(Message(chat_id=chat.id, parent_id=chat.current_id,
                                           role="assistant", content="from tab one"))
    from_two = tab_two.add_message(Message(chat_id=chat.id, parent_id=chat.current_id,
                                           role="assistant", content="from tab two"))
    tab_one.save_chat(chat.with_changes(current_id=from_one.id))
    tab_two.save_chat(chat.with_changes(current_id=from_two.id))

    contents = [m.content for m in backend.store().messages(chat.id)]
    assert contents == ["question", "from tab one", "from tab two"]


# ---- delete ---------------------------------------------------------------------------------


def test_deleting_a_chat_deletes_its_messages_and_again_is_not_an_error(backend):
    store = backend.store()
    gone = a_chat_with_messages(store, "gone", "a", "b", "c")
    kept = a_chat_with_messages(store, "kept", "d")

    store.delete_chat(gone.id)
    store.delete_chat(gone.id)

    assert [c.id for c in backend.store().list_chats()] == [kept.id]
    assert backend.store().get_chat(gone.id) is None
    assert backend.store().messages(gone.id) == []
    assert backend.stored_messages() == 1
    assert backend.store().search("a") == []


def test_delete_all_deletes_only_this_users_chats_and_counts_them(backend):
    store = backend.store()
    for number in range(3):
        a_chat_with_messages(store, f"mine {number}", "hello", "hi")
    other = backend.other_user()
    theirs = a_chat_with_messages(other, "theirs", "hello")

    assert store.delete_all() == 3
    assert backend.store().list_chats() == []
    assert backend.store().delete_all() == 0
    assert other.list_chats() == [theirs]
    assert backend.stored_messages() == 1


# ---- search ---------------------------------------------------------------------------------


@pytest.fixture
def searchable(backend):
    store = backend.store()
    chats = {
        "lisbon": a_chat_with_messages(store, "Trip to Lisbon", "Where should I eat?",
                                       "Try the pastéis de nata near the river."),
        "python": a_chat_with_messages(store, "Code help", "Why does foo.bar(x) fail?",
                                       "Because C++ style -> operators do not exist; use "
                                       "foo.bar instead. 東京 has nothing to do with it."),
        "plain": a_chat_with_messages(store, "Groceries", "milk, eggs, bread"),
    }
    return store, {name: chat.id for name, chat in chats.items()}


@pytest.mark.parametrize("query, expected", [
    ("lisbon", ["lisbon"]),  # the title, whatever the case
    ("nata pastéis", ["lisbon"]),  # several words, in any order, in a message
    ("PASTÉIS", ["lisbon"]),
    ("東京", ["python"]),
    ("foo.bar(x)", ["python"]),  # punctuation typed by the user is plain text
    ("-> operators", ["python"]),
    ('"milk', ["plain"]),
    ("eggs OR nothing", []),  # OR is a word, not an operator: every word must match
    ("milk -eggs", ["plain"]),  # "-" is not NOT
    ("bread*", ["plain"]),
    ("river milk", []),  # the words are in two different chats
    ("...", []),
    ("", []),
])
def test_search_finds_titles_and_message_text_with_every_word(searchable, query, expected):
    store, ids = searchable

    found = store.search(query)

    assert [f.chat.id for f in found] == [ids[name] for name in expected]
    for hit in found:
        assert hit.snippet and hit.chat == store.get_chat(hit.chat.id)


def test_search_says_where_it_matched(searchable):
    store, ids = searchable

    [hit] = store.search("nata")

    assert "nata" in hit.snippet and "<b>" not in hit.snippet


def test_search_never_returns_another_users_chats(backend, searchable):
    store, ids = searchable
    other = backend.other_user()
    a_chat_with_messages(other, "Trip to Lisbon too", "pastéis de nata")

    assert [f.chat.id for f in store.search("lisbon")] == [ids["lisbon"]]
    assert [f.chat.title for f in other.search("nata")] == ["Trip to Lisbon too"]


def test_search_lists_the_newest_chat_first_up_to_the_limit(backend):
    store = backend.store()
    made = [a_chat_with_messages(store, f"note {n}", "shared word") for n in range(4)]

    assert [f.chat.id for f in store.search("shared", limit=3)] == [
        c.id for c in reversed(made)][:3]


# ---- another user ---------------------------------------------------------------------------


def test_another_user_sees_none_of_the_chats_or_messages(backend):
    mine = a_chat_with_messages(backend.store(), "private", "secret text")
    other = backend.other_user()

    assert other.list_chats() == []
    assert other.get_chat(mine.id) is None
    assert other.messages(mine.id) == []
    assert other.search("secret") == []
    other.delete_chat(mine.id)
    assert other.delete_all() == 0
    with pytest.raises(UserFacingError):
        other.add_message(Message(chat_id=mine.id, role="user", content="planted"))
    with pytest.raises(UserFacingError):
        other.update_message(mine.current_id, {"content": "changed"})
    with pytest.raises(UserFacingError):
        other.save_chat(mine.with_changes(title="taken"))
    assert backend.store().get_chat(mine.id) == mine
    assert [m.content for m in backend.store().messages(mine.id)] == ["secret text"]


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_an_imported_chat_keeps_its_times_and_its_place_in_the_list(backend):
    """Times given on creation (an import) are kept, in the stores' own form; an older message
    leaves its chat where its own time puts it, while a new one still moves it up."""
    store = backend.store()
    recent = store.save_chat(Chat(title="recent"))
    old = store.save_chat(Chat(title="from 2024", created_at="2024-03-01T10:00:00+00:00",
                               updated_at="2024-03-02T12:30:00.250000Z"))
    question = store.add_message(Message(chat_id=old.id, role="user", content="then",
                                         created_at="2024-03-01T10:00:00+00:00"))
    answer = store.add_message(Message(chat_id=old.id, role="assistant", content="yes",
                                       parent_id=question.id,
                                       created_at="2024-03-02T12:30:00.250000+00:00"))
    again = backend.store()
    stored = again.get_chat(old.id)
    assert _moment(stored.created_at) == datetime(2024, 3, 1, 10, 0, tzinfo=timezone.utc)
    assert _moment(stored.updated_at) == datetime(2024, 3, 2, 12, 30, 0, 250000, timezone.utc)
    assert [m.created_at[:19] for m in again.messages(old.id)] == [
        "2024-03-01T10:00:00", "2024-03-02T12:30:00"]
    assert [c.title for c in again.list_chats()] == ["recent", "from 2024"]
    store.add_message(Message(chat_id=old.id, role="user", content="and now",
                              parent_id=answer.id))
    assert [c.title for c in backend.store().list_chats()][:2] == ["from 2024", recent.title]


# ---- long messages on Supabase: no request larger than MAX_REQUEST_BYTES ------------------


def test_no_request_to_supabase_carries_more_than_a_megabyte_and_an_append_is_one(
        supabase_stack):
    settings = Settings(supabase_url=supabase_stack.url,
                        supabase_anon_key=supabase_stack.anon_key)
    email = f"pieces-{uuid.uuid4().hex[:12]}@example.com"
    SupabaseAuth(settings).sign_up(email, PASSWORD)
    sent: list[httpx.Request] = []
    client = supabase.create_client(supabase_stack.url, supabase_stack.anon_key,
                                    SyncClientOptions(httpx_client=httpx.Client(
                                        timeout=30, event_hooks={"request": [sent.append]})))
    user = client.auth.sign_in_with_password({"email": email, "password": PASSWORD}).user
    store = SupabaseChatStore(client, user.id)
    chat = store.save_chat(Chat(title="Sizes"))
    text = '"quoted" \x01 é 😀 ' * 1_000_000  # 15,000,000 characters; JSON escapes swell it
    sent.clear()

    message = store.add_message(Message(chat_id=chat.id, role="user", content=text))
    store.update_message(message.id, {"reasoning": text})
    reply = store.add_message(Message(chat_id=chat.id, parent_id=message.id, role="assistant",
                                      content="", status="streaming"))
    store.append_reply(reply.id, 0, text, 0, "")
    long_writes = [request for request in sent if request.url.path.startswith("/rest/v1/")]
    sent.clear()
    store.append_reply(reply.id, len(text), "a normal piece", 0, "")

    biggest = max(len(request.content) for request in long_writes)
    assert MAX_REQUEST_BYTES * 0.9 < biggest <= MAX_REQUEST_BYTES
    as_sent = len(json.dumps(text, ensure_ascii=False).encode())  # 26,000,002 bytes
    assert len(long_writes) > 3 * as_sent // MAX_REQUEST_BYTES
    assert [(request.method, request.url.path) for request in sent] == [
        ("POST", "/rest/v1/rpc/append_reply")]
    assert all(len(request.url.query) < 300 for request in long_writes)  # text in bodies only
    assert [(m.content, m.reasoning) for m in store.messages(chat.id)] == [
        (text, text), (text + "a normal piece", "")]
