"""How a reply's bytes become events, and how a crowded process reads them.

The event parser works on bytes as they arrive; httpx-sse, a well-kept decoder of the same
format, is its oracle here. The spaced reads are checked on a real connection.
"""

from __future__ import annotations

import json
import time

import httpcore2
import httpx
import pytest
from httpx_sse import EventSource
from hypothesis import given, settings, strategies as st

import core.chat.call as call
from core.chat.call import Reply, read_spacing, start_reply
from core.chat.events import COMMENT, EventParser, StreamEnd
from core.chat.netguard import GatheringStream
from core.config import load_settings
from core.providers.kinds import Target
from tests.fixtures.llm_servers import SSE_DONE, sse_chunk

# ---------------------------------------------------------------- the parser


def _oracle(pieces: list[bytes]) -> list[tuple[str, str]]:
    response = httpx.Response(200, headers={"content-type": "text/event-stream"},
                              content=iter(pieces))
    return [(event.event, event.data) for event in EventSource(response).iter_sse()]


def _parsed(pieces: list[bytes]) -> tuple[list[tuple[str, str]], int]:
    """The events (an unnamed one is a "message", as the format says) and the comments."""
    parser, events, comments = EventParser(), [], 0
    for piece in pieces:
        for seen in parser.feed(piece):
            if seen is COMMENT:
                comments += 1
            else:
                events.append((seen[0] or "message", seen[1]))
    return events, comments


_value = st.text(alphabet=st.sampled_from("ab :é€😀0\x00"), max_size=6)
_line = st.one_of(
    st.tuples(st.sampled_from(["data", "event", "id", "retry", "other", ""]),
              st.sampled_from([":", ": ", "", ":  "]), _value).map("".join),
    st.just(""),  # the empty line that ends an event
    _value.map(lambda text: ":" + text),  # a comment
    st.sampled_from(["retry: 250", "retry: soon", "data: [DONE]"]),
)
_stream = st.tuples(
    st.lists(st.tuples(_line, st.sampled_from(["\n", "\r\n", "\r"])), max_size=14),
    st.binary(max_size=3),  # stray bytes (invalid UTF-8 too) and an unfinished last line
).map(lambda parts: "".join(line + end for line, end in parts[0]).encode() + parts[1])


@settings(max_examples=300, deadline=None)
@given(stream=_stream, cuts=st.lists(st.integers(0, 400), max_size=10))
def test_events_are_those_of_the_format_however_the_bytes_are_cut(stream, cuts):
    """Property: for any stream (CR, LF and CRLF line ends, every field, comments, ids that
    keep events going, multi-byte and invalid UTF-8) cut anywhere, even between CR and LF or
    inside a character, or fed a byte at a time, the events are httpx-sse's, and comment
    lines are all reported."""
    bounds = sorted({c % (len(stream) + 1) for c in cuts} | {0, len(stream)})
    pieces = [stream[a:b] for a, b in zip(bounds, bounds[1:])]
    events, comments = _parsed(pieces)
    assert events == _oracle([stream])
    assert (events, comments) == _parsed([stream])
    assert (events, comments) == _parsed([stream[i:i + 1] for i in range(len(stream))])


def test_a_comment_is_reported_where_it_came_among_the_events():
    parser = EventParser()
    seen = parser.feed(b'data: {"a": 1}\n\n: keep-alive\r\ndata: 2\r')
    assert seen == [("", '{"a": 1}'), COMMENT]
    assert parser.feed(b"\n") == []  # the LF of the CRLF: not an empty line
    assert parser.feed(b"\n") == [("", "2")]


def test_data_lines_join_and_an_event_left_open_at_the_end_is_not_given():
    parser = EventParser()
    assert parser.feed(b"event: error\ndata: one\ndata:two\n\ndata: half") == [
        ("error", "one\ntwo")]
    assert parser.feed(b" an event") == []


def test_the_head_is_the_bodys_first_8192_characters_as_text():
    end = StreamEnd()
    for _ in range(3):
        end.keep_head("é".encode() * 6000)
    assert end.head == "é" * 8192
    short = StreamEnd()
    short.keep_head(b"<html>\xff")
    assert short.head == "<html>\ufffd"


# ---------------------------------------------------------------- what a server's charset means


def _reply_from(server) -> Reply:
    reply = Reply()
    target = Target("openai-compatible", "Compatible", server.base_url, "k", "m")
    for _ in start_reply(load_settings(environ={}, dotenv_path=None), target,
                         [{"role": "user", "content": "hi"}], reply):
        pass
    return reply


