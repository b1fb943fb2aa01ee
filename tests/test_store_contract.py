"""The store contracts every backend must pass, the same tests on each: the ProfileStore, and
the ChatStore's calls for a reply as it streams and for long messages."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from cryptography.fernet import Fernet
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.auth import SupabaseAuth
from core.config import Settings
from core.store.errors import ProfileChanged
from core.failures import UserFacingError
from core.store.keybox import EncryptedProfileStore, KeyBox, local_secret
from core.providers.profile import MAX_KEY_LENGTH, Profile
from core.store.sqlite import SQLiteProfileStore
from core.history.model import (
    MAX_COMPARED,
    MAX_MODEL_LABEL_LENGTH,
    MIN_COMPARED,
    Chat,
    Comparison,
    Message,
    ReplyState,
)
from core.history.thread import Thread
from core.history.transfer import every_chat, import_chats, to_json
from core.store.supabase import SupabaseProfileStore
from tests.test_history_store import sqlite_backend, supabase_backend
from tests.test_properties import keys, tokens, valid_urls

FULL = Profile(
    display_name="Ada",
    openai_api_key="sk-openai-0123456789",
    openai_organization_id="org-123",
    openai_compatible_api_key="local-key-abcdef",
    openai_compatible_base_url="http://localhost:1234/v1",
    openai_compatible_model_name="llama-3.1-8b-instruct",
)


@pytest.fixture(params=["sqlite", "supabase"])
def make_store(request, tmp_path):
    """A factory of stores for one user; calling it again is the app restarted, or another
    tab. `box` replaces the encryption secrets the app runs with."""
    if request.param == "sqlite":
        default = KeyBox([local_secret(tmp_path / "store")])
        return lambda box=None: EncryptedProfileStore(SQLiteProfileStore(tmp_path / "store"),
                                                      box or default)
    stack = request.getfixturevalue("supabase_stack")
    settings = Settings(supabase_url=stack.url, supabase_anon_key=stack.anon_key)
    email, password = f"contract-{uuid.uuid4().hex[:12]}@example.com", "correct horse battery"
    SupabaseAuth(settings).sign_up(email, password)
    default = KeyBox([Fernet.generate_key().decode()])

    def signed_in_store(box=None):  # a new browser session: a new client, signed in again
        auth = SupabaseAuth(settings)
        user = auth.sign_in(email, password)
        return EncryptedProfileStore(SupabaseProfileStore(auth.client, user.id), box or default)

    return signed_in_store


def test_a_new_user_has_an_empty_profile(make_store):
    assert make_store().load() == Profile()


def test_save_then_load_gives_the_same(make_store):
    assert make_store().save(FULL) == FULL
    assert make_store().load() == FULL


def test_saving_again_replaces_every_field(make_store):
    make_store().save(FULL)
    changed = FULL.with_changes(openai_compatible_base_url="", openai_api_key="")
    make_store().save(changed)
    assert make_store().load() == changed


def test_unicode_survives(make_store):
    profile = FULL.with_changes(display_name="Zoë 🚀 名前", openai_compatible_model_name="qwen2.5:7b")
    make_store().save(profile)
    assert make_store().load() == profile


@pytest.mark.parametrize(
    "field, value",
    [
        ("openai_compatible_base_url", "http://localhost/" + "a" * 1000),
        ("openai_compatible_model_name", "m" * 1001),
        ("display_name", "x" * 1001),
        ("openai_compatible_api_key", "k" * 601),
        ("openai_compatible_base_url", "ftp://example.com"),
        ("openai_compatible_api_key", "key with spaces"),
        ("display_name", "bell\x07"),
    ],
)
def test_bad_values_are_refused_and_nothing_saved_is_lost(make_store, field, value):
    make_store().save(FULL)
    with pytest.raises(UserFacingError) as refused:
        make_store().save(FULL.with_changes(**{field: value}))
    assert str(refused.value)  # a message for the user
    assert make_store().load() == FULL


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=keys, url=valid_urls, model=tokens)
def test_p2_settings_round_trip(make_store, key, url, model):
    """P2: for any valid key, URL and model name, save then load gives the same."""
    profile = Profile(
        openai_compatible_api_key=key,
        openai_compatible_base_url=url,
        openai_compatible_model_name=model,
    )
    assert make_store().save(profile) == profile
    assert make_store().load() == profile


def test_the_longest_key_the_form_accepts_fits_the_database(make_store):
    """Printable ASCII up to the limit: encrypted, it stays within the 1000-character CHECK."""
    printable = "".join(chr(code) for code in range(0x21, 0x7F))
    longest = (printable * 7)[:MAX_KEY_LENGTH]
    profile = FULL.with_changes(openai_compatible_api_key=longest, openai_api_key=longest[::-1])
    make_store().save(profile)
    assert make_store().load() == profile


@pytest.mark.parametrize("key", ["é" * MAX_KEY_LENGTH, "sk-🔑" + "k" * 100, "sk-\u200bkey"])
def test_a_key_an_http_header_cannot_carry_is_refused_before_encryption(make_store, key):
    make_store().save(FULL)
    with pytest.raises(UserFacingError) as refused:
        make_store().save(FULL.with_changes(openai_compatible_api_key=key))
    assert str(refused.value) == (
        "OpenAI-compatible API key may only contain plain letters, digits and symbols "
        "(ASCII, no spaces, accents or emoji)."
    )
    assert make_store().load() == FULL


# ---- saving only what changed, and only over what was read (issue 9) ------------------------

OPENAI_CHANGES = {"openai_api_key": "sk-openai-from-tab-one-0001", "openai_organization_id": "o"}
COMPATIBLE_CHANGES = {"openai_compatible_base_url": "http://127.0.0.1:8080/v1",
                      "openai_compatible_model_name": "from-tab-two"}


def test_two_tabs_saving_different_providers_keep_both(make_store):
    make_store().save(FULL)
    one, two = make_store(), make_store()
    shown_one, shown_two = one.load(), two.load()  # both pages drawn before either saves
    one.save(shown_one.with_changes(**OPENAI_CHANGES))
    two.save(shown_two.with_changes(**COMPATIBLE_CHANGES))
    assert make_store().load() == FULL.with_changes(**OPENAI_CHANGES, **COMPATIBLE_CHANGES)


def test_the_same_field_changed_in_two_tabs_refuses_the_second_and_keeps_the_first(make_store):
    make_store().save(FULL)
    one, two = make_store(), make_store()
    shown_one, shown_two = one.load(), two.load()
    one.save(shown_one.with_changes(openai_compatible_model_name="first"))
    with pytest.raises(ProfileChanged) as refused:
        two.save(shown_two.with_changes(openai_compatible_model_name="second", display_name="B"))
    assert "changed in another tab or session" in str(refused.value)
    assert make_store().load() == FULL.with_changes(openai_compatible_model_name="first")


def test_a_key_no_secret_opens_is_kept_through_a_save_and_reads_again_with_its_secret(make_store):
    """Acceptance 2, both backends: key saved, secret removed, a model name saved, secret
    restored: the key works again."""
    original = make_store()
    original.save(FULL)
    without_secret = make_store(KeyBox([Fernet.generate_key().decode()]))
    shown = without_secret.load()
    assert shown.openai_compatible_api_key == "" == shown.openai_api_key
    assert set(without_secret.unreadable_keys) == {"openai_api_key", "openai_compatible_api_key"}
    without_secret.save(shown.with_changes(openai_compatible_model_name="after"))
    assert make_store().load() == FULL.with_changes(openai_compatible_model_name="after")


def test_an_unreadable_key_is_replaced_or_removed_only_when_the_user_says_so(make_store):
    make_store().save(FULL)
    without_secret = make_store(KeyBox([Fernet.generate_key().decode()]))
    shown = without_secret.load()
    without_secret.save(shown.with_changes(openai_api_key="sk-typed-again-0123456789"))
    without_secret.save(without_secret.load().with_changes(openai_compatible_api_key=""),
                        remove_keys=("openai_compatible_api_key",))
    assert without_secret.unreadable_keys == ()
    assert without_secret.load() == FULL.with_changes(openai_api_key="sk-typed-again-0123456789",
                                                      openai_compatible_api_key="")


# Text a query string or SQL could misread: separators, quotes, wildcards, escapes, "null".
awkward_text = st.lists(
    st.sampled_from([*',.:()"\\\'%*_&=?#+ ;[]{}<>/', "null", "a", "é", "名", "🚀"]), max_size=20,
).map("".join)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(first=awkward_text, second=awkward_text)
def test_p2_saves_over_what_was_read_whatever_the_text(make_store, first, second):
    """P2 under compare-and-set: for any display names, a save based on what is stored is
    written and read back, and a save based on a stale read of that field is refused."""
    base = make_store()
    base.save(FULL.with_changes(display_name=first))
    stale = make_store()
    stale_view = stale.load()
    assert base.load().display_name == first
    base.save(FULL.with_changes(display_name=second))
    assert make_store().load().display_name == second
    if second != first:
        with pytest.raises(ProfileChanged):
            stale.save(stale_view.with_changes(display_name=first + "x"))
    assert make_store().load().display_name == second


def test_long_values_still_save_over_what_was_read_only(make_store):
    """Values too long to compare in a URL are checked through the row's version."""
    long_name = "名" * 1000
    make_store().save(FULL.with_changes(display_name=long_name))
    one, two = make_store(), make_store()
    shown_one, shown_two = one.load(), two.load()
    one.save(shown_one.with_changes(display_name="短" * 999))
    with pytest.raises(ProfileChanged):
        two.save(shown_two.with_changes(display_name="長" * 1000))
    assert make_store().load().display_name == "短" * 999


