"""History benchmark: the chat list, a long chat and a search, with thousands of chats stored.

On each backend (the local SQLite file, and the Supabase stand-in stack the tests use) the
bench bulk-loads one user's history (--chats chats, --messages messages: most chats short, a
few long, one of 1,000 messages, some branches, Unicode text of varied length) and another
user's (--other-chats, --other-messages), then, as the first user through the real store
classes, measures --runs times each:

- the first page of the chat list (`list_chats(50)`),          target <= 50 ms
- opening the 1,000-message chat (`messages(chat_id)`),       target <= 300 ms
- a search for a word present in a few chats (`search(word)`), target <= 200 ms
- with --typing (the default): that word typed letter by letter in the sidebar's search box in
  Chromium, against `streamlit run` on the same data: each keystroke to the hits drawn
  (bench/search_typing.py), target <= 200 ms p95 from the box's commit
- with --ready (the default): a 1,000-message chat opened in Chromium until ready
  (bench/chat_ready.py), target <= 1 s
- with --imports (the default): a 100 MB ChatGPT export imported through the app's own
  background import, its time and memory peak (bench/imports.py), targets >= 5x faster than
  311 s and <= 2x the app's idle memory

Each figure is server-side time: for SQLite the store call itself (in-process); for Supabase
PostgreSQL's own planning and execution time of the statements PostgREST ran for the store
call (pg_stat_statements), with EXPLAIN (ANALYZE) of exactly those requests, run by PostgREST
as the same user, beside it. The client's wall time and a baseline measured in the same run (a
trivial round trip) are printed too, so runs on different machines compare.

    .venv/bin/python bench/history.py [--backend sqlite|supabase|both] [--runs N]
        [--chats N] [--messages N] [--other-chats N] [--other-messages N] [--no-typing]
        [--no-ready] [--no-imports]

Exit 0 once measured, even when a target is missed (that is a result); 2 when it could not run
or a store answered wrongly. See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from core.failures import UserFacingError  # noqa: E402
from core.history.model import Chat, Message  # noqa: E402
from core.store.sqlite import (  # noqa: E402
    CHAT_COLUMNS,
    LOCAL_USER_ID,
    MESSAGE_COLUMNS,
    SQLiteChatStore,
)
from core.store.supabase import SupabaseChatStore  # noqa: E402

TARGETS_MS = {"list": 50.0, "open": 300.0, "search": 200.0}
PAGE = 50  # the sidebar's first page
BIG_CHAT_MESSAGES = 1_000
LONGEST_SHORT = 400  # messages: every other chat stays under the long one
SEARCH_WORD = "quetzalzephyr"  # in no generated vocabulary: only where the bench puts it
SEARCH_HITS = 5  # chats of the measured user holding it (the other user has some too)
SEED = 20261126
PASSWORD = "bench-password-1"
LOAD_CACHE_KIB = 512 * 1024  # SQLite's page cache while bulk-loading


class BenchError(Exception):
    """The bench could not run, or a store answered wrongly: not a result."""


# ---------------------------------------------------------------- the data


@dataclass
class History:
    """One user's generated chats and messages, oldest message first within each chat."""

    chats: list[Chat] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    big_chat_id: str = ""
    search_chat_ids: set[str] = field(default_factory=set)

    def newest_first(self) -> list[str]:
        ordered = sorted(self.chats, key=lambda c: (c.updated_at, c.id), reverse=True)
        return [chat.id for chat in ordered]


