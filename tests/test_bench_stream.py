"""The streaming bench's own parts: its prompts, how it judges a case, and its paced relay.

The bench itself (bench/stream.py) is run by hand, never as a test: these check the pieces that
decide what it measures and prints, so a wrong figure cannot pass for a result.
"""

from __future__ import annotations

import dataclasses

import ast
import http.client
import importlib.util
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from tests.fixtures.common import free_port, stop, wait_for_port

REPO = Path(__file__).resolve().parents[1]


def _load_bench():
    spec = importlib.util.spec_from_file_location("bench_stream", REPO / "bench" / "stream.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


bench = _load_bench()
markers = st.from_regex(r"END[0-9A-F]{12}", fullmatch=True)


# ---------------------------------------------------------------- the code-block prompt


@settings(max_examples=40, deadline=None)
@given(size=st.integers(min_value=1, max_value=30_000), marker=markers)
def test_code_prompt_is_one_closed_python_fence_then_the_marker(size, marker):
    """Property: for any size and marker, the message holds exactly one ```python fence,
    closed, around at least `size` characters of code that parses, and ends in the marker
    (so the echo puts the marker last); the pieces checked on the page are that code and
    that marker."""
    prompt = bench.code_prompt(size, marker)
    code, last = prompt.expected
    assert last == marker and prompt.text.endswith("\n\n" + marker)
    assert prompt.text.count("```") == 2
    inside = prompt.text.split("```python\n", 1)[1].split("\n```\n", 1)[0]
    assert inside == code and len(code) >= size
    ast.parse(code)


def test_after_code_prompt_is_a_closed_fence_then_words_ending_in_the_marker():
    prompt = bench.after_code_prompt(4_000, 500, "END1234")
    code, marker = prompt.expected
    assert marker == "END1234" and prompt.text.endswith(" END1234")
    assert prompt.text.count("```") == 2
    inside, words = prompt.text.split("```python\n", 1)[1].split("\n```\n\n", 1)
    assert inside == code and len(code) >= 4_000
    assert len(words) == 500 * bench.CHUNK_CHARS and "`" not in words
    ast.parse(code)


def test_the_200_kb_block_reads_like_real_code():
    """Case c's block: 200 KiB of ordinary lines with classes, functions, async, comments."""
    code = bench.code_prompt(200 * 1024, "END0").expected[0]
    lines = code.splitlines()
    assert len(code) >= 200 * 1024 and len(lines) > 4_000
    assert max(map(len, lines)) <= 100
    tree = ast.parse(code)
    kinds = {type(node).__name__ for node in tree.body}
    assert {"ClassDef", "FunctionDef", "AsyncFunctionDef"} <= kinds
    assert sum("#" in line for line in lines) > 100
    assert bench.code_prompt(200 * 1024, "END0") == bench.code_prompt(200 * 1024, "END0")


# ---------------------------------------------------------------- long tasks in the window


tasks_lists = st.lists(
    st.tuples(st.floats(0, 10_000), st.floats(50, 3_000)).map(tuple), max_size=40)


@given(tasks=tasks_lists, cuts=st.lists(st.floats(0, 12_000), min_size=5, max_size=5))
def test_long_tasks_are_those_of_the_window_each_in_one_phase(tasks, cuts):
    """Property: the window keeps exactly the tasks overlapping [Enter, idle] (one running
    at Enter counts), and the four phases (to the user's message drawn, to the first token,
    streaming, to idle) hold each of them exactly once."""
    submitted, message, first, last, idle = sorted(cuts)
    window = bench.LongTasks.between(tasks, submitted, idle)
    overlapping = [t for t in tasks if t[0] + t[1] > submitted and t[0] < idle]
    assert sorted(window.tasks) == sorted(overlapping)
    assert window.longest == max((d for _, d in overlapping), default=0.0)
    seen = {"messagePerf": message, "firstPerf": first, "lastPerf": last}
    phases = [window.phase(start, end) for _, start, end in bench.window_phases(seen, idle)]
    assert sorted(t for phase in phases for t in phase.tasks) == sorted(window.tasks)


# ---------------------------------------------------------------- verdicts


def _case_run(case_key="a", lag_ms=100, longest=120.0, idle=True, missing=-1, error=None,
              after_end=60.0, stored=None, sent=None):
    ended = 1_800_000_000.0  # the relay's time.time() of its last byte
    seen = {"submitted": ended * 1000 - 10_000, "submittedPerf": 1_000.0, "messagePerf": 1_500.0,
            "firstVisible": ended * 1000 - 9_000, "firstPerf": 2_000.0,
            "markerInDom": None if lag_ms is None else ended * 1000 + lag_ms - 5,
            "lastVisible": None if lag_ms is None else ended * 1000 + lag_ms,
            "lastPerf": 11_000.0, "mutationPerf": 11_500.0,
            "tasks": [[400.0, 100.0], [950.0, 80.0], [5_000.0, longest], [12_000.0, after_end],
                      [14_000.0, 90.0]]}
    final = {"footer": "katan-echo", "error": error, "missing": missing, "length": 10}
    record = {"ended": ended, "first_event": ended - 10, "events": 20_031, "rate": 2000.0,
              "late_max": 0.002, "started": ended - 10.2}
    if sent is not None:
        record["chars"] = sent
    return bench.CaseRun(bench.CASES[case_key], 80_000, 80_000, record, seen, final,
                         13_000.0 if idle else None, stored)


def _passed(run) -> dict[str, bool]:
    return {figure.split(" ", 1)[1]: passed for figure, _, _, passed in run.verdicts()}


@pytest.mark.parametrize("case_key, lag_ms, passes", [
    ("a", 200, True), ("a", 201, False), ("b", 300, True), ("b", 301, False),
    ("c", 500, True), ("c", 501, False), ("a", -3, True), ("c", None, False),
])
def test_last_token_verdict_uses_each_cases_target(case_key, lag_ms, passes):
    run = _case_run(case_key, lag_ms=lag_ms)
    assert _passed(run)["last token visible after the server's end"] is passes
    if lag_ms is None:
        assert run.verdicts()[0][1] == "never"


@pytest.mark.parametrize("longest, idle, passes", [
    (200.0, True, True), (200.5, True, False), (1_695.0, True, False), (90.0, False, False),
])
def test_longest_task_verdict(longest, idle, passes):
    """A page never found idle fails: its window has no end to judge."""
    assert _passed(_case_run(longest=longest, idle=idle))["longest main-thread task"] is passes


def test_the_window_runs_from_enter_to_idle():
    """A task running at Enter counts; one ended before it, or started after idle, does not."""
    run = _case_run(longest=120.0)
    assert [start for start, _ in run.tasks.tasks] == [950.0, 5_000.0, 12_000.0]
    assert run.verdicts()[1][1] == "120 ms (3 over 50 ms)"


@pytest.mark.parametrize("missing, error, passes", [
    (-1, None, True), (0, None, False), (1, None, False), (-1, "The server stopped.", False),
])
def test_complete_needs_every_piece_and_no_error(missing, error, passes):
    assert _passed(_case_run(missing=missing, error=error))["reply complete"] is passes


def _timing(total: float, cpu: float) -> object:
    return bench.Timing(total=total, first_token=0.01, cpu=cpu, chars=80_000)


@pytest.mark.parametrize("app_cpu, app_total, cpu_result, time_result", [
    (1.0, 2.0, "PASS", "PASS"), (1.02, 2.02, "FAIL", "FAIL"), (0.3, 1.0, "PASS", "PASS"),
])
def test_part_one_targets(app_cpu, app_total, cpu_result, time_result):
    """Client CPU per chunk app / raw <= 0.5 and total time app / raw <= 1.0."""
    paths = bench.PathComparison([_timing(app_total, app_cpu)] * 3, [_timing(2.0, 2.0)] * 3,
                                 chunks=20_000)
    cpu_row, time_row, _ = bench.path_rows(paths, runs=3)
    assert cpu_row[1] == f"{app_cpu / 20_000 * 1e6:.1f} us" and cpu_row[2] == "100.0 us"
    assert (cpu_row[-1], time_row[-1]) == (cpu_result, time_result)


@pytest.mark.parametrize("app_cpu, cpu_result", [(0.5, "PASS"), (0.51, "FAIL"), (0.2, "PASS")])
def test_paced_target_is_a_quarter_of_the_raw_sdks_cpu(app_cpu, cpu_result):
    """Paced: client CPU per chunk app / raw <= 0.25; the wall time is the server's pace,
    reported and never judged."""
    paths = bench.PathComparison([_timing(5.0, app_cpu)] * 3, [_timing(6.0, 2.0)] * 3,
                                 chunks=10_000)
    cpu_row, time_row, first_row = bench.paced_rows(paths, bench.Paced(50, 50.0, 200), runs=3)
    assert cpu_row[1] == f"{app_cpu / 10_000 * 1e6:.1f} us" and cpu_row[2] == "200.0 us"
    assert cpu_row[4] == f"{app_cpu / 2.0:.3f}" and cpu_row[-1] == cpu_result
    assert "50 streams at 50 chunks/s" in cpu_row[0]
    assert (time_row[-1], first_row[-1]) == ("-", "-")


def test_replies_together_count_every_streams_text_and_first_token():
    """Paced mode's runner: every stream starts at once, each one's text is counted, the first
    token is the median stream's, and a failed stream fails the run."""
    def path(out):
        time.sleep(0.05)
        out("abcd")
        time.sleep(0.05)
        out("ef")

    timing = bench.timed_together(path, 8)
    assert timing.chars == 8 * 6
    assert 0.04 <= timing.first_token < timing.total and 0.1 <= timing.total < 1.0

    def failing(out):
        raise RuntimeError("the server went away")

    with pytest.raises(bench.BenchError, match="8 of 8 streams failed: the server went away"):
        bench.timed_together(failing, 8)


def test_options_pick_cases_and_parts():
    assert bench.parse_args([]).case == ["a", "b", "c", "d", "e", "f"]
    assert bench.parse_args(["--case", "e", "--case", "a"]).case == ["a", "e"]
    assert bench.parse_args(["--skip-paths", "--case", "b"]).skip_paths
    with pytest.raises(SystemExit):
        bench.parse_args(["--skip-paths", "--skip-browser"])
    with pytest.raises(SystemExit):
        bench.parse_args(["--case", "g"])
    assert bench.parse_args([]).paced == bench.Paced(50, 50.0, 250)
    assert bench.parse_args(["--streams", "10", "--pace", "20"]).paced == bench.Paced(10, 20.0, 250)
    assert bench.parse_args(["--streams", "0"]).paced is None


# ---------------------------------------------------------------- case e: a 5 MB reply


def test_the_5_mb_case_streams_about_a_minute_in_chunks_of_28_characters():
    case = bench.CASES["e"]
    prompt = case.prompt("END0123456789AB", 1.0)
    assert len(prompt.text) == 5_000_000 and prompt.text.endswith(" END0123456789AB")
    assert (case.rate, case.chunk_chars, case.target, case.end_task_target) == (3_000, 28, 1.0, 500)
    assert 55 <= case.stream_seconds(len(prompt.text)) <= 65
    assert bench.CASES["a"].stream_seconds(80_000) == 10.0  # the echo's own 4-character chunks


@pytest.mark.parametrize("longest, after_end, passes", [
    (200.0, 500.0, (True, True)), (200.5, 60.0, (False, True)), (120.0, 500.5, (True, False)),
])
def test_the_5_mb_case_splits_its_long_tasks_at_the_server_s_end(longest, after_end, passes):
    """While streaming (Enter to the server's last byte, on the page's clock) <= 200 ms;
    from there to idle <= 500 ms; a task counts in the part where it starts."""
    run = _case_run("e", longest=longest, after_end=after_end, stored=10, sent=10)
    assert run.end_perf == 11_000.0  # Enter at 1,000 ms, 10 s before the server's end
    judged = _passed(run)
    assert (judged["longest main-thread task while streaming"],
            judged["longest main-thread task after the server's end"]) == passes
    assert "longest main-thread task" not in judged


@pytest.mark.parametrize("stored, sent, passes", [
    (5_000_112, 5_000_112, True), (999_999, 5_000_112, False), (None, 5_000_112, False),
    (10, None, False),
])
def test_stored_whole_means_as_many_characters_as_the_server_sent(stored, sent, passes):
    run = _case_run("e", stored=stored, sent=sent)
    assert _passed(run)["reply stored whole"] is passes
    assert "reply stored whole" not in _passed(_case_run("a"))


# ---------------------------------------------------------------- case f: four replies at once


def test_the_compare_case_is_four_servers_each_sending_10_000_chunks_at_500_a_second():
    case = bench.CASES["f"]
    prompt = case.prompt("END0123456789AB", 1.0)
    assert (case.compared, case.rate, case.target, case.stored) == (4, 500, 0.3, True)
    assert len(prompt.text) == 40_000 and prompt.text.endswith(" END0123456789AB")
    assert case.stream_seconds(len(prompt.text)) == 20.0
    assert not any(bench.CASES[key].compared for key in "abcde")


def _compare_run(lags=(0.1, 0.1, 0.1, 0.1), firsts=(0.3, 0.3, 0.3, 0.3), alone_first=0.25,
                 app_cpu=4.0, alone_cpu=1.0, missing=(-1, -1, -1, -1), errors=(None,) * 4,
                 stored=(40_000,) * 4, longest=120.0, idle=True):
    """Four columns, each stream 10,000 events ending 20 s after Enter; the alone reply's
    10,000 events cost `alone_cpu` s of the app's CPU, the four's 40,000 `app_cpu` s."""
    enter = 1_800_000_000.0  # Date.now() at Enter, in seconds
    records = [{"ended": enter + 20, "events": 10_000, "chars": 40_000, "started": enter + 0.1,
                "first_event": enter + 0.2, "rate": 500.0, "late_max": 0.01}] * 4
    seen = {"submitted": enter * 1000, "submittedPerf": 1_000.0, "messagePerf": 1_200.0,
            "firstVisible": [None if f is None else (enter + f) * 1000 for f in firsts],
            "lastVisible": [None if lag is None else (enter + 20 + lag) * 1000 for lag in lags],
            "tasks": [[500.0, 300.0], [5_000.0, longest], [30_000.0, 400.0]]}
    alone_seen = {"submitted": enter * 1000 - 60_000,
                  "firstVisible": enter * 1000 - 60_000 + alone_first * 1000}
    alone = bench.CaseRun(bench.CASES["f"], 40_000, 40_000, {**records[0]}, alone_seen, None,
                          None, 40_000, alone_cpu)
    columns = [{"missing": m, "error": e, "text": "", "caption": "", "length": 40_000}
               for m, e in zip(missing, errors)]
    return bench.CompareRun(bench.CASES["f"], alone, 40_000, records, seen, columns,
                            25_000.0 if idle else None,
                            None if stored is None else [(c, "complete") for c in stored],
                            app_cpu)


def _compare_verdicts(run) -> list[tuple[str, str, bool]]:
    return [(figure.split(" ", 1)[1], measured, passed)
            for figure, measured, _, passed in run.verdicts()]


def _judged(run, start: str) -> list[bool]:
    return [passed for figure, _, passed in _compare_verdicts(run) if figure.startswith(start)]


@pytest.mark.parametrize("lag, passes", [(0.3, True), (0.301, False), (-0.01, True),
                                         (None, False)])
def test_each_columns_last_token_is_judged_against_its_own_servers_end(lag, passes):
    judged = _judged(_compare_run(lags=(0.1, 0.2, lag, 0.0)),
                     "column 3: last token visible after its server's end")
    assert judged == [passes]
    assert all(_judged(_compare_run(lags=(0.1, 0.2, lag, 0.0)), "column 1: last token"))


@pytest.mark.parametrize("first, passes", [(0.34, True), (0.351, False), (0.1, True),
                                           (None, False)])
def test_each_columns_first_token_may_be_100_ms_later_than_the_model_alone(first, passes):
    run = _compare_run(firsts=(0.3, first, 0.3, 0.3), alone_first=0.25)
    assert _judged(run, "column 2: first token") == [passes]
    assert _judged(run, "column 1: first token") == [True]
    if first is not None:
        measured = [m for f, m, _ in _compare_verdicts(run) if f.startswith("column 2: first")]
        late = f"{(first - 0.25) * 1e3:+.0f}"
        assert measured == [f"{late} ms ({late})"]


def test_the_first_token_is_judged_on_the_median_of_every_round():
    """The run's own lateness and each short round's: their median, each listed."""
    run = dataclasses.replace(_compare_run(firsts=(0.3, 0.5, 0.3, 0.3), alone_first=0.25),
                              rounds=((0.05, 0.02, 0.3, None), (0.06, 0.09, 0.2, 0.01)))
    assert _judged(run, "column 2: first token") == [True]  # +250, +20, +90 ms: median +90
    assert _judged(run, "column 3: first token") == [False]  # +50, +300, +200: median +200
    assert _judged(run, "column 4: first token") == [False]  # a round never saw it
    measured = [m for f, m, _ in _compare_verdicts(run) if f.startswith("column 2: first")]
    assert measured == ["+90 ms (+250, +20, +90)"]


@pytest.mark.parametrize("app_cpu, alone_cpu, passes", [
    (4.0, 1.0, True), (5.0, 1.0, True), (5.3, 1.0, False), (1.0, 1.0, True), (8.0, 2.0, True),
])
def test_the_apps_cpu_per_chunk_with_four_at_once_is_judged_against_one_alone(
        app_cpu, alone_cpu, passes):
    """Per chunk: the four's 40,000 chunks against the alone reply's 10,000."""
    run = _compare_run(app_cpu=app_cpu, alone_cpu=alone_cpu)
    assert run.cpu_per_chunk == pytest.approx(app_cpu / 40_000 * 1e6)
    assert _judged(run, "app CPU per chunk") == [passes]


@pytest.mark.parametrize("longest, idle, passes", [(200.0, True, True), (200.5, True, False),
                                                   (90.0, False, False)])
def test_the_compare_cases_longest_task_runs_from_enter_to_idle(longest, idle, passes):
    """The 300 ms task ended before Enter and the 400 ms one started after idle: not counted."""
    assert _judged(_compare_run(longest=longest, idle=idle), "longest main-thread task") == [
        passes]


@pytest.mark.parametrize("missing, errors, shown", [
    ((-1, -1, -1, -1), (None,) * 4, "4 of 4"), ((-1, 0, -1, -1), (None,) * 4, "3 of 4"),
    ((-1, -1, -1, -1), (None, None, "The server stopped.", None), "3 of 4"),
])
def test_every_column_must_show_its_whole_reply(missing, errors, shown):
    rows = [(m, p) for f, m, p in _compare_verdicts(_compare_run(missing=missing, errors=errors))
            if f == "replies complete on screen"]
    assert rows == [(shown, shown == "4 of 4")]


@pytest.mark.parametrize("stored, whole", [
    ((40_000,) * 4, "4 of 4"), ((40_000, 39_999, 40_000, 40_000), "3 of 4"),
    ((40_000, None, 40_000, 40_000), "3 of 4"), (None, "0 of 4"),
])
def test_every_column_must_be_stored_whole(stored, whole):
    rows = [(m, p) for f, m, p in _compare_verdicts(_compare_run(stored=stored))
            if f == "replies stored whole"]
    assert rows == [(whole, whole == "4 of 4")]


def test_a_reply_counts_as_shown_when_every_piece_is_there_whitespace_aside():
    """A page break or a code block's dropped last newline moves whitespace, not characters."""
    shown = "[echo] header\nUser: Here it is:\ndef f():\n    return 1\nlorem ipsum\ndolor END1"
    assert bench.missing_piece(("def f():\n    return 1\n", "END1"), shown) == -1
    assert bench.missing_piece(("lorem ipsum dolor", "END2"), shown) == 1
    assert bench.missing_piece(("return 2",), shown) == 0


# ---------------------------------------------------------------- the paced relay


@pytest.fixture
def relay(katan_server):
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(REPO / "bench" / "paced_relay.py"),
                             katan_server.origin, str(port), "2000"])
    try:
        wait_for_port(port, proc=proc)
        yield port
    finally:
        stop(proc)


