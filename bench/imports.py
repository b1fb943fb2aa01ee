"""Import benchmark: a 100 MB ChatGPT export through the app's own background import.

It makes a realistic conversations.json (--conversations conversations, about --megabytes MB:
a null root and a hidden system node each, sometimes hidden custom instructions, turns with
regenerated replies and edited questions as branches, image parts and tool steps; see
tests/chatgpt_exports.py), then on each backend imports it in a process of its own exactly as
Settings does (core.history.importing.start_import with the file's bytes, as the uploader
gives them, and the store's opener), and prints:

- the import's time (checking the file whole, then writing every chat), target: at least 5x
  faster than 311 s, the time the same size of file took before (the page's own import, one
  store call per message);
- the import process's peak memory (VmHWM: its largest resident size), target: at most twice
  the app's idle memory, measured in the same run: a `streamlit run` of the app with one
  session that drew its first page, left alone for a few seconds (VmRSS).

The import process loads Streamlit and the app's modules before it starts, as the app has.

    .venv/bin/python bench/imports.py [--backend sqlite|supabase|both] [--conversations N]
        [--megabytes N] [--keep FILE]

Exit 0 once measured, even when a target is missed (that is a result); 2 when it could not run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.chatgpt_exports import conversation, export  # noqa: E402
from tests.fixtures.common import free_port, stop  # noqa: E402  (the suite's own helpers)

OLD_SECONDS = 311.0  # the same size of file through the page's import before
SPEED_TARGET = 5.0
MEMORY_TARGET = 2.0


class BenchError(Exception):
    """The bench could not run."""


def _status(pid: int | str, field: str) -> int:
    """A figure of /proc/<pid>/status in bytes (VmRSS, VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise BenchError(f"no {field} in /proc/{pid}/status")


def make_export(conversations: int, megabytes: float) -> bytes:
    """About `megabytes` MB: the words per turn chosen from a sample of the same shape."""
    import random

    rng = random.Random(1)
    sample = [json.dumps(conversation(rng, n, 6, 60), ensure_ascii=False).encode()
              for n in range(200)]
    per_conversation = sum(map(len, sample)) / len(sample)
    rng = random.Random(1)
    skeleton = [json.dumps(conversation(rng, n, 6, 0), ensure_ascii=False).encode()
                for n in range(200)]
    fixed = sum(map(len, skeleton)) / len(skeleton)
    wanted = megabytes * 1e6 / conversations
    words = max(int(60 * (wanted - fixed) / max(per_conversation - fixed, 1)), 1)
    return export(conversations, seed=1, turns=6, words=words)


def idle_app_memory(work: Path) -> int:
    """The app's resident size, started fresh with one session that drew its first page."""
    data = work / "idle-data"
    data.mkdir()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SUPABASE_", "OPENAI_", "SWITCHBOARD_", "STREAMLIT_"))}
    env.update(SWITCHBOARD_DATA_DIR=str(data), HOME=str(work))
    port = free_port()
    argv = [sys.executable, "-m", "streamlit", "run", str(REPO / "streamlit_app.py"),
            "--server.headless", "true", "--server.port", str(port),
            "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
            "--server.fileWatcherType", "none"]
    with open(work / "streamlit.log", "ab") as log:
        proc = subprocess.Popen(argv, cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}/"
        _wait_healthy(proc, url)
        asyncio.run(_first_page(url))
        time.sleep(3)
        return _status(proc.pid, "VmRSS")
    finally:
        stop(proc)


def _wait_healthy(proc: subprocess.Popen, url: str) -> None:
    import urllib.request

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"the app exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url + "_stcore/health", timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise BenchError("the app did not answer in 60 s")


async def _first_page(url: str) -> None:
    from bench.st_client import ReplyWatcher, Session

    session = await Session.open(url, ReplyWatcher())
    reader = asyncio.create_task(session.read())
    try:
        await session.rerun()
        await asyncio.wait_for(session.finished.wait(), 60)
    finally:
        reader.cancel()
        await session.ws.close()


# ---- the import, in a process of its own


def child(backend: str, path: str, data_dir: str, supabase: str) -> None:
    """Import the file as Settings does; print the figures as JSON."""
    import streamlit  # noqa: F401  (loaded as in the app, before the baseline)

    import core.session  # noqa: F401
    from core.history.importing import start_import

    if backend == "sqlite":
        from core.store.sqlite import SQLiteChatStore

        SQLiteChatStore(Path(data_dir))

        def opener():
            return SQLiteChatStore(Path(data_dir))
        owner = "local"
    else:
        from core.auth import SupabaseAuth
        from core.config import Settings
        from core.store.supabase import SupabaseChatStore

        url, key = supabase.split(" ", 1)
        auth = SupabaseAuth(Settings(supabase_url=url, supabase_anon_key=key))
        user = auth.sign_up(f"bench-import-{uuid.uuid4().hex[:8]}@example.com",
                            "correct horse battery")

        def opener():
            return SupabaseChatStore(auth.client, user.id)
        owner = user.id
    baseline = _status("self", "VmRSS")
    data = Path(path).read_bytes()  # as the uploader gives it: the whole file in memory
    started = time.perf_counter()
    job = start_import(data, opener, owner)
    del data
    while (progress := job.wait(1.0)).running:
        pass
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "peak": _status("self", "VmHWM"),
                      "baseline": baseline, "state": progress.state,
                      "words": progress.words}))


