"""Replies run by the server process, apart from the page that asked for them.

A bounded pool of workers streams each reply from its provider to its end. One keeper thread
appends what arrived to the store about once a second, which is also the reply's heartbeat: a
page in another process (a replica) tails it from the store, asks it to stop there, and marks it
Interrupted once its heartbeat is older than the lease. A page in this process waits on the reply
itself (`Job.follow`). Switching chats, reloading or closing the tab ends only the page's view.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

from core.chat.call import Reply, Thinking, close_source, start_reply
from core.chat.events import Watchdog
from core.config import Settings
from core.failures import OurBug, UserFacingError
from core.history.conversation import ShownMessage
from core.history.model import REPLY_LEASE_SECONDS, Message
from core.history.titles import TITLES, TitleAsk
from core.providers.kinds import Target
from core.store.contracts import ChatStore
from core.store.errors import StoreUnavailable

logger = logging.getLogger(__name__)

LEASE_SECONDS = REPLY_LEASE_SECONDS  # a streaming reply not written this long has no worker
SAVE_SECONDS = 1.0  # what arrived is stored at least this often: what a killed process loses
# Replies streamed at once by one process; more wait for a free worker. 25 sessions comparing
# four models each is 100 (bench/concurrency.py --per-session 4): 64 made 36 of them wait a whole
# reply. Each worker mostly waits on its socket.
WORKERS = 128
WRITERS = 8  # store writes under way at once, for every reply of the process
KEPT_SECONDS = 120.0  # an ended reply stays findable this long, for the pages that showed it
SAVE_GAP_FACTOR = 4
FINAL_TRIES = 60  # a final state the store cannot take now is tried again once a second


@dataclass(frozen=True)
class Ask:
    """What a reply is asked with."""

    settings: Settings
    target: Target
    messages: list[dict]
    temperature: float | None = None
    on_quirk: Callable[[str], None] = lambda quirk: None
    max_tokens: int | None = None  # the reply's room (None: the server's default)
    title: TitleAsk | None = None  # the chat's title is written once this reply has text


class Job:
    """One reply, from the request to its stored end. Thread-safe: the worker appends, the keeper
    saves, any number of pages follow it."""

    def __init__(self, message: Message, store: ChatStore | Callable[[], ChatStore],
                 user_id: str, *, add_when_text: bool = False,
                 clock: Callable[[], float] = time.monotonic):
        self.message = message  # the reply's row as first stored: id, chat, parent, "streaming"
        self._store = store  # or how to open it: a store out now is opened again at each save
        self.user_id = user_id
        self.add_when_text = add_when_text  # a Retry is no version of its own until text comes
        self.reply = Reply(clock=clock)
        self.watchdog = Watchdog(clock=clock)
        self.pieces: list[str] = []  # the answer as it came: only ever appended to
        self.changed = threading.Condition()
        self.version = 0
        self.stopping = threading.Event()
        self.done = False
        self.ended_at: float | None = None
        self.final: ShownMessage | None = None  # set once the reply ended
        self.stored = False  # the final state is in the store
        self.problem: str | None = None  # why the store does not hold this reply (said beside it)
        self.added = False
        self.left_to_page = False  # never stored by its worker: the conversation showing it is
        self.saved_pieces = 0  # pieces[:saved_pieces] are stored, and `skip` characters more
        self.skip = 0
        self.saved_chars = 0
        self.saved_reasoning = 0
        self.saved_at = time.monotonic()
        self.saving = False
        self.urgent = True  # saved on the keeper's next round, not a second later
        self.gap = 0.0  # seconds between saves beyond SAVE_SECONDS, for a long reply
        self.final_tries = 0
        self.listeners: list[threading.Event] = []  # set on each change (a page drawing several)

    @property
    def id(self) -> str:
        return self.message.id

    @property
    def store(self) -> ChatStore:
        if callable(self._store):
            self._store = self._store()
        return self._store

    # ---- the worker's side

    def arrived(self, piece: str | Thinking) -> None:
        if isinstance(piece, str):
            self.pieces.append(piece)
        with self.changed:
            self.version += 1
            self.changed.notify_all()
        for listener in self.listeners:
            listener.set()

    def end(self) -> None:
        reply = self.reply
        if self.stopping.is_set() and reply.status != "complete":
            reply.status, reply.error, reply.error_field = "stopped", None, None
        self.final = ShownMessage.ended(self.message, reply)
        with self.changed:
            self.done, self.ended_at = True, time.monotonic()
            self.version += 1
            self.changed.notify_all()
        for listener in self.listeners:
            listener.set()
        self.urgent = True  # after `done`: the save it starts writes the end

    def stop(self) -> None:
        """From any thread: the stream is cut at once, even while the server is silent."""
        self.stopping.set()
        self.watchdog.halt()  # the watcher cuts its socket within 50 ms

    # ---- the pages' side

    def follow(self, interval: float = 0.05) -> Iterator[str | Thinking]:
        """The answer from its start, as it arrives (a Thinking marker when the reasoning grew),
        until the reply ends. Waits on the worker, at most one wake-up per `interval`."""
        shown, reasoning = 0, 0
        seen = -1
        while True:
            with self.changed:
                self.changed.wait_for(lambda: self.version != seen, timeout=1.0)
                seen, done = self.version, self.done
            count = len(self.pieces)
            if count > shown:
                yield "".join(self.pieces[shown:count])
                shown = count
            if len(self.reply.reasoning) != reasoning:
                reasoning = len(self.reply.reasoning)
                yield Thinking("")
            if done:
                return
            time.sleep(interval)


class Pool:
    """At most `size` daemon threads, started as work comes and then kept: a process that is
    stopped or killed never waits for its replies (their lease marks them Interrupted)."""

    def __init__(self, size: int, name: str) -> None:
        self.size, self.name = size, name
        self._work: queue.SimpleQueue = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._idle = 0  # threads waiting for work
        self._queued = 0  # work no thread has taken yet
        self._lock = threading.Lock()

    def submit(self, task: Callable, *args) -> None:
        with self._lock:
            self._queued += 1
            if self._queued > self._idle and len(self._threads) < self.size:
                thread = threading.Thread(target=self._serve, daemon=True,
                                          name=f"{self.name}-{len(self._threads)}")
                self._threads.append(thread)
                self._idle += 1
                thread.start()
        self._work.put((task, args))

    def _serve(self) -> None:
        while True:
            task, args = self._work.get()
            with self._lock:
                self._queued -= 1
                self._idle -= 1
            try:
                task(*args)
            finally:
                with self._lock:
                    self._idle += 1


class Replies:
    """Every reply this process runs. Holds running work, not a cache: a job is found only by
    its message id and its user, and is forgotten KEPT_SECONDS after it ended and was stored."""

    def __init__(self, workers: int = WORKERS, writers: int = WRITERS,
                 save_every: float = SAVE_SECONDS) -> None:
        self.save_every = save_every
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._workers = Pool(workers, "reply")
        self._writers = Pool(writers, "reply-save")
        self._keeper: threading.Thread | None = None
        self._wake = threading.Event()

    def start(self, job: Job, ask: Ask, stored_later: bool = False) -> Job:
        """`stored_later`: the caller stores the reply's chat and message first, then calls
        save_soon (the store is not raced for while the page writes them)."""
        if stored_later:
            job.urgent, job.saved_at = False, time.monotonic()
        with self._lock:
            self._jobs[job.id] = job
            if self._keeper is None or not self._keeper.is_alive():
                self._keeper = threading.Thread(target=self._keep, name="reply-keeper",
                                                daemon=True)
                self._keeper.start()
        self._workers.submit(self._run, job, ask)
        if not stored_later:
            self._wake.set()  # stored at once: a reload finds it
        return job

    def save_soon(self, job: Job) -> None:
        """Its chat is stored now: the reply is added on the keeper's next round."""
        job.urgent = True
        self._wake.set()

    def find(self, message_id: str, user_id: str) -> Job | None:
        job = self._jobs.get(message_id)
        return job if job is not None and job.user_id == user_id else None

    def _run(self, job: Job, ask: Ask) -> None:
        stream = None
        try:
            if not job.stopping.is_set():
                stream = start_reply(ask.settings, ask.target, ask.messages, job.reply,
                                     temperature=ask.temperature, on_quirk=ask.on_quirk,
                                     watchdog=job.watchdog, max_tokens=ask.max_tokens)
                for piece in stream:
                    job.arrived(piece)
                    if job.stopping.is_set():
                        break
        except Exception:  # our bug: the reply ends failed, said as ours
            logger.exception("A reply's worker failed")
            job.reply.status = "failed"
            job.reply.error = job.reply.error or OUR_FAILURE
        finally:
            if stream is not None:
                close_source(stream)
            if (ask.title is not None and job.reply.status == "complete" and job.pieces
                    and not job.stopping.is_set()):  # pending before the page sees the end
                TITLES.write(ask.settings, ask.title, lambda: job.store, job.message.chat_id,
                             job.reply.text)
            job.end()
            self._wake.set()

    # ---- the keeper: one thread for the whole process

    def _keep(self) -> None:
        while True:
            self._wake.wait(timeout=0.2)
            self._wake.clear()
            now = time.monotonic()
            for job in list(self._jobs.values()):
                if job.saving:
                    continue
                if job.stored or job.problem is not None or job.left_to_page:
                    if job.done and now - job.ended_at > KEPT_SECONDS:
                        with self._lock:
                            self._jobs.pop(job.id, None)
                    continue
                if job.urgent or now - job.saved_at >= max(self.save_every, job.gap):
                    job.saving, job.urgent = True, False
                    self._writers.submit(self._save, job)

    def _save(self, job: Job) -> None:
        began = time.monotonic()
        try:
            save(job)
        except StoreUnavailable as exc:  # tried again on the next round
            logger.warning("A streaming reply could not be stored now: %s", exc)
            if job.done:
                job.final_tries += 1
                if job.final_tries >= FINAL_TRIES:
                    job.problem = str(exc)
        except UserFacingError as exc:  # refused: the reply stays on the pages, said beside it
            logger.warning("A reply was refused by the store: %s", exc)
            job.problem = str(exc)
        except Exception:
            logger.exception("Storing a reply failed")
            job.problem = OUR_FAILURE
        finally:
            job.saved_at = time.monotonic()
            # An append rewrites the whole stored text: a long reply is appended less often,
            # so its writes take at most a quarter of a writer's time; never so seldom that
            # its heartbeat could look stopped.
            job.gap = min(LEASE_SECONDS / 3, SAVE_GAP_FACTOR * (job.saved_at - began))
            job.saving = False


