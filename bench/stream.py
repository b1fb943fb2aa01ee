"""Streaming benchmark: the app's streaming path and a real browser, against one local server.

1. core.chat's path, exactly what the chat page runs (`coalesce(start_reply(...))`), against
   iterating the raw openai SDK stream: same server, same request, a reply of --chunks chunks,
   runs interleaved (app, raw, app, raw...), medians compared. Target: total time ratio <= 1.05.
2. A real Chromium against the running app (`streamlit run streamlit_app.py`): from pressing
   Enter in the chat input to the reply's last token visible on the page, against the
   server's own stream time for the same reply, paced at --rate chunks/s. Target: the reply
   completes and its last token shows within 0.5 s of the server's.

The server is llm-katan's echo backend (it streams a long prompt back 4 characters a chunk, at
about 28,000 chunks/s: faster than any client, so part 1 measures the client). Part 2 puts
bench/paced_relay.py in front of it, since neither test server can pace below 1 ms a chunk.

    .venv/bin/python bench/stream.py [--chunks N] [--runs N] [--rate N] [--skip-browser]

Exit 0 once measured, even when a target is missed (that is a result); 2 when it could not run.
See bench/README.md.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import openai  # noqa: E402

from core.chat import Reply, coalesce, start_reply  # noqa: E402
from core.config import SETTING_NAMES, load_settings  # noqa: E402
from core.store.keybox import EncryptedProfileStore, keybox_for  # noqa: E402
from core.profiles import Profile  # noqa: E402
from core.providers.kinds import OPENAI_COMPATIBLE, Target  # noqa: E402
from core.store.sqlite import SQLiteProfileStore  # noqa: E402
from tests.fixtures.common import free_port, stop  # noqa: E402  (the suite's own helpers)

MODEL = "katan-echo"
CHUNK_CHARS = 4  # llm-katan's echo backend streams 4 characters per chunk
RATIO_TARGET = 1.05
LAG_TARGET = 0.5  # seconds between the server's end and the last token on the page
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage",
]
WORDS = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor ".split()


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

    def start(self, name: str, argv: list[str], ready_url: str, headers: dict | None = None,
              env: dict | None = None, timeout: float = 30) -> None:
        log_path = self.log_dir / f"{name}.log"
        with open(log_path, "wb") as log:  # cwd: no developer's .env or secrets.toml gets read
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, env=env, cwd=self.log_dir)
        self._procs.append(proc)
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


def start_relay(processes: Processes, upstream: Server, rate: float) -> Server:
    port = free_port()
    origin = upstream.base_url.removesuffix("/v1")
    processes.start("paced-relay", [
        sys.executable, str(REPO / "bench" / "paced_relay.py"), origin, str(port), str(rate),
    ], f"http://127.0.0.1:{port}/_relay/streams")
    return Server(f"http://127.0.0.1:{port}/v1", upstream.api_key)


def relayed_streams(relay: Server) -> list[dict]:
    url = relay.base_url.removesuffix("/v1") + "/_relay/streams"
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


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


def app_stream(settings, target: Target, messages: list[dict]) -> Timing:
    """What the chat page runs: start_reply (client, guarded HTTP, stream_reply), coalesced."""
    reply = Reply()
    started, cpu = time.perf_counter(), time.process_time()
    first, chars = None, 0
    for piece in coalesce(start_reply(settings, target, messages, reply)):
        if first is None:
            first = time.perf_counter() - started
        chars += len(piece)
    total = time.perf_counter() - started
    if reply.status != "complete":
        raise BenchError(f"the app's stream ended {reply.status!r}: {reply.error}")
    return Timing(total, first or total, time.process_time() - cpu, chars)


def raw_stream(server: Server, messages: list[dict]) -> Timing:
    """The same request through the bare SDK, reading chunk.choices[0].delta.content."""
    started, cpu = time.perf_counter(), time.process_time()
    first, chars = None, 0
    client = openai.OpenAI(base_url=server.base_url, api_key=server.api_key, max_retries=0)
    stream = client.chat.completions.create(
        model=MODEL, messages=messages, stream=True, stream_options={"include_usage": True}
    )
    for chunk in stream:
        if chunk.choices and (text := chunk.choices[0].delta.content):
            if first is None:
                first = time.perf_counter() - started
            chars += len(text)
    total = time.perf_counter() - started
    return Timing(total, first or total, time.process_time() - cpu, chars)


def _run_line(timing: Timing) -> str:
    return (f"{timing.total:.3f} s (first token {timing.first_token * 1e3:.1f} ms,"
            f" CPU {timing.cpu:.3f} s)")


@dataclass(frozen=True)
class PathComparison:
    app: list[Timing]
    raw: list[Timing]
    chunks: int

    def median(self, side: str, name: str) -> float:
        return statistics.median(getattr(t, name) for t in getattr(self, side))


def compare_paths(server: Server, chunks: int, runs: int, data_dir: Path) -> PathComparison:
    settings = load_settings(secrets={}, environ={"SWITCHBOARD_DATA_DIR": str(data_dir)},
                             dotenv_path=None)  # the local default, as the page has it
    messages = [{"role": "user", "content": make_prompt(chunks, "END" + secrets.token_hex(4))}]
    target = server.target()
    app_stream(settings, target, messages)  # warm-up (imports, first connection): not counted
    raw_stream(server, messages)
    app, raw = [], []
    for run in range(1, runs + 1):
        for side, measure in (
            (app, lambda: app_stream(settings, target, messages)),
            (raw, lambda: raw_stream(server, messages)),
        ):
            gc.collect()
            side.append(measure())
        print(f"  run {run}:  app {_run_line(app[-1])}   raw {_run_line(raw[-1])}"
              f"   app/raw {app[-1].total / raw[-1].total:.3f}", flush=True)
    if {t.chars for t in app + raw} != {raw[0].chars}:
        raise BenchError("the app and the raw SDK did not receive the same text")
    # Each content chunk carries 4 characters: the reply's chunk count, role chunk not counted.
    return PathComparison(app, raw, -(-raw[0].chars // CHUNK_CHARS))


# ---------------------------------------------------------------- part 2: a real browser


def save_profile(data_dir: Path, server: Server) -> None:
    """Point the app's compatible provider at `server`, as the settings page would."""
    settings = load_settings(secrets={}, environ={"SWITCHBOARD_DATA_DIR": str(data_dir)},
                             dotenv_path=None)
    store = EncryptedProfileStore(SQLiteProfileStore(settings.data_dir), keybox_for(settings))
    store.save(Profile(openai_compatible_base_url=server.base_url,
                       openai_compatible_api_key=server.api_key,
                       openai_compatible_model_name=MODEL))


