"""Search as the user types, in a real Chromium against `streamlit run`: each keystroke to the
hits drawn. bench/history.py calls it (--typing) once a backend holds its generated history.

The page records, with its own clock (performance.now): each key pressed in the search box,
the first message the page sends the server after it (the box commits what is typed after a
250 ms pause), and the moment the hits are drawn after that: the app's run has ended and the
frame after the server's last message for it is painted (the sidebar's list is a fragment, a
run of its own that may end too fast for the page's running/not-running mark to change). The word is
typed one letter at a time, a pause after each, so every letter is one search. Reported:

- keystroke -> hits drawn, the pause included (what the user waits),
- the box's commit -> hits drawn (the server's search and the drawing),     target <= 200 ms p95
- baseline: the box cleared -> the plain chat list drawn (a rerun without a search), same run.
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]
TARGET_MS = 200.0
PAUSE_S = 0.6  # after each letter: longer than the box's 250 ms, so each letter commits
SEARCH_BOX = '.st-key-history-search input'
IDLE = ('[data-testid="stApp"][data-test-script-state="notRunning"]'
        '[data-test-connection-state="CONNECTED"]')

# Installed before the app's own scripts: the page's clock readings of keys, of what it sends
# the server, of the ends of runs (the app's script-state attribute back to notRunning), and
# of the first frame painted after each message from the server. A fragment's run can be over
# between two frames, the attribute never seen to change: its last message's frame is its end.
_RECORDER = """
window.__sb = {keys: [], sends: [], ends: [], received: [], frames: []};
const send = WebSocket.prototype.send;
WebSocket.prototype.send = function (data) {
  window.__sb.sends.push(performance.now());
  return send.call(this, data);
};
const Native = window.WebSocket;
window.WebSocket = class extends Native {
  constructor(...args) {
    super(...args);
    this.addEventListener("message", () => {
      window.__sb.received.push(performance.now());
      // two frames: the app decodes the message, then draws it
      requestAnimationFrame(() => requestAnimationFrame(
        () => window.__sb.frames.push(performance.now())));
    });
  }
};
document.addEventListener("keydown", () => window.__sb.keys.push(performance.now()), true);
new MutationObserver((changes) => {
  for (const change of changes) {
    if (change.target.getAttribute("data-test-script-state") === "notRunning")
      window.__sb.ends.push(performance.now());
  }
}).observe(document, {attributes: true, subtree: true,
                      attributeFilter: ["data-test-script-state"]});
"""

# The last key's figures: [key -> drawn, send -> drawn] once its run is drawn: the latest of
# its end and the frame after its last message, when no message has come for QUIET_MS.
QUIET_MS = 300
_LAST_KEY = """(quiet) => {
  const r = window.__sb, key = r.keys[r.keys.length - 1], now = performance.now();
  const sent = r.sends.find((t) => t > key);
  if (sent === undefined) return null;
  const last = r.received[r.received.length - 1];
  if (last === undefined || last < sent || now - last < quiet) return null;
  const after = (list) => list.filter((t) => t > sent);
  const drawn = Math.max(...after(r.ends), ...after(r.frames));
  return [drawn - key, drawn - sent];
}"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_app(env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    """`streamlit run` on a free loopback port, with `env` over this environment."""
    port = _free_port()
    home = tempfile.mkdtemp(prefix="switchboard-typing-")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(REPO / "streamlit_app.py"),
         "--server.headless", "true", "--server.port", str(port), "--server.address",
         "127.0.0.1", "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
        cwd=home, env={**os.environ, "HOME": home, "PYTHONUNBUFFERED": "1", **env},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "_stcore/health", timeout=2):
                return proc, url
        except OSError:
            time.sleep(0.2)
    proc.terminate()
    raise RuntimeError("streamlit did not answer its health check in 60 s")


def _wait_key(page) -> tuple[float, float]:
    handle = page.wait_for_function(_LAST_KEY, arg=QUIET_MS, timeout=60_000)
    key_ms, commit_ms = handle.json_value()
    page.wait_for_selector(IDLE, state="attached", timeout=60_000)
    return key_ms, commit_ms


def measure(url: str, word: str, runs: int, count_text: str,
            sign_in: Callable[[object], None] | None = None) -> dict[str, list[float]]:
    """Type `word` letter by letter `runs` times; the figures of every letter, in ms, and of
    clearing the box. The last letter's count must read `count_text`."""
    from playwright.sync_api import sync_playwright

    figures = {"key": [], "commit": [], "baseline": []}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
            page.add_init_script(_RECORDER)
            page.goto(url)
            page.wait_for_selector(IDLE, state="attached", timeout=60_000)
            if sign_in is not None:
                sign_in(page)
            box = page.locator(SEARCH_BOX)
            for _ in range(runs):
                box.click()
                for letter in word:
                    page.keyboard.type(letter)
                    time.sleep(PAUSE_S)
                    key_ms, commit_ms = _wait_key(page)
                    figures["key"].append(key_ms)
                    figures["commit"].append(commit_ms)
                shown = page.locator('[data-testid="stSidebar"]').inner_text()
                if count_text not in shown:
                    raise RuntimeError(f"the search for {word!r} did not say {count_text!r}")
                page.keyboard.press("Control+A")
                page.keyboard.press("Backspace")
                time.sleep(PAUSE_S)
                figures["baseline"].append(_wait_key(page)[1])
        finally:
            browser.close()
    return figures


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def report(backend: str, word: str, figures: dict[str, list[float]]) -> None:
    print(f"\n{backend}: search as you type in Chromium, {word!r} typed letter by letter "
          f"({len(figures['key'])} searches)")
    rows = [("keystroke -> hits drawn (the 250 ms pause included)", figures["key"], None),
            ("the box's commit -> hits drawn", figures["commit"], TARGET_MS),
            ("baseline: box cleared -> chat list drawn", figures["baseline"], None)]
    for label, values, target in rows:
        median, high = statistics.median(values), p95(values)
        verdict = ("" if target is None else
                   f"  target p95 <= {target:.0f} ms: {'PASS' if high <= target else 'FAIL'}")
        print(f"  {label:<55} median {median:6.0f} ms  p95 {high:6.0f} ms{verdict}")
    base = statistics.median(figures["baseline"])
    print(f"  commit -> drawn over the baseline: {statistics.median(figures['commit']) / base:.2f}x")
