"""Concurrency benchmark: many sessions streaming a reply at once, on one app process or on
replicas behind nginx.

For each N of --sessions: a fresh app (local default, its own data folder, the OpenAI-compatible
provider saved to point at the server), one warm-up reply, then N sessions that load the chat
page and submit their message together. Each reply is llm-katan's echo of a prompt of numbered
tokens ("t00001 t00002 ..."), --chunks chunks long, sent at --rate chunks/s per stream by
bench/paced_relay.py's relay (one relay, each stream on its own schedule). The sessions are
driven by bench/st_client.py, which speaks Streamlit's own websocket protocol, not by browsers.

--switch: half the sessions leave their chat a third of the way into the reply (a click on
another chat of theirs in the sidebar's history) and come back to it a third later.
--replicas N: N app processes in Supabase mode sharing one stand-in Supabase stack, behind
Debian's nginx with sticky sessions (bench/replicas.py), one account per session.
--per-session K (2-4): each session picks K models in the chat page's Compare popover (its
multiselect, set over the protocol) and sends its message to all of them at once; each model
is a connection of its own to its own relay, so each reply has its own server and schedule. The
figures count each reply (chunks lost, delays, stored whole), read per column from the page's
`compare-col-<i>` containers. Target: 25 sessions (100 replies) on one process.

Per N: chunks lost (a session whose final text is not the whole reply, or which never settles,
counts what is missing), p50/p95 delay from the relay sending a chunk to the session receiving
text that reaches it, from a message sent to its request at the relay, every reply read back
from the store against what the server sent, and CPU. Targets: 0 chunks lost, p95 delay
<= 1 s, p95 submit -> request <= 0.5 s, every reply stored whole; 50 sessions on one process
(with or without --switch), 100 on two replicas.

    .venv/bin/python bench/concurrency.py [--sessions 10,25,50,100] [--chunks 2000] [--rate 50]
    .venv/bin/python bench/concurrency.py --switch --sessions 50
    .venv/bin/python bench/concurrency.py --replicas 2 --sessions 100
    .venv/bin/python bench/concurrency.py --per-session 4            # 25 sessions x 4 replies
    .venv/bin/python bench/concurrency.py --check-browser   # the client against one Chromium

Exit 0 once measured, even when a target is missed (that is a result); 2 when it could not run.
See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import io
import json
import math
import os
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
import urllib.request
from bisect import bisect_left
from collections.abc import Callable
from contextlib import closing, suppress
from dataclasses import dataclass, field
from pathlib import Path

from websockets.exceptions import ConnectionClosed, WebSocketException

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench import paced_relay  # noqa: E402
from core.history.replies import WORKERS  # noqa: E402  (replies one process streams at once)
from bench.paced_relay import PacedRelay, _Records, event_text  # noqa: E402
from bench.replicas import (  # noqa: E402
    PASSWORD, Replicas, find_nginx, page_cookie, replicas_of_cookies, start_replicas,
    start_stack,
)
from bench.st_client import ReplyWatcher, Session  # noqa: E402
from bench.stream import (  # noqa: E402
    CHROMIUM, CHROMIUM_ARGS, CHUNK_CHARS, CLOCK_TICKS, MODEL, BenchError, Processes, Server,
    _open_chat, process_cpu, save_connections, save_profile, start_app, start_katan,
)
from tests.fixtures.common import free_port  # noqa: E402

TARGET_SESSIONS = 50  # on one process
REPLICAS_TARGET_SESSIONS = 100  # on two replicas behind nginx
COMPARED_TARGET_SESSIONS = 25  # on one process, each session's message to four models at once
DELAY_TARGET = 1.0  # seconds, p95
REQUEST_TARGET = 0.5  # seconds, p95: from a message sent to its request at the model server
SETTLE = 10.0  # seconds after a stream's end that a page may take to show all of it
HISTORY_KEY = "-history:open:"  # a sidebar history button's id ends with it, then the chat's id
BROWSER_MARGIN = 0.1  # seconds: the browser and the protocol client agree within this (p50, p95)
TOKEN = re.compile(r"t(\d{5})")  # no word boundary: a browser's text joins paragraphs
TOKEN_TAIL = 64  # characters at the end of an element's text that hold its highest token
SESSION_TAG = re.compile(r"s\d{4}")
TOKENS_PER_PARAGRAPH = 40  # the echo is Markdown in several blocks, as real replies are
QUEUED_REQUEST = 5.0  # seconds from a message to its request: the reply waited its turn
RELAY_LATE_NOTE = 0.1  # seconds behind its schedule that the relay's pacing is worth a note


# ---------------------------------------------------------------- the reply and its schedule


def make_prompt(session: int, chunks: int) -> str:
    """`sNNNN` then numbered tokens in paragraphs, about `chunks` echo chunks; equal lengths for
    every session, so one raw probe maps tokens to chunks for all of them."""
    words, size, k = [f"s{session:04d}"], 5, 0
    while size < chunks * CHUNK_CHARS:
        k += 1
        words.append(("\n\n" if k % TOKENS_PER_PARAGRAPH == 0 else " ") + f"t{k:05d}")
        size += len(words[-1])
    return "".join(words)


@dataclass(frozen=True)
class ReplyMap:
    """Where each token of the echoed reply arrives in the stream of SSE events."""

    events: int  # SSE events in the stream, [DONE] included
    content_chunks: int  # events carrying text
    last_content_event: int
    token_events: list[int]  # token k (from 1) is complete in event token_events[k - 1]
    piece_sizes: frozenset[int]  # characters per text chunk seen (4, and the last one)


def map_tokens(pieces: list[str | None]) -> ReplyMap:
    """`pieces`: each SSE event's text (None: no text). Token k arrives with the event that
    carries its last character."""
    text, ends, indices = "", [], []
    for index, piece in enumerate(pieces):
        if piece:
            text += piece
            ends.append(len(text))
            indices.append(index)
    token_events = []
    for match in TOKEN.finditer(text):
        if int(match[1]) != len(token_events) + 1:
            raise BenchError(f"the echo's tokens are out of order at {match[0]}")
        token_events.append(indices[bisect_left(ends, match.end())])
    return ReplyMap(len(pieces), len(indices), indices[-1] if indices else 0, token_events,
                    frozenset(len(p) for p in pieces if p))


def probe_reply(katan: Server, prompt: str) -> ReplyMap:
    """The echo of `prompt`, read raw from llm-katan (not paced), as the app's request asks it."""
    body = json.dumps({"model": MODEL, "messages": [{"role": "user", "content": prompt}],
                       "stream": True, "stream_options": {"include_usage": True}}).encode()
    request = urllib.request.Request(
        f"{katan.base_url}/chat/completions", data=body,
        headers={"Authorization": f"Bearer {katan.api_key}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        raw = response.read().decode()
    return map_tokens([event_text(event) for event in raw.split("\n\n") if event.strip()])


def token_delays(updates: list[tuple[float, int]], first_event: float, rate: float,
                 token_events: list[int], returned: float | None = None) -> list[float]:
    """Per token received: when the session first held it minus when the relay sent its event.

    `updates`: (time, highest token so far), the token rising. Event i leaves the relay at
    first_event + i / rate (bench/paced_relay.py's schedule). `returned`: when a session that
    had switched to another chat asked for this one again; a token first held after that
    counts from then if it was sent while the session was away (the user was not looking)."""
    delays, i = [], 0
    for k, event in enumerate(token_events, start=1):
        while i < len(updates) and updates[i][1] < k:
            i += 1
        if i == len(updates):
            break
        seen, sent = updates[i][0], first_event + event / rate
        if returned is not None and seen >= returned:
            sent = max(sent, returned)
        delays.append(seen - sent)
    return delays


def lost_chunks(reply: ReplyMap, final_tokens: list[int] | None, live_highest: int) -> int:
    """Chunks after the last token the session holds in order: from its final text, or from
    what it received live when it never finished (final_tokens None)."""
    if final_tokens is None:
        reached = min(live_highest, len(reply.token_events))
    else:
        present, reached = set(final_tokens), 0
        while reached < len(reply.token_events) and reached + 1 in present:
            reached += 1
    if reached == 0:
        return reply.content_chunks
    return reply.last_content_event - reply.token_events[reached - 1]


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile: the smallest value with at least q % of values at or below it."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


# ---------------------------------------------------------------- the relay, tagged per session


class _TaggedRecords:
    """Adds the bench session's tag, and when its request arrived, to each stream recorded."""

    def __init__(self, records: _Records, tag: str | None, arrived: float) -> None:
        self.records, self.tag, self.arrived = records, tag, arrived

    def add(self, record: dict, events: list[bytes] | None = None) -> None:
        self.records.add({**record, "session": self.tag, "arrived": self.arrived}, events)


def session_tag(body: bytes) -> str | None:
    """The `sNNNN` a bench prompt starts with, from a chat request's body."""
    try:
        content = json.loads(body)["messages"][-1]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        return None
    match = SESSION_TAG.match(content) if isinstance(content, str) else None
    return match[0] if match else None


class SessionRelay(PacedRelay):
    """paced_relay's relay, its records also naming the session each stream is for."""

    def do_POST(self) -> None:
        arrived = time.time()  # the request line and headers are in; the body follows
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        kept, self.rfile = self.rfile, io.BytesIO(body)  # the relay reads the body itself
        self.records = _TaggedRecords(type(self).records, session_tag(body), arrived)
        try:
            super().do_POST()
        finally:
            self.rfile = kept


def serve_relay(origin: str, port: int, rate: float) -> None:
    paced_relay.serve(SessionRelay, origin, port, rate)


def start_session_relay(processes: Processes, upstream: Server, rate: float,
                        name: str = "relay-1") -> Server:
    port = free_port()
    processes.start(name, [
        sys.executable, str(Path(__file__).resolve()), "--serve-relay",
        upstream.base_url.removesuffix("/v1"), str(port), str(rate),
    ], f"http://127.0.0.1:{port}/_relay/streams")
    return Server(f"http://127.0.0.1:{port}/v1", upstream.api_key)


def _relay_json(relay: Server, path: str) -> list[dict]:
    with urllib.request.urlopen(relay.base_url.removesuffix("/v1") + path, timeout=60) as answer:
        return json.load(answer)


def relay_records(relay: Server, since: float, replies: bool = False) -> dict[str, dict]:
    """The relay's streams started after `since`, by session tag (the latest of each); with
    `replies`, each also has `reply`: the characters and SHA-256 of what the server sent."""
    records = _relay_json(relay, "/_relay/streams")
    if replies:
        for record, reply in zip(records, _relay_json(relay, "/_relay/replies")):
            record["reply"] = reply
    return {r["session"]: r for r in records if r.get("session") and r["started"] >= since}


def column_tag(tag: str, column: int) -> str:
    """The name of a session's reply in a compared column (from 0): `sNNNN/1`, `sNNNN/2`..."""
    return f"{tag}/{column + 1}"


def records_of(relays: list[Server], since: float, replies: bool = False) -> dict[str, dict]:
    """relay_records of one relay; of several (one per compared column, in column order),
    keyed by each session's reply per column (column_tag)."""
    if len(relays) == 1:
        return relay_records(relays[0], since, replies)
    return {column_tag(tag, column): record for column, relay in enumerate(relays)
            for tag, record in relay_records(relay, since, replies).items()}


# ---------------------------------------------------------------- CPU from /proc


def machine_cpu() -> float:
    """CPU seconds every process on the machine has used so far (all cores, busy time)."""
    ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return (sum(ticks) - ticks[3] - ticks[4]) / CLOCK_TICKS  # less idle and iowait


@dataclass
class CpuWindow:
    """CPU seconds of some processes, of this client and of the machine over a wall interval."""

    pids: dict[str, int]
    start: dict[str, float] = field(default_factory=dict)
    used: dict[str, float] = field(default_factory=dict)
    wall: float = 0.0

    def __enter__(self) -> "CpuWindow":
        self.start = self._sample()
        return self

    def __exit__(self, *_) -> None:
        end = self._sample()
        self.used = {name: end[name] - self.start[name] for name in end}
        self.wall = self.used.pop("wall")
        for whole, part in (("server", "replica-"), ("relay", "relay-")):  # all of them
            if whole not in self.used:
                self.used[whole] = sum(v for k, v in self.used.items() if k.startswith(part))

    def _sample(self) -> dict[str, float]:
        sample = {name: process_cpu(pid) for name, pid in self.pids.items()}
        sample.update(client=time.process_time(), machine=machine_cpu(), wall=time.monotonic())
        return sample

    def cores(self, name: str) -> float:
        return self.used[name] / self.wall if self.wall else math.nan


# ---------------------------------------------------------------- sessions


def other_prompt(session: int) -> str:
    """A switching session's other chat, made before the round (no `sNNNN` first: the relay
    does not take its stream for the session's reply)."""
    return f"Another chat of s{session:04d}"


@dataclass
class Switch:
    """A session that leaves its chat mid-reply for another one and comes back, by clicking
    them in the sidebar's history (or finding them with its search, when the list's first page
    does not show them: the local default's one user holds every session's chats)."""

    away: float | None = None  # wall time the click on the other chat was sent
    returned: float | None = None  # ... and the click back on the reply's chat
    away_shown: bool = False  # the address named the other chat after the click
    back_shown: bool = False  # ... and the reply's chat after the click back
    searched: bool = False  # a chat was found with the sidebar's search
    problem: str = ""  # why the switch could not be made
    task: asyncio.Task | None = None

    @property
    def made(self) -> bool:
        return self.away_shown and self.back_shown


@dataclass
class SessionRun:
    """One protocol session: its prompt, what it received and how it ended."""

    number: int
    prompt: str
    updates: list[tuple[float, int]] = field(default_factory=list)  # (time, highest token)
    watcher: ReplyWatcher | None = None
    session: Session | None = None
    reader: asyncio.Task | None = None
    final_tokens: list[int] | None = None  # None: the reply never settled on the page
    alerts: list[str] = field(default_factory=list)
    submitted: float = 0.0  # wall time its message was sent
    email: str | None = None  # Supabase mode: the account it signs in with
    sticky: bool = False  # behind nginx: load the page for its replica cookie first
    cookie: str | None = None  # that cookie, sent with the websocket
    switch: Switch | None = None  # set for the sessions that switch chats mid-reply
    compared: tuple[str, ...] = ()  # 2-4 models its message goes to at once (Compare)
    column_updates: list[list[tuple[float, int]]] = field(default_factory=list)  # per column
    column_final: list[list[int] | None] = field(default_factory=list)  # per column

    def __post_init__(self) -> None:
        self.column_updates = self.column_updates or [[] for _ in self.compared]
        self.column_final = self.column_final or [None for _ in self.compared]

    @property
    def tag(self) -> str:
        return f"s{self.number:04d}"

    @property
    def reply_tags(self) -> list[str]:
        """Its replies' names in the relays' records: its tag, or one per compared column."""
        if not self.compared:
            return [self.tag]
        return [column_tag(self.tag, column) for column in range(len(self.compared))]

    @property
    def highest(self) -> int:
        return self.updates[-1][1] if self.updates else 0

    def on_text(self, at: float, text: str) -> None:
        rise(self.updates, at, text)

    def on_column_text(self, at: float, column: int, text: str) -> None:
        if column < len(self.column_updates):
            rise(self.column_updates[column], at, text)

    async def load(self, app_url: str) -> None:
        """Open the chat page in a new session (what a page load does), signed in if need be."""
        self.watcher = ReplyWatcher(on_text=self.on_text, on_column_text=self.on_column_text)
        if self.sticky:
            self.cookie = await asyncio.to_thread(page_cookie, app_url)
        self.session = await Session.open(app_url, self.watcher, self.cookie)
        self.reader = asyncio.create_task(self.session.read())
        await self.session.rerun()
        await asyncio.wait_for(self.session.finished.wait(), 60)
        if self.email is not None:
            await self.sign_in()
        if self.session.chat_input_id is None:
            raise BenchError("the chat page did not show a chat input")
        if self.compared:
            await self.pick_compared()

    async def pick_compared(self) -> None:
        """Pick the compared models in the Compare popover's multiselect."""
        models = self.session.widget_id("compare:models:0")  # a new session's first picker
        if models is None:
            raise BenchError("the chat page did not show the Compare popover's models")
        missing = set(self.compared) - set(self.session.multiselects[models])
        if missing:
            raise BenchError(f"the Compare popover does not offer {sorted(missing)}")
        await self.session.select(models, list(self.compared))
        await asyncio.wait_for(self.session.finished.wait(), 60)

    async def sign_in(self) -> None:
        """The sign-in page's form: email, password, Sign in; the app then shows Chat."""
        session = self.session
        email, password = session.widget_id("sign_in:email"), session.widget_id("sign_in:password")
        submit = next((b.id for b in session.buttons.values() if b.is_form_submitter), None)
        if not (email and password and submit):
            raise BenchError("the app did not show its sign-in form")
        await session.submit_form({email: self.email, password: PASSWORD}, submit)
        await asyncio.wait_for(session.finished.wait(), 60)

    async def send_and_wait(self, text: str) -> None:
        """Send a message and wait for the page to settle after its (short) reply."""
        await self.session.rerun(text)
        await asyncio.wait_for(self.session.finished.wait(), 60)

    async def make_other_chat(self) -> None:
        """Before the round: a chat of its own with one short reply, then New chat."""
        await self.send_and_wait(other_prompt(self.number))
        new_chat = self.session.widget_id("chat:new")
        if new_chat is None:
            raise BenchError("the chat page did not show New chat")
        await self.session.click(new_chat)
        await asyncio.wait_for(self.session.finished.wait(), 60)
        self.switch = Switch()

    def at_rest(self) -> bool:
        """A full run has ended successfully and nothing runs now."""
        return self.session.finished.is_set() and not self.session.running

    def texts(self) -> list[str]:
        """What the page shows of its reply, or of each compared reply (in column order)."""
        if not self.compared:
            return [self.watcher.reply_text()]
        return [self.watcher.column_text(column) for column in range(len(self.compared))]

    def shows_last(self, tokens: int) -> bool:
        return all(f"t{tokens:05d}" in text[-TOKEN_TAIL:] for text in self.texts())

    async def settle(self, streams: dict[str, dict], tokens: int, deadline: float) -> None:
        """Until the reply is over on this page: its stream has ended at the server, the
        session is back on the reply's chat, and the page is at rest showing the last token,
        or SETTLE seconds after the stream's end showing what it shows. Then its final text
        is read. A session still unsettled at `deadline`, or closed by the server, keeps
        final_tokens None."""
        while time.time() < deadline and not self.reader.done():
            records = [streams.get(tag) for tag in self.reply_tags]
            back = self.switch is None or self.switch.task is None or self.switch.task.done()
            if all(records) and back and self.at_rest():
                ended = max(record["ended"] for record in records)
                if self.shows_last(tokens) or time.time() > ended + SETTLE:
                    finals = [[int(k) for k in TOKEN.findall(text)] for text in self.texts()]
                    if self.compared:
                        self.column_final = finals
                    else:
                        self.final_tokens = finals[0]
                    break
            await asyncio.sleep(0.1)
        self.alerts = list(self.watcher.alerts)

    async def switch_mid_reply(self, tokens: int, away_seconds: float, deadline: float) -> None:
        """Once a third of the reply shows: the other chat, then back after `away_seconds`."""
        switch = self.switch
        try:
            while self.highest < max(1, tokens // 3):
                if time.time() > deadline or self.reader.done():
                    switch.problem = "the reply never showed a third of its tokens"
                    return
                await asyncio.sleep(0.05)
            switch.away = time.time()
            switch.away_shown = await self.open_chat(other_prompt(self.number), wait=True)
            if not switch.away_shown:
                switch.problem = "the address never named the other chat" + self._said()
                return
            await asyncio.sleep(max(0.0, switch.away + away_seconds - time.time()))
            switch.returned = time.time()
            switch.back_shown = await self.open_chat(f"{self.tag} t00001", wait=False)
            if not switch.back_shown:
                switch.problem = "the address never named the reply's chat again" + self._said()
        except (BenchError, ConnectionClosed, asyncio.TimeoutError) as exc:
            switch.problem = str(exc) or type(exc).__name__

    async def open_chat(self, title_start: str, wait: bool) -> bool:
        """Click the chat whose title starts with `title_start` in the sidebar's history
        (found with the search box if the list does not show it); True once the address
        names it. `wait`: also wait for that run to end (a chat with no reply arriving)."""
        button = self._history_button(title_start)
        if button is None:
            search = self.session.widget_id("history:search")
            if search is None:
                raise BenchError("the sidebar showed no search box")
            self.switch.searched = True
            await self.session.type_text(search, self.tag)
            await asyncio.wait_for(self.session.finished.wait(), 60)
            button = self._history_button(title_start)
            if button is None:
                raise BenchError(f"the sidebar's search did not find the chat {title_start!r}"
                                 + self._said())
        chat_id = button.id.rsplit(HISTORY_KEY, 1)[1]
        await self.session.click(button.id)
        if wait:
            await asyncio.wait_for(self.session.finished.wait(), 60)
        for _ in range(300):  # the address names the open chat early in the run
            if f"chat={chat_id}" in self.session.query_string:
                return True
            await asyncio.sleep(0.1)
        return False

    def _said(self) -> str:
        """What the page said last (an error or warning), to go with a switch not made."""
        alerts = self.watcher.alerts
        return f" (the page said: {alerts[-1][:150]})" if alerts else ""

    def _history_button(self, title_start: str):
        return next((b for b in self.session.buttons.values()
                     if HISTORY_KEY in b.id and b.label.startswith(title_start)), None)

    async def close(self) -> None:
        await self.session.close()
        self.reader.cancel()


def rise(updates: list[tuple[float, int]], at: float, text: str) -> None:
    """Note (at, highest token) when the text's end holds a token above the highest so far."""
    found = TOKEN.findall(text, max(0, len(text) - TOKEN_TAIL))
    if found and (top := max(int(k) for k in found)) > (updates[-1][1] if updates else 0):
        updates.append((at, top))


@dataclass
class ColumnReply:
    """One compared reply of a session, judged as a reply of its own (summarize,
    check_stored): the updates and final text of its column."""

    tag: str  # column_tag
    updates: list[tuple[float, int]]
    final_tokens: list[int] | None
    submitted: float
    reader: asyncio.Task
    alerts: list[str]
    switch: None = None

    @property
    def highest(self) -> int:
        return self.updates[-1][1] if self.updates else 0


def column_replies(runs: list[SessionRun]) -> list:
    """Each session's replies, as summarize and check_stored judge them: the session itself,
    or one ColumnReply per compared column."""
    replies = []
    for run in runs:
        if not run.compared:
            replies.append(run)
            continue
        replies += [ColumnReply(column_tag(run.tag, column), updates, final, run.submitted,
                                run.reader, run.alerts)
                    for column, (updates, final) in enumerate(zip(run.column_updates,
                                                                   run.column_final))]
    return replies


async def open_sessions(app_url: str, runs: list[SessionRun], at_once: int = 10) -> None:
    """Load the chat page in every session, a few page loads at a time."""
    gate = asyncio.Semaphore(at_once)

    async def load(run: SessionRun) -> None:
        async with gate:
            await run.load(app_url)

    try:
        await asyncio.gather(*(load(run) for run in runs))
    except (OSError, asyncio.TimeoutError, WebSocketException) as exc:
        raise BenchError(f"a session could not load the chat page: {exc!r}") from exc


async def make_other_chats(runs: list[SessionRun], at_once: int = 10) -> None:
    """Each switching session's other chat, a few at a time (not timed)."""
    gate = asyncio.Semaphore(at_once)

    async def make(run: SessionRun) -> None:
        async with gate:
            await run.make_other_chat()

    try:
        await asyncio.gather(*(make(run) for run in runs))
    except (OSError, asyncio.TimeoutError, WebSocketException) as exc:
        raise BenchError(f"a session could not make its other chat: {exc!r}") from exc


async def warm_up(app_url: str, email: str | None = None) -> None:
    """One short reply first: the first reply per process pays one-off imports (README)."""
    run = SessionRun(0, "Warm-up: the first reply after the app started.", email=email)
    await open_sessions(app_url, [run])
    try:
        await run.send_and_wait(run.prompt)
    except asyncio.TimeoutError as exc:
        raise BenchError("the warm-up reply never finished") from exc
    finally:
        await run.close()


async def follow_relay(relays: list[Server], since: float, streams: dict[str, dict],
                       done: asyncio.Event) -> None:
    """Keep `streams` up to date with the relays' ended streams until `done`."""
    while not done.is_set():
        streams.update(await asyncio.to_thread(records_of, relays, since))
        with suppress(asyncio.TimeoutError):
            await asyncio.wait_for(done.wait(), 0.5)


async def stream_together(runs: list[SessionRun], relays: list[Server], reply: ReplyMap,
                          rate: float, timeout: float, since: float) -> None:
    """Submit every session's message at once; the switching ones leave their chat a third
    of the way in and come back after another third of the stream's time. Waits until every
    reply has settled on its page. `since`: a wall time before the first submit."""
    tokens, deadline = len(reply.token_events), time.time() + timeout
    for run in runs:
        run.submitted = time.time()
        with suppress(ConnectionClosed):  # closed by the server: counted as never finished
            await run.session.rerun(run.prompt)
    away = reply.events / rate / 3
    for run in runs:
        if run.switch is not None:
            run.switch.task = asyncio.create_task(run.switch_mid_reply(tokens, away, deadline))
    streams: dict[str, dict] = {}
    done = asyncio.Event()
    follower = asyncio.create_task(follow_relay(relays, since, streams, done))
    try:
        await asyncio.gather(*(run.settle(streams, tokens, deadline) for run in runs))
    finally:
        done.set()
        await follower
        for run in runs:
            if run.switch is not None and not run.switch.task.done():
                run.switch.task.cancel()
                run.switch.problem = run.switch.problem or "still switching at the end"


# ---------------------------------------------------------------- one round: N sessions


@dataclass
class Deployment:
    """Where a round's sessions go: one app in the local default, or replicas behind nginx."""

    url: str  # the page the sessions load
    warm: list[tuple[str, str | None]]  # each app process and the account its warm-up uses
    pids: dict[str, int]  # the app processes (name -> pid): the server's CPU
    stored: Callable[[float], list[tuple[str, str, str]]]  # (prompt, reply, status) since
    emails: list[str] = field(default_factory=list)  # Supabase mode: one account per session
    replicas: Replicas | None = None
    compared: tuple[str, ...] = ()  # each session's message goes to these models at once


@dataclass
class Stored:
    """Whether each session's reply is in the store whole."""

    whole: int = 0
    problems: list[str] = field(default_factory=list)


def by_column(stored: list[tuple], compared: tuple[str, ...]) -> list[tuple]:
    """Stored replies (prompt, reply, status, model label) of compared models, their prompt's
    tag named for the reply's column as column_tag names it (the label says which model, so
    which column); other replies as they are."""
    named = []
    for prompt, content, status, label in stored:
        tag, rest = prompt[:5], prompt[5:]
        if label in compared and SESSION_TAG.fullmatch(tag):
            prompt = column_tag(tag, compared.index(label)) + rest
        named.append((prompt, content, status, label))
    return named


def check_stored(runs: list, records: dict[str, dict],
                 stored: list[tuple[str, str, str, str]]) -> Stored:
    """Each session's reply as stored (the assistant message under its prompt) against the
    text the server sent for it (the relay's count of every event's text). A compared reply
    is found by its column_tag (see by_column)."""
    by_tag: dict[str, tuple[str, str]] = {}
    for prompt, content, status, *_ in stored:
        tag = prompt.split(" ", 1)[0]
        if prompt.startswith(f"{tag} t00001") and len(content) >= len(by_tag.get(tag, ("",))[0]):
            by_tag[tag] = (content, status)
    result = Stored()
    for run in runs:
        sent = (records.get(run.tag) or {}).get("reply")
        content, status = by_tag.get(run.tag, (None, None))
        if sent is None:
            result.problems.append(f"{run.tag}: the server sent it no reply")
        elif content is None:
            result.problems.append(f"{run.tag}: no reply stored")
        elif len(content) != sent["chars"]:
            result.problems.append(f"{run.tag}: {len(content):,} of {sent['chars']:,} characters"
                                   f" stored ({status})")
        elif hashlib.sha256(content.encode()).hexdigest() != sent["sha256"]:
            result.problems.append(f"{run.tag}: as many characters as sent, other text ({status})")
        else:
            result.whole += 1
    return result


@dataclass
class RoundResult:
    sessions: int
    chunks: int  # text chunks expected, all sessions together
    lost: int
    delays: list[float]  # per token received, every session
    session_p95: list[float]
    finished: int  # replies that settled on their page
    complete: int  # ... with the whole reply in their final text
    disconnected: int  # sessions the server closed
    unmatched: int  # sessions whose stream the relay did not record
    short_streams: int  # whole relay streams with fewer or more events than the raw probe
    cut_streams: int  # relay streams the app closed before their end
    relay_late: list[float]  # per stream: seconds its most late write was behind schedule
    relay_starts: list[float]  # per stream: wall time of its first event
    to_request: list[float]  # per session: from its submit to its request at the relay
    first_token: list[float]  # per session: the first token's delay
    last_token: list[float]  # per session that received the whole reply: the last token's
    alerts: list[str]
    cpu: CpuWindow
    stored: Stored = field(default_factory=Stored)
    switching: list[SessionRun] = field(default_factory=list)  # the sessions that switch
    lost_switching: int = 0  # chunks lost by those
    per_replica: dict[str, int] = field(default_factory=dict)  # replica -> sessions it served
    unsticky: int = 0  # browsers (cookies) whose requests reached more than one replica
    per_session: int = 1  # replies each session asked for at once (Compare: 2-4)

    @property
    def p50(self) -> float:
        return percentile(self.delays, 50)

    @property
    def p95(self) -> float:
        return percentile(self.delays, 95)

    @property
    def request_p95(self) -> float:
        return percentile(self.to_request, 95)

    @property
    def switched(self) -> int:
        return sum(run.switch.made for run in self.switching)

    @property
    def replies(self) -> int:
        return self.sessions  # summarize counts each compared reply as a session of its own

    @property
    def judges_request(self) -> bool:
        """Submit -> request is judged for one reply per session; with several, reported."""
        return self.per_session == 1

    def name(self) -> str:
        if self.per_session == 1:
            return f"{self.sessions} sessions"
        return f"{self.sessions // self.per_session} sessions x {self.per_session} replies"

    @property
    def passed(self) -> bool:
        return (self.lost == 0 and self.p95 <= DELAY_TARGET
                and self.stored.whole == self.replies
                and (self.request_p95 <= REQUEST_TARGET or not self.judges_request)
                and self.switched == len(self.switching) and self.unsticky == 0)


def summarize(runs: list[SessionRun], records: dict[str, dict], reply: ReplyMap, rate: float,
              cpu: CpuWindow) -> RoundResult:
    delays, session_p95, late, starts, unmatched, short, cut = [], [], [], [], 0, 0, 0
    first, last, to_request = [], [], []
    for run in runs:
        record = records.get(run.tag)
        if record is None or record.get("first_event") is None:
            unmatched += 1
            continue
        short += record["complete"] and record["events"] != reply.events
        cut += not record["complete"]
        returned = run.switch.returned if run.switch else None
        own = token_delays(run.updates, record["first_event"], rate, reply.token_events, returned)
        delays += own
        session_p95 += [percentile(own, 95)] if own else []
        first += own[:1]
        last += own[-1:] if len(own) == len(reply.token_events) else []
        late.append(record["late_max"])
        starts.append(record["first_event"])
        to_request.append(record.get("arrived", record["started"]) - run.submitted)
    complete = [r for r in runs if r.final_tokens == list(range(1, len(reply.token_events) + 1))]
    lost = {run.tag: lost_chunks(reply, run.final_tokens, run.highest) for run in runs}
    switching = [run for run in runs if run.switch is not None]
    return RoundResult(
        sessions=len(runs), chunks=len(runs) * reply.content_chunks, lost=sum(lost.values()),
        delays=delays, session_p95=session_p95,
        finished=sum(run.final_tokens is not None for run in runs), complete=len(complete),
        disconnected=sum(run.reader.done() and run.final_tokens is None for run in runs),
        unmatched=unmatched, short_streams=short, cut_streams=cut, relay_late=late,
        relay_starts=starts, to_request=to_request, first_token=first, last_token=last,
        alerts=sorted({alert for run in runs for alert in run.alerts}), cpu=cpu,
        switching=switching, lost_switching=sum(lost[run.tag] for run in switching),
    )


async def stream_round(deployment: Deployment, n: int, args, relays: list[Server],
                       reply: ReplyMap, pids: dict[str, int]) -> RoundResult:
    for app_url, email in deployment.warm:
        await warm_up(app_url, email)
    emails = deployment.emails or [None] * n
    runs = [SessionRun(number, make_prompt(number, args.chunks), email=emails[number - 1],
                       sticky=deployment.replicas is not None, compared=deployment.compared)
            for number in range(1, n + 1)]
    try:
        await open_sessions(deployment.url, runs)
        if args.switch:
            await make_other_chats(runs[::2])  # sessions 1, 3, 5...: half of them switch
        since = time.time()
        with CpuWindow({**pids, **deployment.pids}) as cpu:
            await stream_together(runs, relays, reply, args.rate, args.timeout, since)
    finally:
        await asyncio.gather(*(run.close() for run in runs if run.session),
                             return_exceptions=True)
    records = await asyncio.to_thread(records_of, relays, since, True)
    replies = column_replies(runs)
    result = summarize(replies, records, reply, args.rate, cpu)
    result.per_session = len(deployment.compared) or 1
    result.stored = check_stored(replies, records,
                                 by_column(deployment.stored(since), deployment.compared))
    if deployment.replicas is not None:
        await asyncio.sleep(1)  # nginx logs a websocket once it has closed
        result.per_replica, result.unsticky = sessions_per_replica(
            deployment.replicas, [run.cookie for run in runs])
    return result


def sessions_per_replica(replicas: Replicas, cookies: list[str | None]) -> tuple[dict, int]:
    """How many sessions each replica served, and how many browsers reached more than one."""
    served = replicas_of_cookies(replicas.access_log)
    counts: dict[str, int] = {}
    for cookie in cookies:
        reached = served.get((cookie or "").split("=", 1)[-1], set())
        name = " + ".join(sorted(reached)) or "none logged"
        counts[name] = counts.get(name, 0) + 1
    unsticky = sum(len(served.get((c or "").split("=", 1)[-1], ())) != 1 for c in cookies)
    return dict(sorted(counts.items())), unsticky


def sqlite_replies(data_dir: Path) -> Callable[[float], list[tuple[str, str, str]]]:
    """The local default's stored replies, read from its SQLite file (a new one each round,
    so every reply in it is the round's)."""
    def stored(since: float) -> list[tuple[str, str, str, str]]:
        with closing(sqlite3.connect(data_dir / "switchboard.db", timeout=30)) as db:
            return db.execute(STORED_REPLIES.replace("public.", "")).fetchall()
    return stored


# Every stored reply under the message it answers (both stores have these tables and columns).
STORED_REPLIES = ("select u.content as prompt, m.content as reply, m.status, m.model_label"
                  " from public.messages m join public.messages u on u.id = m.parent_id"
                  " where m.role = 'assistant' and u.role = 'user'")


def start_fresh_app(work: Path, name: str, relay: Server, compared: list[Server] = ()
                    ) -> tuple[Processes, str, int, tuple[str, ...]]:
    """A new `streamlit run` on its own data folder; returns its processes, URL, pid and the
    labels of the models on `compared` (a connection to each)."""
    (work / name).mkdir()
    processes = Processes(work / name)
    try:
        save_profile(work / name / "data", relay)
        labels = tuple(save_connections(work / name / "data", list(compared)))
        app_url = start_app(processes, work / name / "data")
        return processes, app_url, processes.pid_of("streamlit"), labels
    except BaseException:
        processes.stop_all()
        raise


def local_deployment(work: Path, name: str, relays: list[Server]
                     ) -> tuple[Processes, Deployment]:
    """One app; with several relays, a connection to each, every message going to all."""
    compared = relays if len(relays) > 1 else []
    processes, app_url, pid, labels = start_fresh_app(work, name, relays[0], compared)
    return processes, Deployment(app_url, [(app_url, None)], {"server": pid},
                                 sqlite_replies(work / name / "data"), compared=labels)


def replicas_deployment(work: Path, name: str, relay: Server, count: int, sessions: int,
                        stack) -> tuple[Processes, Deployment]:
    """`count` replicas in Supabase mode behind nginx, and an account per session."""
    (work / name).mkdir()
    processes = Processes(work / name)
    try:
        replicas = start_replicas(processes, work / name, count, relay, sessions + 1, stack)
    except BaseException:
        processes.stop_all()
        raise
    warm_email, *emails = replicas.emails
    pids = {f"replica-{i}": pid for i, pid in enumerate(replicas.pids, start=1)}

    def stored(since: float) -> list[tuple[str, str, str, str]]:
        rows = stack.sql(STORED_REPLIES + " and m.created_at >= to_timestamp(%s)", since)
        return [(row["prompt"], row["reply"], row["status"], row["model_label"]) for row in rows]

    return processes, Deployment(replicas.url, [(app, warm_email) for app in replicas.apps],
                                 pids, stored, emails, replicas)


def measure_round(n: int, args, relays: list[Server], reply: ReplyMap, work: Path,
                  pids: dict[str, int], stack=None) -> RoundResult:
    """One round on a fresh app; `relays`: one, or one per compared model (--per-session)."""
    if args.replicas:
        processes, deployment = replicas_deployment(work, f"round-{n}", relays[0],
                                                    args.replicas, n, stack)
    else:
        processes, deployment = local_deployment(work, f"app-{n}", relays)
    try:
        return asyncio.run(stream_round(deployment, n, args, relays, reply, pids))
    finally:
        processes.stop_all()


def print_round(result: RoundResult, reply: ReplyMap) -> None:
    cpu, n = result.cpu, result.sessions
    print(f"  {result.finished}/{n} replies settled on their page, {result.complete}/{n} complete,"
          f" {result.disconnected} sessions closed by the server;"
          f" chunks lost {result.lost:,} of {result.chunks:,}")
    if result.switching:
        switching = result.switching
        print(f"  {len(switching)} sessions switched chats mid-reply: {result.switched} went to"
              f" their other chat and back ({sum(r.switch.searched for r in switching)} found"
              f" it with the sidebar's search); they lost {result.lost_switching:,} chunks,"
              f" the others {result.lost - result.lost_switching:,}")
        for problem in sorted({r.switch.problem for r in switching if r.switch.problem})[:3]:
            print(f"    a switch could not be made: {problem}")
    print(f"  stored whole: {result.stored.whole}/{n} replies (the store's text against what"
          f" the server sent)")
    for problem in result.stored.problems[:5]:
        print(f"    {problem}")
    if result.per_replica:
        spread = ", ".join(f"{replica} {count}" for replica, count in result.per_replica.items())
        print(f"  sessions per replica: {spread}; browsers whose requests did not all reach one"
              f" replica: {result.unsticky}")
    if result.delays:
        print(f"  delay per token: p50 {result.p50:.3f} s, p95 {result.p95:.3f} s,"
              f" min {min(result.delays):.3f} s, max {max(result.delays):.3f} s,"
              f" worst session's p95 {max(result.session_p95):.3f} s"
              f" ({len(result.delays):,} tokens)")
        print(f"  first token of each reply: median {percentile(result.first_token, 50):.3f} s,"
              f" max {max(result.first_token):.3f} s; last token: median"
              f" {percentile(result.last_token, 50):.3f} s,"
              f" max {max(result.last_token, default=math.nan):.3f} s")
    replicas = sorted(k for k in cpu.used if k.startswith("replica-"))
    each = f" ({', '.join(f'{cpu.cores(k):.2f}' for k in replicas)})" if replicas else ""
    print(f"  CPU over {cpu.wall:.1f} s: server {cpu.cores('server'):.2f} cores{each}"
          f" ({cpu.used['server'] * 1e3 / result.chunks:.2f} ms per chunk);"
          f" client {cpu.cores('client'):.2f}; relay {cpu.cores('relay'):.2f};"
          f" llm-katan {cpu.cores('llm-katan'):.2f}; whole machine {cpu.cores('machine'):.2f}"
          f" of {os.cpu_count()} cores")
    if result.relay_late:
        spread = max(result.relay_starts) - min(result.relay_starts)
        print(f"  submit -> the app's request at the relay (not in the delays): median"
              f" {percentile(result.to_request, 50):.3f} s, p95 {result.request_p95:.3f} s,"
              f" max {max(result.to_request):.3f} s")
        waited = sum(t > QUEUED_REQUEST for t in result.to_request)
        if waited:
            print(f"  {waited} of {len(result.to_request)} requests left more than"
                  f" {QUEUED_REQUEST:g} s after their message: one process streams {WORKERS}"
                  f" replies at once, the others wait for a free worker (their delays count"
                  f" from their stream's start)")
        print(f"  relay: {len(result.relay_late)} streams of {reply.events} events, first events"
              f" spread over {spread:.2f} s; each on its own schedule, at most"
              f" {max(result.relay_late) * 1e3:.0f} ms behind it")
    if result.relay_late and max(result.relay_late) > RELAY_LATE_NOTE:
        print("  note: the relay itself fell behind its schedule (a busy machine); delays are"
              " counted from the schedule, so they include that")
    if result.cut_streams:
        print(f"  note: the app closed {result.cut_streams} streams before their end: a reply"
              " that stops when its page leaves the chat is lost from there")
    if result.unmatched or result.short_streams:
        print(f"  note: {result.unmatched} sessions without a relay stream,"
              f" {result.short_streams} streams of another length than the raw probe")
    for alert in result.alerts[:3]:
        print(f"  shown on a page: {alert[:200]}")


# ---------------------------------------------------------------- the client against Chromium

# Installed in the page before submitting: (Date.now(), highest token) each time the assistant's
# reply shows a higher token. Only the reply's own Markdown counts (not an expander or popover).
WATCH_TOKENS_JS = """
() => {
  const seen = window.__bench = {updates: [], highest: 0};
  window.__benchReplyText = () => {
    const replies = [...document.querySelectorAll('[data-testid="stChatMessage"]')].filter(
      (m) => m.querySelector('[data-testid="stChatMessageAvatarAssistant"]'));
    if (!replies.length) return "";
    return [...replies[replies.length - 1].querySelectorAll('[data-testid="stMarkdownContainer"]')]
      .filter((e) => !e.closest('[data-testid="stExpander"], [data-testid="stPopover"]'))
      .map((e) => e.textContent).join("\\n");
  };
  new MutationObserver(() => {
    let highest = seen.highest;
    for (const m of window.__benchReplyText().matchAll(/t(\\d{5})/g)) {
      highest = Math.max(highest, Number(m[1]));
    }
    if (highest > seen.highest) {
      seen.highest = highest;
      seen.updates.push([Date.now(), highest]);
    }
  }).observe(document.body, {childList: true, subtree: true, characterData: true});
}
"""

# Once the reply's run has ended (its footer names the model): the tokens of its final text.
FINAL_TOKENS_JS = """
(model) => {
  const replies = [...document.querySelectorAll('[data-testid="stChatMessage"]')].filter(
    (m) => m.querySelector('[data-testid="stChatMessageAvatarAssistant"]'));
  const last = replies[replies.length - 1];
  const caption = last && last.querySelector('[data-testid="stCaptionContainer"]');
  if (!caption || !caption.textContent.includes(model)) return null;
  return [...window.__benchReplyText().matchAll(/t(\\d{5})/g)].map((m) => Number(m[1]));
}
"""


def drive_browser(app_url: str, prompt: str, ready: threading.Event, go: threading.Event,
                  timeout: float, out: dict) -> None:
    """One Chromium page: open the chat, type the prompt, press Enter on `go`, watch the reply."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout, sync_playwright

    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page()
                box = _open_chat(page, app_url)
                page.evaluate(WATCH_TOKENS_JS)
                box.fill(prompt)
                ready.set()
                go.wait(300)
                box.press("Enter")
                try:
                    out["final"] = page.wait_for_function(
                        FINAL_TOKENS_JS, arg=MODEL, timeout=timeout * 1000, polling=250
                    ).json_value()
                except PlaywrightTimeout:
                    out["final"] = None  # never finished: a result, not a failure to run
                out["updates"] = [(ms / 1000, k) for ms, k in
                                  page.evaluate("() => window.__bench.updates")]
            finally:
                browser.close()
    except Exception as exc:  # noqa: BLE001 - handed to the main thread, which reports it
        out["error"] = exc
    finally:
        ready.set()


@dataclass(frozen=True)
class Check:
    browser: list[float]  # delays per token, the Chromium page
    client: list[float]  # delays per token, the protocol session
    browser_complete: bool
    client_complete: bool


async def check_browser(app_url: str, args, relay: Server, reply: ReplyMap) -> Check:
    """One Chromium page and one protocol session, the same reply at the same time."""
    await warm_up(app_url)
    ready, go, out = threading.Event(), threading.Event(), {}
    thread = threading.Thread(target=drive_browser, daemon=True, args=(
        app_url, make_prompt(1, args.chunks), ready, go, args.timeout, out))
    thread.start()
    client = SessionRun(2, make_prompt(2, args.chunks))
    await open_sessions(app_url, [client])
    try:
        await asyncio.to_thread(ready.wait, 300)
        if "error" in out:
            raise BenchError(f"the browser part could not run: {out['error']}")
        since = time.time()
        go.set()
        await stream_together([client], [relay], reply, args.rate, args.timeout, since)
        await asyncio.to_thread(thread.join, args.timeout + 60)
    finally:
        await client.close()
    if "error" in out or "updates" not in out:
        raise BenchError(f"the browser part could not run: {out.get('error', 'no answer')}")
    records = relay_records(relay, since)
    if "s0001" not in records or "s0002" not in records:
        raise BenchError("the relay did not record both streams of the check")
    whole = list(range(1, len(reply.token_events) + 1))
    return Check(
        browser=token_delays(out["updates"], records["s0001"]["first_event"], args.rate,
                             reply.token_events),
        client=token_delays(client.updates, records["s0002"]["first_event"], args.rate,
                            reply.token_events),
        browser_complete=out["final"] == whole, client_complete=client.final_tokens == whole,
    )


def print_check(check: Check) -> None:
    for name, delays in (("Chromium page", check.browser), ("protocol client", check.client)):
        if delays:
            print(f"  {name}: {len(delays):,} tokens, delay p50 {percentile(delays, 50):.3f} s,"
                  f" p95 {percentile(delays, 95):.3f} s, max {max(delays):.3f} s;"
                  f" first token {delays[0]:.3f} s, last token {delays[-1]:.3f} s")


def run_check(args, relay: Server, reply: ReplyMap, work: Path) -> Check:
    processes, app_url, _, _ = start_fresh_app(work, "app-check", relay)
    try:
        return asyncio.run(check_browser(app_url, args, relay, reply))
    finally:
        processes.stop_all()


# ---------------------------------------------------------------- report


def _delays(values: list[float]) -> str:
    if not values:
        return "none received"
    return f"{percentile(values, 50):.3f} s / {percentile(values, 95):.3f} s"


def _verdict(passed: bool) -> str:
    return "PASS" if passed else "FAIL"


def round_rows(results: list[RoundResult], target_sessions: int) -> list[tuple]:
    rows = []
    for r in results:
        n = f"{r.name()}:"
        request = (f"p95 <= {REQUEST_TARGET:g} s", _verdict(r.request_p95 <= REQUEST_TARGET)
                   ) if r.judges_request else ("(reported)", "-")
        rows += [
            (f"{n} chunks lost", f"{r.lost:,} of {r.chunks:,}", "0", _verdict(r.lost == 0)),
            (f"{n} delay p50 / p95", _delays(r.delays), f"p95 <= {DELAY_TARGET:g} s",
             _verdict(r.p95 <= DELAY_TARGET)),
            (f"{n} submit -> request, median / p95",
             f"{percentile(r.to_request, 50):.2f} s / {r.request_p95:.2f} s", *request),
            (f"{n} replies stored whole", f"{r.stored.whole} of {r.replies}", "all",
             _verdict(r.stored.whole == r.replies)),
        ]
        if r.switching:
            rows += [
                (f"{n} switched to another chat and back", f"{r.switched} of {len(r.switching)}",
                 "all", _verdict(r.switched == len(r.switching))),
                (f"{n} chunks lost by those", f"{r.lost_switching:,}", "0",
                 _verdict(r.lost_switching == 0)),
            ]
        if r.per_replica:
            rows.append((f"{n} sessions per replica",
                         " / ".join(str(v) for v in r.per_replica.values()),
                         "each browser on one replica", _verdict(r.unsticky == 0)))
        rows += [
            (f"{n} server CPU", f"{r.cpu.cores('server'):.2f} cores,"
             f" {r.cpu.used['server'] * 1e3 / r.chunks:.2f} ms/chunk", "(reported)", "-"),
            (f"{n} client CPU", f"{r.cpu.cores('client'):.2f} cores", "(reported)", "-"),
        ]
    best = max((r.sessions // r.per_session for r in results if r.passed), default=0)
    rows.append(("largest N meeting every target", str(best) if best else "none",
                 f">= {target_sessions}", _verdict(best >= target_sessions)))
    return rows


def check_rows(check: Check) -> list[tuple]:
    rows = [
        ("check: Chromium page, delay p50 / p95", _delays(check.browser), "complete reply",
         "PASS" if check.browser_complete else "FAIL"),
        ("check: protocol client, delay p50 / p95", _delays(check.client), "complete reply",
         "PASS" if check.client_complete else "FAIL"),
    ]
    if check.browser and check.client:
        p50 = percentile(check.client, 50) - percentile(check.browser, 50)
        p95 = percentile(check.client, 95) - percentile(check.browser, 95)
        agree = max(abs(p50), abs(p95)) <= BROWSER_MARGIN
        rows.append(("check: client minus browser, p50 / p95", f"{p50:+.3f} s / {p95:+.3f} s",
                     f"both within +/-{BROWSER_MARGIN} s", "PASS" if agree else "FAIL"))
    return rows


def print_table(rows: list[tuple]) -> None:
    header = ("figure", "value", "target", "result")
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    print()
    for row in [header, *rows]:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip())


# ---------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", default=None,
                        help="numbers of sessions streaming at once, one round each"
                             " (default 10,25,50,100; with --per-session over 1: 25)")
    parser.add_argument("--chunks", type=int, default=2_000,
                        help="reply length in chunks (default 2000)")
    parser.add_argument("--rate", type=float, default=50,
                        help="chunks per second per stream (default 50)")
    parser.add_argument("--timeout", type=float, default=None,
                        help="seconds to wait for every reply to finish (default: 4 times the"
                             " stream's time plus 60)")
    parser.add_argument("--switch", action="store_true",
                        help="half the sessions go to another chat of theirs mid-reply (a click"
                             " in the sidebar's history) and come back to it")
    parser.add_argument("--replicas", type=int, default=0, metavar="N",
                        help="N app processes in Supabase mode (one stack) behind nginx with"
                             " sticky sessions, one account per session (default: one process"
                             " in the local default, no nginx)")
    parser.add_argument("--per-session", type=int, default=1, metavar="K",
                        help="replies each session asks for at once: 2-4 picks that many models"
                             " in the chat page's Compare popover, each on a connection to its"
                             " own relay (default 1: one reply, no Compare)")
    parser.add_argument("--check-browser", action="store_true",
                        help="instead of the rounds: one Chromium page and one protocol"
                             " session streaming the same reply at the same time")
    parser.add_argument("--serve-relay", nargs=3, metavar=("ORIGIN", "PORT", "RATE"),
                        help=argparse.SUPPRESS)  # the relay process the bench starts
    args = parser.parse_args(argv)
    if args.sessions is None:
        args.sessions = "25" if args.per_session > 1 else "10,25,50,100"
    try:
        args.sessions = [int(n) for n in args.sessions.split(",")]
    except ValueError:
        parser.error("--sessions takes numbers separated by commas, e.g. 10,25,50,100")
    if min(args.sessions) < 1 or args.chunks < 10 or args.rate <= 0 or args.replicas < 0:
        parser.error("--sessions and --rate must be positive, --chunks at least 10")
    if args.check_browser and (args.switch or args.replicas):
        parser.error("--check-browser runs alone")
    if not 1 <= args.per_session <= 4:
        parser.error("--per-session takes 1 to 4 (Compare sends a message to 2-4 models)")
    if args.per_session > 1 and (args.switch or args.replicas or args.check_browser):
        parser.error("--per-session over 1 runs on one process, without --switch")
    if args.timeout is None:
        args.timeout = 4 * args.chunks / args.rate + 60
    return args


def describe_app() -> str:
    """Which app is measured: the checkout's revision and its Streamlit runner settings."""
    revision = subprocess.run(["git", "-C", str(REPO), "describe", "--always", "--dirty"],
                              capture_output=True, text=True).stdout.strip() or "unknown"
    config = REPO / ".streamlit" / "config.toml"  # read by `streamlit run` next to the script
    runner = tomllib.loads(config.read_text()).get("runner", {}) if config.exists() else {}
    return f"app: streamlit_app.py at {revision}; [runner] settings: {runner or 'defaults'}"


def describe_mode(args: argparse.Namespace) -> str:
    where = (f"{args.replicas} replicas in Supabase mode (one stack) behind nginx, sticky"
             " sessions, one account per session" if args.replicas
             else "one process in the local default")
    switching = "; half the sessions switch chats mid-reply and come back" if args.switch else ""
    compared = (f"; each session sends its message to {args.per_session} models at once"
                f" (Compare), each model on a connection to its own relay"
                if args.per_session > 1 else "")
    return f"mode: {where}{switching}{compared}"


def target_sessions(args: argparse.Namespace) -> int:
    if args.per_session > 1:
        return COMPARED_TARGET_SESSIONS
    return REPLICAS_TARGET_SESSIONS if args.replicas else TARGET_SESSIONS


def run_rounds(args: argparse.Namespace, work: Path, stack=None) -> list[RoundResult] | Check:
    """Every round of `args` (or the check against Chromium), each printed as it ends.
    `stack`: a running Supabase stand-in stack for --replicas (else one is started)."""
    processes, own_stack = Processes(work), None
    try:
        katan = start_katan(processes)
        names = [f"relay-{i + 1}" for i in range(args.per_session)]  # one per compared model
        relays = [start_session_relay(processes, katan, args.rate, name) for name in names]
        relay = relays[0]
        reply = probe_reply(katan, make_prompt(1, args.chunks))
        print(f"llm-katan echo, read raw: {reply.events} SSE events, {reply.content_chunks} with"
              f" text, of {sorted(reply.piece_sizes)} characters; tokens t00001 to"
              f" t{len(reply.token_events):05d}; streamed at {args.rate:g} chunks/s:"
              f" {reply.events / args.rate:.1f} s per reply", flush=True)
        print(describe_app(), flush=True)
        print(describe_mode(args), flush=True)
        pids = {**{name: processes.pid_of(name) for name in names},
                "llm-katan": processes.pid_of("llm-katan")}
        if args.check_browser:
            print("check: one Chromium page and one protocol session, same reply, same time",
                  flush=True)
            check = run_check(args, relay, reply, work)
            print_check(check)
            return check
        if args.replicas and stack is None:
            find_nginx()  # before the stack's 30 s
            stack = own_stack = start_stack()
        results = []
        for n in args.sessions:
            print(f"{n} sessions streaming at once:", flush=True)
            results.append(measure_round(n, args, relays, reply, work, pids, stack))
            print_round(results[-1], reply)
        return results
    finally:
        processes.stop_all()
        if own_stack is not None:
            from tests.supabase_stack.stack import stop_stack

            stop_stack(own_stack)


def run(args: argparse.Namespace, work: Path) -> None:
    started, load = time.monotonic(), os.getloadavg()[0]
    measured = run_rounds(args, work)
    rows = (check_rows(measured) if isinstance(measured, Check)
            else round_rows(measured, target_sessions(args)))
    print_table(rows)
    print(f"\n(bench took {time.monotonic() - started:.0f} s; load average {load:.1f} at the start,"
          f" {os.getloadavg()[0]:.1f} at the end, {os.cpu_count()} CPUs)")
    if load > (os.cpu_count() or 1):  # measured before the bench's own processes ran
        print("note: other processes kept the CPUs busy when the bench started: the delays are"
              " noisy (each round prints the whole machine's CPU next to the server's)")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve_relay:
        origin, port, rate = args.serve_relay
        serve_relay(origin, int(port), float(rate))
        return 0
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the servers on kill too
    with tempfile.TemporaryDirectory(prefix="switchboard-concurrency-") as work:
        try:
            run(args, Path(work))
        except BenchError as exc:
            print(f"bench could not run: {exc}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:  # every process it started is stopped by now
            print("bench interrupted", file=sys.stderr)
            return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