OUR_FAILURE = ("Switchboard failed while handling this reply (our bug, not the server's); "
               "it is in the log. Retry may work.")


def save(job: Job) -> None:
    """Store what arrived since the last save, then the end once the reply ended."""
    store, reply = job.store, job.reply
    done = job.done
    count = len(job.pieces)
    if not job.added:
        if job.add_when_text and not (count or reply.reasoning):
            if done:  # a Retry that got nothing: no version of its own
                job.stored = True
            return
        final = job.final if done else None
        try:  # a reply that ended before its first save is added as it ended
            store.add_message(final or job.message)
        except (StoreUnavailable, OurBug):  # tried again, or said beside the reply
            raise
        except UserFacingError:  # its chat is not stored yet: the page showing it stores both
            job.left_to_page = done
            return
        job.added = True
        if final is not None:
            job.stored = True
            return
    text = "".join(job.pieces[job.saved_pieces:count])[job.skip:]
    reasoning = reply.reasoning[job.saved_reasoning:]
    state = store.append_reply(job.id, job.saved_chars, text, job.saved_reasoning, reasoning)
    if state is None:  # deleted (its chat was): nothing left to write to
        job.stop()
        job.stored = done
        return
    stored, thought = state.content_length, state.reasoning_length
    if stored == job.saved_chars + len(text) and thought == job.saved_reasoning + len(reasoning):
        job.saved_pieces, job.skip = count, 0
    elif (job.saved_chars <= stored <= job.saved_chars + len(text)
          and job.saved_reasoning <= thought <= job.saved_reasoning + len(reasoning)):
        job.skip += stored - job.saved_chars  # an earlier write went in, its answer lost
    else:  # not this worker's text any more (settled by another process): said whole at the end
        stored, thought = job.saved_chars, job.saved_reasoning
    job.saved_chars, job.saved_reasoning = stored, thought
    if state.stop_requested:
        job.stop()
    if done:
        final = job.final
        changes = {"status": final.status, "error": final.error, "usage": final.usage,
                   "model_label": final.model_label}
        if job.saved_chars != len(final.content) or job.saved_reasoning != len(final.reasoning):
            changes.update(content=final.content, reasoning=final.reasoning)  # said whole
        store.update_message(job.id, changes)
        job.stored = True