# ---- the ChatStore contract for a reply as it streams (issue 18), and for long messages -----
# Both real backends through the app's stores: an SQLite file, and the Supabase stack through
# PostgREST (tests.test_history_store's backends: `store()` is a new session of one user).

SHORT_LEASE = 2.0  # seconds: a reply not written for longer is taken for abandoned here
QUIET = SHORT_LEASE + 0.5


@pytest.fixture(params=["sqlite", "supabase"])
def chats(request, tmp_path):
    if request.param == "sqlite":
        return sqlite_backend(tmp_path)
    return supabase_backend(request.getfixturevalue("supabase_stack"))


def a_streaming_reply(store, content: str = "", reasoning: str = "",
                      chat: Chat | None = None) -> Message:
    """A new streaming reply (to a new user message) in `chat`, or in a new chat."""
    chat = chat or store.save_chat(Chat(title="Streaming"))
    asked = store.add_message(Message(chat_id=chat.id, role="user", content="Tell me"))
    return store.add_message(Message(chat_id=chat.id, parent_id=asked.id, role="assistant",
                                     content=content, reasoning=reasoning, status="streaming"))


def stored(store, message: Message) -> Message:
    return next(m for m in store.messages(message.chat_id) if m.id == message.id)


def test_an_append_at_the_stored_offsets_is_kept_and_read_back_in_another_session(chats):
    writer = chats.store()
    reply = a_streaming_reply(writer, content="Hel", reasoning="Hm")

    after = writer.append_reply(reply.id, 3, "lo, wörld 🌍", 2, "m, so")

    assert after == ReplyState(status="streaming", content_length=14, reasoning_length=7,
                               stop_requested=False, alive=True)
    kept = stored(chats.store(), reply)
    assert (kept.content, kept.reasoning, kept.status) == ("Hello, wörld 🌍", "Hmm, so",
                                                           "streaming")
    assert writer.append_reply(reply.id, 14, "!", 7, "").content_length == 15


