"""Faults benchmark: how long until the right message when the store makes the app wait.

For a locked SQLite file (another connection holding every lock of the real data file) and
for PostgreSQL stopped under a signed-in session (the Supabase stand-in stack the tests use,
tests/supabase_stack, started privately), the app is driven through streamlit.testing's
AppTest and each figure is the wall time of one page run until its message is on the page:

- opening Settings,                         target <= 3 s
- pressing Save there,                      target <= 3 s
- sending a chat message,                   target <= 3 s

and, through the chat's own periodic save of a streaming reply (Conversation.keeping_partial,
what the chat page streams through), the longest pause of a reply streaming one piece every
50 ms while its store is locked or down,   target <= 0.5 s.

A small model server of our own (loopback, OpenAI chat API, streamed) answers the chat.

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

from core.chat.call import Reply  # noqa: E402
from core.history.conversation import Conversation  # noqa: E402
from core.store.sqlite import DB_FILENAME  # noqa: E402

TARGET_S = 3.0
STREAM_TARGET_S = 0.5
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


def model_server() -> str:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Model)
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
           target: float = TARGET_S) -> None:
    result = "PASS" if right and seconds <= target else "FAIL"
    note = "" if right else "  (the right message was not shown)"
    rows.append((backend, what, seconds, target, result))
    print(f"  {backend:9} {what:34} {seconds:7.2f} s  target <= {target:.1f} s  {result}{note}",
          flush=True)


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


def stream_pause(store, fault) -> float:
    """The longest pause of a reply streaming a piece every 50 ms through the chat's periodic
    save (every 0.2 s here), the store faulted from the first piece on."""
    conversation = Conversation(store=store)
    conversation.add_user("hello")
    reply = conversation.begin_reply()
    gap, longest = 0.05, 0.0

    def pieces():
        for i in range(60):
            time.sleep(gap)
            reply.add_answer(f"w{i} ")
            yield f"w{i} "

    with fault():
        last = time.monotonic()
        for _ in conversation.keeping_partial(pieces(), reply, every=0.2):
            now = time.monotonic()
            longest = max(longest, now - last - gap)
            last = now
    conversation.finish_reply(reply)
    return longest


def run_sqlite(rows: list, base_url: str) -> None:
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
    pause = stream_pause(SQLiteChatStore(folder), locked)
    figure(rows, "SQLite", "longest stream pause", pause, True, STREAM_TARGET_S)


def run_supabase(rows: list, base_url: str) -> None:
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
        pause = stream_pause(SupabaseChatStore(auth.client, user.id), database_down)
        figure(rows, "Supabase", "longest stream pause", pause, True, STREAM_TARGET_S)
    finally:
        stop_stack(stack)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "supabase", "both"), default="both")
    args = parser.parse_args(argv)
    base_url = model_server()
    rows: list = []
    print("Time until the right message while the store makes the app wait")
    try:
        if args.backend in ("sqlite", "both"):
            run_sqlite(rows, base_url)
        if args.backend in ("supabase", "both"):
            run_supabase(rows, base_url)
    except BenchError as exc:
        print(f"bench/faults.py could not run: {exc}", file=sys.stderr)
        return 2
    failed = [r for r in rows if r[4] == "FAIL"]
    print(f"{len(rows) - len(failed)} of {len(rows)} within target")
    return 0


if __name__ == "__main__":
    sys.exit(main())