class Tail:
    """A reply another process runs, followed through the store: what was stored since the last
    read, every `every` seconds, until it ends or its worker is gone (then the page settles it)."""

    def __init__(self, store: ChatStore, message: Message, every: float = SAVE_SECONDS):
        self.store = store
        self.id = message.id
        self.first = message  # as read when the page found it streaming
        self.reply = Reply()  # the reasoning so far, for the page's "Thinking…"
        self.every = every

    def follow(self) -> Iterator[str | Thinking]:
        chars, message, alive = 0, self.first, True
        while True:  # what was read first, then what was stored since, until it ends
            if message.content:
                chars += len(message.content)
                yield message.content
            if message.reasoning:
                self.reply.add_reasoning(message.reasoning)
                yield Thinking("")
            if message.status != "streaming" or not alive:
                return
            time.sleep(self.every)
            found = self.store.read_reply(self.id, chars, len(self.reply.reasoning),
                                          lease_seconds=LEASE_SECONDS)
            if found is None:
                return
            message, alive = found[0], found[1].alive

    def stop(self) -> None:
        self.store.request_stop(self.id)


class Feed:
    """A reply's text as it arrives, taken without waiting: for a page run that draws several
    replies in turn. A Job is read directly; a Tail (another process's reply) is followed by a
    thread of its own, which ends within a read of `close`."""

    def __init__(self, live: Job | Tail, wake: threading.Event | None = None) -> None:
        """`wake` is set whenever text arrives or the reply ends."""
        self.live = live
        self._wake = wake or threading.Event()
        self._taken = 0  # a Job's pieces already taken
        self._arrived: list[str] = []  # a Tail's text not taken yet
        self._ended = False
        self._closed = threading.Event()
        self._lock = threading.Lock()
        if isinstance(live, Tail):
            threading.Thread(target=self._follow, name="reply-feed", daemon=True).start()
        else:
            live.listeners.append(self._wake)

    @property
    def reply(self) -> Reply:
        return self.live.reply

    @property
    def ended(self) -> bool:
        """The reply has ended (what is left to take is its last text)."""
        return self.live.done if isinstance(self.live, Job) else self._ended

    def take(self) -> tuple[str, bool]:
        """What arrived since the last take, and whether the reply has ended."""
        if isinstance(self.live, Job):
            done = self.live.done  # first: no piece arrives after `done`
            count = len(self.live.pieces)
            text = "".join(self.live.pieces[self._taken:count])
            self._taken = count
            return text, done
        with self._lock:
            text, self._arrived = "".join(self._arrived), []
            return text, self._ended

    def close(self) -> None:
        self._closed.set()
        if isinstance(self.live, Job) and self._wake in self.live.listeners:
            self.live.listeners.remove(self._wake)

    def _follow(self) -> None:
        pieces = self.live.follow()
        try:
            for piece in pieces:
                if self._closed.is_set():
                    return
                if isinstance(piece, str):
                    with self._lock:
                        self._arrived.append(piece)
                    self._wake.set()
        except Exception:  # the page's next run reads the store again and says what it finds
            logger.warning("Following a reply through the store failed", exc_info=True)
        finally:
            pieces.close()
            with self._lock:
                self._ended = True
            self._wake.set()


REPLIES = Replies()  # the process's running replies (work under way, not a cache of user data)


def shown_final(job: Job) -> ShownMessage:
    """The reply as it ended, with what the store could not take said beside it."""
    final = job.final
    if job.problem and not job.stored:
        return replace(final, notice=" · ".join(filter(None, (final.notice,
                                                              f"Not saved: {job.problem}"))))
    return final
