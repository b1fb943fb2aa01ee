"""Concurrency benchmark: one `streamlit run` process, N sessions streaming a reply at once.

For each N of --sessions: a fresh app (local default, its own data folder, the OpenAI-compatible
provider saved to point at the server), one warm-up reply, then N sessions that load the chat
page and submit their message together. Each reply is llm-katan's echo of a prompt of numbered
tokens ("t00001 t00002 ..."), --chunks chunks long, sent at --rate chunks/s per stream by
bench/paced_relay.py's relay (one relay, each stream on its own schedule). The sessions are
driven by bench/st_client.py, which speaks Streamlit's own websocket protocol, not by browsers.

Per N: chunks lost (a session whose final text is not the whole reply, or which never finishes,
counts what is missing), p50/p95 delay from the relay sending a chunk to the session receiving
text that reaches it, the app process's CPU, and the client's own CPU. Target: 50 sessions with
0 chunks lost and p95 delay <= 1 s.

    .venv/bin/python bench/concurrency.py [--sessions 10,25,50,100] [--chunks 2000] [--rate 50]
    .venv/bin/python bench/concurrency.py --check-browser   # the client against one Chromium

Exit 0 once measured, even when a target is missed (that is a result); 2 when it could not run.
See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import math
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
import urllib.request
from bisect import bisect_left
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from websockets.exceptions import ConnectionClosed, WebSocketException

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench import paced_relay  # noqa: E402
from bench.paced_relay import PacedRelay, _Records  # noqa: E402  (the relay's own record list)
from bench.st_client import ReplyWatcher, Session  # noqa: E402
from bench.stream import (  # noqa: E402
    CHROMIUM, CHROMIUM_ARGS, CHUNK_CHARS, MODEL, BenchError, Processes, Server, _open_chat,
    save_profile, start_app, start_katan,
)
from tests.fixtures.common import free_port  # noqa: E402

TARGET_SESSIONS = 50
DELAY_TARGET = 1.0  # seconds, p95
BROWSER_MARGIN = 0.1  # seconds: the browser and the protocol client agree within this (p50, p95)
TOKEN = re.compile(r"t(\d{5})")  # no word boundary: a browser's text joins paragraphs
TOKEN_TAIL = 64  # characters at the end of an element's text that hold its highest token
SESSION_TAG = re.compile(r"s\d{4}")
TOKENS_PER_PARAGRAPH = 40  # the echo is Markdown in several blocks, as real replies are
RELAY_LATE_NOTE = 0.1  # seconds behind its schedule that the relay's pacing is worth a note
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


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


def _event_text(event: str) -> str | None:
    payload = event.removeprefix("data: ").strip()
    if payload == "[DONE]":
        return None
    choices = json.loads(payload).get("choices") or [{}]
    return (choices[0].get("delta") or {}).get("content")


def probe_reply(katan: Server, prompt: str) -> ReplyMap:
    """The echo of `prompt`, read raw from llm-katan (not paced), as the app's request asks it."""
    body = json.dumps({"model": MODEL, "messages": [{"role": "user", "content": prompt}],
                       "stream": True, "stream_options": {"include_usage": True}}).encode()
    request = urllib.request.Request(
        f"{katan.base_url}/chat/completions", data=body,
        headers={"Authorization": f"Bearer {katan.api_key}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        raw = response.read().decode()
    return map_tokens([_event_text(event) for event in raw.split("\n\n") if event.strip()])


def token_delays(updates: list[tuple[float, int]], first_event: float, rate: float,
                 token_events: list[int]) -> list[float]:
    """Per token received: when the session first held it minus when the relay sent its event.

    `updates`: (time, highest token so far), the token rising. Event i leaves the relay at
    first_event + i / rate (bench/paced_relay.py's schedule)."""
    delays, i = [], 0
    for k, event in enumerate(token_events, start=1):
        while i < len(updates) and updates[i][1] < k:
            i += 1
        if i == len(updates):
            break
        delays.append(updates[i][0] - (first_event + event / rate))
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
    """Adds the bench session's tag to each stream the relay records."""

    def __init__(self, records: _Records, tag: str | None) -> None:
        self.records, self.tag = records, tag

    def add(self, record: dict) -> None:
        self.records.add({**record, "session": self.tag})


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
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        kept, self.rfile = self.rfile, io.BytesIO(body)  # the relay reads the body itself
        self.records = _TaggedRecords(type(self).records, session_tag(body))
        try:
            super().do_POST()
        finally:
            self.rfile = kept


def serve_relay(origin: str, port: int, rate: float) -> None:
    paced_relay.serve(SessionRelay, origin, port, rate)


def start_session_relay(processes: Processes, upstream: Server, rate: float) -> Server:
    port = free_port()
    processes.start("session-relay", [
        sys.executable, str(Path(__file__).resolve()), "--serve-relay",
        upstream.base_url.removesuffix("/v1"), str(port), str(rate),
    ], f"http://127.0.0.1:{port}/_relay/streams")
    return Server(f"http://127.0.0.1:{port}/v1", upstream.api_key)


def relay_records(relay: Server, since: float) -> dict[str, dict]:
    """The relay's streams started after `since`, by session tag (the latest of each)."""
    url = relay.base_url.removesuffix("/v1") + "/_relay/streams"
    with urllib.request.urlopen(url, timeout=10) as response:
        records = json.load(response)
    return {r["session"]: r for r in records if r.get("session") and r["started"] >= since}


# ---------------------------------------------------------------- CPU from /proc


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def machine_cpu() -> float:
    """CPU seconds every process on the machine has used so far (all cores, busy time)."""
    ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return (sum(ticks) - ticks[3] - ticks[4]) / CLOCK_TICKS  # less idle and iowait


def child_pid(*words: str) -> int:
    """This process's child whose command line holds all `words` (each within an argument)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            argv = (stat.parent / "cmdline").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue  # a process that just ended
        if ppid == os.getpid() and all(any(w.encode() in a for a in argv) for w in words):
            return int(stat.parent.name)
    raise BenchError(f"no child process runs {' '.join(words)}")


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

    def _sample(self) -> dict[str, float]:
        sample = {name: process_cpu(pid) for name, pid in self.pids.items()}
        sample.update(client=time.process_time(), machine=machine_cpu(), wall=time.monotonic())
        return sample

    def cores(self, name: str) -> float:
        return self.used[name] / self.wall if self.wall else math.nan


# ---------------------------------------------------------------- sessions


@dataclass
class SessionRun:
    """One protocol session: its prompt, what it received and how it ended."""

    number: int
    prompt: str
    updates: list[tuple[float, int]] = field(default_factory=list)  # (time, highest token)
    watcher: ReplyWatcher | None = None
    session: Session | None = None
    reader: asyncio.Task | None = None
    final_tokens: list[int] | None = None  # None: the reply's run never finished
    alerts: list[str] = field(default_factory=list)
    submitted: float = 0.0  # wall time its message was sent

    @property
    def tag(self) -> str:
        return f"s{self.number:04d}"

    @property
    def highest(self) -> int:
        return self.updates[-1][1] if self.updates else 0

    def on_text(self, at: float, text: str) -> None:
        found = TOKEN.findall(text, max(0, len(text) - TOKEN_TAIL))
        if found and (top := max(int(k) for k in found)) > self.highest:
            self.updates.append((at, top))

    async def load(self, app_url: str) -> None:
        """Open the chat page in a new session (what a page load does)."""
        self.watcher = ReplyWatcher(on_text=self.on_text)
        self.session = await Session.open(app_url, self.watcher)
        self.reader = asyncio.create_task(self.session.read())
        await self.session.rerun()
        await asyncio.wait_for(self.session.finished.wait(), 60)
        if self.session.chat_input_id is None:
            raise BenchError("the chat page did not show a chat input")

    async def reply_ended(self) -> None:
        """Until the reply's run has finished, or the server closed the session."""
        finished = asyncio.create_task(self.session.finished.wait())
        await asyncio.wait([finished, self.reader], return_when=asyncio.FIRST_COMPLETED)
        finished.cancel()

    def finish(self) -> None:
        """Keep the final text's tokens if the reply's run ended successfully."""
        if self.session.finished.is_set():
            self.final_tokens = [int(k) for k in TOKEN.findall(self.watcher.reply_text())]
        self.alerts = list(self.watcher.alerts)

    async def close(self) -> None:
        await self.session.close()
        self.reader.cancel()


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


async def warm_up(app_url: str) -> None:
    """One short reply first: the first reply per process pays one-off imports (README)."""
    run = SessionRun(0, "Warm-up: the first reply after the app started.")
    await open_sessions(app_url, [run])
    await run.session.rerun(run.prompt)
    try:
        await asyncio.wait_for(run.session.finished.wait(), 60)
    except asyncio.TimeoutError as exc:
        raise BenchError("the warm-up reply never finished") from exc
    finally:
        await run.close()


async def stream_together(runs: list[SessionRun], timeout: float) -> None:
    """Submit every session's message at once; wait until each reply's run has finished."""
    for run in runs:
        run.submitted = time.time()
        with suppress(ConnectionClosed):  # closed by the server: counted as never finished
            await run.session.rerun(run.prompt)
    waits = [asyncio.create_task(run.reply_ended()) for run in runs]
    _, pending = await asyncio.wait(waits, timeout=timeout)
    for task in pending:
        task.cancel()
    for run in runs:
        run.finish()


# ---------------------------------------------------------------- one round: N sessions


@dataclass
class RoundResult:
    sessions: int
    chunks: int  # text chunks expected, all sessions together
    lost: int
    delays: list[float]  # per token received, every session
    session_p95: list[float]
    finished: int  # replies whose run ended successfully
    complete: int  # ... with the whole reply in their final text
    disconnected: int  # sessions the server closed
    unmatched: int  # sessions whose stream the relay did not record
    short_streams: int  # relay streams with fewer or more events than the raw probe
    relay_late: list[float]  # per stream: seconds its most late write was behind schedule
    relay_starts: list[float]  # per stream: wall time of its first event
    to_request: list[float]  # per session: from its submit to its request at the relay
    first_token: list[float]  # per session: the first token's delay
    last_token: list[float]  # per session that received the whole reply: the last token's
    alerts: list[str]
    cpu: CpuWindow

    @property
    def p50(self) -> float:
        return percentile(self.delays, 50)

    @property
    def p95(self) -> float:
        return percentile(self.delays, 95)

    @property
    def passed(self) -> bool:
        return self.lost == 0 and self.p95 <= DELAY_TARGET


def summarize(runs: list[SessionRun], records: dict[str, dict], reply: ReplyMap, rate: float,
              cpu: CpuWindow) -> RoundResult:
    delays, session_p95, late, starts, unmatched, short = [], [], [], [], 0, 0
    first, last, to_request = [], [], []
    for run in runs:
        record = records.get(run.tag)
        if record is None or record.get("first_event") is None:
            unmatched += 1
            continue
        short += record["events"] != reply.events
        own = token_delays(run.updates, record["first_event"], rate, reply.token_events)
        delays += own
        session_p95 += [percentile(own, 95)] if own else []
        first += own[:1]
        last += own[-1:] if len(own) == len(reply.token_events) else []
        late.append(record.get("late_max", record["ended"] - record["first_event"]
                               - (record["events"] - 1) / rate))  # older relays: at the end
        starts.append(record["first_event"])
        to_request.append(record["started"] - run.submitted)
    complete = [r for r in runs if r.final_tokens == list(range(1, len(reply.token_events) + 1))]
    return RoundResult(
        sessions=len(runs), chunks=len(runs) * reply.content_chunks,
        lost=sum(lost_chunks(reply, run.final_tokens, run.highest) for run in runs),
        delays=delays, session_p95=session_p95,
        finished=sum(run.final_tokens is not None for run in runs), complete=len(complete),
        disconnected=sum(run.reader.done() and run.final_tokens is None for run in runs),
        unmatched=unmatched, short_streams=short, relay_late=late, relay_starts=starts,
        to_request=to_request, first_token=first, last_token=last,
        alerts=sorted({alert for run in runs for alert in run.alerts}), cpu=cpu,
    )


async def stream_round(app_url: str, n: int, args, relay: Server, reply: ReplyMap,
                       pids: dict[str, int]) -> RoundResult:
    await warm_up(app_url)
    runs = [SessionRun(number, make_prompt(number, args.chunks)) for number in range(1, n + 1)]
    try:
        await open_sessions(app_url, runs)
        since = time.time()
        with CpuWindow(pids) as cpu:
            await stream_together(runs, args.timeout)
    finally:
        await asyncio.gather(*(run.close() for run in runs if run.session),
                             return_exceptions=True)
    return summarize(runs, relay_records(relay, since), reply, args.rate, cpu)


def start_fresh_app(work: Path, name: str, relay: Server) -> tuple[Processes, str, int]:
    """A new `streamlit run` on its own data folder; returns its processes, URL and pid."""
    (work / name).mkdir()
    processes = Processes(work / name)
    try:
        save_profile(work / name / "data", relay)
        app_url = start_app(processes, work / name / "data")
        return processes, app_url, child_pid("streamlit_app.py", str(urlsplit(app_url).port))
    except BaseException:
        processes.stop_all()
        raise


def measure_round(n: int, args, relay: Server, reply: ReplyMap, work: Path,
                  pids: dict[str, int]) -> RoundResult:
    processes, app_url, app_pid = start_fresh_app(work, f"app-{n}", relay)
    try:
        return asyncio.run(stream_round(app_url, n, args, relay, reply,
                                        {"server": app_pid, **pids}))
    finally:
        processes.stop_all()


def print_round(result: RoundResult, reply: ReplyMap) -> None:
    cpu, n = result.cpu, result.sessions
    print(f"  {result.finished}/{n} replies finished, {result.complete}/{n} complete,"
          f" {result.disconnected} sessions closed by the server;"
          f" chunks lost {result.lost:,} of {result.chunks:,}")
    if result.delays:
        print(f"  delay per token: p50 {result.p50:.3f} s, p95 {result.p95:.3f} s,"
              f" min {min(result.delays):.3f} s, max {max(result.delays):.3f} s,"
              f" worst session's p95 {max(result.session_p95):.3f} s"
              f" ({len(result.delays):,} tokens)")
        print(f"  first token of each reply: median {percentile(result.first_token, 50):.3f} s,"
              f" max {max(result.first_token):.3f} s; last token: median"
              f" {percentile(result.last_token, 50):.3f} s,"
              f" max {max(result.last_token, default=math.nan):.3f} s")
    print(f"  CPU over {cpu.wall:.1f} s: server {cpu.cores('server'):.2f} cores"
          f" ({cpu.used['server'] * 1e3 / result.chunks:.2f} ms per chunk);"
          f" client {cpu.cores('client'):.2f}; relay {cpu.cores('relay'):.2f};"
          f" llm-katan {cpu.cores('llm-katan'):.2f}; whole machine {cpu.cores('machine'):.2f}"
          f" of {os.cpu_count()} cores")
    if result.relay_late:
        spread = max(result.relay_starts) - min(result.relay_starts)
        print(f"  submit -> the app's request at the relay (not in the delays): median"
              f" {percentile(result.to_request, 50):.3f} s, max {max(result.to_request):.3f} s")
        print(f"  relay: {len(result.relay_late)} streams of {reply.events} events, first events"
              f" spread over {spread:.2f} s; each on its own schedule, at most"
              f" {max(result.relay_late) * 1e3:.0f} ms behind it")
    if result.relay_late and max(result.relay_late) > RELAY_LATE_NOTE:
        print("  note: the relay itself fell behind its schedule (a busy machine); delays are"
              " counted from the schedule, so they include that")
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
        await stream_together([client], args.timeout)
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
    processes, app_url, _ = start_fresh_app(work, "app-check", relay)
    try:
        return asyncio.run(check_browser(app_url, args, relay, reply))
    finally:
        processes.stop_all()


# ---------------------------------------------------------------- report


def _delays(values: list[float]) -> str:
    if not values:
        return "none received"
    return f"{percentile(values, 50):.3f} s / {percentile(values, 95):.3f} s"


def round_rows(results: list[RoundResult]) -> list[tuple]:
    rows = []
    for r in results:
        n = f"{r.sessions} sessions:"
        rows += [
            (f"{n} chunks lost", f"{r.lost:,} of {r.chunks:,}", "0",
             "PASS" if r.lost == 0 else "FAIL"),
            (f"{n} delay p50 / p95", _delays(r.delays), f"p95 <= {DELAY_TARGET:g} s",
             "PASS" if r.p95 <= DELAY_TARGET else "FAIL"),
            (f"{n} submit -> request, median / max",
             f"{percentile(r.to_request, 50):.2f} s / {max(r.to_request, default=math.nan):.2f} s",
             "(reported)", "-"),
            (f"{n} server CPU", f"{r.cpu.cores('server'):.2f} cores,"
             f" {r.cpu.used['server'] * 1e3 / r.chunks:.2f} ms/chunk", "(reported)", "-"),
            (f"{n} client CPU", f"{r.cpu.cores('client'):.2f} cores", "(reported)", "-"),
        ]
    best = max((r.sessions for r in results if r.passed), default=0)
    rows.append(("largest N meeting the target", str(best) if best else "none",
                 f">= {TARGET_SESSIONS} (0 lost, p95 <= {DELAY_TARGET:g} s)",
                 "PASS" if best >= TARGET_SESSIONS else "FAIL"))
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
    parser.add_argument("--sessions", default="10,25,50,100",
                        help="numbers of sessions streaming at once, one round each"
                             " (default 10,25,50,100)")
    parser.add_argument("--chunks", type=int, default=2_000,
                        help="reply length in chunks (default 2000)")
    parser.add_argument("--rate", type=float, default=50,
                        help="chunks per second per stream (default 50)")
    parser.add_argument("--timeout", type=float, default=None,
                        help="seconds to wait for every reply to finish (default: 4 times the"
                             " stream's time plus 60)")
    parser.add_argument("--check-browser", action="store_true",
                        help="instead of the rounds: one Chromium page and one protocol"
                             " session streaming the same reply at the same time")
    parser.add_argument("--serve-relay", nargs=3, metavar=("ORIGIN", "PORT", "RATE"),
                        help=argparse.SUPPRESS)  # the relay process the bench starts
    args = parser.parse_args(argv)
    try:
        args.sessions = [int(n) for n in args.sessions.split(",")]
    except ValueError:
        parser.error("--sessions takes numbers separated by commas, e.g. 10,25,50,100")
    if min(args.sessions) < 1 or args.chunks < 10 or args.rate <= 0:
        parser.error("--sessions and --rate must be positive, --chunks at least 10")
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


def run(args: argparse.Namespace, work: Path) -> None:
    started, load = time.monotonic(), os.getloadavg()[0]
    processes = Processes(work)
    try:
        katan = start_katan(processes)
        relay = start_session_relay(processes, katan, args.rate)
        reply = probe_reply(katan, make_prompt(1, args.chunks))
        print(f"llm-katan echo, read raw: {reply.events} SSE events, {reply.content_chunks} with"
              f" text, of {sorted(reply.piece_sizes)} characters; tokens t00001 to"
              f" t{len(reply.token_events):05d}; streamed at {args.rate:g} chunks/s:"
              f" {reply.events / args.rate:.1f} s per reply", flush=True)
        print(describe_app(), flush=True)
        pids = {"relay": child_pid("--serve-relay"), "llm-katan": child_pid("llm-katan")}
        if args.check_browser:
            print("check: one Chromium page and one protocol session, same reply, same time",
                  flush=True)
            check = run_check(args, relay, reply, work)
            print_check(check)
            rows = check_rows(check)
        else:
            results = []
            for n in args.sessions:
                print(f"{n} sessions streaming at once:", flush=True)
                results.append(measure_round(n, args, relay, reply, work, pids))
                print_round(results[-1], reply)
            rows = round_rows(results)
    finally:
        processes.stop_all()
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