def start_app(processes: Processes, data_dir: Path) -> str:
    """`streamlit run` in the local default, on its own data folder; returns the page URL.

    Its settings come only from here: none from the caller's environment, a .env or secrets.
    """
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in SETTING_NAMES}
    env["SWITCHBOARD_DATA_DIR"] = str(data_dir)
    no_secrets = processes.log_dir / "no-secrets.toml"
    no_secrets.write_text("")
    processes.start("streamlit", [
        sys.executable, "-m", "streamlit", "run", str(REPO / "streamlit_app.py"),
        "--secrets.files", str(no_secrets),
        "--server.headless", "true", "--server.port", str(port),
        "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
        "--server.fileWatcherType", "none",  # others' edits must not rerun the page mid-bench
    ], f"http://127.0.0.1:{port}/_stcore/health", env=env, timeout=60)
    return f"http://127.0.0.1:{port}/"


# Installed in the page before submitting. Times are Date.now() (wall clock, ms), the same clock
# as the relay's time.time(). The observer only reads text, once per batch of DOM changes.
WATCH_JS = """
(marker) => {
  const seen = window.__bench = {submitted: null, firstVisible: null, lastVisible: null};
  document.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && seen.submitted === null) seen.submitted = Date.now();
  }, true);
  const replyText = () => {
    const replies = [...document.querySelectorAll('[data-testid="stChatMessage"]')].filter(
      (m) => m.querySelector('[data-testid="stChatMessageAvatarAssistant"]'));
    const content = replies.length
      && replies[replies.length - 1].querySelector('[data-testid="stChatMessageContent"]');
    return content ? content.textContent : "";
  };
  new MutationObserver(() => {
    if (seen.submitted === null || seen.lastVisible !== null) return;
    const text = replyText();
    if (seen.firstVisible === null && text.trim()) seen.firstVisible = Date.now();
    if (text.includes(marker)) seen.lastVisible = Date.now();
  }).observe(document.body, {childList: true, subtree: true, characterData: true});
}
"""

# After the run: the last reply's footer, any error, and whether it holds the whole prompt.
FINAL_JS = """
([prompt, model]) => {
  const replies = [...document.querySelectorAll('[data-testid="stChatMessage"]')].filter(
    (m) => m.querySelector('[data-testid="stChatMessageAvatarAssistant"]'));
  const last = replies[replies.length - 1];
  const caption = last && last.querySelector('[data-testid="stCaptionContainer"]');
  if (!caption || !caption.textContent.includes(model)) return null;
  const alert = last.querySelector('[data-testid="stAlert"]');
  const content = last.querySelector('[data-testid="stChatMessageContent"]').textContent;
  return {footer: caption.textContent, error: alert ? alert.textContent : null,
          whole: content.includes(prompt), length: content.length};
}
"""


