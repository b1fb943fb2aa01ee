"""Context windows as servers state them or refusals name them, and the budget's states and
advice. vLLM, LM Studio, OpenRouter, Ollama and llama.cpp's own server are not available here:
they are loopback fakes answering as their documentation describes."""

from __future__ import annotations

import openai
import pytest
from hypothesis import given, strategies as st

from core.chat.budget import Budget, Plan
from core.chat.netguard import NetworkPolicy, guarded_http_client
from core.chat.windows import (
    Prices,
    context_window,
    learn_from_refusal,
    prices,
    window_in_refusal,
)
from core.providers.kinds import Target


@pytest.fixture(scope="module")
def http_client():
    client = guarded_http_client(NetworkPolicy(allow_private=True))
    yield client
    client.close()


def target(server, connection_id, model="m") -> Target:
    return Target("openai-compatible", "OpenAI-compatible", server.base_url, server.api_key, model,
                  connection_id=connection_id)


# ---------------------------------------------------------------- windows


@pytest.mark.parametrize("name, routes, window", [
    ("vllm", {"/v1/models": (200, {"data": [{"id": "other", "max_model_len": 1},
                                             {"id": "m", "max_model_len": 32768}]})}, 32768),
    ("openrouter", {"/v1/models": (200, {"data": [{"id": "m", "context_length": 131072}]})}, 131072),
    ("llama.cpp", {"/props": (200, {"default_generation_settings": {"n_ctx": 4096}})}, 4096),
    ("llama.cpp-old", {"/props": (200, {"n_ctx": 8192})}, 8192),
    ("lm studio", {"/api/v0/models": (200, {"data": [{"id": "m", "max_context_length": 16384}]})}, 16384),
    ("ollama", {"/api/show": (200, {"model_info": {"general.architecture": "llama",
                                                   "llama.context_length": 131072}})}, 131072),
    ("ollama num_ctx", {"/api/show": (200, {"parameters": "stop \"<|eot|>\"\nnum_ctx 8192",
                                            "model_info": {"general.architecture": "llama",
                                                           "llama.context_length": 131072}})}, 8192),
    ("nothing", {"/v1/models": (200, {"data": [{"id": "m"}]})}, None),
    ("garbage", {"/v1/models": (200, "not json"), "/props": (200, {"n_ctx": "lots"})}, None),
])
def test_windows_as_servers_state_them(canned_routes, http_client, name, routes, window):
    server = canned_routes(routes)
    assert context_window(target(server, name), http_client) == window


def test_an_unreachable_server_has_no_window_and_does_not_raise(canned_server, http_client):
    gone = Target("openai-compatible", "x", "http://127.0.0.1:9/v1", "k", "m", connection_id="gone")
    assert context_window(gone, http_client) is None


@pytest.mark.parametrize("text, window", [
    ("Requested tokens (3031) exceed context window of 2048", 2048),
    ("This model's maximum context length is 128,000 tokens. However, you requested", 128000),
    ("Error code: 400 - {'error': {'message': 'maximum context length is 4096 tokens'}}", 4096),
    ("Rate limit exceeded", None), ("", None), (None, None),
])
def test_windows_named_in_refusals(text, window):
    assert window_in_refusal(text) == window


@pytest.mark.parametrize("fixture", ["katan_server", "llmock_factory", "llama_server"])
def test_real_servers_state_no_window(request, fixture, http_client):
    server = request.getfixturevalue(fixture)
    server = server() if callable(server) else server
    assert context_window(target(server, f"real-{fixture}", server.model), http_client) is None


def test_the_window_is_learned_from_llamas_real_refusal(llama_server, http_client):
    # llama-cpp-python refuses a too-long request before streaming only when not streaming;
    # a streamed one ends empty, the reason only in its log.
    client = openai.OpenAI(base_url=llama_server.base_url, api_key=llama_server.api_key, max_retries=0)
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model=llama_server.model, max_tokens=1,
                                       messages=[{"role": "user", "content": "word " * 3000}])
    llama = target(llama_server, "learned", llama_server.model)
    assert learn_from_refusal(llama, str(refused.value)) == 2048
    assert context_window(llama, http_client) == 2048


# ---------------------------------------------------------------- the budget


def test_states_at_the_thresholds():
    assert Budget(None, conversation=10).state == "unknown"
    assert Budget(1000, conversation=799, max_tokens=0).state == "ok"
    assert Budget(1000, conversation=800, max_tokens=0).state == "warn"
    assert Budget(1000, conversation=1000, max_tokens=0).state == "warn"
    assert Budget(1000, conversation=1001, max_tokens=0).state == "over"
    assert Budget(1000, conversation=700, max_tokens=100).state == "warn"  # reply room counts


