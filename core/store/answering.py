"""A store found busy or down is said once per page run, not waited for at every call: each
wait costs up to its timeout, and a page makes several calls. A browser session keeps one
`Answering` for all its stores: the first call that finds the store busy or down records it,
later calls in the same run raise the same message at once, and the next run asks again."""

from __future__ import annotations

import time

from core.store.errors import StoreUnavailable

# What a store's wait ended with: it may answer on the next run (a refusal or a damaged file
# is said by its own call, and asked again each time).
WAITED = ("busy", "outage")
CARRIED = 1.0  # seconds: a rerun starting this soon is part of the same action
STORE_TIMEOUT = 2.0  # seconds a call to the database (PostgREST) may take: then "down"


class Answering:
    """Whether this session's stores answered in the current run (thread-safe enough for the
    chat's background saves: it only stores and reads one reference)."""

    def __init__(self) -> None:
        self.failure: StoreUnavailable | None = None
        self.found_at: float | None = None
        self.repeated = False  # the failure was raised again, without asking the store
        self.carried = False  # the failure was found in the run before this one

    def new_run(self) -> None:
        """Called as a run ends: the next run asks the stores again, unless it follows at once
        (a page's own rerun, e.g. after a reply) the run that found them busy or down."""
        self.repeated = False
        if (self.failure is not None and not self.carried
                and time.monotonic() - self.found_at < CARRIED):
            self.carried = True
            return
        self.failure = self.found_at = None
        self.carried = False

    def check(self) -> None:
        """Raise what the store said earlier in this run, if it was busy or down."""
        failure = self.failure
        if failure is not None:
            self.repeated = True
            raise StoreUnavailable(str(failure), failure.kind)

    def already_said(self, text: str) -> bool:
        """True for the message of a failure raised again in this run: the call that found
        it has it said already, so the page shows it once."""
        failure = self.failure
        return self.repeated and failure is not None and str(failure) == text

    def note(self, exc: BaseException) -> None:
        if isinstance(exc, StoreUnavailable) and exc.kind in WAITED:
            self.failure, self.found_at, self.carried = exc, time.monotonic(), False


class Guarded:
    """`store` (a backend of core.store.sqlite or core.store.supabase) asked only while
    `answering` has not found it busy or down in this run; everything else passes through."""

    def __init__(self, store, answering: Answering) -> None:
        self._store = store
        self._answering = answering

    def __getattr__(self, name: str):
        value = getattr(self._store, name)
        if not callable(value):
            return value
        answering = self._answering

        def call(*args, **kwargs):
            answering.check()
            try:
                return value(*args, **kwargs)
            except StoreUnavailable as exc:
                answering.note(exc)
                raise

        return call