@dataclass(frozen=True)
class BrowserRun:
    server: float  # raw client's stream time through the same paced server, seconds
    submit_to_last: float | None  # None: the last token never showed
    submit_to_first: float | None
    after_server_end: float | None  # last token visible minus the end of the app's own stream
    to_request: float  # from submit to the app's request reaching the server
    app_stream: float  # the paced server's time for the app's own request
    cold_to_request: float  # the same, for the first reply after the app started
    complete: bool
    note: str

    @property
    def difference(self) -> float | None:
        return None if self.submit_to_last is None else self.submit_to_last - self.server


def browser_run(app_url: str, relay: Server, chunks: int) -> BrowserRun:
    """One measured reply in a fresh session, after a short warm-up reply in another one."""
    from playwright.sync_api import Error as PlaywrightError, sync_playwright

    marker = "END" + secrets.token_hex(6).upper()
    prompt = make_prompt(chunks, marker)
    server = raw_stream(relay, [{"role": "user", "content": prompt}]).total
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                cold = _warm_up(browser.new_page(), app_url, relay)
                seen, final = _submit_and_watch(browser.new_page(), app_url, prompt, marker,
                                                timeout=3 * server + 30)
            finally:
                browser.close()
    except PlaywrightError as exc:
        raise BenchError(f"the browser part could not run: {exc}") from exc
    return _browser_result(seen, final, server, relayed_streams(relay)[-1], cold)


def _open_chat(page, app_url: str):
    """Load the chat page (a new Streamlit session); returns its chat input."""
    page.goto(app_url)
    box = page.locator('[data-testid="stChatInputTextArea"]')
    try:
        box.wait_for(timeout=30_000)
    except Exception as exc:
        raise BenchError(f"the chat page did not show a chat input: {exc}") from exc
    label = f"{MODEL} · {OPENAI_COMPATIBLE.label}"
    selector = page.locator('[data-testid="stSelectbox"] input').first
    selector.wait_for(timeout=10_000)
    if label != (shown := selector.input_value()):
        raise BenchError(f"the chat page's model selector shows {shown!r}, not {label!r}")
    return box


def _warm_up(page, app_url: str, relay: Server) -> float:
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
        page.wait_for_function(FINAL_JS, arg=[text, MODEL], timeout=30_000, polling=100)
    except Exception as exc:
        raise BenchError(f"the warm-up reply never finished on the page: {exc}") from exc
    page.close()
    return streams[known]["started"] - pressed


def _submit_and_watch(page, app_url: str, prompt: str, marker: str, timeout: float):
    box = _open_chat(page, app_url)
    page.evaluate(WATCH_JS, marker)
    box.fill(prompt)
    box.press("Enter")
    try:
        page.wait_for_function("() => window.__bench.lastVisible !== null",
                               timeout=timeout * 1000, polling=100)
    except Exception:  # the last token never showed: a result (frozen page), not a bench error
        return page.evaluate("() => window.__bench"), None
    final = None
    try:
        handle = page.wait_for_function(FINAL_JS, arg=[prompt, MODEL], timeout=30_000, polling=200)
        final = handle.json_value()
    except Exception:
        pass  # the run never finished: reported as not complete
    return page.evaluate("() => window.__bench"), final


def _browser_result(seen: dict, final: dict | None, server: float, record: dict,
                    cold: float) -> BrowserRun:
    submitted, first, last = seen["submitted"], seen["firstVisible"], seen["lastVisible"]
    if submitted is None:
        raise BenchError("pressing Enter in the chat input was not seen by the page")
    to_s = lambda ms: None if ms is None else (ms - submitted) / 1000  # noqa: E731
    if last is None:
        note = "the last token never showed (frozen page?)"
    elif final is None:
        note = "the last token showed, but the run did not finish (no footer)"
    elif final["error"] or not final["whole"]:
        note = f"reply incomplete: {final['error'] or 'text missing'} ({final['footer']})"
    else:
        note = f"complete: {final['length']:,} characters on the page; footer: {final['footer']}"
    complete = bool(final and final["whole"] and not final["error"])
    return BrowserRun(
        server=server, submit_to_last=to_s(last), submit_to_first=to_s(first),
        after_server_end=None if last is None else last / 1000 - record["ended"],
        to_request=record["started"] - submitted / 1000,
        app_stream=record["ended"] - record["started"], cold_to_request=cold,
        complete=complete, note=note,
    )


# ---------------------------------------------------------------- report


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:+.1f} ms"


