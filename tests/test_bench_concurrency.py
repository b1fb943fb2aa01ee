"""bench/concurrency.py: where each token arrives in the stream, the delays and chunks lost
computed from it, how bench/st_client.py reads a session's ForwardMsgs, how a stored reply is
judged, nginx's sticky sessions (bench/replicas.py), and tiny real runs of --switch and
--replicas.

The ForwardMsgs are built with Streamlit's own protobuf classes, as the server builds them.
"""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from hypothesis import given, strategies as st
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

import bench.concurrency as concurrency
from bench.concurrency import (
    SessionRun, by_column, check_stored, column_replies, lost_chunks, make_prompt, map_tokens,
    parse_args, percentile, records_of, run_rounds, session_tag, target_sessions, token_delays,
)
from bench.replicas import COOKIE, find_nginx, nginx_site, replicas_of_cookies, start_nginx
from bench.st_client import ReplyWatcher, Session
from bench.stream import BenchError, Processes, servers_python
from tests.fixtures.common import missing

REPO = Path(__file__).resolve().parents[1]


def _split(text: str, sizes: list[int], quiet: list[bool]) -> list[str | None]:
    """`text` in pieces of the given sizes (cycled), with text-less events where quiet says."""
    pieces, start = [None], 0  # the role event comes first, as llm-katan sends it
    for i in range(len(text)):
        if start >= len(text):
            break
        if quiet[i % len(quiet)]:
            pieces.append(None)
        size = sizes[i % len(sizes)]
        pieces.append(text[start:start + size])
        start += size
    return pieces + [None, None]  # the finish event and [DONE]


@given(tokens=st.integers(1, 60), sizes=st.lists(st.integers(1, 9), min_size=1, max_size=8),
       quiet=st.lists(st.booleans(), min_size=1, max_size=5))
def test_a_token_arrives_with_the_event_that_completes_it(tokens, sizes, quiet):
    """Property: token k is whole in the text up to its event, and not in the text before it,
    for any chunking of the echo and any events without text in between."""
    text = "[echo] header\nUser: s0001 " + " ".join(f"t{k:05d}" for k in range(1, tokens + 1))
    pieces = _split(text, sizes, quiet)
    reply = map_tokens(pieces)
    assert len(reply.token_events) == tokens
    for k, event in enumerate(reply.token_events, start=1):
        assert f"t{k:05d}" in "".join(p for p in pieces[:event + 1] if p)
        assert f"t{k:05d}" not in "".join(p for p in pieces[:event] if p)
    assert reply.events == len(pieces)
    assert reply.content_chunks == sum(1 for p in pieces if p)


def test_the_prompt_gives_every_session_the_same_length_and_tokens_in_order():
    prompts = [make_prompt(n, 200) for n in (1, 42, 9999)]
    assert len({len(p) for p in prompts}) == 1
    assert len(prompts[0]) >= 200 * 4
    assert prompts[1].startswith("s0042 t00001 t00002")
    assert "\n\nt00040" in prompts[0]  # paragraphs: the reply is several Markdown blocks
    reply = map_tokens([None, prompts[0]])  # one piece: every token in event 1
    assert reply.token_events == [1] * len(reply.token_events)
    assert prompts[0].endswith(f"t{len(reply.token_events):05d}")


def test_delays_use_the_first_update_that_reaches_each_token():
    # Tokens 1..4 complete in events 2, 3, 5, 6; at 10 events/s from t=100.0.
    updates = [(100.5, 1), (101.0, 3)]  # token 2 and 3 come in the same update
    delays = token_delays(updates, 100.0, 10, [2, 3, 5, 6])
    assert delays == [100.5 - 100.2, 101.0 - 100.3, 101.0 - 100.5]  # token 4 never came


@given(values=st.lists(st.floats(-10, 10), min_size=1, max_size=200), q=st.floats(1, 100))
def test_percentile_is_the_nearest_rank(values, q):
    """Property: at least q % of the values are at or below it, and fewer than q % below it."""
    p = percentile(values, q)
    assert p in values
    assert sum(v <= p for v in values) >= q / 100 * len(values) - 1e-9
    assert sum(v < p for v in values) < q / 100 * len(values)


