"""Streaming benchmark: the app's streaming path and a real browser, against one local server.

1. core.chat.call's path, exactly what the chat page runs (`coalesce(start_reply(...))`), against
   iterating the raw openai SDK stream: same server, same request, a reply of --chunks chunks,
   runs interleaved (app, raw, app, raw...), medians compared. Targets: client CPU per chunk
   app / raw <= 0.5, total time app / raw <= 1.0. Then the same paced at a model's pace:
   --streams replies at once (default 50, one thread each on both sides), each --pace chunks/s
   (default 50) through bench/paced_relay.py. Target: client CPU per chunk app / raw <= 0.25.
2. A real Chromium against the running app (`streamlit run streamlit_app.py`), three replies
   paced by bench/paced_relay.py: (a) 20,000 chunks at 2,000 chunks/s, (b) 50,000 chunks at
   3,000 chunks/s, (c) a 200 KB fenced code block at 3,000 chunks/s. Each reports how long
   after the server's last byte the last token shows on the page, the longest main-thread task
   (PerformanceObserver "longtask") from pressing Enter to the page idle after the final rerun,
   and whether the reply is complete. Targets: (a) <= 0.2 s, (b) <= 0.3 s, (c) <= 0.5 s; the
   longest task <= 200 ms; the reply complete. A fourth case, (d) 10,000 chunks of words
   under a 16 KB code block at 2,000 chunks/s, measures what the issue's three do not: a
   reply streaming under code already highlighted on the page (held to case a's targets).
   A fifth, (e) a 5 MB reply at 3,000 chunks/s of 28 characters (about a minute), is held to
   <= 1.0 s, the longest task <= 200 ms while it streams and <= 500 ms once the server has
   ended, the reply complete on screen (page by page) and stored whole.
   A sixth, (f), compares: one message to four models at once (picked by clicks in the chat
   page's Compare popover), each a connection of its own to its own paced relay, each reply
   10,000 chunks at 500 chunks/s; first the first of them alone, as a single reply, in the same
   run. Targets: each column's last token <= 0.3 s after its own server's end, the longest task
   <= 200 ms, each column's first token within 100 ms of the model alone, the app's CPU per
   chunk with four at once <= 1.3 times that alone, all four complete on screen and stored
   whole.

The server is llm-katan's echo backend (it streams the prompt back 4 characters a chunk, at
about 28,000 chunks/s: faster than any client, so part 1 measures the client). Part 2 puts
bench/paced_relay.py in front of it, since neither test server can pace below 1 ms a chunk.

    .venv/bin/python bench/stream.py [--case a|b|c|d|e|f] [--chunks N] [--runs N]
                                     [--streams N] [--pace R] [--paced-chunks N]
                                     [--skip-browser | --skip-paths] [--scale F]

Exit 0 once measured, even when a target is missed (that is a result); 2 when it could not run.
See bench/README.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import os
import random
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from string import Template

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import openai  # noqa: E402

from core.chat.call import Reply, coalesce, start_reply  # noqa: E402
from core.config import SETTING_NAMES, load_settings  # noqa: E402
from core.store.keybox import (  # noqa: E402
    EncryptedConnectionStore, EncryptedProfileStore, keybox_for,
)
from core.providers.connections import Connection  # noqa: E402
from core.providers.profile import Profile  # noqa: E402
from core.providers.kinds import OPENAI_COMPATIBLE, Target  # noqa: E402
from core.store.sqlite import (  # noqa: E402
    SQLiteChatStore, SQLiteConnectionStore, SQLiteProfileStore,
)
from tests.fixtures.common import free_port, stop  # noqa: E402  (the suite's own helpers)
from tests.e2e.browser import IDLE, STALE  # noqa: E402  (what "the app is idle" means there)

MODEL = "katan-echo"
CHUNK_CHARS = 4  # llm-katan's echo backend streams 4 characters per chunk
TIME_RATIO_TARGET = 1.0  # app / raw SDK, total time of the same reply
CPU_RATIO_TARGET = 0.5  # app / raw SDK, client CPU per chunk
PACED_CPU_RATIO_TARGET = 0.25  # the same, with many replies at once at a model's pace
LONG_TASK_TARGET_MS = 200  # the longest main-thread task a case may show
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage",
]
WORDS = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor ".split()


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class BenchError(Exception):
    """The bench could not run (a missing server, a page that never loaded): not a result."""


# ---------------------------------------------------------------- processes on loopback


def servers_python() -> Path:
    """The servers venv's python, found as tests/fixtures/llm_servers.py finds it."""
    cache = Path(os.environ.get("SWITCHBOARD_TEST_CACHE") or REPO / ".cache")
    python = Path(os.environ.get("SB_SERVERS_PYTHON") or cache / "servers-venv" / "bin" / "python")
    if not (python.parent / "llm-katan").exists():
        raise BenchError(
            f"llm-katan is not installed next to {python}. Run `bash tests/run_all.sh` once "
            "(or `source tests/setup/servers.sh` from the repository root), or set "
            "SB_SERVERS_PYTHON to a python that has llm-katan==0.22.0."
        )
    return python


