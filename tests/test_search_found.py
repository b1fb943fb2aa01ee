"""search_found (core.history.listing): the count and the pages of a search asked at once,
against the real SQLite store, and its paging and failures with a recording store."""

from __future__ import annotations

import threading

import pytest

from core.failures import UserFacingError
from core.history.listing import search_found
from core.history.model import Chat, Message
from core.store.sqlite import SQLiteChatStore


def test_the_count_and_every_hit_up_to_the_limit_from_the_real_store(tmp_path):
    store = SQLiteChatStore(tmp_path)
    made = []
    for n in range(130):
        chat = store.save_chat(Chat(title=f"chat {n}"))
        store.add_message(Message(chat_id=chat.id, role="user", content=f"quokka {n}"))
        made.append(chat.id)
    count, hits = search_found(store, "quo", limit=120)
    assert count == 130
    assert [hit.chat.id for hit in hits] == [hit.chat.id for hit in
                                             store.search_page("quo", limit=100)] + \
        [hit.chat.id for hit in store.search_page("quo", limit=20, offset=100)]
    assert search_found(store, "quo", limit=500)[1][-1].chat.id == made[0]  # the oldest last
    assert search_found(store, "nothing", limit=20) == (0, [])


class Recording:
    """A store that answers `total` hits, recording each page asked and the count's thread."""

    def __init__(self, total: int, fail: str = "") -> None:
        self.total, self.fail = total, fail
        self.pages: list[tuple[int, int]] = []
        self.counted_in: str | None = None

    def count_found(self, query: str) -> int:
        self.counted_in = threading.current_thread().name
        if self.fail == "count":
            raise UserFacingError("The database is unavailable right now.")
        return self.total

    def search_page(self, query: str, limit: int = 20, offset: int = 0) -> list:
        self.pages.append((limit, offset))
        if self.fail == "page":
            raise UserFacingError("The database is unavailable right now.")
        return [f"hit {n}" for n in range(offset, min(offset + limit, self.total))]


@pytest.mark.parametrize("total, limit, pages", [
    (1000, 250, [(100, 0), (100, 100), (50, 200)]),  # a hundred at most per call
    (130, 250, [(100, 0), (100, 100)]),  # a short page ends it
    (100, 100, [(100, 0)]),
    (0, 20, [(20, 0)]),
])
def test_pages_are_read_up_to_the_limit_and_the_count_in_its_own_thread(total, limit, pages):
    store = Recording(total)
    count, hits = search_found(store, "q", limit)
    assert (count, len(hits), store.pages) == (total, min(total, limit), pages)
    assert store.counted_in != threading.current_thread().name


@pytest.mark.parametrize("fail", ["count", "page"])
def test_a_failure_of_either_call_is_raised(fail):
    with pytest.raises(UserFacingError, match="unavailable"):
        search_found(Recording(50, fail=fail), "q", 20)