def _ask(port: int, method: str, path: str, body: bytes | None = None,
         headers: dict | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _streamed_text(port: int, api_key: str, prompt: str) -> tuple[str, int]:
    """The content of a streamed echo reply through `port`, and how many events carried it."""
    body = json.dumps({"model": "katan-echo", "stream": True,
                       "messages": [{"role": "user", "content": prompt}]}).encode()
    status, raw = _ask(port, "POST", "/v1/chat/completions", body,
                       {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"})
    assert status == 200
    events = [e.removeprefix("data: ") for e in raw.decode().split("\n\n") if e.strip()]
    chunks = [json.loads(e) for e in events if e != "[DONE]"]
    text = "".join((c["choices"][0]["delta"].get("content") or "") for c in chunks if c["choices"])
    return text, len(events)


def test_relay_rate_is_set_for_the_next_streams_and_recorded(relay, katan_server):
    """`POST /_relay/rate` changes the pace of later streams; each record says its rate and
    how late its writes ran; the relayed reply is the upstream's, event for event."""
    status, body = _ask(relay, "POST", "/_relay/rate", b"4000")
    assert (status, json.loads(body)) == (200, 4000.0)
    prompt = "paced " * 200
    relayed, events = _streamed_text(relay, katan_server.api_key, prompt)
    direct, _ = _streamed_text(int(katan_server.origin.rsplit(":", 1)[1]),
                               katan_server.api_key, prompt)
    assert relayed.endswith(prompt) and relayed.split("\n", 1)[1] == direct.split("\n", 1)[1]
    _, raw = _ask(relay, "GET", "/_relay/streams")
    record = json.loads(raw)[-1]
    assert record["rate"] == 4000.0 and record["complete"] and record["events"] == events
    assert 0 <= record["late_max"] < record["ended"] - record["first_event"] + 1
    assert record["first_event"] <= record["ended"]


@pytest.mark.parametrize("bad", [b"0", b"-5", b"fast", b""])
def test_relay_refuses_a_rate_that_is_not_positive(relay, bad):
    assert _ask(relay, "POST", "/_relay/rate", bad)[0] == 400
    assert _ask(relay, "POST", "/_relay/rate", b"1500") == (200, b"1500.0")


def test_relay_counts_the_whole_reply_also_when_the_client_leaves_early(relay, katan_server):
    """`GET /_relay/replies`: per stream, the characters and SHA-256 of every event's text
    the server sent, also the part a client that went away never got."""
    import hashlib
    import time

    prompt = "counted " * 100
    _ask(relay, "POST", "/_relay/rate", b"4000")
    whole, _ = _streamed_text(relay, katan_server.api_key, prompt)
    _ask(relay, "POST", "/_relay/rate", b"50")  # about 5 s: the client leaves after one event
    body = json.dumps({"model": "katan-echo", "stream": True,
                       "messages": [{"role": "user", "content": prompt}]}).encode()
    conn = http.client.HTTPConnection("127.0.0.1", relay, timeout=30)
    conn.request("POST", "/v1/chat/completions", body,
                 {"Authorization": f"Bearer {katan_server.api_key}"})
    conn.getresponse().read1(100)
    conn.close()
    for _ in range(100):
        records = json.loads(_ask(relay, "GET", "/_relay/streams")[1])
        if len(records) >= 2:
            break
        time.sleep(0.1)
    assert not records[-1]["complete"] and records[-2]["complete"]
    first, cut = json.loads(_ask(relay, "GET", "/_relay/replies")[1])[-2:]
    assert first == {"chars": len(whole), "sha256": hashlib.sha256(whole.encode()).hexdigest()}
    assert cut["chars"] == len(whole)  # the same reply, though the client got one event of it
def test_relay_rechunks_a_reply_into_chunks_of_the_size_asked(relay, katan_server):
    """The whole reply, asked of the upstream at once, comes as a stream of 28-character
    chunks: the same text, a role chunk first, the finish reason and the usage last, paced."""
    assert _ask(relay, "POST", "/_relay/chunking", b"28") == (200, b"28")
    prompt = "rechunked " * 300
    body = json.dumps({"model": "katan-echo", "stream": True,
                       "stream_options": {"include_usage": True},
                       "messages": [{"role": "user", "content": prompt}]}).encode()
    status, raw = _ask(relay, "POST", "/v1/chat/completions", body,
                       {"Authorization": f"Bearer {katan_server.api_key}",
                        "Content-Type": "application/json"})
    assert status == 200
    events = [e.removeprefix("data: ") for e in raw.decode().split("\n\n") if e.strip()]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    pieces = [d["content"] for d in deltas if d.get("content")]
    assert deltas[0]["role"] == "assistant" and all(len(p) == 28 for p in pieces[:-1])
    text = "".join(pieces)
    assert text.startswith("[echo] model=katan-echo") and text.endswith("User: " + prompt)
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] > 0
    _, raw = _ask(relay, "GET", "/_relay/streams")
    record = json.loads(raw)[-1]
    assert (record["chars"], record["chunk_chars"]) == (len(text), 28)
    assert record["events"] == len(events) and record["complete"]
    assert _ask(relay, "POST", "/_relay/chunking", b"0") == (200, b"0")  # off again: as relayed
    relayed, _ = _streamed_text(relay, katan_server.api_key, prompt)
    assert relayed.split("\n", 1)[1] == text.split("\n", 1)[1]
    assert "chars" not in json.loads(_ask(relay, "GET", "/_relay/streams")[1])[-1]


@pytest.mark.parametrize("bad", [b"-1", b"2.5", b"true", b"many", b""])
def test_relay_refuses_a_chunking_that_is_not_a_whole_number(relay, bad):
    assert _ask(relay, "POST", "/_relay/chunking", bad)[0] == 400


# ---------------------------------------------------------------- the bench, small


def test_the_bench_runs_the_5_mb_case_small_and_judges_it(tmp_path):
    """bench/stream.py itself, case e at 1/100 of its size (a 50 KB reply, 0.6 s of stream):
    the app, a real Chromium and the relay; every figure of the case is in the table, and
    the reply is complete and stored whole (the store keeps 50 KB)."""
    result = subprocess.run(
        [sys.executable, str(REPO / "bench" / "stream.py"), "--skip-paths", "--case", "e",
         "--scale", "0.01"], capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = {line.split("  ")[0]: line for line in result.stdout.splitlines()
            if line.startswith("2e ")}
    assert set(rows) == {
        "2e last token visible after the server's end", "2e longest main-thread task while streaming",
        "2e longest main-thread task after the server's end", "2e reply complete",
        "2e reply stored whole"}
    assert rows["2e reply complete"].endswith("PASS")
    assert rows["2e reply stored whole"].endswith("PASS")
    assert "re-chunked into 28 a chunk" in result.stdout
