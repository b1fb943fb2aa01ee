"""First-token benchmark: how soon a reply's first words show in a real browser, against the
raw openai SDK's time to first token on the same server, in the same run.

llama.cpp's server (llama-cpp-python) with SmolLM2-135M, the real model the tests use, answers
a short question. Each run sends one question through the app in a fresh Chromium page (from
pressing Enter to the first words of the reply visible) and one through the bare SDK (from the
call to the first text), alternating which goes first; both reach the server through
bench/paced_relay.py's relay, unpaced, so each request's arrival and first event are on record.
Target: the app's median <= the SDK's median + 0.1 s.

    .venv/bin/python bench/first_token.py [--runs 10]

`main(argv)` is what bench/stream.py can call. Exit 0 once measured, even when the target is
missed (that is a result); 2 when it could not run. See bench/README.md.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import openai  # noqa: E402

from bench.stream import (  # noqa: E402
    CHROMIUM, CHROMIUM_ARGS, BenchError, Processes, Server, _open_chat, relayed_streams,
    save_profile, servers_python, start_app, start_relay,
)
from tests.fixtures.common import free_port  # noqa: E402

MODEL = "smollm2"
MARGIN = 0.1  # seconds the app may add to the SDK's time to first token (medians)
UNPACED = 1e9  # events per second: the relay forwards at once
CLOCK_SLACK = 0.05  # seconds: the bench notes Enter's wall time just before pressing it
RUNS = 10
# Seconds a page may wait for the reply's first words, then for its end: llama.cpp took 3 to
# 8 s to a first token here on a busy machine (20 ms on a quiet one).
WAIT = 180

# Installed in a fresh page before the question is typed. performance.now() on both ends: the
# figure is an interval of the page's own clock. Only the reply's own text that can be seen
# counts (not Stop's label, nor the hidden block that loads the code highlighter). The text
# seen first is kept, to show what counted. "Visible": the frame after the first
# words entered the DOM is painted (a task queued from the next animation frame).
WATCH_JS = """
() => {
  const seen = window.__firstToken = {pressed: null, inDom: null, visible: null, text: null};
  document.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && seen.pressed === null) seen.pressed = performance.now();
  }, true);
  const replyText = () => {
    const replies = [...document.querySelectorAll('[data-testid="stChatMessage"]')].filter(
      (m) => m.querySelector('[data-testid="stChatMessageAvatarAssistant"]'));
    if (!replies.length) return "";
    return [...replies[replies.length - 1].querySelectorAll('[data-testid="stMarkdownContainer"]')]
      .filter((e) => e.checkVisibility() && !e.closest('[data-testid="stExpander"],'
        + ' [data-testid="stPopover"], [data-testid="stCaptionContainer"], button'))
      .map((e) => e.textContent).join("").trim();
  };
  new MutationObserver(() => {
    if (seen.pressed === null || seen.inDom !== null || !replyText()) return;
    seen.inDom = performance.now();
    seen.text = replyText();
    requestAnimationFrame(() => setTimeout(() => { seen.visible = performance.now(); }, 0));
  }).observe(document.body, {childList: true, subtree: true, characterData: true});
}
"""

# The reply has ended once its footer names the model.
ENDED_JS = """
(model) => [...document.querySelectorAll('[data-testid="stChatMessage"]')].some(
  (m) => m.querySelector('[data-testid="stChatMessageAvatarAssistant"]')
    && [...m.querySelectorAll('[data-testid="stCaptionContainer"]')].some(
      (c) => c.textContent.includes(model)))