def report(paths: PathComparison | None, browser: BrowserRun | None, runs: int, rate: float) -> None:
    rows = []
    if paths:
        app_total, raw_total = paths.median("app", "total"), paths.median("raw", "total")
        ratio = app_total / raw_total
        rows.append((f"1 total time, {paths.chunks:,} chunks, median of {runs}",
                     f"{app_total:.3f} s", f"{raw_total:.3f} s", _ms(app_total - raw_total),
                     f"{ratio:.3f}", f"ratio <= {RATIO_TARGET}",
                     "PASS" if ratio <= RATIO_TARGET else "FAIL"))
        app_first, raw_first = paths.median("app", "first_token"), paths.median("raw", "first_token")
        rows.append((f"1 time to first token, median of {runs}", f"{app_first * 1e3:.1f} ms",
                     f"{raw_first * 1e3:.1f} ms", _ms(app_first - raw_first),
                     f"{app_first / raw_first:.3f}", "(reported)", "-"))
        app_cpu, raw_cpu = paths.median("app", "cpu"), paths.median("raw", "cpu")
        rows.append((f"1 client CPU time, median of {runs}", f"{app_cpu:.3f} s", f"{raw_cpu:.3f} s",
                     _ms(app_cpu - raw_cpu), f"{app_cpu / raw_cpu:.3f}", "(reported)", "-"))
    if browser:
        shown = browser.submit_to_last
        ok = browser.complete and shown is not None and browser.difference <= LAG_TARGET
        rows.append((f"2 submit -> last token visible, {rate:,.0f} chunks/s",
                     "never" if shown is None else f"{shown:.3f} s", f"{browser.server:.3f} s",
                     "-" if shown is None else f"{browser.difference:+.3f} s",
                     "-" if shown is None else f"{shown / browser.server:.3f}",
                     f"complete, <= +{LAG_TARGET} s", "PASS" if ok else "FAIL"))
    header = ("figure", "app/browser", "raw/server", "difference", "ratio", "target", "result")
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    print()
    for row in [header, *rows]:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip())


def print_browser(run: BrowserRun) -> None:
    print(f"  server stream time (raw client, same reply): {run.server:.3f} s")
    print(f"  first reply after the app started: submit -> request at the server:"
          f" {run.cold_to_request:.3f} s (warm-up session, not in the figures below)")
    print(f"  submit -> the app's request reaches the server: {run.to_request:.3f} s")
    print(f"  paced server's time for the app's own request: {run.app_stream:.3f} s")
    if run.submit_to_first is not None:
        print(f"  browser: submit -> first token visible: {run.submit_to_first:.3f} s")
    if run.submit_to_last is not None:
        print(f"  browser: submit -> last token visible: {run.submit_to_last:.3f} s"
              f" (difference {run.difference:+.3f} s, ratio {run.submit_to_last / run.server:.3f})")
        print(f"  last token visible after the server's end of that same stream:"
              f" {run.after_server_end:+.3f} s")
    print(f"  {run.note}")


# ---------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunks", type=int, default=20_000,
                        help="reply length in chunks (default 20000)")
    parser.add_argument("--runs", type=int, default=5,
                        help="interleaved runs per path in part 1 (default 5)")
    parser.add_argument("--rate", type=float, default=2_000,
                        help="chunks per second the server sends in part 2 (default 2000)")
    parser.add_argument("--skip-browser", action="store_true", help="part 1 only")
    args = parser.parse_args(argv)
    if args.chunks < 1 or args.runs < 1 or args.rate <= 0:
        parser.error("--chunks, --runs and --rate must be positive")
    return args


def _load_now() -> str:
    return f"{os.getloadavg()[0]:.1f}"


def run(args: argparse.Namespace, work: Path) -> None:
    started, load = time.monotonic(), _load_now()
    processes = Processes(work)
    try:
        katan = start_katan(processes)
        print(f"server: llm-katan echo at {katan.base_url}")
        print(f"part 1: app streaming path vs raw openai SDK stream, {args.runs} runs each, "
              "interleaved", flush=True)
        paths = compare_paths(katan, args.chunks, args.runs, work / "data-part1")
        browser = None
        if not args.skip_browser:
            print(f"part 2: Chromium against the app, server paced at {args.rate:,.0f} chunks/s",
                  flush=True)
            relay = start_relay(processes, katan, args.rate)
            save_profile(work / "data-app", relay)
            app_url = start_app(processes, work / "data-app")
            browser = browser_run(app_url, relay, args.chunks)
            print_browser(browser)
    finally:
        processes.stop_all()
    report(paths, browser, args.runs, args.rate)
    print(f"\n(bench took {time.monotonic() - started:.0f} s; load average {load} at the start,"
          f" {_load_now()} at the end, {os.cpu_count()} CPUs)")
    if float(load) > (os.cpu_count() or 1):  # measured before the bench's own processes ran
        print("note: other processes kept the CPUs busy when the bench started: wall times are"
              " noisy; compare the CPU-time row, or run again on a quieter machine")


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
