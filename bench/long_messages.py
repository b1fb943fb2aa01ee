"""Long messages benchmark: what a 20 MB message and a reply growing past 20 MB cost each store.

On each backend (the local SQLite file, and the Supabase stand-in stack the tests use), through
the app's own stores, --runs times each (medians are printed with min and max):

- adding a message of --characters characters (default 20,000,000, about 28 MB of UTF-8 in
  several scripts): on Supabase, how many requests and the largest request body;
- what a worker does once a second to a streaming reply, on a reply of that size and on a
  small one (2,000 characters): append 1,000 characters; append nothing (a heartbeat);
- what a page tailing it does: read what follows the offsets it has; open the chat
  (`messages`);
- Supabase only: the per-user bounds' share of an append (the `messages_count_text` trigger
  on and off) and of the row (`message_bytes` against `char_length` of the long row).

Each figure is the client's wall time of the store call (for Supabase: supabase-py, the auth
stand-in, PostgREST, PostgreSQL) and, for Supabase, PostgreSQL's own time of the statements
PostgREST ran (pg_stat_statements). The ratio long / small says what the size costs; the
margin is the store timeout (core.store.answering.STORE_TIMEOUT, per request) over the
figure's slowest request. No target is asserted: these are figures.

    .venv/bin/python bench/long_messages.py [--backend sqlite|supabase|both] [--runs N]
        [--characters N]

Exit 0 once measured; 2 when it could not run or a store answered wrongly. See bench/README.md.
"""

from __future__ import annotations

import argparse
import platform
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.history import (  # noqa: E402
    BenchError,
    StatementTimes,
    signed_up,
    start_supabase,
)
from core.failures import UserFacingError  # noqa: E402
from core.history.model import Chat, Message  # noqa: E402
from core.store.answering import STORE_TIMEOUT  # noqa: E402
from core.store.sqlite import SQLiteChatStore  # noqa: E402
from core.store.supabase import SupabaseChatStore  # noqa: E402

SMALL = 2_000  # characters of the small reply the long one is compared with
PIECE = 1_000  # characters a worker appends at once
FILLER = "Lorem ipsum dolor sit amet, façade Straße привет 日本語 検索 😀 ∑ → "


