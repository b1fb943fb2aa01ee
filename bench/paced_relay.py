"""A relay that re-sends an upstream server's SSE stream at a fixed number of events per second.

llm-katan (`--chunk-delay-ms`) and llmock (`--stream-chunk-delay-ms`) pace only in whole
milliseconds per chunk, and an asyncio server cannot sleep less than about 1.1 ms: their fastest
paced stream is 700 to 850 chunks/s here. A 2,000 chunks/s stream is paced here instead, on a
schedule (event i leaves at start + i / rate), so sleep granularity does not add up.

    python bench/paced_relay.py UPSTREAM_ORIGIN PORT RATE

Every request is forwarded unchanged (method, path, body, Authorization). Non-SSE responses are
passed through as they are. `GET /_relay/streams` lists the relayed streams, oldest first, with
wall-clock times (time.time()) of the request, the first event sent and the last byte sent, the
rate asked, and `late_max`: how far (seconds) the most late write ran behind its schedule.
`POST /_relay/rate` with a JSON number sets the rate for the streams that start after it.
`GET /_relay/replies` gives, per stream in the same order, the characters and SHA-256 of the text
the upstream sent (every event's `delta.content`, the whole reply even when the client left
early): worked out only when asked, so counting costs the pacing nothing.

`POST /_relay/chunking` with a JSON integer N > 0 re-chunks the chat streams that start after
it (0 turns it off): the relay asks the upstream for the whole reply at once (`"stream":
false`) and sends it itself as SSE chunks of N characters of content each, in the shape
OpenAI streams a reply (a role chunk, the content chunks, a chunk with the finish reason, the
usage chunk when the request asked for it, `[DONE]`), paced the same way. llm-katan's echo
streams 4 characters a chunk: a 5 MB reply is 1.25 million events, 274 MB of SSE and about
16 s of its CPU, which on a small machine measures llm-katan more than the client. A
re-chunked stream's record also holds `chars`, the characters of content it sent.
Standard library only; loopback only.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import queue
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

FORWARDED_HEADERS = ("Authorization", "Content-Type", "Accept")


def event_text(event: bytes | str) -> str | None:
    """The reply text one SSE event carries (`choices[0].delta.content`), else None."""
    payload = (event.decode() if isinstance(event, bytes) else event).strip()
    payload = payload.removeprefix("data:").strip()
    if not payload or payload == "[DONE]":
        return None
    try:
        choices = json.loads(payload).get("choices") or [{}]
    except (ValueError, AttributeError):
        return None
    return (choices[0].get("delta") or {}).get("content")


def reply_summary(events: list[bytes]) -> dict:
    """Characters and SHA-256 of the text a stream's events carry."""
    text = "".join(piece for event in events if (piece := event_text(event)))
    return {"chars": len(text), "sha256": hashlib.sha256(text.encode()).hexdigest()}


class _Records:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: list[dict] = []
        self._replies: list[list[bytes]] = []  # each stream's upstream events, same order

    def add(self, record: dict, events: list[bytes] | None = None) -> None:
        with self._lock:
            self._items.append(record)
            self._replies.append(events or [])

    def as_json(self) -> bytes:
        with self._lock:
            return json.dumps(self._items).encode()

    def replies_json(self) -> bytes:
        with self._lock:
            replies = list(self._replies)
        return json.dumps([reply_summary(events) for events in replies]).encode()


def _read_events(response: http.client.HTTPResponse, events: queue.SimpleQueue,
                 kept: list[bytes]) -> None:
    """Split the upstream body into SSE events as fast as it arrives; None marks the end.
    Every event is also kept in `kept`, also those the client never got."""
    buffer = b""
    try:
        while data := response.read1(65536):
            buffer += data
            *complete, buffer = buffer.split(b"\n\n")
            for event in complete:
                kept.append(event + b"\n\n")
                events.put(kept[-1])
    except OSError:
        pass  # an upstream that drops the connection ends the stream here too
    if buffer.strip():
        kept.append(buffer)
        events.put(buffer)
    events.put(None)