def test_lost_chunks_counts_what_follows_the_last_token_held_in_order():
    pieces = [None] + ["t0000", "1 t00", "002 ", "t000", "03"] + [None, None]
    reply = map_tokens(pieces)  # tokens complete in events 2, 3, 5
    assert lost_chunks(reply, [1, 2, 3], 3) == 0
    assert lost_chunks(reply, [1, 2], 3) == 2  # the final text lacks token 3: events 4, 5
    assert lost_chunks(reply, [1, 3], 3) == 3  # a gap: everything after token 1 counts
    assert lost_chunks(reply, None, 2) == 2  # never finished: from what came live
    assert lost_chunks(reply, None, 0) == 5  # nothing at all


def test_a_session_records_only_rising_tokens_from_each_elements_end():
    run = SessionRun(1, "")
    run.on_text(1.0, "[echo] x\nUser: s0001 t00001 t00002")
    run.on_text(1.1, "[echo] x\nUser: s0001 t00001 t00002")  # the same again
    run.on_text(1.2, "t00041 t00042 t0004")  # a later block; the last token is incomplete
    run.on_text(1.3, "t00001 t00002")  # an earlier block sent again
    assert run.updates == [(1.0, 2), (1.2, 42)]


def test_the_relay_tag_is_the_session_word_the_prompt_starts_with():
    body = {"model": "m", "messages": [{"role": "system", "content": "s0009"},
                                       {"role": "user", "content": "s0042 t00001"}]}
    assert session_tag(json.dumps(body).encode()) == "s0042"
    assert session_tag(b'{"messages": [{"content": "Warm-up"}]}') is None
    assert session_tag(b"not json") is None


# ---------------------------------------------------------------- the protocol client's reading


def _block(path, **block) -> ForwardMsg:
    msg = ForwardMsg()
    msg.metadata.delta_path.extend(path)
    for kind, value in block.items():
        if kind == "chat_message":
            msg.delta.add_block.chat_message.name = value
        else:
            getattr(msg.delta.add_block, kind).SetInParent()
    return msg


def _markdown(path, body, caption=False) -> ForwardMsg:
    msg = ForwardMsg()
    msg.metadata.delta_path.extend(path)
    msg.delta.new_element.markdown.body = body
    msg.delta.new_element.markdown.element_type = 2 if caption else 1  # CAPTION / NATIVE
    return msg


def _new_run() -> ForwardMsg:
    msg = ForwardMsg()
    msg.new_session.page_script_hash = "chat"
    return msg


def test_the_watcher_follows_only_the_assistants_own_text():
    seen = []
    watcher = ReplyWatcher(on_text=lambda at, text: seen.append((at, text)))
    code = ForwardMsg()
    code.metadata.delta_path.extend([0, 3, 2, 0])
    code.delta.new_element.code.code_text = "t00001 t00002 t00003 (the Copy popover)"
    alert = ForwardMsg()
    alert.metadata.delta_path.extend([0, 4])
    alert.delta.new_element.alert.body = "This chat is not being saved."
    for at, msg in enumerate([
        _new_run(),
        _block([0, 2], chat_message="user"), _markdown([0, 2, 0], "s0001 t00001 t00002 t00003"),
        _block([0, 3], chat_message="assistant"), _block([0, 3, 0], flex_container=True),
        _markdown([0, 3, 0, 0], "first block t00001"), _markdown([0, 3, 1], "t00002 t0000"),
        _markdown([0, 3, 1], "t00002 t00003"), _markdown([0, 3, 3], "model · 9 tokens", True),
        _block([0, 3, 2], popover=True), code, alert,
    ]):
        watcher.feed(float(at), msg)
    assert seen == [(5.0, "first block t00001"), (6.0, "t00002 t0000"), (7.0, "t00002 t00003")]
    assert watcher.reply_text() == "first block t00001\n\nt00002 t00003"
    assert watcher.alerts == ["This chat is not being saved."]
    finished = ForwardMsg()
    finished.script_finished = ForwardMsg.FINISHED_SUCCESSFULLY
    watcher.feed(20.0, finished)
    assert watcher.last_finish == ForwardMsg.FINISHED_SUCCESSFULLY
    watcher.feed(21.0, _new_run())  # a new run: its reply is drawn afresh
    assert watcher.reply_text() == "" and watcher.alerts == []