def text_of(characters: int) -> str:
    return (FILLER * (characters // len(FILLER) + 1))[:characters]


@dataclass
class Figure:
    label: str
    wall: list[float] = field(default_factory=list)  # ms, the client's
    server: list[float] = field(default_factory=list)  # ms, PostgreSQL's (Supabase)
    requests: list[int] = field(default_factory=list)
    largest: int = 0  # bytes of the largest request body
    slowest_request: float = 0.0  # ms, the figure's slowest single request (Supabase)


class Responses:
    """The PostgREST responses a store call gets, through an httpx response hook on the
    client's PostgREST session (public httpx API; the session is rebuilt on every sign-in or
    token refresh, so the hook is checked each time). Their `elapsed` is read once closed."""

    def __init__(self, client) -> None:
        self.client, self.seen, self.recording = client, [], False

    def _on_response(self, response) -> None:
        if self.recording:
            self.seen.append(response)

    def record(self) -> list:
        session = self.client.postgrest.session
        hooks = session.event_hooks
        if self._on_response not in hooks["response"]:
            session.event_hooks = {**hooks, "response": [*hooks["response"], self._on_response]}
        self.seen, self.recording = [], True
        return self.seen


class Timing:
    """Times store calls: wall clock, and on Supabase PostgreSQL's statement times and the
    requests made."""

    def __init__(self, statements: StatementTimes | None = None,
                 responses: Responses | None = None):
        self.statements, self.responses = statements, responses

    def measure(self, figure: Figure, call: Callable[[], object]) -> object:
        if self.statements:
            self.statements.reset()
        seen = self.responses.record() if self.responses else None
        start = time.perf_counter()
        try:
            result = call()
        finally:
            if self.responses:
                self.responses.recording = False
        figure.wall.append((time.perf_counter() - start) * 1e3)
        if seen is None:  # SQLite: no request, and no per-request timeout
            return result
        figure.server.append(self.statements.total_ms())
        figure.requests.append(len(seen))
        figure.largest = max([figure.largest, *(len(r.request.content) for r in seen)])
        figure.slowest_request = max([figure.slowest_request,
                                      *(r.elapsed.total_seconds() * 1e3 for r in seen)])
        return result


def streaming_reply(store, chat: Chat, content: str) -> tuple[Message, int]:
    asked = store.add_message(Message(chat_id=chat.id, role="user", content="Go on"))
    reply = store.add_message(Message(chat_id=chat.id, parent_id=asked.id, role="assistant",
                                      content="", status="streaming"))
    state = store.append_reply(reply.id, 0, content, 0, "")
    if state is None or state.content_length != len(content):
        raise BenchError(f"the store kept {state} of a reply of {len(content):,} characters")
    return reply, len(content)


def measure_store(store, timing: Timing, characters: int, runs: int) -> list[Figure]:
    long_text, piece = text_of(characters), text_of(PIECE)
    pasted = store.save_chat(Chat(title="Long messages"))  # never opened: it grows with --runs
    added = Figure(f"add a message of {characters:,} characters")
    for _ in range(runs):
        message = Message(chat_id=pasted.id, role="user", content=long_text)
        kept = timing.measure(added, lambda: store.add_message(message))
        if len(kept.content) != characters:
            raise BenchError(f"a message of {characters:,} characters came back as "
                             f"{len(kept.content):,}")
    figures = [added]
    chat = store.save_chat(Chat(title="Two replies"))
    for size, text in (("long", long_text), ("small", text_of(SMALL))):
        reply, at = streaming_reply(store, chat, text)
        appended = Figure(f"append {PIECE:,} characters to the {size} reply")
        beat = Figure(f"heartbeat (an empty append) on the {size} reply")
        tail = Figure(f"read what follows on the {size} reply")
        for _ in range(runs):
            state = timing.measure(appended, lambda: store.append_reply(reply.id, at, piece,
                                                                        0, ""))
            if state.content_length != at + PIECE:
                raise BenchError(f"an append was not kept: {state}")
            at += PIECE
            timing.measure(beat, lambda: store.append_reply(reply.id, at, "", 0, ""))
            read, _ = timing.measure(tail, lambda: store.read_reply(reply.id, at - PIECE, 0))
            if read.content != piece:
                raise BenchError("the tail read back is not what was appended")
        figures += [appended, beat, tail]
    opened = Figure("open the chat of both replies (messages)")
    for _ in range(runs):
        timing.measure(opened, lambda: store.messages(chat.id))
    return figures + [opened]


def bounds_figures(stack, client, user_id: str, characters: int, runs: int,
                   statements: StatementTimes) -> list[Figure]:
    """An append on the long reply with the bounds' trigger on and off (as the superuser, in
    this bench's own stack), and what the bounds read of the row against a count of it."""
    import psycopg

    store = SupabaseChatStore(client, user_id)
    chat = store.save_chat(Chat(title="Bounds"))
    reply, at = streaming_reply(store, chat, text_of(characters))
    piece = text_of(PIECE)
    timing = Timing(statements, Responses(client))
    with_bounds = Figure("append to the long reply, bounds' trigger on")
    without = Figure("append to the long reply, bounds' trigger off")
    with psycopg.connect(stack.db_dsn, autocommit=True) as conn:
        for _ in range(runs):
            for figure, switch in ((with_bounds, "enable"), (without, "disable")):
                conn.execute(f"alter table public.messages {switch} trigger messages_count_text")
                timing.measure(figure, lambda: store.append_reply(reply.id, at, piece, 0, ""))
                at += PIECE
        conn.execute("alter table public.messages enable trigger messages_count_text")
        row = Figure("the bounds' bytes of the long row (message_bytes, SQL)")
        count = Figure("its characters counted (char_length, SQL)")
        for figure, expression in (
                (row, "public.message_bytes(content, reasoning, error, model_label, usage)"),
                (count, "char_length(content)")):
            for _ in range(runs):
                start = time.perf_counter()
                conn.execute(f"select {expression} from public.messages where id = %s",
                             (reply.id,)).fetchone()
                figure.wall.append((time.perf_counter() - start) * 1e3)
    return [with_bounds, without, row, count]


def run_sqlite(args: argparse.Namespace, work: Path) -> list[Figure]:
    return measure_store(SQLiteChatStore(work / "data"), Timing(), args.characters, args.runs)


def run_supabase(args: argparse.Namespace) -> list[Figure]:
    from tests.supabase_stack.stack import stop_stack

    stack = start_supabase()
    try:
        client, user_id = signed_up(stack, "long")
        statements = StatementTimes(stack.db_dsn)
        try:
            timing = Timing(statements, Responses(client))
            figures = measure_store(SupabaseChatStore(client, user_id), timing,
                                    args.characters, args.runs)
            return figures + bounds_figures(stack, client, user_id, args.characters,
                                            args.runs, statements)
        finally:
            statements.close()
    finally:
        stop_stack(stack)


def _ms(values: list[float]) -> str:
    if not values:
        return "-"
    value = statistics.median(values)
    return f"{value:.1f} ms" if value < 100 else f"{value:.0f} ms"


def report(backend: str, figures: list[Figure]) -> None:
    by_label = {f.label: f for f in figures}
    rows = [("figure", "client wall, median", "min - max", "server-side", "requests",
             "largest request", "long / small", "store timeout / slowest")]
    for figure in figures:
        small = by_label.get(figure.label.replace("the long reply", "the small reply"))
        ratio = (f"{statistics.median(figure.wall) / statistics.median(small.wall):.0f}x"
                 if small is not None and small is not figure else "-")
        margin = (f"{STORE_TIMEOUT * 1e3 / figure.slowest_request:.1f}x"
                  if figure.slowest_request else "-")
        rows.append((figure.label, _ms(figure.wall),
                     f"{_ms([min(figure.wall)])} - {_ms([max(figure.wall)])}",
                     _ms(figure.server),
                     str(max(figure.requests)) if figure.requests else "-",
                     f"{figure.largest:,} B" if figure.largest else "-", ratio, margin))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    print(f"\n{backend}")
    for row in rows:
        print("  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths)))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "supabase", "both"), default="both")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--characters", type=int, default=20_000_000)
    args = parser.parse_args(argv)
    if args.runs < 1 or args.characters < SMALL:
        parser.error("--runs must be at least 1 and --characters at least 2,000")
    return args


def run(args: argparse.Namespace, work: Path) -> None:
    started = time.perf_counter()
    print(f"machine: {platform.machine()}, Python {platform.python_version()}, "
          f"load average {_load()}; a long message of {args.characters:,} characters "
          f"({len(text_of(args.characters).encode()):,} bytes of UTF-8)", flush=True)
    if args.backend in ("sqlite", "both"):
        report("SQLite (the store call, in-process)", run_sqlite(args, work))
    if args.backend in ("supabase", "both"):
        report("Supabase (client wall: through supabase-py, the auth stand-in and PostgREST;"
               " server-side: PostgreSQL's time of the statements PostgREST ran)",
               run_supabase(args))
    print(f"\n(bench took {time.perf_counter() - started:.0f} s; load average {_load()} at "
          "the end)")


def _load() -> str:
    try:
        return f"{Path('/proc/loadavg').read_text().split()[0]}"
    except OSError:
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the stack on kill too
    with tempfile.TemporaryDirectory(prefix="switchboard-long-bench-") as work:
        try:
            run(args, Path(work))
        except BenchError as exc:
            print(f"bench could not run: {exc}", file=sys.stderr)
            return 2
        except UserFacingError as exc:  # a store refused or could not be reached
            print(f"bench could not run: a store said: {exc}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
