"""Imports run by the server process, apart from the page that started them.

A file of 10,000 conversations takes a while: it is checked whole, then written a batch of
chats at a time by a thread of its own, so the page stays usable. Any page of the process shows
its progress and can cancel it; a cancelled or failed import removes the chats it had stored.
One import at a time per user.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from core.failures import UserFacingError, ours
from core.history.transfer import Cancelled, ImportReport, check_file, write_chats
from core.store.contracts import ChatStore

logger = logging.getLogger(__name__)

CHECKING, WRITING, DONE, CANCELLED, FAILED = "checking", "writing", "done", "cancelled", "failed"


class ImportRunning(UserFacingError):
    """The user already has an import under way."""

    def __init__(self) -> None:
        super().__init__("An import is already under way: wait for it to end, or cancel it, "
                         "before importing another file.")


class NoFileChosen(UserFacingError):
    def __init__(self) -> None:
        super().__init__("Choose a file to import first: a Switchboard export, or "
                         "conversations.json from a ChatGPT data export.")


@dataclass(frozen=True)
class Progress:
    """Where an import stands, as a page shows it."""

    state: str  # CHECKING, WRITING, DONE, CANCELLED or FAILED
    done: int  # chats checked (CHECKING) or written (WRITING) so far
    total: int  # chats in the file (known once it is checked)
    report: ImportReport | None = None  # DONE
    problem: str = ""  # FAILED: what went wrong, said for the user
    left_seconds: float | None = None  # WRITING: the time left at the pace so far, once known

    @property
    def running(self) -> bool:
        return self.state in (CHECKING, WRITING)

    @property
    def fraction(self) -> float:
        if self.state == CHECKING or not self.total:
            return 0.0
        return min(self.done / self.total, 1.0)

    @property
    def words(self) -> str:
        if self.state == CHECKING:
            return f"Checking the file: {self.done:,} chats read…"
        if self.state == WRITING:
            return f"Importing: {self.done:,} of {self.total:,} chats{_left(self.left_seconds)}"
        if self.state == CANCELLED:
            return "The import was cancelled; nothing of it was kept."
        if self.state == FAILED:
            return self.problem
        return self.report.summary if self.report else ""


def _left(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 60:
        return ", less than a minute left"
    minutes = math.ceil(seconds / 60)
    return f", about {minutes} minute{'s' if minutes > 1 else ''} left"


ESTIMATE_AFTER = 3.0  # seconds of writing before the time left is said


class ImportJob:
    """One import, from the file to its report. Its counters are written by its thread only."""

    def __init__(self, data: bytes | memoryview, open_store: Callable[[], ChatStore],
                 owner: str):
        self.data = data
        self.open_store = open_store
        self.owner = owner
        self.state = CHECKING
        self.done = 0
        self.total = 0
        self.report: ImportReport | None = None
        self.problem = ""
        self.writing_since: float | None = None  # time.monotonic() when writing began
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="chat-import", daemon=True)

    def progress(self) -> Progress:
        return Progress(self.state, self.done, self.total, self.report, self.problem,
                        self._left_seconds())

    def _left_seconds(self) -> float | None:
        """At the pace so far (a hosted store takes an import's rows at its own rate)."""
        since, done = self.writing_since, self.done
        if self.state != WRITING or since is None or done <= 0:
            return None
        spent = time.monotonic() - since
        return spent / done * max(self.total - done, 0) if spent >= ESTIMATE_AFTER else None

    def cancel(self) -> None:
        """From any thread: the import stops after the batch being written, and removes what
        it stored."""
        self.stopping.set()

    def wait(self, timeout: float | None = None) -> Progress:
        self.thread.join(timeout)
        return self.progress()

    def _counted(self, count: int) -> None:
        self.done = count

    def _run(self) -> None:
        try:
            checked = check_file(self.data, self.stopping.is_set, self._counted)
            self.writing_since = time.monotonic()
            self.total, self.done, self.state = checked.total, 0, WRITING
            self.report = write_chats(self.open_store(), checked, self.owner,
                                      self.stopping.is_set, self._counted)
            self.state = DONE
        except Cancelled:
            self.state = CANCELLED
        except UserFacingError as exc:  # the file refused, the store out or refusing
            self.problem, self.state = str(exc), FAILED
        except Exception as exc:  # noqa: BLE001 - said with a reference, logged by ours()
            self.problem, self.state = str(ours(exc)), FAILED
        finally:
            self.data = b""  # the file is not kept once read


_JOBS: dict[str, ImportJob] = {}  # by owner: the running import, or the last one ended
_LOCK = threading.Lock()


def start_import(data: bytes | memoryview | None, open_store: Callable[[], ChatStore],
                 owner: str) -> ImportJob:
    """Start importing `data` for `owner` in the background; NoFileChosen for none,
    ImportRunning when one is under way already."""
    if data is None:
        raise NoFileChosen()
    with _LOCK:
        running = _JOBS.get(owner)
        if running is not None and running.progress().running:
            raise ImportRunning()
        job = _JOBS[owner] = ImportJob(data, open_store, owner)
    job.thread.start()
    return job


def current_import(owner: str) -> ImportJob | None:
    """The owner's running import, or the last one that ended (until `forget_import`)."""
    return _JOBS.get(owner)


def forget_import(owner: str, job: ImportJob) -> None:
    """Forget an ended import (its report was shown); a newer one is kept."""
    with _LOCK:
        if _JOBS.get(owner) is job and not job.progress().running:
            del _JOBS[owner]
