"""bench/concurrency.py's pure parts: where each token arrives in the stream, the delays and
chunks lost computed from it, and how bench/st_client.py reads a session's ForwardMsgs.

The ForwardMsgs are built with Streamlit's own protobuf classes, as the server builds them.
"""

from __future__ import annotations

import json

from hypothesis import given, strategies as st
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

from bench.concurrency import (
    SessionRun, lost_chunks, make_prompt, map_tokens, percentile, session_tag, token_delays,
)
from bench.st_client import ReplyWatcher


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