@pytest.mark.parametrize("content_at, reasoning_at", [(2, 2), (4, 2), (3, 0), (3, 3), (0, 0)])
def test_an_append_at_other_offsets_writes_nothing_and_says_what_is_stored(chats, content_at,
                                                                          reasoning_at):
    store = chats.store()
    reply = a_streaming_reply(store, content="Hel", reasoning="Hm")

    after = store.append_reply(reply.id, content_at, "lo", reasoning_at, "m")

    assert (after.status, after.content_length, after.reasoning_length) == ("streaming", 3, 2)
    assert stored(chats.store(), reply) == reply


@pytest.mark.parametrize("status", ["complete", "stopped", "interrupted", "incomplete",
                                    "failed"])
def test_an_append_to_a_reply_that_is_not_streaming_writes_nothing(chats, status):
    store = chats.store()
    reply = store.update_message(a_streaming_reply(store, content="Done").id,
                                 {"status": status})

    after = store.append_reply(reply.id, 4, " and more", 0, "")

    assert (after.status, after.content_length) == (status, 4)
    assert stored(chats.store(), reply) == reply


def test_an_empty_append_is_a_heartbeat_and_a_stop_request_is_not(chats):
    store = chats.store()
    reply = a_streaming_reply(store, content="Thinking")
    time.sleep(QUIET)
    assert store.read_reply(reply.id, lease_seconds=SHORT_LEASE)[1].alive is False

    store.request_stop(reply.id)  # asking to stop is not the writer being there
    assert store.read_reply(reply.id, lease_seconds=SHORT_LEASE)[1].alive is False
    assert store.append_reply(reply.id, 8, "", 0, "").alive is True
    assert store.read_reply(reply.id, lease_seconds=SHORT_LEASE)[1].alive is True

    assert stored(store, reply).content == "Thinking"
    time.sleep(QUIET)
    store.update_message(reply.id, {"content": "Thinking hard"})  # any write while streaming
    assert store.read_reply(reply.id, lease_seconds=SHORT_LEASE)[1].alive is True


