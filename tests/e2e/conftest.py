"""End-to-end fixtures: Debian's Chromium through Playwright, and `streamlit run` of the app.

- `browser`: one headless Chromium for all of tests/e2e (the apt package, never `playwright install`).
- `app_factory(env=None, data_dir=None, script=None) -> App`: the real app (or another script
  of the repository, e.g. a test harness) under `streamlit run`, on a free loopback port, in its own data folder and HOME, with only the settings it is given
  (SUPABASE_*, OPENAI_*, SWITCHBOARD_* and STREAMLIT_* from the shell are dropped). Stopped at
  the end of the test; its log is `App.log`. `App.restart()` stops it and starts it again on
  the same address, as a deploy does under an open tab.
- `new_page(device=DESKTOP) -> Page`: a fresh browser context (own cookies and clipboard).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.browser import DESKTOP
from tests.fixtures.common import REPO, free_port, missing, stop

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage",
]
# Settings the app reads from the environment: a test gives each app exactly its own.
_DROPPED_PREFIXES = ("SUPABASE_", "OPENAI_", "SWITCHBOARD_", "STREAMLIT_")


@pytest.fixture(scope="package")  # closed once tests/e2e is done, before the rest of the suite
def browser():
    if not CHROMIUM.exists():
        missing(f"Chromium ({CHROMIUM}, Debian package chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("playwright (PyPI)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture
def new_page(browser, request, tmp_path_factory):
    """new_page(device=DESKTOP) -> Page in a fresh context (DESKTOP or PHONE from browser.py)
    that may use the clipboard.

    When the test fails, each page's screenshot and HTML are kept and their paths printed.
    """
    contexts = []

    def make(device: dict = DESKTOP):
        context = browser.new_context(
            **device,
            permissions=["clipboard-read", "clipboard-write"],
            device_scale_factor=1,
        )
        context.set_default_timeout(20_000)
        contexts.append(context)
        return context.new_page()

    yield make
    failed = getattr(request.node, "report_call", None)
    if failed is not None and failed.failed:
        keep = tmp_path_factory.mktemp("failed-pages")
        for n, page in enumerate(p for c in contexts for p in c.pages):
            try:
                page.screenshot(path=str(keep / f"page-{n}.png"))
                (keep / f"page-{n}.html").write_text(page.content())
            except Exception as exc:  # a page that crashed: say so, keep going
                print(f"page {n}: no screenshot ({exc})")
        print(f"\nscreenshots of the failed test's pages: {keep}")
    for context in contexts:
        context.close()


@dataclass
class App:
    url: str
    data_dir: Path
    log: Path
    proc: subprocess.Popen
    launch: Callable[[], subprocess.Popen]  # the same server again: same port, folder, log

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def restart(self) -> None:
        """Stop the server and start it again on the same port; open tabs reconnect."""
        stop(self.proc)
        self.proc = self.launch()
        _wait_healthy(self)


def _wait_healthy(app: App, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if app.proc.poll() is not None:
            pytest.fail(f"streamlit exited with {app.proc.returncode}:\n{app.log_text()[-3000:]}")
        try:
            with urllib.request.urlopen(app.url + "_stcore/health", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    pytest.fail(f"streamlit did not answer /_stcore/health in {timeout} s:\n{app.log_text()[-3000:]}")


@pytest.fixture
def app_factory(tmp_path_factory, request):
    """app_factory(env=None, data_dir=None, script=None) -> App: `streamlit run streamlit_app.py`
    (or `script`), stopped at the end of the test (the end of its log is printed if the test
    failed)."""
    apps: list[App] = []

    def start(env: dict[str, str] | None = None, data_dir: Path | None = None,
              script: Path | None = None) -> App:
        home = tmp_path_factory.mktemp("app")
        data_dir = data_dir or home / "switchboard-data"
        port = free_port()
        environment = {
            k: v for k, v in os.environ.items() if not k.startswith(_DROPPED_PREFIXES)
        }
        environment.update(
            HOME=str(home),
            SWITCHBOARD_DATA_DIR=str(data_dir),
            PYTHONUNBUFFERED="1",
            SWITCHBOARD_CHAT_TITLES="off",  # on in the tests of titles (env=)
        )
        environment.update(env or {})
        argv = [
            sys.executable, "-m", "streamlit", "run", str(script or REPO / "streamlit_app.py"),
            "--server.headless", "true", "--server.port", str(port),
            "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
            # Others may edit the code while the suite runs: no reload prompts mid-test.
            "--server.fileWatcherType", "none",
            # Only the settings given here: never a developer's .streamlit/secrets.toml.
            "--secrets.files", str(home / "no-secrets.toml"),
            # The toolbar a hosted app's visitors see (no Deploy button in screenshots).
            "--client.toolbarMode", "minimal",
        ]
        log = home / "streamlit.log"

        def launch() -> subprocess.Popen:
            with open(log, "ab") as out:
                return subprocess.Popen(
                    # Run from the app's own temp folder: a developer's .env in the checkout
                    # (which the app reads from the working directory) must not leak in.
                    argv, cwd=home, env=environment, stdin=subprocess.DEVNULL,
                    stdout=out, stderr=subprocess.STDOUT,
                )

        app = App(f"http://127.0.0.1:{port}/", data_dir, log, launch(), launch)
        apps.append(app)
        _wait_healthy(app)
        return app

    yield start
    failed = getattr(request.node, "report_call", None)
    for app in apps:
        stop(app.proc)
        if failed is not None and failed.failed:
            print(f"\n--- end of {app.log}:\n{app.log_text()[-3000:]}")