def _finished(status=ForwardMsg.FINISHED_SUCCESSFULLY) -> ForwardMsg:
    msg = ForwardMsg()
    msg.script_finished = status
    return msg


def test_a_fragments_run_keeps_what_the_page_showed_elsewhere():
    watcher = ReplyWatcher()
    for msg in [_new_run(), _block([0, 3], chat_message="assistant"),
                _markdown([0, 3, 0], "t00001 t00002")]:
        watcher.feed(0.0, msg)
    fragment = _new_run()
    fragment.metadata.run.fragment_ids.append("live-reply")
    watcher.feed(1.0, fragment)
    watcher.feed(1.1, _markdown([0, 3, 1], "t00003"))
    assert watcher.reply_text() == "t00001 t00002\n\nt00003"
    watcher.feed(2.0, _new_run())  # a full run draws the page afresh
    assert watcher.reply_text() == ""


def _button(key: str, label: str) -> ForwardMsg:
    msg = ForwardMsg()
    msg.metadata.delta_path.extend([1, 0])
    button = msg.delta.new_element.button
    button.id, button.label = f"$$ID-0123abcd-{key}", label
    return msg


def test_the_session_knows_the_widgets_the_address_and_whether_a_run_is_going():
    session = Session(None, ReplyWatcher())
    address = ForwardMsg()
    address.page_info_changed.query_string = "chat=42"
    for msg in [_new_run(), _button("chat:new", "New chat"),
                _button("history:open:42", "s0001 t00001"), address]:
        session._note(msg)
    assert session.running and not session.finished.is_set()
    assert session.widget_id("chat:new") == "$$ID-0123abcd-chat:new"
    assert session.widget_id("history:open:4") is None  # a key is matched whole
    assert session.query_string == "chat=42"
    fragment = _new_run()
    fragment.metadata.run.fragment_ids.append("f")
    session._note(_finished())
    session._note(fragment)
    session._note(_finished(ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY))
    assert session.finished.is_set() and not session.running
    assert session.widget_id("chat:new")  # a fragment's run leaves the other widgets drawn
    session._note(_new_run())
    assert session.widget_id("chat:new") is None  # a full run draws them again, or not


def _keyed(path, key: str) -> ForwardMsg:
    msg = _block(path, flex_container=True)
    msg.delta.add_block.id = f"$$ID-0123abcd-{key}"
    return msg


def test_the_watcher_follows_each_compared_column_on_its_own():
    seen = []
    watcher = ReplyWatcher(on_column_text=lambda at, column, text: seen.append((column, text)))
    for at, msg in enumerate([
        _new_run(), _keyed([0, 5], "compare-col-0"), _keyed([0, 6], "compare-col-1"),
        _markdown([0, 5, 0], "**m · Relay 1**"), _keyed([0, 5, 1], "compare-body-0"),
        _markdown([0, 5, 1, 0], "t00001 t00002"), _markdown([0, 6, 0], "**m · Relay 2**"),
        _markdown([0, 6, 1], "t00001"), _markdown([0, 5, 2], "first token 0.2 s", True),
        _block([0, 6, 2], expandable=True), _markdown([0, 6, 2, 0], "t00099 (thoughts)"),
        _block([0, 4], chat_message="assistant"), _markdown([0, 4, 0], "t00050 elsewhere"),
    ]):
        watcher.feed(float(at), msg)
    assert watcher.column_text(0) == "**m · Relay 1**\n\nt00001 t00002"
    assert watcher.column_text(1) == "**m · Relay 2**\n\nt00001"
    assert (0, "t00001 t00002") in seen and all("t00099" not in text for _, text in seen)
    assert watcher.reply_text() == "t00050 elsewhere"  # a reply of its own is followed as before
    watcher.feed(20.0, _markdown([0, 5], "the column replaced by an element"))
    assert "t00001 t00002" in watcher.column_text(0)  # what it drew stays until the next run
    watcher.feed(21.0, _new_run())
    assert watcher.column_text(0) == "" and watcher.column_text(1) == ""


class _Socket:
    """Keeps what a session sends."""

    def __init__(self) -> None:
        self.sent: list[BackMsg] = []

    async def send(self, data: bytes) -> None:
        msg = BackMsg()
        msg.ParseFromString(data)
        self.sent.append(msg)