def test_default_reply_room_is_a_share_of_the_window():
    assert Budget(2048).reply_room == 409
    assert Budget(200_000).reply_room == 4096
    assert Budget(2048, max_tokens=100).reply_room == 100


@given(st.integers(1, 10**6), st.integers(0, 2 * 10**6))
def test_state_thresholds_are_exact(window, used):
    """Property: "over" exactly above the window, "warn" exactly from 80% of it."""
    state = Budget(window, conversation=used, max_tokens=0).state
    expected = "over" if used > window else "warn" if used * 5 >= window * 4 else "ok"
    assert state == expected


budgets = st.builds(
    Budget,
    window=st.integers(100, 10_000),
    conversation=st.integers(0, 5_000),
    draft=st.integers(0, 3_000),
    attachments=st.dictionaries(st.text("abcdef.", min_size=1, max_size=8), st.integers(0, 4_000),
                                max_size=5),
    max_tokens=st.none() | st.integers(0, 2_000),
    earlier=st.lists(st.integers(0, 800), max_size=12).map(tuple),
)


@given(budgets)
def test_advice_names_enough_to_fit(budget):
    """Property: dropping what the plan names brings the request under the window, or the plan
    says it cannot; advice is said exactly when over, and names each attachment it drops."""
    plan = budget.plan()
    if budget.state != "over":
        assert budget.advice() is None and plan.fits and not plan.attachments
        return
    advice = budget.advice()
    if not plan.fits:
        assert "alone does not fit" in advice
        rest = budget.used - sum(budget.attachments.values()) - sum(budget.earlier)
        assert rest > budget.window
        return
    left = budget.used - sum(t for _, t in plan.attachments) - plan.message_tokens
    assert left <= budget.window
    assert plan.message_tokens == sum(budget.earlier[:plan.messages])
    for name, tokens in plan.attachments:
        assert f"{name} ({tokens:,} token" in advice
    sizes = [t for _, t in plan.attachments]
    assert sizes == sorted(sizes, reverse=True)


def test_advice_sentences():
    budget = Budget(2000, conversation=900, draft=100, attachments={"a.pdf": 800, "b.txt": 300},
                    max_tokens=500, earlier=(400, 500))
    assert budget.state == "over"
    assert budget.advice() == (
        "This request needs 2,600 tokens (with 500 tokens kept for the reply) but the model's "
        "context window is 2,000. To fit, remove the attachment a.pdf (800 tokens). "
        "Nothing is left out unless you do so.")
    history = Budget(2000, conversation=1900, draft=100, max_tokens=200, earlier=(150, 100, 50),
                     exact=False)
    assert "leave out the oldest 2 messages of this chat (≈250 tokens)" in history.advice()
    alone = Budget(2000, conversation=100, draft=2500, earlier=(100,))
    assert "alone does not fit" in alone.advice()
    warn = Budget(2000, conversation=1500, max_tokens=100)
    assert warn.warning() == ("This request takes 80% of the model's context window (1,600 tokens "
                              "of 2,000, with 100 tokens kept for the reply).")
    assert Budget(2000, conversation=10).warning() is None


# ---------------------------------------------------------------- prices (OpenRouter states them)


def test_prices_stated_in_the_model_list_come_with_the_window(canned_routes, http_client):
    server = canned_routes({"/v1/models": (200, {"data": [
        {"id": "m", "context_length": 128000,
         "pricing": {"prompt": "0.0000025", "completion": "0.00001"}}]})})
    priced = target(server, "openrouter-priced")
    assert context_window(priced, http_client) == 128000
    stated = prices(priced)
    assert stated == Prices(0.0000025, 0.00001)
    assert stated.cost({"prompt_tokens": 1000, "completion_tokens": 200}) == pytest.approx(0.0045)


@pytest.mark.parametrize("pricing", [None, {"prompt": "free"}, {"prompt": "1.5", "completion": "0"},
                                     {"prompt": "-0.1", "completion": "0"}, "0.001"])
def test_prices_not_stated_or_not_sane_are_none(canned_routes, http_client, pricing):
    server = canned_routes({"/v1/models": (200, {"data": [{"id": "m", "pricing": pricing}]})})
    unpriced = target(server, f"unpriced-{pricing}")
    context_window(unpriced, http_client)
    assert prices(unpriced) is None


