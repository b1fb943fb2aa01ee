"""Faults benchmark: how long until the right message when the store makes the app wait.

For a locked SQLite file (another connection holding every lock of the real data file) and
for PostgreSQL stopped under a signed-in session (the Supabase stand-in stack the tests use,
tests/supabase_stack, started privately), the app is driven through streamlit.testing's
AppTest and each figure is the wall time of one page run until its message is on the page:

- opening Settings,                         target <= 3 s
- pressing Save there,                      target <= 3 s
- sending a chat message,                   target <= 3 s

and, for a reply run as the app runs every reply (a worker of core.history.replies streaming it
while the process's keeper stores it, here every 0.2 s), its store locked or down from before
its first piece until after its last, a piece every 50 ms from the model server:

- the longest pause between two pieces the worker received,
  beyond the server's own 50 ms,            target <= 0.5 s;
- once the store answers again, the time until the reply's end is stored (no time target: it
  must be stored, whole and marked complete).

Small model servers of our own (loopback, OpenAI chat API, streamed) answer the chat.

    .venv/bin/python bench/faults.py [--backend sqlite|supabase|both]

Exit 0 once measured, even when a target is missed (that is a result); 2 when it could not run.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import tempfile
import threading
import time
import uuid
from contextlib import closing, contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from core.config import load_settings  # noqa: E402
from core.history.model import Chat, Message  # noqa: E402
from core.history.replies import Ask, Replies  # noqa: E402
from core.providers.kinds import Target  # noqa: E402
from core.store.sqlite import DB_FILENAME  # noqa: E402
from tests.replying import TimedJob  # noqa: E402

TARGET_S = 3.0
STREAM_TARGET_S = 0.5
PACE_S = 0.05  # between two pieces of the paced reply
PIECES = 60
MODEL = "bench-model"
KEY = "bench-key"
PASSWORD = "bench-password-1"


class BenchError(Exception):
    pass


class _Model(BaseHTTPRequestHandler):
    """A model server: lists one model, streams a short reply."""

    def log_message(self, *args) -> None:
        pass

    def _json(self, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._json({"object": "list", "data": [{"id": MODEL, "object": "model"}]})

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        for i, word in enumerate(["fine", " and", " you", "?"]):
            chunk = {"id": "b", "object": "chat.completion.chunk", "model": MODEL,
                     "choices": [{"index": 0, "delta": {"content": word},
                                  "finish_reason": "stop" if i == 3 else None}]}
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
        self.wfile.write(b"data: [DONE]\n\n")


def _chunk(delta: dict, finish: str | None = None) -> bytes:
    chunk = {"id": "b", "object": "chat.completion.chunk", "model": MODEL,
             "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return f"data: {json.dumps(chunk)}\n\n".encode()


class _PacedModel(_Model):
    """A model server that streams PIECES words, PACE_S seconds apart."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        for i in range(PIECES):
            if i:
                time.sleep(PACE_S)
            self.wfile.write(_chunk({"content": f"w{i} "}))
            self.wfile.flush()
        self.wfile.write(_chunk({}, "stop") + b"data: [DONE]\n\n")


def model_server(handler=_Model) -> str:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}/v1"


def timed(action) -> tuple[object, float]:
    start = time.monotonic()
    result = action()
    return result, time.monotonic() - start


def compatible(name: str) -> str:
    return f"settings:openai-compatible:{name}"


def said(at) -> str:
    return "\n".join([e.value for e in at.error] + [w.value for w in at.warning])


def ok(at):
    if at.exception:
        raise BenchError(f"the page failed: {at.exception}")
    return at


def figure(rows: list, backend: str, what: str, seconds: float, right: bool,
           target: float | None = TARGET_S,
           wrong: str = "the right message was not shown") -> None:
    """`target` None: no time target, only `right`."""
    result = "PASS" if right and (target is None or seconds <= target) else "FAIL"
    note = "" if right else f"  ({wrong})"
    rows.append((backend, what, seconds, target, result))
    aim = "no time target" if target is None else f"target <= {target:.1f} s"
    print(f"  {backend:9} {what:34} {seconds:7.2f} s  {aim:16}  {result}{note}", flush=True)


def configure(at, base_url: str):
    at.switch_page("pages/settings.py").run()
    for name, value in (("base_url", base_url), ("key", KEY), ("model", MODEL)):
        ok(at.text_input(key=compatible(name)).set_value(value).run())
    ok(at.button(key=compatible("save")).click().run())
    at.switch_page("pages/chat.py").run()
    ok(at.chat_input(key="chat:input").set_value("hello").run())
    if at.error:
        raise BenchError(f"the chat did not work before the fault: {said(at)}")
    return at


def page_figures(rows: list, backend: str, at, fault, words: str) -> None:
    """Settings open, Save, send while `fault` holds; `words` is in the right message."""
    at.switch_page("pages/chat.py").run()
    with fault():
        at.switch_page("pages/settings.py")
        at, took = timed(lambda: ok(at.run()))
        figure(rows, backend, "Settings open", took, words in said(at))
        ok(at.text_input(key=compatible("model")).set_value("typed-during-the-fault").run())
        at, took = timed(lambda: ok(at.button(key=compatible("save")).click().run()))
        figure(rows, backend, "Save", took, words in said(at))
        at.switch_page("pages/chat.py").run()
        at, took = timed(lambda: ok(at.chat_input(key="chat:input").set_value("hi").run()))
        figure(rows, backend, "send", took, words in said(at))