def test_a_reply_that_ended_keeps_the_heartbeat_it_had(chats):
    store = chats.store()
    reply = a_streaming_reply(store, content="Done")
    time.sleep(QUIET)

    store.update_message(reply.id, {"status": "complete", "usage": {"total_tokens": 3}})

    assert store.read_reply(reply.id, lease_seconds=SHORT_LEASE)[1].alive is False


@pytest.mark.parametrize("content_at, reasoning_at", [(0, 0), (3, 1), (7, 4), (8, 5), (50, 9)])
def test_read_reply_gives_only_what_follows_the_offsets(chats, content_at, reasoning_at):
    store = chats.store()
    reply = a_streaming_reply(store)
    content, reasoning = "né😀\x00 x\ud800y", "why\x00"  # stored: NUL and the lone half as U+FFFD
    store.append_reply(reply.id, 0, content, 0, reasoning)
    kept_content, kept_reasoning = "né😀\ufffd x\ufffdy", "why\ufffd"

    message, state = chats.store().read_reply(reply.id, content_at, reasoning_at)

    assert (message.content, message.reasoning) == (kept_content[content_at:],
                                                    kept_reasoning[reasoning_at:])
    assert message == stored(store, reply).with_changes(content=message.content,
                                                        reasoning=message.reasoning)
    assert state == ReplyState(status="streaming", content_length=8, reasoning_length=4,
                               stop_requested=False, alive=True)


def test_a_message_that_is_not_there_has_no_reply_to_read_append_stop_or_settle(chats):
    store = chats.store()
    for missing in (str(uuid.uuid4()), "not-an-id"):
        assert store.read_reply(missing) is None
        assert store.append_reply(missing, 0, "x", 0, "") is None
        store.request_stop(missing)  # not an error
        assert store.settle_abandoned(missing, 0) == []


