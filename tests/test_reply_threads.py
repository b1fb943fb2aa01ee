"""A reply's text may be read on another thread while its stream appends to it (core/chat/call.py
Reply.text): no piece may be lost to that."""

from __future__ import annotations

import threading

from core.chat.call import Reply


class AppendedWhileRead(list):
    """The reply's pieces, with one more piece appended by "the stream" at the worst moment:
    just as a reader writes back the pieces it joined."""

    def __init__(self, pieces, late: str):
        super().__init__(pieces)
        self.late = late

    def __setitem__(self, index, value):
        if self.late:
            late, self.late = self.late, ""
            self.append(late)
        super().__setitem__(index, value)


def test_a_piece_appended_while_the_text_is_read_is_kept():
    reply = Reply()
    reply.parts = AppendedWhileRead(["Hello", ", "], late="world")
    reply.text  # read on another thread while the stream appends "world"
    assert reply.text == "Hello, world"


def test_readers_on_other_threads_lose_no_piece_of_a_growing_reply():
    reply = Reply()
    pieces = [f"<{i}>" for i in range(30_000)]
    done = threading.Event()
    seen = []

    def read_all_the_time():
        while not done.is_set():
            seen.append(len(reply.text))

    readers = [threading.Thread(target=read_all_the_time) for _ in range(2)]
    for reader in readers:
        reader.start()
    try:
        for piece in pieces:
            reply.add_answer(piece)
    finally:
        done.set()
        for reader in readers:
            reader.join()
    assert reply.text == "".join(pieces)
    assert seen  # the readers really read while it grew