def _as_typed(content: str) -> str:
    """A content chunk with its characters as they are, not escaped as JSON allows."""
    chunk = {"choices": [{"index": 0, "delta": {"content": content}, "finish_reason": None}]}
    return f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n"


def test_a_stream_in_another_charset_is_read_in_it(canned_server):
    events = [_as_typed("café").encode("latin-1"), sse_chunk({}, "stop"), SSE_DONE]
    assert "é".encode("latin-1") in events[0]
    server = canned_server(200, events, chunked=True,
                           content_type="text/event-stream; charset=iso-8859-1")
    reply = _reply_from(server)
    assert (reply.text, reply.status) == ("café", "complete")


def test_bytes_that_are_not_utf8_are_replaced_not_a_malformed_reply(canned_server):
    """Cut inside a character too: a line is joined before it is decoded."""
    chunk = _as_typed("ok ¤ €").encode().replace("¤".encode(), b"\xff")
    cut = chunk.index("€".encode()) + 1
    server = canned_server(200, [chunk[:cut], chunk[cut:], sse_chunk({}, "stop"), SSE_DONE],
                           chunked=True)
    reply = _reply_from(server)
    assert (reply.text, reply.status) == ("ok \ufffd €", "complete")


# ---------------------------------------------------------------- spaced reads


class _Recorded(httpcore2.NetworkStream):
    def __init__(self) -> None:
        self.reads: list[float] = []
        self.written: list[bytes] = []

    def read(self, max_bytes, timeout=None):
        self.reads.append(time.monotonic())
        return b"x"

    def write(self, buffer, timeout=None):
        self.written.append(buffer)

    def start_tls(self, ssl_context, server_hostname=None, timeout=None):
        return _Recorded()

    def get_extra_info(self, info):
        return f"info {info}"


def test_a_spaced_stream_waits_between_reads_until_the_next_request():
    inner = _Recorded()
    stream = GatheringStream(inner)
    stream.read(10), stream.read(10)
    assert inner.reads[1] - inner.reads[0] < 0.05  # not spaced: each read at once
    stream.spacing = lambda: 0.1
    for _ in range(3):
        stream.read(10)
    assert min(b - a for a, b in zip(inner.reads[2:], inner.reads[3:])) >= 0.1
    stream.write(b"POST /v1/chat/completions")
    before = time.monotonic()
    stream.read(10)
    assert stream.spacing is None and inner.reads[-1] - before < 0.05
    assert inner.written == [b"POST /v1/chat/completions"]
    assert stream.get_extra_info("socket") == "info socket"
    assert isinstance(stream.start_tls(None), GatheringStream)


@pytest.mark.parametrize("streaming, seconds", [(1, 0.0), (10, 0.0), (11, 0.0275), (50, 0.125),
                                                 (400, 0.125)])
def test_reads_are_spaced_only_when_crowded_and_by_how_crowded(monkeypatch, streaming, seconds):
    monkeypatch.setattr(call.STREAMING, "now", streaming)
    assert read_spacing() == pytest.approx(seconds)


def test_a_crowded_reply_is_read_a_few_chunks_at_a_time_after_its_first_token(
        canned_server, monkeypatch):
    """The first token is read as it comes; then reads wait for more; the reply is whole and
    the connection's next request is read at once."""
    spaced_reads: list[float] = []

    def spacing() -> float:
        spaced_reads.append(time.monotonic())
        return 0.1

    monkeypatch.setattr(call, "read_spacing", spacing)
    words = [sse_chunk({"role": "assistant", "content": ""})] + [
        sse_chunk({"content": f"w{i} "}) for i in range(30)] + [sse_chunk({}, "stop"), SSE_DONE]
    server = canned_server(200, words, chunked=True, pace=0.01)
    reply = Reply()
    target = Target("openai-compatible", "Compatible", server.base_url, "k", "m")
    settings_ = load_settings(environ={}, dotenv_path=None)
    started = time.monotonic()
    pieces = [(time.monotonic(), piece) for piece in
              start_reply(settings_, target, [{"role": "user", "content": "hi"}], reply)]
    assert (reply.text, reply.status) == ("".join(f"w{i} " for i in range(30)), "complete")
    assert pieces[0][0] - started < 0.5 and (not spaced_reads or spaced_reads[0] > pieces[0][0])
    assert 1 <= len(spaced_reads) <= 10  # 0.3 s of chunks, read every 0.1 s: not 30 reads
    asked = time.monotonic()
    again = start_reply(settings_, target, [{"role": "user", "content": "hi"}], Reply())
    assert next(again) == "w0 " and time.monotonic() - asked < 0.5
    again.close()
