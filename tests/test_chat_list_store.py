"""Pins, folders and search as the user types, the same tests on each backend: pinned and
filed chats listed apart, folders renamed and deleted (their chats kept), a true count of
every chat found, pages of hits with the matched words marked and the message each is from,
and none of it reaching another user's chats."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.failures import UserFacingError
from core.history.listing import marked_html
from core.history.model import MAX_FOLDER_LENGTH, SNIPPET_MARKS, Chat, Message
from tests.test_history_store import sqlite_backend, supabase_backend

START, END = SNIPPET_MARKS


@pytest.fixture(params=["sqlite", "supabase"])
def chats(request, tmp_path):
    if request.param == "sqlite":
        return sqlite_backend(tmp_path)
    return supabase_backend(request.getfixturevalue("supabase_stack"))


def test_pinned_chats_are_listed_apart_and_a_pin_is_kept(chats):
    store = chats.store()
    first, second, third = (store.save_chat(Chat(title=t)) for t in ("one", "two", "three"))
    store.save_chat(first.with_changes(pinned=True))
    again = chats.store()  # another session
    assert [c.id for c in again.list_chats(pinned=True)] == [first.id]
    assert [c.id for c in again.list_chats(pinned=False)] == [third.id, second.id]
    assert again.get_chat(first.id).pinned is True
    again.save_chat(again.get_chat(first.id).with_changes(pinned=False))
    assert store.list_chats(pinned=True) == []


def test_a_chat_is_filed_in_one_folder_and_the_list_filters_by_it(chats):
    store = chats.store()
    work = [store.save_chat(Chat(title=f"work {n}", folder="Work")) for n in range(3)]
    home = store.save_chat(Chat(title="home", folder="Home"))
    loose = store.save_chat(Chat(title="loose"))
    assert store.folders() == [("Home", 1), ("Work", 3)]
    assert [c.id for c in store.list_chats(folder="Work")] == [c.id for c in work[::-1]]
    assert [c.id for c in store.list_chats(folder="")] == [loose.id]
    store.save_chat(store.get_chat(home.id).with_changes(folder="Work"))  # refiled
    assert store.folders() == [("Work", 4)]
    assert chats.store().get_chat(home.id).folder == "Work"


def test_renaming_and_deleting_a_folder_moves_its_chats_and_keeps_them(chats):
    store = chats.store()
    filed = [store.save_chat(Chat(title=f"trip {n}", folder="Trips")).id for n in range(2)]
    store.save_chat(Chat(title="other", folder="Other"))
    assert store.move_folder("Trips", "Travel") == 2
    assert store.folders() == [("Other", 1), ("Travel", 2)]
    assert store.move_folder("Travel", "") == 2  # the folder deleted
    assert store.folders() == [("Other", 1)]
    assert {c.id for c in store.list_chats(folder="")} == set(filed)
    assert store.move_folder("Nowhere", "Else") == 0


def test_a_folder_name_too_long_is_refused_and_nothing_moves(chats):
    store = chats.store()
    chat = store.save_chat(Chat(title="kept", folder="Short"))
    with pytest.raises(UserFacingError, match="folder"):
        store.save_chat(chat.with_changes(folder="x" * (MAX_FOLDER_LENGTH + 1)))
    with pytest.raises(UserFacingError, match="folder"):
        store.move_folder("Short", "y" * (MAX_FOLDER_LENGTH + 1))
    assert store.get_chat(chat.id).folder == "Short"
    store.save_chat(chat.with_changes(folder="z" * MAX_FOLDER_LENGTH))  # the longest fits


def test_another_users_folders_and_pins_are_neither_seen_nor_moved(chats):
    mine = chats.store()
    chat = mine.save_chat(Chat(title="mine", folder="Secret", pinned=True))
    other = chats.other_user()
    assert other.folders() == []
    assert other.list_chats(pinned=True) == [] and other.list_chats(folder="Secret") == []
    assert other.move_folder("Secret", "Taken") == 0
    assert mine.get_chat(chat.id).folder == "Secret"


def test_the_count_is_every_chat_found_and_pages_go_through_them_all(chats):
    store = chats.store()
    made = []
    for n in range(25):
        chat = store.save_chat(Chat(title=f"chat {n}"))
        store.add_message(Message(chat_id=chat.id, role="user", content=f"about quokkas {n}"))
        made.append(chat.id)
    store.save_chat(Chat(title="Quokka facts"))  # found by its title
    store.save_chat(Chat(title="unrelated"))
    assert store.count_found("quokka") == 26
    pages = [store.search_page("quokka", limit=10, offset=at) for at in (0, 10, 20, 30)]
    assert [len(p) for p in pages] == [10, 10, 6, 0]
    ids = [hit.chat.id for page in pages for hit in page]
    assert len(set(ids)) == 26 and set(made) <= set(ids)
    assert chats.other_user().count_found("quokka") == 0
    assert chats.other_user().search_page("quokka") == []


def test_the_last_word_typed_matches_the_start_of_a_word(chats):
    store = chats.store()
    chat = store.save_chat(Chat(title="Plans"))
    store.add_message(Message(chat_id=chat.id, role="user", content="a trip to Lisbon in May"))
    for typed, found in (("l", 1), ("lis", 1), ("lisbon", 1), ("lisbonx", 0), ("isbon", 0),
                         ("trip lis", 1), ("tri lisbon", 0), ("may lisb", 1)):
        assert store.count_found(typed) == found, typed
        assert len(store.search_page(typed)) == found, typed


def test_a_hit_marks_the_matched_words_and_names_its_message(chats):
    store = chats.store()
    chat = store.save_chat(Chat(title="<b>Trip</b> **notes**"))
    first = store.add_message(Message(chat_id=chat.id, role="user", content="old zebra note"))
    newest = store.add_message(Message(chat_id=chat.id, role="user", parent_id=first.id,
                                       content="the zebra crossing <script>x</script>"))
    titled = store.save_chat(Chat(title="Zebras at <i>dawn</i>"))
    hits = {hit.chat.id: hit for hit in store.search_page("zeb")}
    assert hits[chat.id].message_id == newest.id  # the newest matching message
    assert f"{START}zebra{END}" in hits[chat.id].snippet
    shown = marked_html(hits[chat.id].snippet)
    assert "<mark>zebra</mark>" in shown and "<script>" not in shown, shown
    assert hits[titled.id].message_id is None
    assert f"{START}Zebras{END}" in hits[titled.id].snippet


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(word=st.text(st.characters(categories=("L", "N", "P", "S")), min_size=1, max_size=12))
def test_any_typed_text_is_searched_as_plain_words(chats, word):
    """Whatever is typed (quotes, stars, colons, operators of either backend's query
    language), a count and a page come back, and they agree."""
    store = chats.store()
    count = store.count_found(word)
    assert count >= 0 and len(store.search_page(word, limit=100)) == min(count, 100)


def test_a_file_from_before_folders_is_upgraded_keeping_its_chats_pins_and_search(
        tmp_path, monkeypatch):
    import sqlite3
    from contextlib import closing

    from core.store import sqlite as store_sqlite

    with monkeypatch.context() as earlier_release:
        earlier_release.setattr(store_sqlite, "MIGRATIONS", store_sqlite.MIGRATIONS[:8])
        store_sqlite.SQLiteChatStore(tmp_path)
    with closing(sqlite3.connect(tmp_path / store_sqlite.DB_FILENAME)) as db, db:
        db.execute("insert into chats (id, user_id, title, pinned, created_at, updated_at)"
                   " values ('c1', ?, 'Old pinned plans', 1, '2026-01-01T00:00:00.000000Z',"
                   " '2026-01-01T00:00:00.000000Z')", (store_sqlite.LOCAL_USER_ID,))

    store = store_sqlite.SQLiteChatStore(tmp_path)

    [chat] = store.list_chats(pinned=True)
    assert (chat.id, chat.folder, chat.pinned) == ("c1", "", True)
    assert store.count_found("pla") == 1 and store.folders() == []
    store.save_chat(chat.with_changes(folder="Kept"))
    assert store.folders() == [("Kept", 1)]


def test_a_chats_folder_and_pin_go_through_an_export_and_an_import(chats):
    from core.history.transfer import every_chat, import_chats, to_json

    store = chats.store()
    store.save_chat(Chat(title="filed", folder="Work", pinned=True))
    text = to_json(every_chat(store))
    other = chats.other_user()
    import_chats(other, text)
    [chat] = other.list_chats()
    assert (chat.title, chat.folder, chat.pinned) == ("filed", "Work", True)


# ---- SQLite asks which chats match one of two ways, by how many messages match ----------

VOCABULARY = ("quay", "quest", "quiet", "kayak", "kale", "kalo", "mango", "map", "zebra")


def _model_found(chats: dict[str, tuple[str, list[str]]], typed: list[str]) -> set[str]:
    """The chats whose title or a message holds every typed word, the last as a word start."""
    def holds(text: str) -> bool:
        words = text.split()
        return (all(w in words for w in typed[:-1])
                and any(word.startswith(typed[-1]) for word in words))
    return {chat_id for chat_id, (title, texts) in chats.items()
            if holds(title) or any(holds(text) for text in texts)}


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_both_ways_of_asking_find_the_same_chats_counts_pages_and_newest_hits(
        tmp_path_factory, monkeypatch, data):
    """Property: whether SQLite goes from the matching messages to their chats (few match)
    or chat by chat (many match), the count, every page and each hit's message (the newest
    matching one) are the same, and they are what the words say; another user's chats,
    holding the same words, are never among them."""
    from core.store import sqlite as store_sqlite
    from tests.test_history_store import sqlite_backend

    backend = sqlite_backend(tmp_path_factory.mktemp("ways"))
    store, other = backend.store(), backend.other_user()
    text = st.lists(st.sampled_from(VOCABULARY), min_size=1, max_size=4).map(" ".join)
    made: dict[str, tuple[str, list[str]]] = {}
    newest: dict[str, dict[str, str]] = {}  # chat -> word start -> newest message holding it
    for owner in (store, other):
        for _ in range(data.draw(st.integers(1, 6), label="chats")):
            title = data.draw(text, label="title")
            chat = owner.save_chat(Chat(title=title))
            texts, parent = [], None
            for content in data.draw(st.lists(text, max_size=5), label="messages"):
                parent = owner.add_message(Message(chat_id=chat.id, role="user",
                                                   parent_id=parent, content=content)).id
                texts.append(content)
                if owner is store:
                    for word in set(content.split()):
                        for end in range(1, len(word) + 1):
                            newest.setdefault(chat.id, {})[word[:end]] = parent
            if owner is store:
                made[chat.id] = (title, texts)
    typed = data.draw(st.lists(st.sampled_from(VOCABULARY), min_size=1, max_size=2), label="words")
    typed[-1] = typed[-1][:data.draw(st.integers(1, len(typed[-1])), label="start")]
    query, expected = " ".join(typed), _model_found(made, typed)
    answers = []
    for few_hits in (10**9, 0):  # always few; always many
        monkeypatch.setattr(store_sqlite, "FEW_HITS", few_hits)
        pages = [store.search_page(query, limit=3, offset=at) for at in range(0, 15, 3)]
        hits = [hit for page in pages for hit in page]
        answers.append((store.count_found(query), [(h.chat.id, h.message_id) for h in hits]))
        assert {h.chat.id for h in hits} == expected
        assert store.count_found(query) == len(expected) == len(hits)
        for hit in hits:
            title, texts = made[hit.chat.id]
            if hit.message_id is None:  # only the title holds the words
                assert not _model_found({"c": ("", texts)}, typed) and _model_found(
                    {"c": (title, [])}, typed)
            elif len(typed) == 1:
                assert hit.message_id == newest[hit.chat.id][typed[0]]
    assert answers[0] == answers[1]