"""
FIRST_OR_END_JS = f"(model) => window.__firstToken.inDom !== null || ({ENDED_JS.strip()})(model)"


def question(number: int) -> str:
    """A short question; each request its own (llama.cpp reuses a prompt it has just seen,
    which would favour whichever side asks it second), all of the same shape."""
    a, b = 11 + number % 80, 12 + (number * 7) % 80
    return f"What is {a} plus {b}? Answer in one short sentence."


def start_llama(processes: Processes) -> Server:
    """llama.cpp's server with SmolLM2-135M, found as tests/fixtures/llm_servers.py finds it."""
    python = servers_python()
    probe = subprocess.run([str(python), "-c", "import llama_cpp.server"], capture_output=True)
    if probe.returncode != 0:
        raise BenchError(f"llama-cpp-python's server is not installed next to {python}: run"
                         " `bash tests/run_all.sh` once (or source tests/setup/servers.sh)")
    cache = Path(os.environ.get("SWITCHBOARD_TEST_CACHE") or REPO / ".cache")
    model = Path(os.environ.get("SB_SMOLLM_GGUF")
                 or cache / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf")
    if not model.is_file():
        raise BenchError(f"the SmolLM2 model file {model} is missing: run `bash tests/run_all.sh`")
    port, key = free_port(), f"sk-bench-{secrets.token_hex(8)}"
    processes.start("llama", [
        str(python), "-m", "llama_cpp.server", "--model", str(model), "--model_alias", MODEL,
        "--host", "127.0.0.1", "--port", str(port), "--api_key", key, "--n_ctx", "2048",
    ], f"http://127.0.0.1:{port}/v1/models", {"Authorization": f"Bearer {key}"}, timeout=90)
    return Server(f"http://127.0.0.1:{port}/v1", key)


@dataclass(frozen=True)
class AppRun:
    visible: float  # seconds from Enter to the first words visible
    in_dom: float  # ... to the first words in the page's DOM
    to_request: float  # Enter to the request at the relay (wall clocks)
    server_first: float  # the request at the relay to the server's first event
    first_text: str  # what the page showed first


@dataclass(frozen=True)
class RawRun:
    first_token: float  # seconds from the call to the first text
    server_first: float  # the request at the relay to the server's first event


@dataclass
class FirstToken:
    app: list[AppRun] = field(default_factory=list)
    raw: list[RawRun] = field(default_factory=list)

    @property
    def app_median(self) -> float:
        return statistics.median(run.visible for run in self.app)

    @property
    def raw_median(self) -> float:
        return statistics.median(run.first_token for run in self.raw)

    @property
    def passed(self) -> bool:
        return self.app_median <= self.raw_median + MARGIN

    @property
    def app_added(self) -> float:
        """The app's own part, median: Enter to visible less the server's request -> first
        event (Enter -> request, then first event -> visible)."""
        return statistics.median(run.visible - run.server_first for run in self.app)

    @property
    def raw_added(self) -> float:
        """The SDK's part the same way: the call to its first token less the server's."""
        return statistics.median(run.first_token - run.server_first for run in self.raw)


def _new_stream(relay: Server, known: int) -> dict | None:
    """The relay's record of the stream after the `known` ones; it is written just after the
    stream's last byte, so a client that has read it all may ask a moment too early."""
    for _ in range(50):
        streams = relayed_streams(relay)
        if len(streams) > known:
            return streams[known]
        time.sleep(0.1)
    return None


def app_run(browser, app_url: str, relay: Server, text: str) -> AppRun:
    """One question in a fresh page: Enter to the first words visible."""
    known = len(relayed_streams(relay))
    page = browser.new_page()
    try:
        box = _open_chat(page, app_url, MODEL)
        page.evaluate(WATCH_JS)
        box.fill(text)
        pressed = time.time()
        box.press("Enter")
        page.wait_for_function(FIRST_OR_END_JS, arg=MODEL, timeout=WAIT * 1000, polling="raf")
        if page.evaluate("() => window.__firstToken.inDom") is None:
            raise BenchError("the reply ended without showing any text")  # "103." alone is
            # Markdown's empty list item: the question asks for a sentence
        page.wait_for_function("() => window.__firstToken.visible !== null", timeout=10_000,
                               polling="raf")
        seen = page.evaluate("() => window.__firstToken")
        page.wait_for_function(ENDED_JS, arg=MODEL, timeout=WAIT * 1000, polling=200)
    except BenchError:
        raise
    except Exception as exc:  # Playwright's own errors: the page could not be driven
        raise BenchError(f"the app's reply did not show: {str(exc).splitlines()[0]}") from exc
    finally:
        page.close()
    record = _new_stream(relay, known)
    if record is None:
        raise BenchError("the app's request never reached the server")
    visible = (seen["visible"] - seen["pressed"]) / 1000
    if pressed + visible < record["first_event"] - CLOCK_SLACK:
        raise BenchError(f"the page showed {seen['text'][:80]!r} before the server sent anything:"
                         " the bench counts something that is not the reply")
    return AppRun(visible=visible, in_dom=(seen["inDom"] - seen["pressed"]) / 1000,
                  to_request=record["started"] - pressed,
                  server_first=record["first_event"] - record["started"],
                  first_text=seen["text"])


def raw_run(client: openai.OpenAI, relay: Server, text: str) -> RawRun:
    """The same request through the bare SDK, read to its end; the call to the first text."""
    known = len(relayed_streams(relay))
    started, first = time.perf_counter(), None
    stream = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": text}], stream=True,
        stream_options={"include_usage": True})
    for chunk in stream:
        if first is None and chunk.choices and chunk.choices[0].delta.content:
            first = time.perf_counter() - started
    if first is None:
        raise BenchError("the SDK's stream carried no text")
    record = _new_stream(relay, known)
    if record is None:
        raise BenchError("the SDK's request never reached the relay")
    return RawRun(first, record["first_event"] - record["started"])