def test_a_stop_request_reaches_the_writer_in_another_session(chats):
    writer, page = chats.store(), chats.store()
    reply = a_streaming_reply(writer)
    assert writer.append_reply(reply.id, 0, "One", 0, "").stop_requested is False

    page.request_stop(reply.id)
    page.request_stop(reply.id)  # twice: the same

    assert writer.append_reply(reply.id, 3, " two", 0, "").stop_requested is True
    assert page.read_reply(reply.id)[1].stop_requested is True
    assert stored(page, reply).content == "One two"  # the writer decides when it stops


def test_settle_marks_only_the_stale_streaming_replies_of_that_chat(chats):
    store = chats.store()
    chat = store.save_chat(Chat(title="Settled"))
    stale = a_streaming_reply(store, content="cut off", chat=chat)
    ended = store.update_message(a_streaming_reply(store, content="ended", chat=chat).id,
                                 {"status": "complete"})
    elsewhere = a_streaming_reply(store, content="another chat")
    time.sleep(QUIET)
    fresh = a_streaming_reply(store, content="still arriving", chat=chat)

    assert store.settle_abandoned(chat.id, SHORT_LEASE) == [stale.id]

    kept = {m.id: m for m in chats.store().messages(chat.id)}
    assert kept[stale.id] == stale.with_changes(status="interrupted")  # its text kept
    assert (kept[ended.id], kept[fresh.id]) == (ended, fresh)
    assert stored(store, elsewhere).status == "streaming"
    assert store.settle_abandoned(chat.id, SHORT_LEASE) == []
    assert store.append_reply(stale.id, 7, " late", 0, "").content_length == 7  # not streaming