def _waited(done, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not done():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def stream_figures(rows: list, backend: str, store, fault, paced_url: str) -> None:
    """A reply streamed by a worker while `fault` holds its store, from before the first piece
    until after the last: the longest pause between pieces, then the time until its end is
    stored once the store answers again."""
    chat = store.save_chat(Chat(title="bench"))
    question = store.add_message(Message(chat.id, "user", "hello"))
    job = TimedJob(Message(chat.id, "assistant", "", parent_id=question.id, status="streaming"),
                 store, store.user_id)
    ask = Ask(load_settings(environ={}, dotenv_path=None),
              Target("openai-compatible", "Bench", paced_url, KEY, MODEL),
              [{"role": "user", "content": "hello"}])
    replies = Replies(workers=1, writers=1, save_every=0.2)
    with fault():
        replies.start(job, ask)
        if not _waited(lambda: job.done, 60):
            raise BenchError("the paced reply did not end within 60 s")
        stored_during = job.added
    back = time.monotonic()
    gaps = [later - earlier for earlier, later in zip(job.received, job.received[1:])]
    streamed = job.final.status == "complete" and len(job.received) == PIECES
    figure(rows, backend, "longest stream pause", max(gaps, default=0.0) - PACE_S,
           streamed and not stored_during, STREAM_TARGET_S,
           wrong=f"{job.final.status}, {len(job.received)} pieces"
                 + (", stored while the store was faulted" if stored_during else ""))
    _waited(lambda: job.stored or job.problem is not None, 120)
    found = [(m.status, m.content) for m in store.messages(chat.id) if m.id == job.id]
    whole = job.stored and found == [("complete", job.final.content)]
    figure(rows, backend, "reply stored after the fault", time.monotonic() - back, whole, None,
           wrong=f"not stored whole: {job.problem or 'still not stored after 120 s'}")


def run_sqlite(rows: list, base_url: str, paced_url: str) -> None:
    from core.store.sqlite import SQLiteChatStore
    from tests.apptest import open_app

    folder = Path(tempfile.mkdtemp(prefix="bench-faults-")) / "data"
    os.environ["SWITCHBOARD_DATA_DIR"] = str(folder)
    for name in ("SUPABASE_URL", "SUPABASE_ANON_KEY", "SWITCHBOARD_ENCRYPTION_KEYS"):
        os.environ.pop(name, None)
    at = configure(ok(open_app(timeout=120)), base_url)

    @contextmanager
    def locked():
        with closing(sqlite3.connect(folder / DB_FILENAME, isolation_level=None)) as other:
            other.execute("begin exclusive")
            try:
                yield
            finally:
                other.execute("commit")

    page_figures(rows, "SQLite", at, locked, "Your data is busy")
    with locked():
        fresh, took = timed(lambda: open_app(timeout=120))
    figure(rows, "SQLite", "new tab (Chat open)", took, "Your data is busy" in said(fresh))
    stream_figures(rows, "SQLite", SQLiteChatStore(folder), locked, paced_url)


def run_supabase(rows: list, base_url: str, paced_url: str) -> None:
    from cryptography.fernet import Fernet

    from core.auth import SupabaseAuth
    from core.config import Settings
    from core.store.supabase import SupabaseChatStore
    from tests.apptest import open_app
    from tests.supabase_stack.stack import Tools, start_stack, stop_stack

    tools = Tools.from_environment()
    if absent := tools.missing():
        raise BenchError(f"missing {', '.join(absent)}: `source tests/setup/supabase.sh` from "
                         "the repository root")
    stack = start_stack(tools)
    try:
        os.environ.update(SUPABASE_URL=stack.url, SUPABASE_ANON_KEY=stack.anon_key,
                          SWITCHBOARD_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
                          SWITCHBOARD_ALLOWED_HOSTS="127.0.0.1")
        at = ok(open_app(timeout=120))
        at.switch_page("pages/sign_up.py").run()
        at.text_input(key="sign_up:email").set_value(
            f"bench-faults-{uuid.uuid4().hex[:8]}@example.com")
        at.text_input(key="sign_up:password").set_value(PASSWORD)
        ok(at.button[0].click().run())
        at = configure(at, base_url)

        @contextmanager
        def database_down():
            stack.stop_postgres()
            try:
                yield
            finally:
                stack.start_postgres()

        page_figures(rows, "Supabase", at, database_down, "unavailable")
        auth = SupabaseAuth(Settings(supabase_url=stack.url, supabase_anon_key=stack.anon_key))
        user = auth.sign_up(f"bench-stream-{uuid.uuid4().hex[:8]}@example.com", PASSWORD)
        stream_figures(rows, "Supabase", SupabaseChatStore(auth.client, user.id), database_down,
                       paced_url)
    finally:
        stop_stack(stack)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "supabase", "both"), default="both")
    args = parser.parse_args(argv)
    base_url, paced_url = model_server(), model_server(_PacedModel)
    rows: list = []
    print("Time until the right message while the store makes the app wait")
    try:
        if args.backend in ("sqlite", "both"):
            run_sqlite(rows, base_url, paced_url)
        if args.backend in ("supabase", "both"):
            run_supabase(rows, base_url, paced_url)
    except BenchError as exc:
        print(f"bench/faults.py could not run: {exc}", file=sys.stderr)
        return 2
    failed = [r for r in rows if r[4] == "FAIL"]
    print(f"{len(rows) - len(failed)} of {len(rows)} within target")
    return 0


if __name__ == "__main__":
    sys.exit(main())