def warm_up(browser, app_url: str, client: openai.OpenAI, relay: Server) -> None:
    """A first reply each way: the app's first reply pays one-off imports, the server's its
    first evaluation."""
    app_run(browser, app_url, relay, question(0))
    raw_run(client, relay, question(1))


def measure(runs: int, work: Path) -> FirstToken:
    """Start the server, the relay, the app and Chromium; `runs` runs of each side."""
    from playwright.sync_api import sync_playwright

    processes, result = Processes(work), FirstToken()
    try:
        llama = start_llama(processes)
        relay = start_relay(processes, llama, UNPACED)
        save_profile(work / "data", relay, MODEL)
        app_url = start_app(processes, work / "data")
        client = openai.OpenAI(base_url=relay.base_url, api_key=relay.api_key, max_retries=0)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                warm_up(browser, app_url, client, relay)
                for number in range(1, runs + 1):
                    app_text, raw_text = question(2 * number), question(2 * number + 1)
                    if number % 2:
                        result.app.append(app_run(browser, app_url, relay, app_text))
                        result.raw.append(raw_run(client, relay, raw_text))
                    else:
                        result.raw.append(raw_run(client, relay, raw_text))
                        result.app.append(app_run(browser, app_url, relay, app_text))
                    print(f"  run {number}: app {_line(result.app[-1])};"
                          f" raw SDK {result.raw[-1].first_token:.3f} s", flush=True)
            finally:
                browser.close()
    except openai.OpenAIError as exc:
        raise BenchError(f"the raw SDK's request failed: {exc}") from exc
    finally:
        processes.stop_all()
    return result


def _line(run: AppRun) -> str:
    return (f"first words visible {run.visible:.3f} s (in the DOM {run.in_dom:.3f} s,"
            f" {run.first_text[:20]!r}); Enter -> request {run.to_request:.3f} s, the server's"
            f" first event {run.server_first:.3f} s after it")


def _median(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} s"


def report(result: FirstToken) -> None:
    runs = len(result.app)
    rows = [
        ("figure", "value", "target", "result"),
        (f"app: Enter -> first words visible, median of {runs}", f"{result.app_median:.3f} s",
         f"<= raw + {MARGIN:g} s", "PASS" if result.passed else "FAIL"),
        (f"raw SDK: call -> first token, median of {runs}", f"{result.raw_median:.3f} s",
         "(baseline)", "-"),
        ("app minus raw", f"{result.app_median - result.raw_median:+.3f} s",
         f"<= {MARGIN:+.3f} s", "PASS" if result.passed else "FAIL"),
        ("without the server's own time (request -> first event): app / raw, median",
         f"{result.app_added:.3f} s / {result.raw_added:.3f} s", "(reported)", "-"),
        ("app: Enter -> its request at the server, median",
         _median([r.to_request for r in result.app]), "(reported)", "-"),
        ("server: request -> first event, median (app / raw)",
         f"{_median([r.server_first for r in result.app])} /"
         f" {_median([r.server_first for r in result.raw])}", "(reported)", "-"),
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    print()
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=RUNS,
                        help=f"questions each way; medians are compared (default {RUNS})")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the servers on kill too
    started, load = time.monotonic(), os.getloadavg()[0]
    print(f"first token: SmolLM2-135M on llama.cpp's server, {args.runs} questions through the"
          " app in Chromium and as many through the raw openai SDK, alternating", flush=True)
    with tempfile.TemporaryDirectory(prefix="switchboard-first-token-") as work:
        try:
            result = measure(args.runs, Path(work))
        except BenchError as exc:
            print(f"bench could not run: {exc}", file=sys.stderr)
            return 2
    report(result)
    print(f"\n(bench took {time.monotonic() - started:.0f} s; load average {load:.1f} at the"
          f" start, {os.getloadavg()[0]:.1f} at the end, {os.cpu_count()} CPUs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