class Processes:
    """Starts processes with their output in a log file; stops them all at the end."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self._procs: list[subprocess.Popen] = []
        self._names: dict[str, subprocess.Popen] = {}

    def start(self, name: str, argv: list[str], ready_url: str, headers: dict | None = None,
              env: dict | None = None, timeout: float = 30) -> None:
        log_path = self.log_dir / f"{name}.log"
        with open(log_path, "wb") as log:  # cwd: no developer's .env or secrets.toml gets read
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, env=env, cwd=self.log_dir)
        self._procs.append(proc)
        self._names[name] = proc
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                request = urllib.request.Request(ready_url, headers=headers or {})
                with urllib.request.urlopen(request, timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-20:])
        raise BenchError(f"{name} did not start within {timeout:.0f} s:\n{tail}")

    def stop_all(self) -> None:
        for proc in reversed(self._procs):
            stop(proc)

    def pid_of(self, name: str) -> int:
        """The process started as `name`."""
        return self._names[name].pid


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


@dataclass(frozen=True)
class Server:
    base_url: str  # ends in /v1
    api_key: str

    def target(self) -> Target:
        return Target(OPENAI_COMPATIBLE.id, OPENAI_COMPATIBLE.label, self.base_url,
                      self.api_key, MODEL)


def start_katan(processes: Processes) -> Server:
    python, port = servers_python(), free_port()
    key = f"sk-bench-{secrets.token_hex(8)}"
    processes.start("llm-katan", [
        str(python.parent / "llm-katan"), "--model", MODEL, "--backend", "echo",
        "--host", "127.0.0.1", "--port", str(port), "--validate-keys", "--api-keys",
        f"openai={key}", "--stats-file", str(processes.log_dir / "katan-stats.json"),
        "--disable-dashboard", "--log-level", "warning",
    ], f"http://127.0.0.1:{port}/v1/models", {"Authorization": f"Bearer {key}"})
    return Server(f"http://127.0.0.1:{port}/v1", key)


def start_relay(processes: Processes, upstream: Server, rate: float,
                name: str = "paced-relay") -> Server:
    port = free_port()
    origin = upstream.base_url.removesuffix("/v1")
    processes.start(name, [
        sys.executable, str(REPO / "bench" / "paced_relay.py"), origin, str(port), str(rate),
    ], f"http://127.0.0.1:{port}/_relay/streams")
    return Server(f"http://127.0.0.1:{port}/v1", upstream.api_key)


def relayed_streams(relay: Server) -> list[dict]:
    url = relay.base_url.removesuffix("/v1") + "/_relay/streams"
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


def set_relay_rate(relay: Server, rate: float, chunk_chars: int = 0) -> None:
    """Pace the streams that start from now on at `rate` events per second, re-chunked into
    `chunk_chars` characters a chunk (0: the upstream's own chunks)."""
    origin = relay.base_url.removesuffix("/v1")
    for path, value in (("/_relay/rate", rate), ("/_relay/chunking", chunk_chars)):
        request = urllib.request.Request(origin + path, data=json.dumps(value).encode(),
                                         method="POST")
        with urllib.request.urlopen(request, timeout=5):
            pass


# ---------------------------------------------------------------- part 1: app path vs raw SDK


def make_prompt(chunks: int, marker: str) -> str:
    """Plain words ending in `marker`, chunks * 4 characters: echoed as at least `chunks` chunks."""
    size = chunks * CHUNK_CHARS - len(marker) - 1
    words = " ".join(WORDS[i % len(WORDS)] for i in range(size // 5 + len(WORDS)))
    return words[:size].rstrip() + " " + marker


@dataclass(frozen=True)
class Timing:
    total: float  # seconds from the call to the end of the stream
    first_token: float  # seconds to the first text
    cpu: float  # this process's CPU seconds meanwhile: less sensitive to a busy machine
    chars: int


def app_reply(settings, target: Target, messages: list[dict], on_text: Callable[[str], None]
              ) -> None:
    """The app's path for one reply, as the chat page runs it: start_reply (client, guarded
    HTTP, stream_reply), coalesced; each update goes to `on_text`. BenchError unless the reply
    completes. Both modes of part 1 measure the app through this function alone."""
    reply = Reply()
    for piece in coalesce(start_reply(settings, target, messages, reply)):
        on_text(piece)
    if reply.status != "complete":
        raise BenchError(f"the app's stream ended {reply.status!r}: {reply.error}")


def raw_reply(server: Server, messages: list[dict], on_text: Callable[[str], None]) -> None:
    """The same request through the bare SDK, reading chunk.choices[0].delta.content."""
    client = openai.OpenAI(base_url=server.base_url, api_key=server.api_key, max_retries=0)
    stream = client.chat.completions.create(
        model=MODEL, messages=messages, stream=True, stream_options={"include_usage": True}
    )
    for chunk in stream:
        if chunk.choices and (text := chunk.choices[0].delta.content):
            on_text(text)


ReplyPath = Callable[[Callable[[str], None]], None]  # one reply, its text given to the callback


class _Received:
    """Counts a reply's characters and stamps its first."""

    def __init__(self, started: float) -> None:
        self.started, self.first, self.chars = started, None, 0

    def __call__(self, text: str) -> None:
        if self.first is None:
            self.first = time.perf_counter() - self.started
        self.chars += len(text)


def timed(path: ReplyPath) -> Timing:
    """One reply on its own: its wall time, first token and this process's CPU time."""
    started, cpu = time.perf_counter(), time.process_time()
    received = _Received(started)
    path(received)
    total = time.perf_counter() - started
    return Timing(total, received.first or total, time.process_time() - cpu, received.chars)


def timed_together(path: ReplyPath, streams: int) -> Timing:
    """`streams` replies at once, one thread each: wall time from the common start to the last
    end, the median first token, the process's CPU time (all threads) and every character."""
    ready = threading.Barrier(streams + 1)
    received: list[_Received] = []
    failures: list[BaseException] = []

    def one() -> None:
        ready.wait()  # the main thread sets `started` before it lets every thread go
        mine = _Received(started)
        received.append(mine)
        try:
            path(mine)
        except BaseException as exc:  # noqa: BLE001 - reported by the caller, in its thread
            failures.append(exc)

    threads = [threading.Thread(target=one, daemon=True) for _ in range(streams)]
    for thread in threads:
        thread.start()
    gc.collect()
    started, cpu = time.perf_counter(), time.process_time()
    ready.wait()
    for thread in threads:
        thread.join()
    total = time.perf_counter() - started
    spent = time.process_time() - cpu
    if failures:
        raise BenchError(f"{len(failures)} of {streams} streams failed: {failures[0]}")
    first = statistics.median(r.first if r.first is not None else total for r in received)
    return Timing(total, first, spent, sum(r.chars for r in received))


def _chunks(chars: int) -> int:
    """The reply's content chunks (4 characters each; the role chunk not counted)."""
    return -(-chars // CHUNK_CHARS)


def _run_line(timing: Timing) -> str:
    per_chunk = timing.cpu / _chunks(timing.chars) * 1e6
    return (f"{timing.total:.3f} s (first token {timing.first_token * 1e3:.1f} ms,"
            f" CPU {timing.cpu:.3f} s = {per_chunk:.0f} us/chunk)")


@dataclass(frozen=True)
class PathComparison:
    app: list[Timing]
    raw: list[Timing]
    chunks: int  # content chunks of one run (every stream of a paced run)

    def median(self, side: str, name: str) -> float:
        return statistics.median(getattr(t, name) for t in getattr(self, side))

    def cpu_per_chunk(self, side: str) -> float:
        """Median client CPU per chunk, in microseconds."""
        return self.median(side, "cpu") / self.chunks * 1e6


@dataclass(frozen=True)
class Paced:
    """Part 1's paced mode: `streams` replies at once, each at `rate` chunks/s."""

    streams: int = 50
    rate: float = 50.0
    chunks: int = 250  # per stream


def _alternate(app: Callable[[], Timing], raw: Callable[[], Timing], runs: int
               ) -> tuple[list[Timing], list[Timing]]:
    """`runs` of each, alternated: app, raw, app, raw..."""
    apps, raws = [], []
    for run in range(1, runs + 1):
        for side, measure in ((apps, app), (raws, raw)):
            gc.collect()
            side.append(measure())
        print(f"  run {run}:  app {_run_line(apps[-1])}   raw {_run_line(raws[-1])}"
              f"   app/raw time {apps[-1].total / raws[-1].total:.3f},"
              f" CPU {apps[-1].cpu / raws[-1].cpu:.3f}", flush=True)
    if {t.chars for t in apps + raws} != {raws[0].chars}:
        raise BenchError("the app and the raw SDK did not receive the same text")
    return apps, raws


def _settings(data_dir: Path):
    return load_settings(secrets={}, environ={"SWITCHBOARD_DATA_DIR": str(data_dir)},
                         dotenv_path=None)  # the local default, as the page has it


def _message(chunks: int) -> list[dict]:
    return [{"role": "user", "content": make_prompt(chunks, "END" + secrets.token_hex(4))}]


def compare_paths(server: Server, chunks: int, runs: int, data_dir: Path) -> PathComparison:
    """Unpaced: one reply as fast as the server sends it, app then raw, `runs` times."""
    settings, messages, target = _settings(data_dir), _message(chunks), server.target()
    app = lambda: timed(lambda out: app_reply(settings, target, messages, out))  # noqa: E731
    raw = lambda: timed(lambda out: raw_reply(server, messages, out))  # noqa: E731
    app(), raw()  # warm-up (imports, first connection): not counted
    apps, raws = _alternate(app, raw, runs)
    return PathComparison(apps, raws, _chunks(raws[0].chars))


def compare_paced(relay: Server, paced: Paced, runs: int, data_dir: Path) -> PathComparison:
    """Paced: `paced.streams` replies at once through the relay at a model's pace, one thread
    per stream on both sides (the raw side: each thread iterates its own SDK stream)."""
    set_relay_rate(relay, paced.rate)
    settings, target = _settings(data_dir), relay.target()

    def together(messages: list[dict], side: str) -> Timing:
        if side == "app":
            return timed_together(lambda out: app_reply(settings, target, messages, out),
                                  paced.streams)
        return timed_together(lambda out: raw_reply(relay, messages, out), paced.streams)

    warm_up, messages = _message(10), _message(paced.chunks)
    together(warm_up, "app"), together(warm_up, "raw")  # every stream's first connection
    apps, raws = _alternate(lambda: together(messages, "app"), lambda: together(messages, "raw"),
                            runs)
    return PathComparison(apps, raws, _chunks(raws[0].chars))

# ---------------------------------------------------------------- part 2: a real browser


def save_profile(data_dir: Path, server: Server, model: str = MODEL) -> None:
    """Point the app's compatible provider at `server`, as the settings page would."""
    settings = load_settings(secrets={}, environ={"SWITCHBOARD_DATA_DIR": str(data_dir)},
                             dotenv_path=None)
    store = EncryptedProfileStore(SQLiteProfileStore(settings.data_dir), keybox_for(settings))
    store.save(Profile(openai_compatible_base_url=server.base_url,
                       openai_compatible_api_key=server.api_key,
                       openai_compatible_model_name=model))


def relay_name(column: int) -> str:
    """The connection to the column's own relay (column from 0), as the settings name it."""
    return f"Relay {column + 1}"


def save_connections(data_dir: Path, servers: list[Server]) -> list[str]:
    """A connection of the user's own per server ("Relay 1", "Relay 2"...), offering MODEL, as
    the settings page saves one; returns their models' labels as the model selector shows them."""
    settings = load_settings(secrets={}, environ={"SWITCHBOARD_DATA_DIR": str(data_dir)},
                             dotenv_path=None)
    store = EncryptedConnectionStore(SQLiteConnectionStore(settings.data_dir),
                                     keybox_for(settings))
    saved = {connection.name for connection in store.list()}  # by an earlier round
    for i, server in enumerate(servers):
        if relay_name(i) not in saved:
            store.add(Connection(name=relay_name(i), base_url=server.base_url,
                                 api_key=server.api_key, models=(MODEL,)))
    return [f"{MODEL} · {relay_name(i)}" for i in range(len(servers))]


def start_app(processes: Processes, data_dir: Path) -> str:
    """`streamlit run` in the local default, on its own data folder; returns the page URL.

    Its settings come only from here: none from the caller's environment, a .env or secrets.
    """
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in SETTING_NAMES}
    env["SWITCHBOARD_DATA_DIR"] = str(data_dir)
    env["SWITCHBOARD_CHAT_TITLES"] = "off"  # the relays see only the replies measured
    processes.start("streamlit", app_command(processes.log_dir, port),
                    f"http://127.0.0.1:{port}/_stcore/health", env=env, timeout=60)
    return f"http://127.0.0.1:{port}/"


def app_command(folder: Path, port: int) -> list[str]:
    """`streamlit run` of the app on 127.0.0.1:`port`, reading no secrets file (an empty one
    in `folder`, its working folder)."""
    no_secrets = folder / "no-secrets.toml"
    no_secrets.write_text("")
    return [
        sys.executable, "-m", "streamlit", "run", str(REPO / "streamlit_app.py"),
        "--secrets.files", str(no_secrets),
        "--server.headless", "true", "--server.port", str(port),
        "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
        "--server.fileWatcherType", "none",  # others' edits must not rerun the page mid-bench
    ]


# ---------------------------------------------------------------- part 2: the replies streamed


@dataclass(frozen=True)
class Prompt:
    text: str  # what is put in the chat input; the echo sends it back as the reply
    expected: tuple[str, ...]  # pieces of text the finished reply must show


def words_prompt(chunks: int, marker: str) -> Prompt:
    text = make_prompt(chunks, marker)
    return Prompt(text, (text,))


# Python that looks like a real module: classes, functions, comments, strings, f-strings.
_CODE_UNITS = [Template(unit) for unit in (
    '''@dataclass(frozen=True)
class ${Name}:
    """One ${noun} as the ${other} service sends it."""

    id: str
    ${field}: int = ${n}
    label: str = "${noun}-${i}"

    def describe(self) -> str:
        return f"{self.label} ({self.${field}} of {self.id})"

''',
    '''def total_${noun}_${field}(items: list[dict], limit: int = ${n}) -> int:
    """Sum of the ${field} of the first `limit` ${noun} records, skipping empty ones."""
    total = 0
    for index, item in enumerate(items):
        if index >= limit:
            break
        value = item.get("${field}")
        if value is None:
            continue  # an empty record counts as zero
        total += int(value)
    return total

''',
    '''class ${Name}Cache:
    """Keeps the ${n} most recent ${noun}s in memory; the oldest goes first."""

    def __init__(self, size: int = ${n}) -> None:
        self.size = size
        self._items: dict[str, ${Name}] = {}

    def put(self, key: str, value: ${Name}) -> None:
        self._items.pop(key, None)
        self._items[key] = value
        while len(self._items) > self.size:
            del self._items[next(iter(self._items))]

    def get(self, key: str, default: ${Name} | None = None) -> ${Name} | None:
        try:
            value = self._items.pop(key)
        except KeyError:
            return default
        self._items[key] = value  # read again: now the most recent
        return value

''',
    '''async def fetch_${noun}_${i}(client, url: str, retries: int = ${small}) -> bytes:
    """GET `url` from the ${other} service, retrying on a timeout; other errors propagate."""
    for attempt in range(retries + 1):
        try:
            response = await client.get(url, timeout=${n} / 100)
            response.raise_for_status()
            return response.content
        except TimeoutError:
            if attempt == retries:
                raise
            await asyncio.sleep(0.1 * 2**attempt)
    return b""

''',
)]
_NOUNS = ("order", "invoice", "ticket", "sensor", "reading", "upload", "session", "report",
          "shipment", "account", "payment", "batch", "message", "device", "region", "quota")
_FIELDS = ("amount", "count", "size", "weight", "score", "delay_ms", "retries", "level")
_CODE_HEAD = '''"""Generated for the streaming bench: ordinary Python, nothing run."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

'''


def python_module(size: int, seed: int = 12) -> str:
    """At least `size` characters of plausible Python (the same text for the same arguments)."""
    pick = random.Random(seed)
    parts, length, index = [_CODE_HEAD], len(_CODE_HEAD), 0
    while length < size:
        noun, other = pick.sample(_NOUNS, 2)
        index += 1
        unit = _CODE_UNITS[index % len(_CODE_UNITS)].substitute(
            Name=f"{noun.capitalize()}{index}", noun=f"{noun}{index}", other=other,
            field=pick.choice(_FIELDS), n=pick.randint(2, 5000), small=pick.randint(1, 5),
            i=index) + "\n"  # two blank lines between top-level definitions
        parts.append(unit)
        length += len(unit)
    return "".join(parts)


def fenced_code(size: int) -> str:
    """At least `size` characters of Python without its trailing blank lines (they would
    leave the fence), so the count holds inside the fence too."""
    module = python_module(size)
    while len(module.rstrip("\n")) < size:  # one more definition
        module = python_module(len(module) + 1)
    return module.rstrip("\n")


def code_prompt(code_chars: int, marker: str) -> Prompt:
    """A message holding one fenced Python block of `code_chars`+ characters, then `marker`."""
    code = fenced_code(code_chars)
    text = f"Here is the module, please review it:\n\n```python\n{code}\n```\n\n{marker}"
    return Prompt(text, (code, marker))


def after_code_prompt(code_chars: int, chunks: int, marker: str) -> Prompt:
    """A fenced Python block of `code_chars`+ characters, then `chunks` chunks of words: the
    reply goes on under code that is already highlighted on the page (its own, and the
    message's above it), as a code review does."""
    code = fenced_code(code_chars)
    text = f"Here is the module:\n\n```python\n{code}\n```\n\n{make_prompt(chunks, marker)}"
    return Prompt(text, (code, marker))


@dataclass(frozen=True)
class Case:
    key: str
    title: str
    rate: float  # chunks per second the relay sends
    target: float  # seconds: last token visible at most this long after the server's end
    prompt: Callable[[str, float], Prompt]  # (marker, scale) -> what to send
    chunk_chars: int = 0  # > 0: the relay re-chunks the reply into chunks of this many characters
    end_task_target: float | None = None  # ms: split the long-task window at the server's end,
    # the longest task after it held to this (before it: LONG_TASK_TARGET_MS); None: one window
    stored: bool = False  # also judge the reply as stored: as long as what the server sent
    compared: int = 0  # > 0: one message to this many models at once (Compare), each model
    # on a connection to its own relay; measured against one of them alone, first

    def stream_seconds(self, prompt_chars: int) -> float:
        """About how long the relay takes to send the echo of a `prompt_chars` message."""
        return prompt_chars / (self.chunk_chars or CHUNK_CHARS) / self.rate


CASES = {
    "a": Case("a", "20,000 chunks at 2,000 chunks/s", 2_000, 0.2,
              lambda marker, scale: words_prompt(round(20_000 * scale), marker)),
    "b": Case("b", "50,000 chunks at 3,000 chunks/s", 3_000, 0.3,
              lambda marker, scale: words_prompt(round(50_000 * scale), marker)),
    "c": Case("c", "a 200 KB fenced code block at 3,000 chunks/s", 3_000, 0.5,
              lambda marker, scale: code_prompt(round(200 * 1024 * scale), marker)),
    "d": Case("d", "10,000 chunks of words under a 16 KB code block, at 2,000 chunks/s", 2_000,
              0.2, lambda marker, scale: after_code_prompt(round(16 * 1024 * scale),
                                                           round(10_000 * scale), marker)),
    "e": Case("e", "a 5 MB reply at 3,000 chunks/s of 28 characters (about 60 s)", 3_000, 1.0,
              lambda marker, scale: words_prompt(round(5_000_000 / CHUNK_CHARS * scale), marker),
              chunk_chars=28, end_task_target=500, stored=True),
    "f": Case("f", "four replies at once (Compare), each 10,000 chunks at 500 chunks/s from its"
              " own server", 500, 0.3,
              lambda marker, scale: words_prompt(round(10_000 * scale), marker),
              chunk_chars=CHUNK_CHARS, stored=True, compared=4),  # re-chunked: `chars` known
}
FIRST_TOKEN_MARGIN = 0.1  # s: a compared reply's first token may show this much later than alone
FIRST_ROUNDS = 4  # short rounds (alone, then at once) after case f, for the first-token median
FIRST_ROUND_SCALE = 0.03  # of case f's reply: 300 chunks, the same first token, 0.6 s each
COMPARED_CPU_RATIO_TARGET = 1.3  # the app's CPU per chunk, four at once / one reply alone


ECHO_START = "[ech"  # the echo's first chunk ("[echo] model=..."): the reply's first token

# Installed in the page before the prompt is sent. Wall-clock times are Date.now() (ms), the
# same clock as the relay's time.time(); the *Perf times are performance.now() (ms), the clock
# of the long-task entries. Observing the whole body: the reply may be several elements while
# it streams and one after the final rerun. The user's message counts as drawn once its start
# (`said`) shows: a long one is shown a page at a time, the marker on its last page.
WATCH_JS = """
([marker, start, said]) => {
  const seen = window.__bench = {submitted: null, submittedPerf: null, messagePerf: null,
    firstVisible: null, firstPerf: null, markerInDom: null, lastVisible: null, lastPerf: null,
    mutationPerf: performance.now(), tasks: []};
  new PerformanceObserver((list) => {
    for (const task of list.getEntries()) seen.tasks.push([task.startTime, task.duration]);
  }).observe({type: "longtask", buffered: true});
  document.addEventListener("keydown", (event) => {
    if (event.key !== "Enter" || seen.submitted !== null) return;
    seen.submitted = Date.now();
    seen.submittedPerf = performance.now();
  }, true);
  const lastContent = (avatar) => {
    const messages = [...document.querySelectorAll('[data-testid="stChatMessage"]')].filter(
      (m) => m.querySelector(`[data-testid="${avatar}"]`));
    return messages.length
      && messages[messages.length - 1].querySelector('[data-testid="stChatMessageContent"]');
  };
  const shows = (avatar, text) => {
    const content = lastContent(avatar);
    return !!content && content.textContent.includes(text);
  };
  new MutationObserver(() => {
    seen.mutationPerf = performance.now();
    if (seen.submitted === null || seen.markerInDom !== null) return;
    if (seen.messagePerf === null) {  // the user's own message, drawn by the sending rerun
      if (shows("stChatMessageAvatarUser", said)) seen.messagePerf = performance.now();
      return;
    }
    if (seen.firstVisible === null && shows("stChatMessageAvatarAssistant", start)) {
      seen.firstVisible = Date.now();
      seen.firstPerf = performance.now();
    }
    if (seen.firstVisible === null || !shows("stChatMessageAvatarAssistant", marker)) return;
    seen.markerInDom = Date.now();
    // Visible = the frame after this change is painted: a task queued from the next frame.
    requestAnimationFrame(() => setTimeout(() => {
      seen.lastVisible = Date.now();
      seen.lastPerf = performance.now();
    }, 0));
  }).observe(document.body, {childList: true, subtree: true, characterData: true});
}
"""

# After the run: the last reply's footer (the caption naming the model) and any error; null
# until the footer shows.
FINAL_JS = """
(model) => {
  const replies = [...document.querySelectorAll('[data-testid="stChatMessage"]')].filter(
    (m) => m.querySelector('[data-testid="stChatMessageAvatarAssistant"]'));
  const last = replies[replies.length - 1];
  const footer = last && [...last.querySelectorAll('[data-testid="stCaptionContainer"]')].find(
    (caption) => caption.textContent.includes(model));
  if (!footer) return null;
  const alert = last.querySelector('[data-testid="stAlert"]');
  return {footer: footer.textContent, error: alert ? alert.textContent : null};
}
"""

# The text the last reply shows (its Markdown, code and plain text, in order, not its
# captions, buttons, page picker or Copy popover), and whether its page picker has a next page.
SHOWN_JS = """
() => {
  const replies = [...document.querySelectorAll('[data-testid="stChatMessage"]')].filter(
    (m) => m.querySelector('[data-testid="stChatMessageAvatarAssistant"]'));
  const content = replies[replies.length - 1].querySelector(
    '[data-testid="stChatMessageContent"]');
  const kinds = '[data-testid="stMarkdownContainer"], [data-testid="stCode"],'
    + ' [data-testid="stText"]';
  const left = '[data-testid="stCaptionContainer"], button, [data-testid="stPopoverBody"],'
    + ' [data-testid="stPagination"], [data-testid="stExpander"]';
  const parts = [...content.querySelectorAll(kinds)].filter((part) =>
    !part.closest(left) && !part.parentElement.closest(kinds));
  const next = content.querySelector('[data-testid="stPaginationNext"]');
  return {text: parts.map((part) => part.textContent).join("\\n"),
          next: !!next && !next.disabled};
}
"""

# Idle: no script running, nothing stale, and no change to the page for QUIET_MS.
QUIET_MS = 1000
IDLE_JS = f"""
() => !!document.querySelector('{IDLE}') && !document.querySelector('{STALE}')
      && performance.now() - window.__bench.mutationPerf > {QUIET_MS}
"""


@dataclass(frozen=True)
class LongTasks:
    """Main-thread tasks over 50 ms in a window, as (start, duration) in milliseconds."""

    tasks: tuple[tuple[float, float], ...]

    @classmethod
    def between(cls, tasks, start: float, end: float) -> "LongTasks":
        """The tasks that overlap [start, end] (a task running at Enter counts)."""
        return cls(tuple(sorted((s, d) for s, d in tasks if s + d > start and s < end)))

    @property
    def longest(self) -> float:
        return max((d for _, d in self.tasks), default=0.0)

    @property
    def blocked(self) -> float:
        return sum(d for _, d in self.tasks)

    def phase(self, start: float, end: float) -> "LongTasks":
        """The tasks that started in [start, end)."""
        return LongTasks(tuple((s, d) for s, d in self.tasks if start <= s < end))

    def describe(self, origin: float) -> str:
        """Count, longest (and when it started, seconds after `origin`), total."""
        if not self.tasks:
            return "none"
        start = max(self.tasks, key=lambda task: task[1])[0]
        return (f"{len(self.tasks)}, longest {self.longest:.0f} ms"
                f" (at {(start - origin) / 1000:+.2f} s), {self.blocked:.0f} ms in all")


@dataclass(frozen=True)
class CaseRun:
    case: Case
    prompt_chars: int  # the message's length (the echo sends it back after its own header)
    input_kept: int  # characters the chat input held once the message was put in it
    record: dict | None  # the relay's record of the app's request; None: it never came
    seen: dict  # what the page recorded (WATCH_JS)
    final: dict | None  # FINAL_JS once the footer showed, with what the reply showed (all
    # its pages): `missing`, the first expected piece it lacks (-1: none), `length`, `pages`;
    # None: the footer never showed
    idle_perf: float | None  # performance.now() when the page was found idle; None: never
    stored_chars: int | None = None  # the stored reply's characters (None: nothing stored)
    app_cpu: float | None = None  # the app process's CPU seconds from Enter to idle, if asked

    def after_end(self, wall_ms: float | None) -> float | None:
        """Seconds from the server's last byte to a Date.now() time of the page (wall clocks)."""
        if wall_ms is None or self.record is None:
            return None
        return wall_ms / 1000 - self.record["ended"]

    @property
    def last_after_end(self) -> float | None:
        """Seconds from the server's last byte to the last token visible on the page."""
        lag = self.after_end(self.seen["lastVisible"])
        return None if lag is None else round(lag, 3)  # Date.now() counts whole milliseconds

    @property
    def tasks(self) -> LongTasks:
        end = self.idle_perf if self.idle_perf is not None else float("inf")
        return LongTasks.between(self.seen["tasks"], self.seen["submittedPerf"], end)

    @property
    def end_perf(self) -> float | None:
        """The server's last byte on the page's performance.now() clock: the relay's wall time
        moved by the page's one reading of both clocks, at Enter."""
        if self.record is None:
            return None
        return self.seen["submittedPerf"] + self.record["ended"] * 1000 - self.seen["submitted"]

    @property
    def stored_whole(self) -> bool:
        sent = (self.record or {}).get("chars")
        return sent is not None and self.stored_chars == sent

    @property
    def complete(self) -> bool:
        final = self.final
        return bool(final and final["missing"] < 0 and not final["error"])

    def verdicts(self) -> list[tuple[str, str, str, bool]]:
        """(figure, measured, target, passed) for the table."""
        key, lag = self.case.key, self.last_after_end
        shown = "never" if lag is None else f"{lag:+.3f} s"
        rows = [(f"2{key} last token visible after the server's end", shown,
                 f"<= {self.case.target} s", lag is not None and lag <= self.case.target)]
        rows += self._task_rows()
        rows.append((f"2{key} reply complete", "yes" if self.complete else "no", "complete",
                     self.complete))
        if self.case.stored:
            sent = (self.record or {}).get("chars")
            stored = "nothing" if self.stored_chars is None else f"{self.stored_chars:,}"
            rows.append((f"2{key} reply stored whole", f"{stored} of"
                         f" {'?' if sent is None else f'{sent:,}'} characters",
                         "all", self.stored_whole))
        return rows

    def _task_rows(self) -> list[tuple[str, str, str, bool]]:
        """The longest task from Enter to idle; or, for a case with an end target, the longest
        while the server streams and the longest after its end (a task counts where it starts)."""
        key, tasks, idle = self.case.key, self.tasks, self.idle_perf is not None
        if self.case.end_task_target is None:
            return [(f"2{key} longest main-thread task", _tasks_figure(tasks),
                     f"<= {LONG_TASK_TARGET_MS} ms", idle and tasks.longest <= LONG_TASK_TARGET_MS)]
        end = self.end_perf
        if end is None:
            return [(f"2{key} longest main-thread task", "the server never answered",
                     f"<= {LONG_TASK_TARGET_MS} ms", False)]
        streaming, ending = tasks.phase(float("-inf"), end), tasks.phase(end, float("inf"))
        target = self.case.end_task_target
        return [(f"2{key} longest main-thread task while streaming", _tasks_figure(streaming),
                 f"<= {LONG_TASK_TARGET_MS} ms", idle and streaming.longest <= LONG_TASK_TARGET_MS),
                (f"2{key} longest main-thread task after the server's end",
                 _tasks_figure(ending), f"<= {target:.0f} ms", idle and ending.longest <= target)]


def _tasks_figure(tasks: LongTasks) -> str:
    return f"{tasks.longest:.0f} ms ({len(tasks.tasks)} over 50 ms)"


def _open_chat(page, app_url: str, model: str = MODEL):
    """Load the chat page (a new Streamlit session); returns its chat input."""
    page.goto(app_url)
    box = page.locator('[data-testid="stChatInputTextArea"]')
    try:
        box.wait_for(timeout=30_000)
    except Exception as exc:
        raise BenchError(f"the chat page did not show a chat input: {exc}") from exc
    label = f"{model} · {OPENAI_COMPATIBLE.label}"
    selector = page.locator('.st-key-chat-model input').first  # not the sidebar's Show
    selector.wait_for(timeout=10_000)
    if label != (shown := selector.input_value()):
        raise BenchError(f"the chat page's model selector shows {shown!r}, not {label!r}")
    return box


def warm_up(page, app_url: str, relay: Server) -> float:
    """A short first reply; returns its submit-to-request time (the app's cold start)."""
    box = _open_chat(page, app_url)
    known = len(relayed_streams(relay))
    text = "Warm-up: the first reply after the app started."
    box.fill(text)
    pressed = time.time()
    box.press("Enter")
    deadline = time.monotonic() + 60
    while len(streams := relayed_streams(relay)) == known:
        if time.monotonic() > deadline:
            raise BenchError("the warm-up message never reached the server")
        time.sleep(0.05)
    try:
        page.wait_for_function(FINAL_JS, arg=MODEL, timeout=30_000, polling=100)
    except Exception as exc:
        raise BenchError(f"the warm-up reply never finished on the page: {exc}") from exc
    page.close()
    return streams[known]["started"] - pressed


# The textarea's own value setter, then the `input` event React listens to (what `fill` ends
# with). Playwright's `fill` inserts text as typed-in editing: 246 s for a 200 KB text of 6,000
# lines in a bare <textarea> here (one line is fast), so multi-line prompts are set directly.
SET_VALUE_JS = """
(box, text) => {
  Object.getOwnPropertyDescriptor(HTMLTextAreaElement.prototype, "value").set.call(box, text);
  box.dispatchEvent(new Event("input", {bubbles: true}));
}
"""


def give_prompt(box, text: str) -> int:
    """Put `text` in the chat input in one go (not key by key); returns what the input kept."""
    if "\n" in text or len(text) > 100_000:  # `fill` of 5 MB on one line: minutes too
        box.evaluate(SET_VALUE_JS, text)
    else:
        box.fill(text)
    return box.evaluate("(box) => box.value.length")


SAID = 60  # the message's first characters: what shows that the sending rerun drew it


def run_case(browser, app_url: str, relay: Server, case: Case, scale: float,
             data_dir: Path, pick: str | None = None, app_pid: int | None = None) -> CaseRun:
    """One reply in a fresh session (a new page), watched from Enter to the page idle.
    `pick`: the model to pick in the selector first (else the page's default); `app_pid`: the
    app's process, whose CPU from Enter to idle is measured."""
    marker = "END" + secrets.token_hex(6).upper()
    prompt = case.prompt(marker, scale)
    set_relay_rate(relay, case.rate, case.chunk_chars)
    known = len(relayed_streams(relay))
    chats = chat_ids(data_dir) if case.stored else set()
    page = browser.new_page()
    cpu = None
    try:
        box = _open_chat(page, app_url)
        if pick is not None:
            pick_model(page, pick)
        page.evaluate(WATCH_JS, [marker, ECHO_START, prompt.text[:SAID]])
        page.wait_for_function(IDLE_JS, timeout=30_000, polling=100)  # opened, as a reader sees it
        kept = give_prompt(box, prompt.text)
        cpu = None if app_pid is None else process_cpu(app_pid)
        box.press("Enter")
        final, idle, seen = _watch(page, prompt,
                                   timeout=3 * case.stream_seconds(len(prompt.text)) + 30)
        cpu = None if app_pid is None else process_cpu(app_pid) - cpu
    finally:
        page.close()
    streams = relayed_streams(relay)
    record = streams[known] if len(streams) > known else None
    if seen["submitted"] is None:
        raise BenchError("pressing Enter in the chat input was not seen by the page")
    stored = stored_reply_chars(data_dir, chats) if case.stored else None
    return CaseRun(case, len(prompt.text), kept, record, seen, final, idle, stored, cpu)


def chat_ids(data_dir: Path) -> set[str]:
    """The chats in the app's own store (the local default's SQLite file)."""
    return {chat.id for chat in SQLiteChatStore(data_dir).list_chats(limit=10_000)}


def stored_reply_chars(data_dir: Path, known: set[str]) -> int | None:
    """The characters of the last reply of the chat the case made, as the app's store reads
    it back; None when it stored no such chat or reply."""
    store = SQLiteChatStore(data_dir)
    new = [chat for chat in store.list_chats(limit=10_000) if chat.id not in known]
    if not new:
        return None
    replies = [m for m in store.messages(new[0].id) if m.role == "assistant"]
    return len(replies[-1].content) if replies else None


def _watch(page, prompt: Prompt, timeout: float) -> tuple[dict | None, float | None, dict]:
    """Wait for the last token, the footer, then a quiet page: (FINAL_JS with what the reply
    shows, idle time, what the page recorded until then (WATCH_JS)).

    The reply is judged once the page is idle (a big block may still be drawing when the
    footer shows). A page that never gets there is a result (frozen or broken), not an error.
    """
    ended, idle, seen = _ended_and_idle(page, "() => window.__bench.lastVisible !== null",
                                        FINAL_JS, MODEL, timeout)
    if not ended:
        return None, None, seen
    final = page.evaluate(FINAL_JS, MODEL)
    shown, pages = _shown_reply(page)
    return {**final, "missing": missing_piece(prompt.expected, shown), "length": len(shown),
            "pages": pages}, idle, seen


def _shown_reply(page) -> tuple[str, int]:
    """What the reply shows, page after page when it is long (its page picker's next page
    until the last): the text, and how many pages. After the measured window: its reruns
    do not count."""
    texts = []
    while True:
        shown = page.evaluate(SHOWN_JS)
        texts.append(shown["text"])
        if not shown["next"]:
            return "\n".join(texts), len(texts)
        reply = page.locator('[data-testid="stChatMessage"]').filter(
            has=page.locator('[data-testid="stChatMessageAvatarAssistant"]')).last
        reply.locator('[data-testid="stPaginationNext"]').click()
        page.wait_for_function(NEXT_PAGE_JS, arg=[len(shown["text"]), shown["text"][:200]],
                               timeout=60_000, polling=100)


# The page picked is drawn: the app idle, and the reply showing other text than before.
NEXT_PAGE_JS = f"""
([length, start]) => {{
  if (!document.querySelector('{IDLE}') || document.querySelector('{STALE}')) return false;
  const shown = ({SHOWN_JS.strip()})();
  return shown.text.length !== length || shown.text.slice(0, 200) !== start;
}}
"""


# ---------------------------------------------------------------- part 2: compared replies


def pick_model(page, label: str) -> None:
    """Pick `label` in the chat page's model selector, by clicks, and wait for the page."""
    selector = page.locator('.st-key-chat-model input').first  # not the sidebar's Show
    selector.click()
    page.get_by_role("option", name=label, exact=True).click()
    page.wait_for_function(IDLE_JS_PLAIN, timeout=30_000, polling=100)
    if (shown := selector.input_value()) != label:
        raise BenchError(f"the model selector shows {shown!r} after picking {label!r}")


def pick_compared(page, labels: list[str]) -> None:
    """Open the Compare popover and pick each of `labels` in its multiselect, by clicks; then
    check the message box says where the next message goes."""
    page.locator('[data-testid="stPopover"] button').filter(has_text="Compare").first.click()
    models = page.locator('[data-testid="stMultiSelect"]').filter(has_text="Models to compare")
    for label in labels:
        models.locator("input").click()
        page.get_by_role("option", name=label, exact=True).click()
        page.wait_for_function(IDLE_JS_PLAIN, timeout=30_000, polling=100)
    page.keyboard.press("Escape")
    placeholder = f"Message to {len(labels)} models"
    box = page.locator('[data-testid="stChatInputTextArea"]')
    try:
        page.wait_for_function("([box, text]) => box.placeholder === text",
                               arg=[box.element_handle(), placeholder], timeout=10_000)
    except Exception as exc:
        raise BenchError(f"the message box never said {placeholder!r} after picking"
                         f" {len(labels)} models: {_short(exc)}") from exc


IDLE_JS_PLAIN = f"() => !!document.querySelector('{IDLE}') && !document.querySelector('{STALE}')"

# WATCH_JS per compared column (`.st-key-compare-col-<i>`): each column's first token, and its
# marker (last token) in the DOM and visible; the same Enter, message and long tasks.
COMPARE_WATCH_JS = """
([marker, start, said, n]) => {
  const none = () => Array(n).fill(null);
  const seen = window.__bench = {submitted: null, submittedPerf: null, messagePerf: null,
    firstVisible: none(), firstPerf: none(), markerInDom: none(), lastVisible: none(),
    lastPerf: none(), columnsVisible: null, mutationPerf: performance.now(), tasks: []};
  new PerformanceObserver((list) => {
    for (const task of list.getEntries()) seen.tasks.push([task.startTime, task.duration]);
  }).observe({type: "longtask", buffered: true});
  document.addEventListener("keydown", (event) => {
    if (event.key !== "Enter" || seen.submitted !== null) return;
    seen.submitted = Date.now();
    seen.submittedPerf = performance.now();
  }, true);
  const said_shown = () => [...document.querySelectorAll('[data-testid="stChatMessage"]')]
    .some((m) => m.querySelector('[data-testid="stChatMessageAvatarUser"]')
      && m.textContent.includes(said));
  new MutationObserver(() => {
    seen.mutationPerf = performance.now();
    if (seen.submitted === null) return;
    if (seen.messagePerf === null) {
      if (said_shown()) seen.messagePerf = performance.now();
      return;
    }
    if (seen.columnsVisible === null && document.querySelector('.st-key-compare-col-0')) {
      seen.columnsVisible = Date.now();
    }
    for (let i = 0; i < n; i++) {
      if (seen.markerInDom[i] !== null) continue;
      const column = document.querySelector(`.st-key-compare-col-${i}`);
      if (!column) continue;
      const text = column.textContent;
      if (seen.firstVisible[i] === null && text.includes(start)) {
        seen.firstVisible[i] = Date.now();
        seen.firstPerf[i] = performance.now();
      }
      if (seen.firstVisible[i] === null || !text.includes(marker)) continue;
      seen.markerInDom[i] = Date.now();
      requestAnimationFrame(() => setTimeout(() => {
        seen.lastVisible[i] = Date.now();
        seen.lastPerf[i] = performance.now();
      }, 0));
    }
  }).observe(document.body, {childList: true, subtree: true, characterData: true});
}
"""

# Once every column is drawn as stored (no live body left): per column, the text it shows (as
# SHOWN_JS reads a reply), its error if any, and its figures' caption; null until then.
COMPARE_FINAL_JS = """
(n) => {
  if (document.querySelector('[class*="st-key-compare-body-"]')) return null;
  const kinds = '[data-testid="stMarkdownContainer"], [data-testid="stCode"],'
    + ' [data-testid="stText"]';
  const left = '[data-testid="stCaptionContainer"], button, [data-testid="stPopoverBody"],'
    + ' [data-testid="stPagination"], [data-testid="stExpander"]';
  const found = [];
  for (let i = 0; i < n; i++) {
    const column = document.querySelector(`.st-key-compare-col-${i}`);
    if (!column) return null;
    const parts = [...column.querySelectorAll(kinds)].filter((part) =>
      !part.closest(left) && !part.parentElement.closest(kinds));
    const captions = [...column.querySelectorAll('[data-testid="stCaptionContainer"]')];
    const alert = column.querySelector('[data-testid="stAlert"]');
    found.push({text: parts.map((part) => part.textContent).join("\\n"),
                caption: captions.length ? captions[captions.length - 1].textContent : "",
                error: alert ? alert.textContent : null});
  }
  return found;
}
"""


@dataclass(frozen=True)
class CompareRun:
    """Case f: one reply alone, then the same message to every model at once."""

    case: Case
    alone: CaseRun  # the first model alone, as a single reply, just before
    prompt_chars: int
    records: list[dict | None]  # per column, its relay's record of the app's request
    seen: dict  # COMPARE_WATCH_JS
    columns: list[dict] | None  # COMPARE_FINAL_JS with `missing` per column; None: never drawn
    idle_perf: float | None
    stored: list[tuple[int | None, str]] | None  # per column: characters stored, status
    app_cpu: float  # the app's CPU seconds, Enter to idle
    # Short rounds after it (alone, then at once), each: per column, its first token minus the
    # model's alone in that round. One pair alone is a noisy baseline on a shared machine.
    rounds: tuple[tuple[float | None, ...], ...] = ()

    def lateness(self) -> list[float | None]:
        """Per column, its first token minus alone, this run's."""
        alone = self.alone_first_token
        return [None if (first := self.first_token(i)) is None or alone is None
                else first - alone for i in range(len(self.records))]

    @property
    def tasks(self) -> LongTasks:
        end = self.idle_perf if self.idle_perf is not None else float("inf")
        return LongTasks.between(self.seen["tasks"], self.seen["submittedPerf"], end)

    def last_after_end(self, i: int) -> float | None:
        seen, record = self.seen["lastVisible"][i], self.records[i]
        if seen is None or record is None:
            return None
        return round(seen / 1000 - record["ended"], 3)

    def first_token(self, i: int) -> float | None:
        """Seconds from Enter to column i's first token visible."""
        first = self.seen["firstVisible"][i]
        return None if first is None else (first - self.seen["submitted"]) / 1000

    @property
    def alone_first_token(self) -> float | None:
        seen = self.alone.seen
        if seen["firstVisible"] is None:
            return None
        return (seen["firstVisible"] - seen["submitted"]) / 1000

    def chunks(self) -> int:
        return sum((record or {}).get("events", 0) for record in self.records)

    @property
    def cpu_per_chunk(self) -> float | None:
        """The app's CPU per chunk with every reply at once, in microseconds."""
        return self.app_cpu / self.chunks() * 1e6 if self.chunks() else None

    @property
    def alone_cpu_per_chunk(self) -> float | None:
        events = (self.alone.record or {}).get("events")
        if not events or self.alone.app_cpu is None:
            return None
        return self.alone.app_cpu / events * 1e6

    def complete(self, i: int) -> bool:
        column = (self.columns or [None] * (i + 1))[i]
        return bool(column and column["missing"] < 0 and not column["error"])

    def stored_whole(self, i: int) -> bool:
        sent = (self.records[i] or {}).get("chars")
        return bool(self.stored) and sent is not None and self.stored[i][0] == sent

    def verdicts(self) -> list[tuple[str, str, str, bool]]:
        n, key = len(self.records), self.case.key
        rows = []
        for i in range(n):
            lag = self.last_after_end(i)
            rows.append((f"2{key} column {i + 1}: last token visible after its server's end",
                         "never" if lag is None else f"{lag:+.3f} s", f"<= {self.case.target} s",
                         lag is not None and lag <= self.case.target))
        longest = self.tasks.longest
        rows.append((f"2{key} longest main-thread task", _tasks_figure(self.tasks),
                     f"<= {LONG_TASK_TARGET_MS} ms",
                     self.idle_perf is not None and longest <= LONG_TASK_TARGET_MS))
        every = [tuple(self.lateness()), *self.rounds]
        for i in range(n):
            lates = [r[i] for r in every if r[i] is not None]
            late = statistics.median(lates) if len(lates) == len(every) else None
            each = ", ".join(f"{x * 1e3:+.0f}" for x in lates)
            rows.append((f"2{key} column {i + 1}: first token minus {relay_name(0)} alone, median"
                         f" of {len(every)} rounds", "never" if late is None else
                         f"{late * 1e3:+.0f} ms ({each})", f"<= +{FIRST_TOKEN_MARGIN * 1e3:.0f} ms",
                         late is not None and late <= FIRST_TOKEN_MARGIN))
        four, one = self.cpu_per_chunk, self.alone_cpu_per_chunk
        ratio = None if not four or not one else four / one
        rows.append((f"2{key} app CPU per chunk, {n} at once / alone",
                     "?" if ratio is None else f"{four:.0f} us / {one:.0f} us = {ratio:.2f}",
                     f"ratio <= {COMPARED_CPU_RATIO_TARGET}",
                     ratio is not None and ratio <= COMPARED_CPU_RATIO_TARGET))
        shown = sum(self.complete(i) for i in range(n))
        rows.append((f"2{key} replies complete on screen", f"{shown} of {n}", "all", shown == n))
        whole = sum(self.stored_whole(i) for i in range(n))
        rows.append((f"2{key} replies stored whole", f"{whole} of {n}", "all", whole == n))
        return rows


def run_compare_case(browser, app_url: str, relays: list[Server], case: Case, scale: float,
                     data_dir: Path, app_pid: int) -> CompareRun:
    """Case f: each model on its own connection and relay; the first alone, then all at once
    in a fresh session, picked in the Compare popover, watched from Enter to the page idle."""
    labels = save_connections(data_dir, relays)
    for relay in relays:
        set_relay_rate(relay, case.rate, case.chunk_chars)
    alone = run_case(browser, app_url, relays[0], case, scale, data_dir, pick=labels[0],
                     app_pid=app_pid)
    print_case(alone, f"alone, {labels[0]} (the same model, a single reply)")
    marker = "END" + secrets.token_hex(6).upper()
    prompt = case.prompt(marker, scale)
    known = [len(relayed_streams(relay)) for relay in relays]
    chats = chat_ids(data_dir)
    page = browser.new_page()
    try:
        box = _open_chat(page, app_url)
        pick_compared(page, labels)
        page.evaluate(COMPARE_WATCH_JS, [marker, ECHO_START, prompt.text[:SAID], len(labels)])
        page.wait_for_function(IDLE_JS, timeout=30_000, polling=100)
        give_prompt(box, prompt.text)
        cpu = process_cpu(app_pid)
        box.press("Enter")
        columns, idle, seen = _watch_columns(
            page, prompt, len(labels), timeout=3 * case.stream_seconds(len(prompt.text)) + 30)
        cpu = process_cpu(app_pid) - cpu
    finally:
        page.close()
    records = []
    for relay, before in zip(relays, known):
        streams = relayed_streams(relay)
        records.append(streams[before] if len(streams) > before else None)
    if seen["submitted"] is None:
        raise BenchError("pressing Enter in the chat input was not seen by the page")
    return CompareRun(case, alone, len(prompt.text), records, seen, columns, idle,
                      stored_compared(data_dir, chats), cpu)


def _ended_and_idle(page, last_seen_js: str, final_js: str, final_arg, timeout: float
                    ) -> tuple[bool, float | None, dict]:
    """Wait for the last token (`last_seen_js`), the reply drawn as stored (`final_js`), then
    an idle page: whether it ended, when it was idle (None: never), and what the page saw
    (read before a long reply's pages are turned)."""
    try:
        page.wait_for_function(last_seen_js, timeout=timeout * 1000, polling=100)
        page.wait_for_function(final_js, arg=final_arg, timeout=60_000, polling=200)
    except Exception:
        return False, None, page.evaluate("() => window.__bench")
    idle = None
    try:
        page.wait_for_function(IDLE_JS, timeout=60_000, polling=100)
        idle = page.evaluate("() => performance.now()")
    except Exception:
        pass  # judged as it is now; the long-task figure fails without an idle page
    return True, idle, page.evaluate("() => window.__bench")


def _watch_columns(page, prompt: Prompt, n: int, timeout: float
                   ) -> tuple[list[dict] | None, float | None, dict]:
    """_watch for the compared columns: every last token, every column drawn as stored, then a
    quiet page."""
    ended, idle, seen = _ended_and_idle(
        page, "() => window.__bench.lastVisible.every((v) => v !== null)", COMPARE_FINAL_JS, n,
        timeout)
    if not ended:
        return None, None, seen
    columns = page.evaluate(COMPARE_FINAL_JS, n) or []
    return [{**column, "missing": missing_piece(prompt.expected, column["text"]),
             "length": len(column["text"])} for column in columns], idle, seen


def stored_compared(data_dir: Path, known: set[str]) -> list[tuple[int | None, str]] | None:
    """The new chat's comparison as the app's store reads it back: per column (its replies in
    column order), the reply's characters and status; None when no comparison was stored."""
    store = SQLiteChatStore(data_dir)
    new = [chat for chat in store.list_chats(limit=10_000) if chat.id not in known]
    comparisons = store.comparisons(new[0].id) if new else []
    if not comparisons:
        return None
    by_id = {message.id: message for message in store.messages(new[0].id)}
    return [(len(by_id[reply].content), by_id[reply].status) if reply in by_id
            else (None, "not stored") for reply in comparisons[-1].reply_ids]


def print_compare(run: CompareRun) -> None:
    seen, n = run.seen, len(run.records)
    print(f"  case {run.case.key}: {run.case.title}: a {run.prompt_chars:,}-character message to"
          f" {n} models")
    for i, record in enumerate(run.records):
        if record is None:
            print(f"    column {i + 1}: the app's request never reached its server")
            continue
        first = run.first_token(i)
        stored = run.stored[i] if run.stored else (None, "no comparison stored")
        shown = (run.columns or [None] * n)[i] if run.columns else None
        print(f"    column {i + 1} ({relay_name(i)}): relay {_relay_line(record)}")
        print(f"      submit -> request at its server"
              f" {record['started'] - seen['submitted'] / 1000:.3f} s; first token visible"
              f" {'never' if first is None else f'{first:.3f} s'}; last token visible"
              f" {_seconds_after(run.last_after_end(i))} after its server's end")
        print(f"      shown: {'never drawn as stored' if shown is None else _column_note(shown)};"
              f" stored: {'nothing' if stored[0] is None else f'{stored[0]:,}'} characters"
              f" ({stored[1]}) of {record.get('chars', '?'):,}")
    enter = seen["submittedPerf"]
    message = seen["messagePerf"]
    columns = seen.get("columnsVisible")
    columns = None if columns is None else columns - seen["submitted"]
    print(f"    submit -> your message drawn"
          f" {'never' if message is None else f'{(message - enter) / 1000:.3f} s'};"
          f" -> the columns drawn"
          f" {'never' if columns is None else f'{columns / 1000:.3f} s'}")
    print(f"    main-thread tasks over 50 ms, Enter to idle (times after Enter):"
          f" {run.tasks.describe(enter)}")
    print(f"    the app's CPU, Enter to idle: {run.app_cpu:.2f} s for {run.chunks():,} chunks;"
          f" alone {run.alone.app_cpu or 0:.2f} s for"
          f" {(run.alone.record or {}).get('events', 0):,}")


def _column_note(column: dict) -> str:
    if column["error"]:
        return f"error {column['error'][:100]!r}"
    state = "complete" if column["missing"] < 0 else f"piece {column['missing'] + 1} missing"
    return f"{state}, {column['length']:,} characters; figures: {column['caption']}"


def missing_piece(expected: tuple[str, ...], shown: str) -> int:
    """The index of the first expected piece the shown text lacks (-1: none), whitespace
    aside: a page break or a code block's last newline moves it, never a character."""
    flat = "".join(shown.split())
    return next((i for i, piece in enumerate(expected) if "".join(piece.split()) not in flat), -1)


# ---------------------------------------------------------------- report


def _seconds_after(value: float | None) -> str:
    return "never" if value is None else f"{value:+.3f} s"


def print_case(run: CaseRun, title: str | None = None) -> None:
    seen, record, tasks = run.seen, run.record, run.tasks
    print(f"  case {run.case.key}: {title or run.case.title}: a {run.prompt_chars:,}-character"
          f" message ({run.input_kept:,} kept by the chat input)")
    if record is None:
        print("    the app's request never reached the server")
        return
    print(f"    relay: {_relay_line(record)}")
    print(f"    submit -> the app's request reaches the server:"
          f" {record['started'] - seen['submitted'] / 1000:.3f} s")
    if seen["firstVisible"] is not None:
        print(f"    submit -> first token visible:"
              f" {(seen['firstVisible'] - seen['submitted']) / 1000:.3f} s")
    print(f"    after the server's last byte: last token in the page's DOM"
          f" {_seconds_after(run.after_end(seen['markerInDom']))}, visible (next frame)"
          f" {_seconds_after(run.last_after_end)}")
    if run.idle_perf is not None and seen["lastPerf"] is not None:
        print(f"    page idle (final rerun drawn)"
              f" {(seen['mutationPerf'] - seen['lastPerf']) / 1000:.3f} s after the last token")
    else:
        print("    the page never went idle after the reply")
    enter = seen["submittedPerf"]
    opening = LongTasks.between(seen["tasks"], float("-inf"), enter)
    print(f"    main-thread tasks over 50 ms while the page opened, before Enter (not judged):"
          f" {opening.describe(enter)}")
    print(f"    main-thread tasks over 50 ms, Enter to idle (times after Enter):"
          f" {tasks.describe(enter)}")
    for name, start, end in window_phases(seen, run.idle_perf):
        print(f"      {name}: {tasks.phase(start, end).describe(enter)}")
    if run.case.end_task_target is not None and run.end_perf is not None:
        for name, start, end in (("before the server's end", float("-inf"), run.end_perf),
                                 ("after the server's end", run.end_perf, float("inf"))):
            print(f"      {name}: {tasks.phase(start, end).describe(enter)}")
    print(f"    {_reply_note(run)}")
    if run.case.stored:
        stored = "nothing" if run.stored_chars is None else f"{run.stored_chars:,} characters"
        sent = record.get("chars")
        print(f"    stored (the app's SQLite store, read back): {stored}; the server sent"
              f" {'?' if sent is None else f'{sent:,}'}")


def _relay_line(record: dict) -> str:
    """How the paced server really sent the app's stream."""
    span = record["ended"] - (record["first_event"] or record["ended"])
    rate = f"{record['events'] / span:,.0f}/s" if span > 0 else "-"
    chunks = (f"; {record['chars']:,} characters re-chunked into {record['chunk_chars']} a chunk"
              if record.get("chunk_chars") else "")
    return (f"{record['events']:,} events in {span:.2f} s ({rate}, asked {record['rate']:,.0f}/s;"
            f" worst write {record['late_max'] * 1e3:.1f} ms behind its schedule{chunks})")


def window_phases(seen: dict, idle: float | None) -> list[tuple[str, float, float]]:
    """The window cut where the user's message shows, at the first and at the last token."""
    message, first, last = seen["messagePerf"], seen["firstPerf"], seen["lastPerf"]
    if message is None or first is None or last is None:
        return []
    start = float("-inf")  # a task already running at Enter counts in the first phase
    return [("Enter -> your message drawn", start, message),
            ("your message -> first token", message, first),
            ("first -> last token", first, last),
            ("last token -> idle", last, float("inf") if idle is None else idle)]


def _reply_note(run: CaseRun) -> str:
    final = run.final
    if run.seen["lastVisible"] is None:
        return "reply: the last token never showed (frozen page?)"
    if final is None:
        return "reply: the last token showed, but the run did not finish (no footer)"
    if final["error"]:
        return f"reply incomplete: {final['error']} ({final['footer']})"
    if final["missing"] >= 0:
        return f"reply incomplete: expected text {final['missing'] + 1} missing ({final['footer']})"
    pages = f" in {final['pages']} pages" if final.get("pages", 1) > 1 else ""
    return (f"reply complete: {final['length']:,} characters on the page{pages};"
            f" footer: {final['footer']}")


def _table(header: tuple[str, ...], rows: list[tuple]) -> None:
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    print()
    for row in [header, *rows]:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip())


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:+.1f} ms"


def _verdict(passed: bool) -> str:
    return "PASS" if passed else "FAIL"


def path_rows(paths: PathComparison, runs: int) -> list[tuple]:
    app_total, raw_total = paths.median("app", "total"), paths.median("raw", "total")
    return [
        _cpu_row(paths, f"1 client CPU per chunk, median of {runs}", CPU_RATIO_TARGET),
        (f"1 total time, {paths.chunks:,} chunks, median of {runs}", f"{app_total:.3f} s",
         f"{raw_total:.3f} s", _ms(app_total - raw_total), f"{app_total / raw_total:.3f}",
         f"ratio <= {TIME_RATIO_TARGET}", _verdict(app_total / raw_total <= TIME_RATIO_TARGET)),
        _first_token_row(paths, f"1 time to first token, median of {runs}"),
    ]


def paced_rows(paths: PathComparison, paced: Paced, runs: int) -> list[tuple]:
    """The wall time is the server's pace: reported, not judged."""
    app_total, raw_total = paths.median("app", "total"), paths.median("raw", "total")
    at = f"{paced.streams} streams at {paced.rate:g} chunks/s"
    return [
        _cpu_row(paths, f"1 paced client CPU per chunk, {at}, median of {runs}",
                 PACED_CPU_RATIO_TARGET),
        (f"1 paced wall time, {paths.chunks:,} chunks in all, median of {runs}",
         f"{app_total:.3f} s", f"{raw_total:.3f} s", _ms(app_total - raw_total),
         f"{app_total / raw_total:.3f}", "(reported)", "-"),
        _first_token_row(paths, f"1 paced time to first token, median stream, median of {runs}"),
    ]


def _cpu_row(paths: PathComparison, figure: str, target: float) -> tuple:
    app_cpu, raw_cpu = paths.cpu_per_chunk("app"), paths.cpu_per_chunk("raw")
    return (figure, f"{app_cpu:.1f} us", f"{raw_cpu:.1f} us", f"{app_cpu - raw_cpu:+.1f} us",
            f"{app_cpu / raw_cpu:.3f}", f"ratio <= {target}",
            _verdict(app_cpu / raw_cpu <= target))


def _first_token_row(paths: PathComparison, figure: str) -> tuple:
    app_first, raw_first = paths.median("app", "first_token"), paths.median("raw", "first_token")
    return (figure, f"{app_first * 1e3:.1f} ms", f"{raw_first * 1e3:.1f} ms",
            _ms(app_first - raw_first), f"{app_first / raw_first:.3f}", "(reported)", "-")


def report(paths: PathComparison | None, paced: tuple[PathComparison, Paced] | None,
           cases: list[CaseRun], runs: int) -> None:
    rows = (path_rows(paths, runs) if paths else []) + (
        paced_rows(*paced, runs) if paced else [])
    if rows:
        _table(("figure", "app", "raw SDK", "difference", "ratio", "target", "result"), rows)
    if cases:
        rows = [(figure, measured, target, _verdict(passed))
                for run in cases for figure, measured, target, passed in run.verdicts()]
        _table(("figure", "measured", "target", "result"), rows)


# ---------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--case", action="append", choices=sorted(CASES),
                        help="run this browser case (repeatable; default: all)")
    parser.add_argument("--chunks", type=int, default=20_000,
                        help="part 1's reply length in chunks (default 20000)")
    parser.add_argument("--runs", type=int, default=5,
                        help="interleaved runs per path in part 1 (default 5)")
    parser.add_argument("--streams", type=int, default=Paced.streams,
                        help="part 1's paced mode: replies at once (default 50; 0 skips it)")
    parser.add_argument("--pace", type=float, default=Paced.rate,
                        help="part 1's paced mode: chunks/s of each reply (default 50)")
    parser.add_argument("--paced-chunks", type=int, default=Paced.chunks,
                        help="part 1's paced mode: chunks of each reply (default 250)")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="scale the browser cases' reply sizes, for trying the bench out"
                             " (default 1; the targets are for 1)")
    parts = parser.add_mutually_exclusive_group()
    parts.add_argument("--skip-browser", action="store_true", help="part 1 only")
    parts.add_argument("--skip-paths", action="store_true", help="part 2 only")
    args = parser.parse_args(argv)
    if min(args.chunks, args.runs, args.paced_chunks) < 1 or min(args.scale, args.pace) <= 0:
        parser.error("--chunks, --runs, --paced-chunks, --pace and --scale must be positive")
    if args.streams < 0:
        parser.error("--streams must be 0 (no paced mode) or more")
    args.paced = Paced(args.streams, args.pace, args.paced_chunks) if args.streams else None
    args.case = sorted(set(args.case or CASES))
    return args