def _multiselect(key: str, options: list[str], value: list[str] | None = None) -> ForwardMsg:
    msg = ForwardMsg()
    msg.metadata.delta_path.extend([1, 2, 0])
    element = msg.delta.new_element.multiselect
    element.id, element.label = f"$$ID-0123abcd-{key}", "Models to compare"
    element.options.extend(options)
    if value is not None:
        element.raw_values.extend(value)
        element.set_value = True
    return msg


def _widgets(msg: BackMsg) -> dict[str, object]:
    found = {}
    for widget in msg.rerun_script.widget_states.widgets:
        kind = widget.WhichOneof("value")
        found[widget.id] = (list(widget.string_array_value.data) if kind == "string_array_value"
                            else getattr(widget, kind).data if kind == "chat_input_value"
                            else getattr(widget, kind))
    return found


def test_a_picked_multiselect_goes_with_every_rerun_until_the_app_sets_another():
    """As a browser sends it: the page reads the models to compare before drawing them."""
    socket, session = _Socket(), Session(None, ReplyWatcher())
    session.ws = socket
    labels = ["m · Relay 1", "m · Relay 2"]
    session._note(_new_run())
    session._note(_multiselect("compare:models", ["m · A", *labels]))
    models = session.widget_id("compare:models")
    assert models == "$$ID-0123abcd-compare:models"
    assert session.multiselects[models] == ("m · A", *labels)
    session.chat_input_id = "chat"

    async def talk() -> None:
        await session.select(models, labels)
        await session.rerun("s0001 t00001")
        session._note(_multiselect("compare:models", ["m · A", *labels], value=[]))  # sent
        await session.rerun("s0001 t00002")

    asyncio.run(talk())
    assert [_widgets(msg) for msg in socket.sent] == [
        {models: labels}, {"chat": "s0001 t00001", models: labels},
        {"chat": "s0001 t00002", models: []}]


def test_each_compared_reply_is_judged_as_a_reply_of_its_own():
    run = SessionRun(7, "s0007 t00001", compared=("m · Relay 1", "m · Relay 2"))
    run.column_updates, run.column_final = [[(1.0, 1)], []], [[1, 2], None]
    run.on_column_text(2.0, 1, "t00001 t00002")
    run.on_column_text(3.0, 5, "t00009")  # a column it did not ask for
    run.submitted = 0.5
    replies = column_replies([SessionRun(1, "s0001"), run])
    assert [r.tag for r in replies] == ["s0001", "s0007/1", "s0007/2"]
    assert replies[2].updates == [(2.0, 2)] and replies[2].highest == 2
    assert (replies[1].final_tokens, replies[2].final_tokens) == ([1, 2], None)
    assert run.reply_tags == ["s0007/1", "s0007/2"]


def test_a_compared_reply_is_stored_whole_only_in_its_own_column():
    labels = ("m · Relay 1", "m · Relay 2")
    whole = "[echo] t00001 t00002"
    records = {tag: _record(len(whole), whole) for tag in ("s0001/1", "s0001/2", "s0002/1",
                                                           "s0002/2")}
    stored = by_column([
        ("s0001 t00001 t00002", whole, "complete", "m · Relay 1"),
        ("s0001 t00001 t00002", whole, "complete", "m · Relay 2"),
        ("s0002 t00001 t00002", whole, "complete", "m · Relay 2"),
        ("s0002 t00001 t00002", whole[:-1], "stopped", "m · Relay 1"),
        ("Warm-up: the first reply", "hi", "complete", "m · OpenAI-compatible"),
    ], labels)
    assert stored[0][0] == "s0001/1 t00001 t00002" and stored[4][0] == "Warm-up: the first reply"
    runs = [SessionRun(n, "", compared=labels) for n in (1, 2)]
    result = check_stored(column_replies(runs), records, stored)
    assert result.whole == 3
    assert result.problems == ["s0002/1: 19 of 20 characters stored (stopped)"]


def test_several_relays_name_each_stream_by_session_and_column(monkeypatch):
    """One relay per compared column, in column order; with one, its records as they are."""
    answers = {"r1": {"s0001": {"n": 1}}, "r2": {"s0001": {"n": 2}, "s0002": {"n": 3}}}
    monkeypatch.setattr(concurrency, "relay_records",
                        lambda relay, since, replies=False: answers[relay])
    assert records_of(["r1"], 0.0) == {"s0001": {"n": 1}}
    assert records_of(["r1", "r2"], 0.0) == {"s0001/1": {"n": 1}, "s0001/2": {"n": 2},
                                             "s0002/2": {"n": 3}}