def run_child(backend: str, path: Path, work: Path, supabase: str = "") -> dict:
    data_dir = work / f"{backend}-data"
    done = subprocess.run([sys.executable, __file__, "--child", backend, str(path),
                           str(data_dir), supabase], cwd=REPO, capture_output=True, text=True,
                          timeout=3600)
    if done.returncode:
        raise BenchError(f"the {backend} import failed: {done.stderr.strip()[-1500:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _mb(size: float) -> str:
    return f"{size / 1e6:,.0f} MB"


def report(backend: str, figures: dict, idle: int, size: int) -> None:
    speed = OLD_SECONDS / figures["seconds"]
    ratio = figures["peak"] / idle
    print(f"\n{backend}: {figures['state']}: {figures['words']}")
    if figures["state"] != "done":
        print(f"  the import did not finish (after {figures['seconds']:.1f} s): no figure")
        return
    print(f"  time    {figures['seconds']:8.1f} s   {size / 1e6 / figures['seconds']:5.1f} MB/s"
          f"   {speed:5.1f}x faster than {OLD_SECONDS:.0f} s   (target >= {SPEED_TARGET:.0f}x:"
          f" {'met' if speed >= SPEED_TARGET else 'MISSED'})")
    print(f"  memory  peak {_mb(figures['peak'])} (before reading the file "
          f"{_mb(figures['baseline'])}); the app idle {_mb(idle)}: {ratio:.2f}x   "
          f"(target <= {MEMORY_TARGET:.0f}x: {'met' if ratio <= MEMORY_TARGET else 'MISSED'})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "supabase", "both"), default="both")
    parser.add_argument("--conversations", type=int, default=10_000)
    parser.add_argument("--megabytes", type=float, default=100.0)
    parser.add_argument("--keep", type=Path, help="write the export here too")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return 0
    try:
        with tempfile.TemporaryDirectory(prefix="bench-imports-") as folder:
            work = Path(folder)
            started = time.perf_counter()
            data = make_export(args.conversations, args.megabytes)
            path = work / "conversations.json"
            path.write_bytes(data)
            if args.keep:
                args.keep.write_bytes(data)
            print(f"export: {args.conversations:,} conversations, {_mb(len(data))}, made in "
                  f"{time.perf_counter() - started:.1f} s", flush=True)
            size = len(data)
            del data
            idle = idle_app_memory(work)
            print(f"the app idle (one session, first page drawn): {_mb(idle)}", flush=True)
            if args.backend in ("sqlite", "both"):
                report("SQLite", run_child("sqlite", path, work), idle, size)
            if args.backend in ("supabase", "both"):
                run_supabase(path, work, idle, size)
    except BenchError as exc:
        print(f"could not run: {exc}", file=sys.stderr)
        return 2
    return 0


def run_supabase(path: Path, work: Path, idle: int, size: int) -> None:
    from tests.supabase_stack.stack import Tools, start_stack, stop_stack

    tools = Tools.from_environment()
    if absent := tools.missing():
        print(f"\nSupabase: not measured (missing {', '.join(absent)}: run "
              "`bash tests/run_all.sh` once)")
        return
    stack = start_stack(tools)
    try:
        figures = run_child("supabase", path, work, f"{stack.url} {stack.anon_key}")
        report("Supabase", figures, idle, size)
    finally:
        stop_stack(stack)


if __name__ == "__main__":
    sys.exit(main())