class PacedRelay(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # one small write per event must leave at once
    upstream: tuple[str, int]
    interval: float
    chunk_chars: int = 0  # > 0: re-chunk chat streams into events of this many characters
    records: _Records

    def log_message(self, format, *args) -> None:  # noqa: A002 - the base class's name
        pass

    def do_GET(self) -> None:
        if self.path == "/_relay/streams":
            self._send_plain(200, "application/json", self.records.as_json())
        elif self.path == "/_relay/replies":
            self._send_plain(200, "application/json", self.records.replies_json())
        else:
            self._forward()

    def do_POST(self) -> None:
        if self.path == "/_relay/rate":
            self._set_rate()
        elif self.path == "/_relay/chunking":
            self._set_chunking()
        else:
            self._forward()

    def _set_rate(self) -> None:
        try:
            rate = float(json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0))))
        except (TypeError, ValueError):
            rate = 0.0
        if rate <= 0:
            self._send_plain(400, "text/plain", b"a positive number of events per second")
            return
        type(self).interval = 1.0 / rate  # read once per stream, when it starts
        self._send_plain(200, "application/json", json.dumps(rate).encode())

    def _set_chunking(self) -> None:
        try:
            chars = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
        except ValueError:
            chars = -1
        if not isinstance(chars, int) or isinstance(chars, bool) or chars < 0:
            self._send_plain(400, "text/plain", b"a number of characters per event (0: off)")
            return
        type(self).chunk_chars = chars  # read once per stream, when it starts
        self._send_plain(200, "application/json", json.dumps(chars).encode())

    def _forward(self) -> None:
        started = time.time()
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {name: value for name in FORWARDED_HEADERS if (value := self.headers.get(name))}
        request = _streamed_chat(self.path, body) if self.chunk_chars else None
        if request is not None:
            self._rechunk(started, request, headers, self.chunk_chars)
            return
        upstream = http.client.HTTPConnection(*self.upstream, timeout=120)
        try:
            upstream.request(self.command, self.path, body=body, headers=headers)
            response = upstream.getresponse()
            content_type = response.getheader("Content-Type", "")
            if not content_type.startswith("text/event-stream"):
                self._send_plain(response.status, content_type, response.read())
                return
            self.send_response(response.status)
            self.send_header("Content-Type", content_type)
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            events: queue.SimpleQueue = queue.SimpleQueue()
            kept: list[bytes] = []
            reader = threading.Thread(target=_read_events, args=(response, events, kept),
                                      daemon=True)
            reader.start()
            record = {"path": self.path, "started": started, **self._pace(events)}
            reader.join(30)  # a client that left early: the rest of the reply is still read
            self.records.add(record, kept)
        finally:
            upstream.close()

    def _rechunk(self, started: float, request: dict, headers: dict, chars: int) -> None:
        """Ask for the whole reply, then send it as a stream of `chars`-character chunks."""
        upstream = http.client.HTTPConnection(*self.upstream, timeout=120)
        try:
            whole = json.dumps({**request, "stream": False}).encode()
            upstream.request("POST", self.path, body=whole, headers=headers)
            response = upstream.getresponse()
            answer = response.read()
        finally:
            upstream.close()
        if response.status != 200:
            self._send_plain(response.status, response.getheader("Content-Type", ""), answer)
            return
        reply = json.loads(answer)
        usage = (request.get("stream_options") or {}).get("include_usage")
        events: queue.SimpleQueue = queue.SimpleQueue()
        for event in _chunked(reply, chars, usage=bool(usage)):
            events.put(event)
        events.put(None)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        content = reply["choices"][0]["message"].get("content") or ""
        self.records.add({"path": self.path, "started": started, "chars": len(content),
                          "chunk_chars": chars, **self._pace(events)})

    def _pace(self, events: queue.SimpleQueue) -> dict:
        """Send event i at first + i * interval; when behind, send every event already due."""
        interval = self.interval
        sent, first_sent, complete, late_max = 0, None, False, 0.0
        origin = 0.0
        try:
            while (event := events.get()) is not None:
                if first_sent is None:
                    origin, first_sent = time.perf_counter(), time.time()
                due = origin + sent * interval
                if (wait := due - time.perf_counter()) > 0:
                    time.sleep(wait)
                late_max = max(late_max, time.perf_counter() - due)
                batch = [event]
                while origin + (sent + len(batch)) * interval <= time.perf_counter():
                    try:
                        following = events.get_nowait()
                    except queue.Empty:
                        break
                    if following is None:
                        events.put(None)
                        break
                    batch.append(following)
                self._write_chunk(b"".join(batch))
                sent += len(batch)
            self._write_chunk(b"")
            complete = True
        except OSError:  # the client went away (Stop, a closed page): the stream ends here
            self.close_connection = True
        return {"first_event": first_sent, "ended": time.time(), "events": sent,
                "complete": complete, "rate": 1.0 / interval, "late_max": late_max}

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def _send_plain(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type or "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # many streams start at once: the default 5 delays some by 1 s
def _streamed_chat(path: str, body: bytes | None) -> dict | None:
    """The request's JSON when it asks for a streamed chat completion, else None."""
    if not path.endswith("/chat/completions") or not body:
        return None
    try:
        request = json.loads(body)
    except ValueError:
        return None
    return request if isinstance(request, dict) and request.get("stream") is True else None


def _chunked(reply: dict, chars: int, usage: bool) -> list[bytes]:
    """A whole chat completion as the SSE events of a stream, `chars` characters a chunk."""
    choice = reply["choices"][0]
    content = choice["message"].get("content") or ""
    head = {"id": reply.get("id", ""), "object": "chat.completion.chunk",
            "created": reply.get("created", 0), "model": reply.get("model", "")}

    def event(choices: list, **more) -> bytes:
        return b"data: " + json.dumps({**head, "choices": choices, **more}).encode() + b"\n\n"

    def delta(fields: dict, finish: str | None = None) -> bytes:
        return event([{"index": 0, "delta": fields, "finish_reason": finish}])

    events = [delta({"role": "assistant", "content": ""})]
    events += [delta({"content": content[i:i + chars]}) for i in range(0, len(content), chars)]
    events.append(delta({}, choice.get("finish_reason") or "stop"))
    if usage and reply.get("usage"):
        events.append(event([], usage=reply["usage"]))
    events.append(b"data: [DONE]\n\n")
    return events


def serve(relay: type[PacedRelay], origin: str, port: int, rate: float) -> None:
    """Relay `origin` on 127.0.0.1:`port` at `rate` events/s with `relay` (or a subclass)."""
    parts = urlsplit(origin)
    relay.upstream = (parts.hostname, parts.port)
    relay.interval = 1.0 / rate
    relay.records = _Records()
    _Server(("127.0.0.1", port), relay).serve_forever()


def main(argv: list[str]) -> None:
    if len(argv) != 3:
        raise SystemExit("usage: paced_relay.py UPSTREAM_ORIGIN PORT RATE")
    serve(PacedRelay, argv[0], int(argv[1]), float(argv[2]))


if __name__ == "__main__":
    main(sys.argv[1:])
