"""Questions to a server whose answer can wait (its context window, whether it counts tokens):
asked on a thread of the server process, once at a time per question; the caller gets the
answer if it comes within `wait` seconds, else nothing now, and a later call gets it. A page
never waits seconds for a slow server's answer to a question it can do without."""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as NotYet

WORKERS = 4

_pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="switchboard-question")
_pending: dict[Hashable, Future] = {}
_lock = threading.Lock()


def answer_soon(key: Hashable, ask: Callable[[], object], wait: float) -> tuple[bool, object]:
    """(True, the answer) if `ask()` answered within `wait` seconds, else (False, None) while
    it goes on. `ask` must not raise (it is asked once; its answer is its caller's to keep)."""
    with _lock:
        future = _pending.get(key)
        if future is None:
            future = _pending[key] = _pool.submit(ask)
            future.add_done_callback(lambda _: _forget(key))
    try:
        return True, future.result(timeout=max(wait, 0.0))
    except NotYet:
        return False, None


def _forget(key: Hashable) -> None:
    with _lock:
        _pending.pop(key, None)