def test_the_compared_mode_asks_for_25_sessions_on_one_process():
    args = parse_args(["--per-session", "4"])
    assert args.per_session == 4 and args.sessions == [25] and target_sessions(args) == 25
    assert parse_args(["--per-session", "4", "--sessions", "2,5"]).sessions == [2, 5]
    assert parse_args([]).per_session == 1
    for wrong in (["--per-session", "5"], ["--per-session", "0"],
                  ["--per-session", "4", "--switch"], ["--per-session", "2", "--replicas", "2"]):
        with pytest.raises(SystemExit):
            parse_args(wrong)


# ---------------------------------------------------------------- switching, and the store


def test_tokens_sent_while_a_session_was_away_count_from_its_return():
    # Tokens 1..4 in events 1..4 at 1 event/s from t=100: sent at 101, 102, 103, 104. The
    # session left at 101.5 and asked for the chat again at 105; the page showed 2-4 at 106.
    updates = [(101.2, 1), (106.0, 4)]
    assert token_delays(updates, 100.0, 1, [1, 2, 3, 4], returned=105.0) == pytest.approx(
        [0.2, 1.0, 1.0, 1.0])
    assert token_delays(updates, 100.0, 1, [1, 2, 3, 4]) == pytest.approx([0.2, 4.0, 3.0, 2.0])


def _record(chars: int, text: str = "") -> dict:
    import hashlib

    return {"reply": {"chars": chars, "sha256": hashlib.sha256(text.encode()).hexdigest()}}


def test_a_reply_is_stored_whole_only_with_the_text_the_server_sent():
    runs = [SessionRun(n, "") for n in (1, 2, 3, 4, 5)]
    whole, cut = "[echo] t00001 t00002", "[echo] t00001"
    records = {"s0001": _record(len(whole), whole), "s0002": _record(len(whole), whole),
               "s0003": _record(len(whole), whole), "s0004": _record(len(whole), whole)}
    stored = [
        ("s0001 t00001 t00002", whole, "complete"),
        ("s0002 t00001 t00002", cut, "stopped"),
        ("s0003 t00001 t00002", whole.upper(), "complete"),  # as long, other text
        ("Another chat of s0004", whole, "complete"),  # not the session's reply
        ("s0005 t00001 t00002", whole, "complete"),  # the server sent s0005 nothing
    ]
    result = check_stored(runs, records, stored)
    assert result.whole == 1
    assert [p.split(":")[0] for p in result.problems] == ["s0002", "s0003", "s0004", "s0005"]
    assert "13 of 20 characters stored (stopped)" in result.problems[0]


def test_the_switch_and_replica_modes_and_their_targets():
    args = parse_args(["--switch", "--replicas", "2", "--sessions", "4,100"])
    assert args.switch and args.replicas == 2 and args.sessions == [4, 100]
    assert target_sessions(args) == 100 and target_sessions(parse_args([])) == 50
    with pytest.raises(SystemExit):
        parse_args(["--check-browser", "--switch"])


# ---------------------------------------------------------------- nginx's sticky sessions


def test_the_readme_shows_the_nginx_site_the_bench_runs():
    """The deployment section's configuration is the bench's, for two replicas behind TLS."""
    site = nginx_site([8501, 8502], ["listen 443 ssl;",
                                     "ssl_certificate     /etc/ssl/switchboard.pem;",
                                     "ssl_certificate_key /etc/ssl/switchboard.key;"],
                      cookie_flags="; Secure")
    readme = (REPO / "README.md").read_text()
    assert f"```nginx\n{site}```" in readme
    assert "hash $switchboard_replica consistent;" in site


def test_the_nginx_log_tells_which_replicas_each_browser_reached(tmp_path):
    log = tmp_path / "access.log"
    log.write_text("aaa 127.0.0.1:1 200 /\naaa 127.0.0.1:1 101 /_stcore/stream\n"
                   "bbb 127.0.0.1:2 200 /\nbbb 127.0.0.1:1 101 /_stcore/stream\n"
                   "ccc - 404 /nothing\n")
    assert replicas_of_cookies(log) == {"aaa": {"127.0.0.1:1"},
                                        "bbb": {"127.0.0.1:1", "127.0.0.1:2"}}