def test_two_pages_settling_at_once_each_get_a_reply_at_most_once(chats):
    store = chats.store()
    chat = store.save_chat(Chat(title="Two replicas"))
    stale = {a_streaming_reply(store, content=f"reply {n}", chat=chat).id for n in range(12)}
    time.sleep(QUIET)
    pages = [chats.store(), chats.store()]
    start = threading.Barrier(len(pages))
    settled: list[list[str]] = [[] for _ in pages]

    def settle(number: int) -> None:
        start.wait()
        settled[number] = pages[number].settle_abandoned(chat.id, SHORT_LEASE)

    threads = [threading.Thread(target=settle, args=(n,)) for n in range(len(pages))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    first, second = settled
    assert not set(first) & set(second)
    assert sorted(first + second) == sorted(stale)
    assert {m.status for m in store.messages(chat.id) if m.id in stale} == {"interrupted"}


def test_another_user_can_neither_append_to_read_stop_nor_settle_a_reply(chats):
    owner = chats.store()
    reply = a_streaming_reply(owner, content="mine")
    time.sleep(QUIET)
    other = chats.other_user()

    assert other.append_reply(reply.id, 4, " and theirs", 0, "") is None
    assert other.read_reply(reply.id) is None
    other.request_stop(reply.id)
    assert other.settle_abandoned(reply.chat_id, 0) == []

    assert owner.read_reply(reply.id, lease_seconds=SHORT_LEASE) == (
        reply, ReplyState(status="streaming", content_length=4, reasoning_length=0,
                          stop_requested=False, alive=False))


# ---- long messages ------------------------------------------------------------------------

def long_text(characters: int, early: str, late: str) -> str:
    """`characters` of text in several scripts (about 1.4 bytes each in UTF-8), with the word
    `early` in its first 1,000 characters and `late` in its last 1,000."""
    filler = "Lorem ipsum dolor sit amet, façade Straße привет 日本語 検索 😀 ∑ → "
    body = (filler * (characters // len(filler) + 1))
    text = f"{body[:500]} {early} {body[500:characters]}"[:characters - len(late) - 2]
    return f"{text} {late} "


def test_a_20_mb_reply_is_appended_listed_searched_and_updated_whole(chats):
    store = chats.store()
    reply = a_streaming_reply(store, content="Here it is:")
    text = long_text(20_000_000, "quetzalearly", "quetzallate")
    assert len(text.encode("utf-8")) > 28_000_000  # bytes: more than the characters

    after = store.append_reply(reply.id, 11, text, 0, "long")
    more = store.append_reply(reply.id, 11 + len(text), "And more.", 4, "")

    assert (after.content_length, more.content_length) == (11 + len(text), 20 + len(text))
    assert stored(chats.store(), reply).content == "Here it is:" + text + "And more."
    tail, state = chats.store().read_reply(reply.id, 11 + len(text), 4)
    assert (tail.content, state.content_length) == ("And more.", 20 + len(text))
    # The search index holds a message's first 100,000 characters, in both backends.
    assert [f.chat.id for f in store.search("quetzalearly")] == [reply.chat_id]
    assert store.search("quetzallate") == []

    updated = store.update_message(reply.id, {"content": text[::-1], "status": "complete"})
    assert updated.content == text[::-1] and updated.status == "complete"
    assert stored(chats.store(), reply) == updated


def test_a_20_mb_message_and_its_reasoning_are_added_whole_and_added_once(chats):
    store = chats.store()
    chat = store.save_chat(Chat(title="Pasted file"))
    message = Message(chat_id=chat.id, role="user", content=long_text(20_000_000, "a", "b"),
                      reasoning=long_text(3_000_000, "c", "d"))

    added = store.add_message(message)
    again = chats.store().add_message(message)  # a retry, or another tab

    assert added == again == message.with_changes(created_at=added.created_at)
    assert chats.store().messages(chat.id) == [added]
    assert chats.stored_messages() == 1


def test_a_5_mb_reply_and_a_2_mb_message_are_exported_and_imported_whole(chats):
    store = chats.store()
    chat = store.save_chat(Chat(title="Big exchange"))
    asked = store.add_message(Message(chat_id=chat.id, role="user",
                                      content=long_text(2_000_000, "ask", "end")))
    reply = store.add_message(Message(chat_id=chat.id, parent_id=asked.id, role="assistant",
                                      content="", status="streaming"))
    store.append_reply(reply.id, 0, long_text(5_000_000, "reply", "end"), 0, "hmm " * 1000)
    store.update_message(reply.id, {"status": "complete"})
    store.save_chat(chat.with_changes(current_id=reply.id))
    exported = to_json(every_chat(chats.store()))

    someone = chats.other_user()
    report = import_chats(someone, exported, owner="someone")

    assert (report.imported, report.already_there) == (1, 0)
    [(imported_chat, imported)] = every_chat(someone)
    originals = store.messages(chat.id)
    assert [(m.role, m.content, m.reasoning, m.status) for m in imported] == [
        (m.role, m.content, m.reasoning, m.status) for m in originals]
    assert [len(m.content) for m in imported] == [2_000_000, 5_000_000]
    assert [m.content for m in Thread(imported).branch(imported_chat.current_id)] == [
        m.content for m in originals]


# ---- comparisons: one message to 2-4 models, and the first verdict ----------------------------


def a_comparison(store, columns: int = 3, blind: bool = False, chat: Chat | None = None,
                 stored_replies: bool = True) -> tuple[Comparison, list[Message]]:
    """A new comparison of `columns` replies (stored, or only named) to a new user message."""
    chat = chat or store.save_chat(Chat(title="Compared"))
    asked = store.add_message(Message(chat_id=chat.id, role="user", content="Which is best?"))
    labels = [f"model-{column} · server" for column in range(columns)]
    replies = [Message(chat_id=chat.id, parent_id=asked.id, role="assistant",
                       content=f"answer from column {column} xylophone{column}",
                       model_label=label) for column, label in enumerate(labels)]
    if stored_replies:
        replies = [store.add_message(reply) for reply in replies]
    return Comparison(chat_id=chat.id, message_id=asked.id,
                      reply_ids=tuple(reply.id for reply in replies), labels=tuple(labels),
                      blind=blind), replies


def without_times(comparison: Comparison) -> Comparison:
    return comparison.with_changes(created_at="", decided_at="")


@pytest.mark.parametrize("columns", [MIN_COMPARED, MAX_COMPARED])
def test_a_comparison_is_saved_and_read_back_in_column_order(chats, columns):
    store = chats.store()
    comparison, replies = a_comparison(store, columns, blind=True)

    saved = store.save_comparison(comparison)

    assert without_times(saved) == comparison
    assert saved.created_at and not saved.decided_at and not saved.decided
    assert chats.store().comparisons(comparison.chat_id) == [saved]  # another session
    assert list(saved.reply_ids) == [reply.id for reply in replies]
    assert store.blind_verdicts() == []  # not decided yet


def test_a_chats_comparisons_come_oldest_first_and_only_its_own(chats):
    store = chats.store()
    first, _ = a_comparison(store)
    second, _ = a_comparison(store, chat=store.get_chat(first.chat_id))
    elsewhere, _ = a_comparison(store)
    for comparison in (first, second, elsewhere):
        store.save_comparison(comparison)

    assert [c.id for c in store.comparisons(first.chat_id)] == [first.id, second.id]
    assert [c.id for c in store.comparisons(elsewhere.chat_id)] == [elsewhere.id]


def test_saving_a_comparison_again_changes_nothing(chats):
    store = chats.store()
    comparison, _ = a_comparison(store)
    saved = store.save_comparison(comparison)

    assert store.save_comparison(comparison) == saved
    assert store.comparisons(comparison.chat_id) == [saved]


def test_the_first_verdict_is_kept_and_later_ones_change_nothing(chats):
    store = chats.store()
    comparison, replies = a_comparison(store, blind=True)
    store.save_comparison(comparison)

    decided = store.save_comparison(comparison.with_changes(picked_id=replies[1].id))
    assert decided.picked_id == replies[1].id and decided.decided_at and not decided.tie

    for later in (comparison.with_changes(picked_id=replies[2].id),
                  comparison.with_changes(tie=True), comparison):
        assert chats.store().save_comparison(later) == decided
    assert store.comparisons(comparison.chat_id) == [decided]
    assert store.blind_verdicts() == [decided]


def test_a_tie_is_a_verdict_and_is_kept(chats):
    store = chats.store()
    comparison, replies = a_comparison(store, blind=True)
    store.save_comparison(comparison)

    tied = store.save_comparison(comparison.with_changes(tie=True))

    assert tied.tie and tied.picked_id is None and tied.decided_at
    assert store.save_comparison(comparison.with_changes(picked_id=replies[0].id)) == tied


def test_a_comparison_saved_decided_is_decided_at_once(chats):
    store = chats.store()
    comparison, replies = a_comparison(store)

    saved = store.save_comparison(comparison.with_changes(picked_id=replies[0].id))

    assert saved.picked_id == replies[0].id and saved.decided_at


def test_its_replies_may_be_stored_after_it(chats):
    store = chats.store()
    comparison, replies = a_comparison(store, stored_replies=False)

    saved = store.save_comparison(comparison)
    for reply in replies:
        store.add_message(reply)

    assert without_times(saved) == comparison
    assert {m.id for m in store.messages(comparison.chat_id)} >= set(comparison.reply_ids)


@pytest.mark.parametrize("change, words", [
    (lambda c: {"picked_id": str(uuid.uuid4())}, "not one of the replies compared"),
    (lambda c: {"reply_ids": c.reply_ids[:1], "labels": c.labels[:1]}, "2 to 4 replies"),
    (lambda c: {"reply_ids": (*c.reply_ids, *(str(uuid.uuid4()) for _ in range(2))),
                "labels": (*c.labels, "e", "f")}, "2 to 4 replies"),
    (lambda c: {"labels": c.labels[:2]}, "one model label for each"),
    (lambda c: {"labels": ("x" * (MAX_MODEL_LABEL_LENGTH + 1), *c.labels[1:])},
     "label is too long"),
    (lambda c: {"picked_id": c.reply_ids[0], "tie": True}, "not both"),
    (lambda c: {"reply_ids": (c.reply_ids[0], c.reply_ids[0], c.reply_ids[1])},
     "not named properly"),
])
def test_a_comparison_out_of_its_bounds_is_refused_and_nothing_is_saved(chats, change, words):
    store = chats.store()
    comparison, _ = a_comparison(store)

    with pytest.raises(UserFacingError, match=words):
        store.save_comparison(comparison.with_changes(**change(comparison)))

    assert store.comparisons(comparison.chat_id) == []


def test_a_verdict_naming_another_reply_is_refused_and_the_comparison_stays_undecided(chats):
    store = chats.store()
    comparison, _ = a_comparison(store)
    saved = store.save_comparison(comparison)

    with pytest.raises(UserFacingError, match="not one of the replies compared"):
        store.save_comparison(comparison.with_changes(picked_id=str(uuid.uuid4())))

    assert store.comparisons(comparison.chat_id) == [saved]


def test_another_users_chat_and_comparison_are_refused_and_unseen(chats):
    store, other = chats.store(), chats.other_user()
    comparison, replies = a_comparison(store, blind=True)
    saved = store.save_comparison(comparison)

    with pytest.raises(UserFacingError, match="no longer exists"):  # into his chat
        other.save_comparison(comparison.with_changes(id=str(uuid.uuid4())))
    with pytest.raises(UserFacingError, match="no longer exists"):  # his comparison's id
        other.save_comparison(comparison.with_changes(picked_id=replies[0].id))
    with pytest.raises(UserFacingError, match="no longer exists"):  # a chat not stored
        store.save_comparison(comparison.with_changes(id=str(uuid.uuid4()),
                                                      chat_id=str(uuid.uuid4())))

    assert other.comparisons(comparison.chat_id) == [] and other.blind_verdicts() == []
    assert store.comparisons(comparison.chat_id) == [saved]


def test_comparisons_go_with_their_chat_and_with_delete_all(chats):
    store = chats.store()
    kept_chat = store.save_chat(Chat(title="Kept"))
    first, replies = a_comparison(store, blind=True)
    kept, _ = a_comparison(store, blind=True, chat=kept_chat)
    store.save_comparison(first.with_changes(picked_id=replies[0].id))
    store.save_comparison(kept.with_changes(tie=True))

    store.delete_chat(first.chat_id)

    assert store.comparisons(first.chat_id) == []
    assert [c.id for c in store.blind_verdicts()] == [kept.id]
    assert store.delete_all() == 1
    assert store.comparisons(kept.chat_id) == [] and store.blind_verdicts() == []
    again = store.save_chat(Chat(title="Again", id=kept.chat_id))  # the id free again
    assert store.comparisons(again.id) == []


def test_blind_verdicts_are_the_decided_blind_comparisons_oldest_first(chats):
    store = chats.store()
    made = [a_comparison(store, blind=blind) for blind in (True, True, False, True, True)]
    for comparison, _ in made:
        store.save_comparison(comparison)
    (first, first_replies), _undecided, (seen, seen_replies), \
        (tied, _), (last, last_replies) = made
    store.save_comparison(last.with_changes(picked_id=last_replies[2].id))
    store.save_comparison(first.with_changes(picked_id=first_replies[0].id))
    store.save_comparison(seen.with_changes(picked_id=seen_replies[1].id))
    store.save_comparison(tied.with_changes(tie=True))

    verdicts = chats.store().blind_verdicts()

    assert [c.id for c in verdicts] == [first.id, tied.id, last.id]
    assert [c.picked_id for c in verdicts] == [first_replies[0].id, None, last_replies[2].id]
    assert all(c.blind and c.decided for c in verdicts)


def test_a_compared_reply_is_found_by_search(chats):
    store = chats.store()
    comparison, _ = a_comparison(store)
    store.save_comparison(comparison)

    found = store.search("xylophone2")

    assert [f.chat.id for f in found] == [comparison.chat_id]
    assert "xylophone2" in found[0].snippet