class Words:
    """A Zipf-weighted vocabulary: plain syllable words and real words of several scripts."""

    UNICODE = (
        "café naïve déjà façade Straße Größe Übung über señor año mañana ação coração "
        "łódź żółć čeština Ελλάδα λόγος μάθημα привет данные поиск история שלום מילה "
        "مرحبا بيانات نموذج नमस्ते भाषा 日本語 検索 会話 履歴 模型 数据 搜索 对话 한국어 대화 "
        "ภาษาไทย 🙂 🚀 ✅ 🎉 🤖 📎 ∑ ∞ → ≤ ≥ ½ ©"
    ).split()
    SYLLABLES = "ka lo mi ne ru sa to vi de fa gu ha ji ko lu ma no pe qu ri su te wa ze".split()

    def __init__(self, rng: random.Random, size: int = 4_000, corpus: int = 1_000_000) -> None:
        words = {rng.choice(self.SYLLABLES) + rng.choice(self.SYLLABLES)
                 + rng.choice(("", *self.SYLLABLES)) for _ in range(size * 2)}
        vocabulary = sorted(words)[:size] + self.UNICODE
        rng.shuffle(vocabulary)
        weights = list(_accumulate(1 / (rank + 1) ** 1.07 for rank in range(len(vocabulary))))
        # One long Zipf-distributed text; each message is a slice of it at a random place
        # (sampling every word of 100,000 messages one by one takes many seconds).
        self.corpus = rng.choices(vocabulary, cum_weights=weights, k=corpus)
        for i in range(11, corpus, 12):  # sentences, so snippets look like text
            self.corpus[i] += "."
        self.rng = rng

    def text(self, count: int) -> str:
        count = max(1, min(count, len(self.corpus) // 2))
        start = self.rng.randrange(len(self.corpus) - count)
        return " ".join(self.corpus[start:start + count])


def _accumulate(values) -> Iterator[float]:
    total = 0.0
    for value in values:
        total += value
        yield total


def chat_sizes(rng: random.Random, chats: int, messages: int, big: int) -> list[int]:
    """`chats` sizes summing to `messages`: the first is `big`, a few long, most short."""
    big = min(big, messages - (chats - 1))
    long_count = min(10, chats // 100)
    long = [rng.randint(150, 600) for _ in range(long_count)]
    rest_total = messages - big - sum(long)
    rest_count = chats - 1 - long_count
    if rest_count < 1 or rest_total < rest_count:
        raise BenchError(f"{messages:,} messages are too few for {chats:,} chats")
    raw = [rng.lognormvariate(0, 1.0) for _ in range(rest_count)]
    scale = rest_total / sum(raw)
    rest = [min(LONGEST_SHORT, max(1, round(r * scale))) for r in raw]
    while (gap := rest_total - sum(rest)) != 0:  # rounding: nudge random chats by one
        i = rng.randrange(rest_count)
        if (gap > 0 and rest[i] < LONGEST_SHORT) or (gap < 0 and rest[i] > 1):
            rest[i] += 1 if gap > 0 else -1
    return [big, *long, *rest]


def message_words(rng: random.Random, role: str) -> int:
    """Words in one message: user messages short, replies longer, a rare very long one."""
    if rng.random() < 0.001:
        return rng.randint(3_000, 8_000)
    median = 12 if role == "user" else 45
    return min(2_000, int(rng.lognormvariate(math.log(median), 0.9)) + 1)


def generate(rng: random.Random, words: Words, chats: int, messages: int, hits: int,
             now: datetime) -> History:
    history = History()
    sizes = chat_sizes(rng, chats, messages, BIG_CHAT_MESSAGES)
    for index, size in enumerate(sizes):
        started = now - timedelta(days=rng.uniform(0, 3 * 365))
        chat, chat_messages = generate_chat(rng, words, size, started)
        history.chats.append(chat)
        history.messages.extend(chat_messages)
        if index == 0:
            history.big_chat_id = chat.id
    for chat in rng.sample(history.chats[1:], min(hits, len(history.chats) - 1)):
        history.search_chat_ids.add(chat.id)
    hit_messages = {cid: None for cid in history.search_chat_ids}
    for i, message in enumerate(history.messages):  # one message of each chosen chat
        if message.chat_id in hit_messages and hit_messages[message.chat_id] is None:
            hit_messages[message.chat_id] = i
    for i in hit_messages.values():
        old = history.messages[i]
        history.messages[i] = old.with_changes(content=f"{old.content} {SEARCH_WORD} again")
    return history


def generate_chat(rng: random.Random, words: Words, size: int, started: datetime
                  ) -> tuple[Chat, list[Message]]:
    """A chat of `size` messages, mostly alternating; some replies regenerated (a sibling
    reply) and some user messages edited (a sibling of an earlier user message)."""
    chat_id = str(uuid.uuid4())
    branchy = rng.random() < 0.15
    made: list[Message] = []
    asked: list[Message] = []  # the user messages so far, for edits
    leaf: Message | None = None
    at = started
    for _ in range(size):
        role = "user" if leaf is None or leaf.role == "assistant" else "assistant"
        parent = leaf.id if leaf else None
        if branchy and leaf is not None and rng.random() < 0.1:
            if leaf.role == "assistant":  # regenerate: another reply to the same message
                role, parent = "assistant", leaf.parent_id
            else:  # edit an earlier user message: a new branch from its parent
                earlier = rng.choice(asked)
                role, parent = "user", earlier.parent_id
        at += timedelta(seconds=rng.uniform(5, 600))
        leaf = Message(
            chat_id=chat_id, role=role, content=words.text(message_words(rng, role)),
            parent_id=parent, model_label="" if role == "user" else "bench-model · Local",
            status="complete", usage=None if role == "user" else
            {"prompt_tokens": rng.randint(10, 4000), "completion_tokens": rng.randint(5, 900)},
            created_at=_iso(at),
        )
        made.append(leaf)
        if role == "user":
            asked.append(leaf)
    title = words.text(rng.randint(2, 8))[:80]
    chat = Chat(title=title, id=chat_id, model="bench-model", connection_id="",
                current_id=leaf.id if leaf else None, created_at=_iso(started),
                updated_at=_iso(at))
    return chat, made


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# ---------------------------------------------------------------- measuring


@dataclass
class Figure:
    """One operation's runs, in ms: server-side time, and the client's CPU and wall time."""

    name: str
    label: str
    server: list[float] = field(default_factory=list)
    explain: list[float] = field(default_factory=list)  # EXPLAIN ANALYZE (PostgreSQL only)
    cpu: list[float] = field(default_factory=list)  # this process's CPU (in-process only)
    wall: list[float] = field(default_factory=list)

    @property
    def target(self) -> float | None:
        return TARGETS_MS.get(self.name)


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


@contextmanager
def stopwatch() -> Iterator[list[float]]:
    """Yields a list that holds the elapsed wall and CPU milliseconds once the block ends."""
    elapsed: list[float] = []
    started, cpu = time.perf_counter(), time.process_time()
    try:
        yield elapsed
    finally:
        elapsed += [(time.perf_counter() - started) * 1e3, (time.process_time() - cpu) * 1e3]


def operations(store, history: History) -> list[tuple[str, str, Callable[[], object]]]:
    return [
        ("list", f"first page of the chat list ({PAGE})", lambda: store.list_chats(PAGE)),
        ("open", f"open the {BIG_CHAT_MESSAGES:,}-message chat",
         lambda: store.messages(history.big_chat_id)),
        ("search", f"search a word in {SEARCH_HITS} chats", lambda: store.search(SEARCH_WORD)),
    ]


def check_answers(store, history: History) -> None:
    """The store sees what was loaded: else the figures would measure the wrong thing."""
    listed = [chat.id for chat in store.list_chats(PAGE)]
    if listed != history.newest_first()[:PAGE]:
        raise BenchError("the chat list's first page is not the newest chats in order")
    opened = store.messages(history.big_chat_id)
    if len(opened) != BIG_CHAT_MESSAGES:
        raise BenchError(f"the long chat opened with {len(opened)} messages, "
                         f"not {BIG_CHAT_MESSAGES}")
    found = {hit.chat.id for hit in store.search(SEARCH_WORD)}
    if found != history.search_chat_ids:
        strangers = len(found - history.search_chat_ids)
        raise BenchError(f"the search found {len(found)} chats ({strangers} not among the "
                         f"{SEARCH_HITS} that hold the word)")


# ---------------------------------------------------------------- SQLite


def load_sqlite(path: Path, histories: dict[str, History]) -> None:
    """Every user's rows in one transaction (executemany); the file's triggers keep the
    full-text index as the store's own writes would."""
    with closing(sqlite3.connect(path, isolation_level=None)) as db:
        # This connection only: a cache that holds the indexes (random uuids), no journal.
        db.execute(f"pragma cache_size = -{LOAD_CACHE_KIB}")
        db.execute("pragma journal_mode = off")
        db.execute("begin immediate")
        for owner, history in histories.items():
            db.executemany(insert_sql("chats", CHAT_LOAD),
                           (chat_row(chat, owner, sqlite=True) for chat in history.chats))
            db.executemany(insert_sql("messages", MESSAGE_LOAD),
                           (message_row(m, owner, sqlite=True) for m in history.messages))
        db.execute("commit")


def insert_sql(table: str, columns: tuple[str, ...]) -> str:
    return (f"insert into {table} ({', '.join(columns)}) "
            f"values ({', '.join('?' for _ in columns)})")


# The stores' own column lists (the model's fields), plus the owner.
CHAT_LOAD = (*CHAT_COLUMNS, "user_id")
MESSAGE_LOAD = (*MESSAGE_COLUMNS, "user_id")


def chat_row(chat: Chat, owner: str, sqlite: bool) -> tuple:
    values = {column: getattr(chat, column) for column in CHAT_COLUMNS}
    values.update(user_id=owner, created_at=_stamp(chat.created_at, sqlite),
                  updated_at=_stamp(chat.updated_at, sqlite))
    if sqlite:
        values["pinned"] = int(chat.pinned)
    return tuple(values[column] for column in CHAT_LOAD)


def message_row(message: Message, owner: str, sqlite: bool) -> tuple:
    values = {column: getattr(message, column) for column in MESSAGE_COLUMNS}
    values.update(user_id=owner, created_at=_stamp(message.created_at, sqlite),
                  usage=None if message.usage is None else json.dumps(dict(message.usage)))
    return tuple(values[column] for column in MESSAGE_LOAD)


def _stamp(iso: str, sqlite: bool):
    """SQLite keeps the store's ISO text; PostgreSQL a timestamptz."""
    return iso if sqlite else datetime.fromisoformat(iso.replace("Z", "+00:00"))


def sqlite_figures(data_dir: Path, history: History, runs: int) -> list[Figure]:
    """The store calls, timed in-process: for an embedded file that is the server side."""
    store = SQLiteChatStore(data_dir)
    check_answers(store, history)  # also the warm-up: the file is in the page cache after it
    figures = [Figure(name, label) for name, label, _ in operations(store, history)]
    calls = [call for _, _, call in operations(store, history)]
    for _ in range(runs):
        for figure, call in zip(figures, calls):
            with stopwatch() as elapsed:
                call()
            figure.server.append(elapsed[0])
            figure.wall.append(elapsed[0])
            figure.cpu.append(elapsed[1])
    figures.append(sqlite_baseline(store.path, runs))
    return figures


def sqlite_baseline(path: Path, runs: int) -> Figure:
    """What every store call pays at least: open the file and run `select 1`."""
    figure = Figure("baseline", "baseline: sqlite3 connect + select 1")
    for _ in range(max(runs, 20)):
        with stopwatch() as elapsed:
            with closing(sqlite3.connect(path)) as db:
                db.execute("select 1").fetchone()
        figure.server.append(elapsed[0])
        figure.wall.append(elapsed[0])
        figure.cpu.append(elapsed[1])
    return figure


def run_sqlite(args: argparse.Namespace, histories: dict[str, History],
               work: Path) -> list[Figure]:
    data_dir = work / "sqlite-data"
    store = SQLiteChatStore(data_dir)  # creates and migrates the file
    owners = dict(zip((LOCAL_USER_ID, "bench-other-user"), histories.values()))
    with stopwatch() as elapsed:
        load_sqlite(store.path, owners)
    size = store.path.stat().st_size / 2**20
    print(f"  loaded in {elapsed[0] / 1e3:.1f} s (one transaction); file {size:.0f} MiB",
          flush=True)
    figures = sqlite_figures(data_dir, histories["user"], args.runs)
    if args.typing:
        typed_in_browser(args, "SQLite", {"SWITCHBOARD_DATA_DIR": str(data_dir)})
    return figures


# ---------------------------------------------------------------- Supabase (PostgREST + PostgreSQL)

PLAN_ACCEPT = 'application/vnd.pgrst.plan+json; for="application/json"; options=analyze'
# Appended to the stand-in stack's PostgREST configuration for this run only. (Its
# Server-Timing header is no measure here: PostgREST 12.0.2 sends microseconds labelled as
# milliseconds, PostgREST issue #3219, and its `transaction` figure leaves out most of the
# query's execution, fixed only in PR #4544.)
PLAN_CONFIG = "db-plan-enabled = true\n"
# Appended to the stack's postgresql.conf: each statement's own planning and execution time,
# without EXPLAIN ANALYZE's per-row clock readings (which inflate plans that visit many rows).
STATEMENTS_CONFIG = ("shared_preload_libraries = 'pg_stat_statements'\n"
                     "pg_stat_statements.track_planning = on\n")


class StatementTimes:
    """PostgreSQL's time for the statements other roles ran (PostgREST's, as the user) since
    the last reset, from pg_stat_statements, read over a superuser connection of our own."""

    def __init__(self, dsn: str) -> None:
        import psycopg

        self.conn = psycopg.connect(dsn, autocommit=True)
        self.conn.execute("create extension if not exists pg_stat_statements")

    def reset(self) -> None:
        self.conn.execute("select pg_stat_statements_reset()")

    def total_ms(self) -> float:
        return float(self.conn.execute(
            "select coalesce(sum(total_plan_time + total_exec_time), 0) from pg_stat_statements"
            " where userid <> (select oid from pg_roles where rolname = current_user)"
        ).fetchone()[0])

    def close(self) -> None:
        self.conn.close()


class RequestLog:
    """The PostgREST requests a store call makes, seen through an httpx response hook on the
    client's PostgREST session (public httpx API)."""

    def __init__(self, client) -> None:
        self.client = client
        self.recording = False
        self.requests: list = []

    def _on_response(self, response) -> None:
        if self.recording:
            self.requests.append(response.request)

    @contextmanager
    def recording_call(self) -> Iterator[list]:
        """Records the requests made inside the block (the PostgREST client is rebuilt on
        every sign-in or token refresh, so the hook is checked each time)."""
        session = self.client.postgrest.session
        hooks = session.event_hooks
        if self._on_response not in hooks["response"]:
            session.event_hooks = {**hooks, "response": [*hooks["response"], self._on_response]}
        self.requests, self.recording = [], True
        try:
            yield self.requests
        finally:
            self.recording = False


def explain_ms(client, request) -> float:
    """PostgreSQL's planning + execution time for the same request, as the same user (row-level
    security included), through PostgREST's EXPLAIN (ANALYZE) media type: the SQL PostgREST
    generates for it, JSON building included."""
    headers = {**request.headers, "accept": PLAN_ACCEPT}
    response = client.postgrest.session.request(request.method, request.url, headers=headers,
                                                content=request.content)
    if response.status_code != 200:
        raise BenchError(f"PostgREST refused the plan of {request.method} {request.url.path}: "
                         f"{response.status_code} {response.text[:300]}")
    plan = response.json()[0]
    return plan.get("Planning Time", 0.0) + plan["Execution Time"]


def supabase_figures(client, store, history: History, runs: int,
                     statements: StatementTimes) -> list[Figure]:
    """Timed runs of the store calls (client wall and CPU; PostgreSQL's own time for what
    PostgREST ran), then the same requests again, EXPLAIN (ANALYZE)d."""
    log = RequestLog(client)
    check_answers(store, history)  # also the warm-up (the tables in PostgreSQL's cache)
    named = operations(store, history)
    named.append(("baseline", "baseline: one chat by id (get_chat)",
                  lambda: store.get_chat(history.big_chat_id)))
    figures = [Figure(name, label) for name, label, _ in named]
    requests: dict[str, list] = {}
    for _ in range(runs):
        for figure, (name, _, call) in zip(figures, named):
            statements.reset()
            with log.recording_call() as made, stopwatch() as elapsed:
                call()
            figure.server.append(statements.total_ms())
            figure.wall.append(elapsed[0])
            figure.cpu.append(elapsed[1])
            requests[name] = made
    for _ in range(runs):
        for figure in figures:
            figure.explain.append(sum(explain_ms(client, r) for r in requests[figure.name]))
    for figure in figures:
        figure.label += f" [{len(requests[figure.name])} request(s)]"
    return figures


def postgres_baseline(dsn: str, runs: int) -> Figure:
    import psycopg

    figure = Figure("baseline", "baseline: PostgreSQL `select 1` round trip (psycopg)")
    with psycopg.connect(dsn, autocommit=True) as conn:
        for _ in range(max(runs, 20)):
            with stopwatch() as elapsed:
                conn.execute("select 1").fetchone()
            figure.server.append(elapsed[0])
            figure.wall.append(elapsed[0])
    return figure


# The messages' triggers that are off during their COPY: the first only moves the chat's
# updated_at to the new message's time, which each chat row already holds (its newest
# message's created_at), and would otherwise set every chat to the time of the load; the
# second counts new rows against each user's rate bound, which a bulk load is far beyond.
LOAD_WITHOUT = ("messages_touch_chat", "messages_count_added")


def load_postgres(dsn: str, owners: dict[str, History]) -> None:
    """COPY every user's rows as the tables' owner, in one transaction. The search vectors
    (generated for chats, kept by a trigger for messages), constraints and foreign keys apply
    as for any insert; only the triggers in LOAD_WITHOUT are off while messages are copied."""
    import psycopg

    with psycopg.connect(dsn) as conn:
        for owner, history in owners.items():
            copy_rows(conn, "chats", CHAT_LOAD,
                      (chat_row(c, owner, sqlite=False) for c in history.chats))
        for trigger in LOAD_WITHOUT:
            conn.execute(f"alter table public.messages disable trigger {trigger}")
        for owner, history in owners.items():
            copy_rows(conn, "messages", MESSAGE_LOAD,
                      (message_row(m, owner, sqlite=False) for m in history.messages))
        for trigger in LOAD_WITHOUT:
            conn.execute(f"alter table public.messages enable trigger {trigger}")
    with psycopg.connect(dsn, autocommit=True) as conn:  # statistics, as autovacuum would
        conn.execute("analyze public.chats")
        conn.execute("analyze public.messages")


def copy_rows(conn, table: str, columns: tuple[str, ...], rows) -> None:
    with conn.cursor().copy(f"copy public.{table} ({', '.join(columns)}) from stdin") as copy:
        for row in rows:
            copy.write_row(row)


def start_supabase():
    """The stand-in stack the tests use (tests/supabase_stack), restarted with
    pg_stat_statements in PostgreSQL and EXPLAIN plans enabled in PostgREST."""
    from tests.supabase_stack.stack import Tools, start_stack, stop_stack

    tools = Tools.from_environment()
    if absent := tools.missing():
        raise BenchError(f"missing {', '.join(absent)}: run `bash tests/run_all.sh` once, or "
                         "`source tests/setup/supabase.sh` from the repository root")
    try:
        stack = start_stack(tools)
    except (RuntimeError, TimeoutError, OSError) as exc:  # with the servers' logs as notes
        raise BenchError(f"the Supabase stack did not start: {exc}\n"
                         + "\n".join(getattr(exc, "__notes__", []))) from exc
    try:
        with open(stack.workdir / "postgrest.conf", "a") as config:
            config.write(PLAN_CONFIG)
        with open(stack.workdir / "pgdata" / "postgresql.conf", "a") as config:
            config.write(STATEMENTS_CONFIG)
        stack.stop_postgrest()
        stack.stop_postgres()
        stack.start_postgres()
        stack.start_postgrest()
    except BaseException:
        stop_stack(stack)
        raise
    return stack


def signed_up(stack, name: str):
    """A new account through the app's own sign-up; returns its signed-in client and id."""
    from core.auth import SupabaseAuth
    from core.config import Settings

    auth = SupabaseAuth(Settings(supabase_url=stack.url, supabase_anon_key=stack.anon_key))
    EMAILS[name] = f"bench-{name}-{uuid.uuid4().hex[:8]}@example.com"
    user = auth.sign_up(EMAILS[name], PASSWORD)
    return auth.client, user.id


EMAILS: dict[str, str] = {}  # each account's, by name, to sign in in the browser


def run_supabase(args: argparse.Namespace, histories: dict[str, History]) -> list[Figure]:
    from tests.supabase_stack.stack import stop_stack

    with stopwatch() as elapsed:
        stack = start_supabase()
    print(f"  stack started in {elapsed[0] / 1e3:.1f} s (PostgreSQL, migrations pushed by "
          "the Supabase CLI, PostgREST, auth stand-in)", flush=True)
    try:
        accounts = {name: signed_up(stack, name) for name in histories}
        with stopwatch() as elapsed:
            load_postgres(stack.db_dsn, {accounts[n][1]: h for n, h in histories.items()})
        print(f"  loaded in {elapsed[0] / 1e3:.1f} s (COPY as the owner, one transaction, "
              "then ANALYZE)", flush=True)
        client, user_id = accounts["user"]
        statements = StatementTimes(stack.db_dsn)
        try:
            figures = supabase_figures(client, SupabaseChatStore(client, user_id),
                                       histories["user"], args.runs, statements)
        finally:
            statements.close()
        figures.append(postgres_baseline(stack.db_dsn, args.runs))
        if args.typing:
            from cryptography.fernet import Fernet

            typed_in_browser(args, "Supabase", {
                "SUPABASE_URL": stack.url, "SUPABASE_ANON_KEY": stack.anon_key,
                "SWITCHBOARD_ENCRYPTION_KEYS": Fernet.generate_key().decode()},
                sign_in=lambda page: browser_sign_in(page, EMAILS["user"]))
        return figures
    finally:
        stop_stack(stack)


# ---------------------------------------------------------------- search as you type


def typed_in_browser(args: argparse.Namespace, backend: str, env: dict[str, str],
                     sign_in: Callable | None = None) -> None:
    """The app on this backend's data, the search word typed in Chromium; its figures are
    reported with the others."""
    from bench import search_typing

    proc, url = search_typing.start_app(env)
    try:
        figures = search_typing.measure(url, SEARCH_WORD, args.runs,
                                        f"{SEARCH_HITS} chats", sign_in)
    except RuntimeError as exc:
        raise BenchError(f"search as you type on {backend}: {exc}") from exc
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    TYPING.append(lambda: search_typing.report(backend, SEARCH_WORD, figures))


TYPING: list[Callable[[], None]] = []  # the browser figures' reports, printed last


def browser_sign_in(page, email: str) -> None:
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.locator("h1", has_text="Chat").wait_for(timeout=60_000)
    page.wait_for_selector('.st-key-history-search input', timeout=60_000)


# ---------------------------------------------------------------- report and main


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms" if value < 100 else f"{value:.0f} ms"


def report(backend: str, figures: list[Figure], runs: int) -> None:
    header = ("figure", f"server-side, median of {runs}", "min - max", "EXPLAIN ANALYZE",
              "client CPU", "client wall", "target", "result")
    rows = []
    for figure in figures:
        server = median(figure.server)
        result = "-" if figure.target is None else "PASS" if server <= figure.target else "FAIL"
        rows.append((figure.label, _ms(server),
                     f"{_ms(min(figure.server))} - {_ms(max(figure.server))}",
                     _ms(median(figure.explain)), _ms(median(figure.cpu)),
                     _ms(median(figure.wall)),
                     "(reference)" if figure.target is None else f"<= {figure.target:.0f} ms",
                     result))
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    print(f"\n{backend}")
    for row in [header, *rows]:
        print("  " + "  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip())


def generate_histories(args: argparse.Namespace) -> dict[str, History]:
    rng = random.Random(SEED)
    words = Words(rng)
    now = datetime.now(timezone.utc)
    return {
        "user": generate(rng, words, args.chats, args.messages, SEARCH_HITS, now),
        "other": generate(rng, words, args.other_chats, args.other_messages, 3, now),
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "supabase", "both"), default="both")
    parser.add_argument("--chats", type=int, default=2_000, help="the measured user's chats")
    parser.add_argument("--messages", type=int, default=100_000,
                        help="the measured user's messages (default 100000)")
    parser.add_argument("--other-chats", type=int, default=2_000,
                        help="another user's chats, in the same tables (default 2000)")
    parser.add_argument("--other-messages", type=int, default=100_000,
                        help="another user's messages (default 100000)")
    parser.add_argument("--runs", type=int, default=7, help="timed runs per figure (median)")
    parser.add_argument("--typing", action=argparse.BooleanOptionalAction, default=True,
                        help="also type the search word in Chromium against `streamlit run` "
                             "(keystroke to hits drawn); needs Chromium and playwright")
    parser.add_argument("--ready", action=argparse.BooleanOptionalAction, default=True,
                        help="also open a 1,000-message chat in Chromium (bench/chat_ready.py)")
    parser.add_argument("--imports", action=argparse.BooleanOptionalAction, default=True,
                        help="also import a 100 MB ChatGPT export (bench/imports.py)")
    args = parser.parse_args(argv)
    if min(args.runs, args.chats, args.other_chats) < 1:
        parser.error("--runs, --chats and --other-chats must be positive")
    if args.chats < 1 + SEARCH_HITS or args.messages < BIG_CHAT_MESSAGES + args.chats:
        parser.error(f"--chats must be at least {1 + SEARCH_HITS} and --messages at least "
                     f"{BIG_CHAT_MESSAGES:,} plus one per chat")
    if args.other_messages < args.other_chats + 1:
        parser.error("--other-messages must be more than --other-chats")
    return args


def describe_machine() -> str:
    return (f"{os.cpu_count()} CPUs, {platform.machine()}, Python {platform.python_version()},"
            f" SQLite {sqlite3.sqlite_version}, load average {os.getloadavg()[0]:.1f}")


def run(args: argparse.Namespace, work: Path) -> None:
    started = time.monotonic()
    print(f"machine: {describe_machine()}")
    with stopwatch() as elapsed:
        histories = generate_histories(args)
    user, other = histories["user"], histories["other"]
    print(f"data: {len(user.chats):,} chats / {len(user.messages):,} messages for the measured "
          f"user, {len(other.chats):,} / {len(other.messages):,} for another user; "
          f"{sum(len(m.content) for m in user.messages) / 2**20:.0f} MiB of the user's text;"
          f" generated in {elapsed[0] / 1e3:.1f} s", flush=True)
    results = {}
    if args.backend in ("sqlite", "both"):
        print("sqlite: SQLiteChatStore on a temporary data folder", flush=True)
        results["SQLite (in-process: server-side = the store call)"] = run_sqlite(
            args, histories, work)
    if args.backend in ("supabase", "both"):
        print("supabase: SupabaseChatStore through PostgREST on the stand-in stack", flush=True)
        results["Supabase (server-side = PostgreSQL's planning + execution time of the"
                " statements PostgREST ran for the store call, from pg_stat_statements)"] \
            = run_supabase(args, histories)
    for backend, figures in results.items():
        report(backend, figures, args.runs)
    for typed in TYPING:
        typed()
    for wanted, script, options in ((args.ready, "chat_ready.py", []),
                                    (args.imports, "imports.py", ["--backend", args.backend])):
        if wanted:  # in a process of its own: its own app, browser and memory figures
            print(f"\n{script}:", flush=True)
            subprocess.run([sys.executable, str(Path(__file__).parent / script), *options],
                           check=False)
    print(f"\n(bench took {time.monotonic() - started:.0f} s; load average "
          f"{os.getloadavg()[0]:.1f} at the end)")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the stack on kill too
    with tempfile.TemporaryDirectory(prefix="switchboard-history-bench-") as work:
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