class _SaysItsPort(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = str(self.server.server_address[1]).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def nginx_in_front(tmp_path):
    """nginx with the bench's site in front of two small servers that answer their port."""
    try:
        find_nginx()
    except BenchError as exc:
        missing(str(exc))
    servers = [ThreadingHTTPServer(("127.0.0.1", 0), _SaysItsPort) for _ in range(2)]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    processes = Processes(tmp_path)
    try:
        url = start_nginx(processes, tmp_path, [s.server_address[1] for s in servers])
        yield url, {str(s.server_address[1]): s for s in servers}
    finally:
        processes.stop_all()
        for server in servers:
            server.shutdown()  # again for one the test stopped: returns at once


def _get(url: str, cookie: str | None = None) -> tuple[str, str | None]:
    request = urllib.request.Request(url, headers={"Cookie": cookie} if cookie else {})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.read().decode(), response.headers.get("Set-Cookie")


def test_nginx_keeps_each_browser_on_one_replica_and_spreads_browsers(nginx_in_front):
    url, servers = nginx_in_front
    browsers: dict[str, str] = {}  # cookie -> the replica (its port) that served it
    for _ in range(30):  # 30 browsers: all on one replica by chance is 1 in 2**29
        port, set_cookie = _get(url)
        assert set_cookie.startswith(f"{COOKIE}=") and "HttpOnly" in set_cookie
        cookie = set_cookie.split(";", 1)[0]
        again = {_get(url + "_stcore/health", cookie) for _ in range(5)}
        assert again == {(port, None)}  # the same replica, and no new cookie
        browsers[cookie] = port
    assert set(browsers.values()) == set(servers)
    # A replica that stops: its browsers reach the other one, the others stay where they were.
    gone = next(iter(servers))
    servers[gone].shutdown()
    servers[gone].server_close()
    for cookie, port in browsers.items():
        assert _get(url, cookie)[0] == (port if port != gone else (set(servers) - {gone}).pop())


# ---------------------------------------------------------------- tiny runs of the new modes


def _katan_or_missing() -> None:
    try:
        servers_python()
    except BenchError as exc:
        missing(str(exc))


def test_a_tiny_switching_round(tmp_path):
    """Two sessions, one switching: it leaves for its other chat and comes back; the other
    loses nothing. Whether the switching one kept its reply (it does not while the reply runs
    inside the page's script), the page and the store say the same, and the round says so."""
    _katan_or_missing()
    args = parse_args(["--switch", "--sessions", "2", "--chunks", "150", "--timeout", "90"])
    [result] = run_rounds(args, tmp_path)
    [switching] = result.switching
    assert switching.number == 1 and switching.switch.made, switching.switch
    assert switching.switch.away < switching.switch.returned
    assert result.lost == result.lost_switching  # the session that stayed lost nothing
    mine = [p for p in result.stored.problems if p.startswith("s0001")]
    assert result.stored.whole == 2 - len(mine) and len(mine) == len(result.stored.problems)
    assert (result.lost_switching == 0) == (not mine)  # the page and the store agree
    assert result.passed is (result.lost == 0 and result.p95 <= 1.0
                             and result.request_p95 <= 0.5 and not mine)
    assert len(result.to_request) == 2 and all(0 < t < 30 for t in result.to_request)


def test_a_tiny_round_on_two_replicas_behind_nginx(tmp_path, supabase_stack):
    """Four sessions, each its own account, through nginx to two Supabase-mode replicas:
    every reply whole on its page and in the store, every browser on one replica."""
    _katan_or_missing()
    try:
        find_nginx()
    except BenchError as exc:
        missing(str(exc))
    args = parse_args(["--replicas", "2", "--sessions", "4", "--chunks", "100",
                       "--timeout", "90"])
    [result] = run_rounds(args, tmp_path, stack=supabase_stack)
    assert result.lost == 0 and result.complete == 4
    assert result.stored.whole == 4, result.stored.problems
    assert result.unsticky == 0 and sum(result.per_replica.values()) == 4
    assert all(name.startswith("127.0.0.1:") for name in result.per_replica)
    assert len(result.last_token) == 4  # every session saw its reply's last token