def _load_now() -> str:
    return f"{os.getloadavg()[0]:.1f}"


def _short(exc: Exception) -> str:
    """An error's first line: Playwright's call log would repeat a 200 KB prompt."""
    return str(exc).strip().splitlines()[0][:300]


def browser_cases(processes: Processes, katan: Server, work: Path, args
                  ) -> tuple[list[CaseRun], list[str]]:
    """Part 2: one app, one browser, a warm-up reply, then each case in a fresh page.

    Returns the cases measured and why any other could not run.
    """
    from playwright.sync_api import Error as PlaywrightError, sync_playwright

    relay = start_relay(processes, katan, CASES[args.case[0]].rate)
    compared = max(CASES[key].compared for key in args.case)
    own_relays = [start_relay(processes, katan, CASES["f"].rate, f"paced-relay-{i + 1}")
                  for i in range(compared)]  # one server per compared model
    save_profile(work / "data-app", relay)
    app_url = start_app(processes, work / "data-app")
    runs, failures = [], []
    with sync_playwright() as playwright:
        try:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            cold = warm_up(browser.new_page(), app_url, relay)
        except PlaywrightError as exc:
            raise BenchError(f"the browser part could not run: {_short(exc)}") from exc
        print(f"  first reply after the app started: submit -> request at the server:"
              f" {cold:.3f} s (warm-up session, not in the figures)", flush=True)
        for key in args.case:
            case = CASES[key]
            try:
                if case.compared:
                    run = run_compare_case(browser, app_url, own_relays, case, args.scale,
                                           work / "data-app", processes.pid_of("streamlit"))
                    rounds = tuple(tuple(run_compare_case(
                        browser, app_url, own_relays, case, FIRST_ROUND_SCALE,
                        work / "data-app", processes.pid_of("streamlit")).lateness())
                        for _ in range(FIRST_ROUNDS))
                    runs.append(dataclasses.replace(run, rounds=rounds))
                else:
                    runs.append(run_case(browser, app_url, relay, case, args.scale,
                                         work / "data-app"))
            except (BenchError, PlaywrightError) as exc:
                failures.append(f"case {key} could not run: {_short(exc)}")
                print(f"  {failures[-1]}", flush=True)
                continue
            (print_compare if case.compared else print_case)(runs[-1])
        browser.close()
    return runs, failures