def test_a_chats_usage_line_prices_only_the_replies_of_the_priced_model():
    from core.history.conversation import Conversation
    from core.history.model import Message

    conversation = Conversation(messages=[
        Message("c", "assistant", "a", model_label="m · OpenRouter",
                usage={"prompt_tokens": 1000, "completion_tokens": 200, "total_tokens": 1200}),
        Message("c", "assistant", "b", model_label="other · Local",
                usage={"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15})])
    stated = Prices(0.0000025, 0.00001)
    assert conversation.usage_line() == ("This chat used 1,215 tokens (1,010 in, 205 out) over "
                                         "2 replies.")
    assert conversation.usage_line("m · OpenRouter", stated.cost) == (
        "This chat used 1,215 tokens (1,010 in, 205 out) over 2 replies; about $0.0045 (the 1 "
        "reply by m · OpenRouter) at the prices its server states.")
    assert conversation.usage_line("nobody", stated.cost).endswith("over 2 replies.")


def test_a_slow_server_is_not_waited_for_by_a_page_and_its_answer_comes_later(
        canned_server, http_client):
    """A page asks with a short wait: nothing now (and nothing while the question is out), the
    answer on a later run."""
    import time

    slow = canned_server(200, ['{"data": [{"id": "m", ', '"max_model_len": 4096}]}'],
                         chunked=True, pace=1.0, content_type="application/json")
    asked = target(slow, "slow-server")
    started = time.monotonic()
    assert context_window(asked, http_client, wait=0.1) is None
    assert context_window(asked, http_client, wait=0.1) is None  # still out
    assert time.monotonic() - started < 0.8
    deadline = time.monotonic() + 10
    while (window := context_window(asked, http_client, wait=0.1)) is None:
        assert time.monotonic() < deadline, "the answer never came"
    assert window == 4096


# ---------------------------------------------------------------- the plan's edges and its words


def test_the_plan_stops_exactly_when_the_request_fits():
    """Over by exactly the largest file: only it goes; over by one token more: the next too."""
    exact = Budget(window=100, conversation=20, attachments={"a.pdf": 40, "b.txt": 5},
                   max_tokens=75, earlier=(10, 10))  # 140: over by 40
    assert exact.plan() == Plan(attachments=(("a.pdf", 40),), fits=True)
    one_more = Budget(window=100, conversation=21, attachments={"a.pdf": 40, "b.txt": 5},
                      max_tokens=75, earlier=(10, 10))  # over by 41
    assert one_more.plan() == Plan(attachments=(("a.pdf", 40), ("b.txt", 5)), fits=True)
    messages = Budget(window=100, conversation=70, draft=10, max_tokens=40,
                      earlier=(10, 10, 30))  # over by 20: the two oldest messages, exactly
    assert messages.plan() == Plan(messages=2, message_tokens=20, fits=True)
    short = Budget(window=100, conversation=70, draft=10, max_tokens=41, earlier=(10, 10))
    assert short.plan() == Plan(messages=2, message_tokens=20, fits=False)
    one_token_left = Budget(window=100, conversation=70, draft=10, max_tokens=41,
                            earlier=(10, 10, 5))  # after two messages, still over by one
    assert one_token_left.plan() == Plan(messages=3, message_tokens=25, fits=True)


def test_the_advice_in_words():
    two_files = Budget(window=1000, conversation=700, attachments={"a.pdf": 300, "b.txt": 100},
                       max_tokens=100, earlier=(400,))  # over by 200... a.pdf alone is enough
    assert two_files.advice() == (
        "This request needs 1,200 tokens (with 100 tokens kept for the reply) but the model's "
        "context window is 1,000. To fit, remove the attachment a.pdf (300 tokens). Nothing is "
        "left out unless you do so.")
    both = Budget(window=1000, conversation=950, attachments={"a.pdf": 250, "b.txt": 1},
                  max_tokens=100, earlier=(60, 30), exact=False)  # over by 301
    assert both.advice() == (
        "This request needs ≈1,301 tokens (with ≈100 tokens kept for the reply) but the "
        "model's context window is 1,000. To fit, remove the attachments a.pdf (≈250 tokens), "
        "b.txt (≈1 token) and leave out the oldest message of this chat (≈60 tokens), e.g. by "
        "starting a new chat. Nothing is left out unless you do so.")
    one_message = Budget(window=100, conversation=90, draft=5, max_tokens=10, earlier=(5, 50))
    assert one_message.advice().endswith(
        "To fit, leave out the oldest message of this chat (5 tokens), e.g. by starting a new "
        "chat. Nothing is left out unless you do so.")
    files_and_messages = Budget(window=100, conversation=90, attachments={"x.md": 3},
                                max_tokens=20, earlier=(5, 5, 50))  # over by 13
    assert files_and_messages.advice().endswith(
        "To fit, remove the attachment x.md (3 tokens) and leave out the oldest 2 messages of "
        "this chat (10 tokens), e.g. by starting a new chat. Nothing is left out unless you do "
        "so.")
    alone = Budget(window=100, draft=150, max_tokens=10)
    assert alone.advice() == (
        "This request needs 160 tokens (with 10 tokens kept for the reply) but the model's "
        "context window is 100. Your message alone does not fit: shorten it, lower the reply's "
        "maximum length or use a model with a larger window.")
