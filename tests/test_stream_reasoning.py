"""Reasoning is the server replying (issue 8): limits, live Thinking markers, thinking time.

Real HTTP on loopback: a canned server paces its chunks; the limits are set well apart from
the pacing (a reasoning phase three times the first-token limit, gaps a twentieth of the
idle limit), so no assertion depends on a tight deadline.
"""

from __future__ import annotations

from core.chat.call import Reply, Thinking, start_reply
from core.config import load_settings
from core.history.conversation import Conversation
from core.history.replies import Replies
from core.providers.kinds import Target
from core.store.sqlite import SQLiteChatStore
from tests.fixtures.llm_servers import SSE_DONE, sse_chunk
from tests.replying import ask, show_ended

MESSAGES = [{"role": "user", "content": "think first"}]


def _settings(first_token: float, idle: float):
    return load_settings(
        environ={
            "SWITCHBOARD_FIRST_TOKEN_TIMEOUT": str(first_token),
            "SWITCHBOARD_IDLE_TIMEOUT": str(idle),
        },
        dotenv_path=None,
    )


def _target(server) -> Target:
    return Target("openai-compatible", "Compatible", server.base_url, "k", "thinker")


def _run(server, first_token: float, idle: float) -> tuple[Reply, list]:
    reply = Reply()
    pieces = list(start_reply(_settings(first_token, idle), _target(server), MESSAGES, reply))
    return reply, pieces


def test_reasoning_longer_than_the_first_token_limit_completes(canned_server):
    """15 reasoning chunks over 1.4 s, first-token limit 0.5 s: the reply is not cut."""
    thoughts = [sse_chunk({"reasoning_content": f"step {i}. "}) for i in range(15)]
    answer = [sse_chunk({"content": "The answer."}, "stop"), SSE_DONE]
    server = canned_server(200, [sse_chunk({"role": "assistant"}), *thoughts, *answer],
                           chunked=True, pace=0.1)
    reply, pieces = _run(server, first_token=0.5, idle=2)
    assert (reply.status, reply.error) == ("complete", None)
    assert reply.text == "The answer."
    assert reply.reasoning == "".join(f"step {i}. " for i in range(15))
    # Reasoning streamed live: a marker per piece, all before the answer.
    assert [p.text for p in pieces if isinstance(p, Thinking)] == [f"step {i}. " for i in range(15)]
    assert pieces[-1] == "The answer." and all(isinstance(p, Thinking) for p in pieces[:-1])
    assert reply.thinking_seconds >= 1.0  # the server paced 14 gaps of 0.1 s


def test_a_role_only_chunk_ends_the_wait_for_the_first_token(canned_server):
    """A chunk with only the role is the server replying: the idle limit takes over."""
    events = [sse_chunk({"role": "assistant"}), sse_chunk({"content": "Hi."}, "stop"), SSE_DONE]
    server = canned_server(200, events, chunked=True, pace=1.5)
    reply, pieces = _run(server, first_token=0.5, idle=10)
    assert (reply.status, reply.error, pieces) == ("complete", None, ["Hi."])


def test_think_tags_stream_as_thinking_too(canned_server):
    events = [sse_chunk({"content": "<think>plan"}), sse_chunk({"content": " more</think>Done."}, "stop"),
              SSE_DONE]
    reply, pieces = _run(canned_server(200, events, chunked=True), first_token=30, idle=30)
    assert reply.status == "complete" and reply.text == "Done."
    assert reply.reasoning == "plan more"
    assert [type(p) for p in pieces] == [Thinking, Thinking, str]


def test_silence_after_reasoning_is_cut_by_the_idle_limit_and_the_reasoning_kept(canned_server):
    events = [sse_chunk({"reasoning_content": "hmm"}), sse_chunk({"content": "late"}, "stop")]
    server = canned_server(200, events, chunked=True, pace=3)
    reply, _ = _run(server, first_token=10, idle=0.5)
    assert reply.status == "failed" and reply.reasoning == "hmm"
    assert "stopped in the middle of the reply: sent nothing for 0.5 seconds" in reply.error
    assert reply.thinking_seconds is not None and reply.error_field is None


def _ended(tmp_path, server):
    """The reply as the chat shows it once its worker ended it."""
    conversation = Conversation(store=SQLiteChatStore(tmp_path))
    conversation.add_user("think first")
    job = ask(Replies(workers=1, writers=1), conversation, server)
    return job, show_ended(conversation, job)


def test_the_ended_turn_keeps_thinking_time_and_the_note_that_it_did_not_stream(
        tmp_path, canned_server):
    whole = {"id": "c", "object": "chat.completion", "created": 0, "model": "thinker",
             "choices": [{"index": 0, "finish_reason": "stop", "message": {
                 "role": "assistant", "content": "Done.", "reasoning_content": "plan"}}]}
    job, turn = _ended(tmp_path, canned_server(200, whole))
    assert (turn.status, turn.content, turn.reasoning) == ("complete", "Done.", "plan")
    assert turn.thinking_seconds == job.reply.thinking_seconds is not None
    assert turn.notice == "The server did not stream this reply."
    assert "The server did not stream this reply." in turn.footer


def test_the_ended_turn_keeps_the_setting_at_fault(tmp_path, canned_routes):
    refusing = canned_routes(
        {"/v1/chat/completions": (404, {"error": {"message": "model 'm' not found"}})})
    _, turn = _ended(tmp_path, refusing)
    assert (turn.status, turn.error_field) == ("failed", "model")
    assert 'does not know the model "m" (404)' in turn.error