def run(args: argparse.Namespace, work: Path) -> None:
    started, load = time.monotonic(), _load_now()
    processes = Processes(work)
    paths, paced, cases, failures = None, None, [], []
    try:
        katan = start_katan(processes)
        print(f"server: llm-katan echo at {katan.base_url}")
        if not args.skip_paths:
            print(f"part 1: app streaming path vs raw openai SDK stream, {args.runs} runs each, "
                  "interleaved", flush=True)
            paths = compare_paths(katan, args.chunks, args.runs, work / "data-part1")
        if not args.skip_paths and args.paced:
            shape = args.paced
            print(f"part 1, paced: {shape.streams} replies at once, {shape.chunks} chunks each"
                  f" at {shape.rate:g} chunks/s, through the paced relay", flush=True)
            relay = start_relay(processes, katan, shape.rate)
            paced = compare_paced(relay, shape, args.runs, work / "data-part1"), shape
        if not args.skip_browser:
            print(f"part 2: Chromium against the app, cases {', '.join(args.case)}"
                  + (f" at scale {args.scale}" if args.scale != 1 else ""), flush=True)
            cases, failures = browser_cases(processes, katan, work, args)
    finally:
        processes.stop_all()
    report(paths, paced, cases, args.runs)
    print(f"\n(bench took {time.monotonic() - started:.0f} s; load average {load} at the start,"
          f" {_load_now()} at the end, {os.cpu_count()} CPUs)")
    if float(load) > (os.cpu_count() or 1):  # measured before the bench's own processes ran
        print("note: other processes kept the CPUs busy when the bench started: wall times are"
              " noisy; compare the CPU-per-chunk row, or run again on a quieter machine")
    if failures:
        raise BenchError("; ".join(failures))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the servers on kill too
    with tempfile.TemporaryDirectory(prefix="switchboard-bench-") as work:
        try:
            run(args, Path(work))
        except BenchError as exc:
            print(f"bench could not run: {exc}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
