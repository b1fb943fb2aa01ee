"""Counting tokens before sending: OpenAI's vocabularies, the estimate, images, the cache, and
a real llama.cpp-python server counting exactly."""

from __future__ import annotations

import base64
import io
import time

import openai
import pytest
from hypothesis import given, settings, strategies as st
from PIL import Image

from core.chat.netguard import NetworkPolicy, guarded_http_client
from core.chat.tokens import (
    IMAGE_BASE, EstimateCounter, ServerCounter, TokenCache, VocabularyCounter, count_messages,
    count_text, counter_for, counts_tokens, data_url_size, image_tokens, openai_encoding,
    script_stretches,
)
from core.providers.kinds import Target

CHAT_TEXTS = [
    "The lighthouse keeper had not spoken to another person in eleven days when the supply "
    "boat finally rounded the headland. He watched it from the gallery, counting the strokes.",
    "def take(self, sku: str, quantity: int = 1) -> bool:\n    have = self.items.get(sku, 0)\n"
    "    if have < quantity:\n        return False\n    self.items[sku] = have - quantity\n",
    "Смотритель маяка не разговаривал ни с кем одиннадцать дней, когда лодка с припасами "
    "наконец обогнула мыс.",
    "灯塔看守人已经十一天没有和任何人说过话了，补给船终于绕过了岬角。",
    "灯台守は十一日間、誰とも話していなかった。そのとき、補給船がようやく岬を回ってきた。",
    "لم يتحدث حارس المنارة إلى أي شخص منذ أحد عشر يومًا عندما دار قارب الإمدادات أخيرًا حول الرأس.",
]


@pytest.fixture(scope="module")
def http_client():
    client = guarded_http_client(NetworkPolicy(allow_private=True))
    yield client
    client.close()


def target(server, connection_id="c1", model=None) -> Target:
    return Target("openai-compatible", "OpenAI-compatible", server.base_url, server.api_key,
                  model or server.model, connection_id=connection_id)


def png_url(width: int, height: int, fmt: str = "PNG") -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height)).save(buffer, fmt)
    mime = "png" if fmt == "PNG" else "jpeg"
    return f"data:image/{mime};base64,{base64.b64encode(buffer.getvalue()).decode()}"


# ---------------------------------------------------------------- which counter


@pytest.mark.parametrize("model, encoding", [
    ("gpt-4o", "o200k_base"), ("gpt-4o-mini", "o200k_base"), ("gpt-4.1", "o200k_base"),
    ("gpt-5-nano", "o200k_base"), ("o1", "o200k_base"), ("o3-mini", "o200k_base"),
    ("o4-mini", "o200k_base"), ("chatgpt-4o-latest", "o200k_base"),
    ("openai/gpt-4o", "o200k_base"), ("gpt-4", "cl100k_base"), ("gpt-4-turbo", "cl100k_base"),
    ("gpt-3.5-turbo", "cl100k_base"), ("llama3", None), ("o1x", None), ("smollm2", None),
])
def test_openai_model_names_pick_their_vocabulary(model, encoding):
    assert openai_encoding(model) == encoding


def test_openai_kind_counts_with_o200k_even_for_an_unknown_name(http_client):
    openai_target = Target("openai", "OpenAI", "https://api.openai.com/v1", "k", "some-new-model")
    counter = counter_for(openai_target, http_client)
    assert counter.exact and counter.identity == "vocabulary:o200k_base"


def test_known_openai_counts():
    # Counts of OpenAI's own tokenizer for these strings.
    assert VocabularyCounter("cl100k_base").count("hello world") == 2
    assert VocabularyCounter("o200k_base").count("Hello world, привет 你好") == 6
    assert VocabularyCounter("o200k_base").count("<|endoftext|>") > 1  # text, not a special


def test_openai_message_overhead_matches_openai_rule():
    # OpenAI's rule: 3 per message + the role + the content, 3 for the reply's opening.
    counter = VocabularyCounter("o200k_base")
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    content = counter.count("Be brief.") + counter.count("Hi")
    assert count_messages(counter, messages) == 3 + (3 + 1) * 2 + content


# ---------------------------------------------------------------- the estimate


def test_script_stretches_cut_where_the_script_changes():
    stretches = script_stretches("Hello мир, как дела? and 你好 ok")
    assert [piece for piece, _ in stretches] == ["Hello ", "мир, как дела", "? and ", "你好", " ok"]
    assert "".join(piece for piece, _ in stretches) == "Hello мир, как дела? and 你好 ok"


@given(st.text())
def test_stretches_cover_the_text(text):
    """Property: the stretches, joined, are the text itself, none empty."""
    stretches = script_stretches(text)
    assert "".join(piece for piece, _ in stretches) == text
    assert all(piece for piece, _ in stretches)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200), st.text(min_size=1, max_size=50))
def test_counts_never_decrease_when_text_is_appended(text, more):
    """Property: appending text never lowers a count (exact and estimated)."""
    for counter in (VocabularyCounter("o200k_base"), EstimateCounter()):
        assert counter.count(text + more) >= counter.count(text)


def test_estimate_is_marked():
    assert not EstimateCounter().exact


# ---------------------------------------------------------------- images


@pytest.mark.parametrize("width, height, detail, tokens", [
    (1024, 1024, "high", 765),  # OpenAI's example: 768x768, 4 tiles
    (2048, 4096, "high", 1105),  # to 1024x2048, then 768x1536: 6 tiles
    (4096, 8192, "low", 85),
    (512, 512, "auto", 255),
    (100, 100, "high", 255),
])
def test_image_tokens_follow_openais_formula(width, height, detail, tokens):
    assert image_tokens(width, height, detail) == tokens


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_image_size_is_read_from_the_data_url(fmt):
    assert data_url_size(png_url(1200, 700, fmt)) == (1200, 700)


def test_an_unreadable_image_costs_the_base_and_does_not_raise():
    counter = VocabularyCounter("o200k_base")
    parts = [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
             {"type": "image_url", "image_url": {"url": "https://example.com/x.png"}}]
    with_images = count_messages(counter, [{"role": "user", "content": parts}])
    assert with_images == count_messages(counter, [{"role": "user", "content": ""}]) + 2 * IMAGE_BASE


def test_an_image_part_adds_its_tiles():
    counter = VocabularyCounter("o200k_base")
    text_only = [{"role": "user", "content": [{"type": "text", "text": "What is this?"}]}]
    with_image = [{"role": "user", "content": [*text_only[0]["content"], {
        "type": "image_url", "image_url": {"url": png_url(1024, 1024)}}]}]
    assert count_messages(counter, with_image) - count_messages(counter, text_only) == 765


# ---------------------------------------------------------------- the cache


class CountingCounter(VocabularyCounter):
    def __init__(self):
        super().__init__("o200k_base")
        self.calls = 0

    def count(self, text):
        self.calls += 1
        return super().count(text)


def hundred_turns() -> list[dict]:
    return [{"role": "user" if n % 2 == 0 else "assistant",
             "content": f"Turn {n}: " + CHAT_TEXTS[n % len(CHAT_TEXTS)] * 8} for n in range(100)]


def test_a_chat_is_counted_once_then_only_what_changed():
    counter, cache = CountingCounter(), TokenCache()
    messages = hundred_turns()
    first = count_messages(counter, messages, cache)
    calls = counter.calls
    assert count_messages(counter, messages, cache) == first
    assert counter.calls == calls  # nothing counted again
    messages.append({"role": "user", "content": "One more question."})
    count_messages(counter, messages, cache)
    assert counter.calls == calls + 1
    assert first == count_messages(VocabularyCounter("o200k_base"), hundred_turns())


def test_the_cache_keeps_counters_apart_and_is_bounded():
    cache = TokenCache(size=3)
    exact, estimate = VocabularyCounter("o200k_base"), EstimateCounter()
    text = CHAT_TEXTS[2]
    assert count_text(exact, text, cache) != count_text(estimate, text, cache)
    for n in range(10):
        count_text(exact, f"text {n}", cache)
    assert len(cache) == 3


def test_counting_a_hundred_turn_chat_again_is_fast():
    # A sanity bound far above the target: bench/tokens.py prints the real figure.
    counter, cache = VocabularyCounter("o200k_base"), TokenCache()
    messages = hundred_turns()
    count_messages(counter, messages, cache)
    started = time.perf_counter()
    count_messages(counter, messages, cache)
    assert time.perf_counter() - started < 1.0


# ---------------------------------------------------------------- a real llama.cpp server


def prompt_tokens(server, messages) -> int:
    client = openai.OpenAI(base_url=server.base_url, api_key=server.api_key, max_retries=0)
    reply = client.chat.completions.create(model=server.model, messages=messages, max_tokens=1)
    return reply.usage.prompt_tokens


def test_llama_server_counts_exactly_within_3_percent(llama_server, http_client):
    counter = counter_for(target(llama_server), http_client)
    assert isinstance(counter, ServerCounter) and counter.exact
    messages = [{"role": "system", "content": "You answer briefly."}]
    messages += [{"role": "user" if n % 2 == 0 else "assistant", "content": text}
                 for n, text in enumerate(CHAT_TEXTS)]
    ours, server = count_messages(counter, messages), prompt_tokens(llama_server, messages)
    assert abs(ours - server) <= 0.03 * server, (ours, server)


def test_the_estimate_is_within_10_percent_of_llama_for_the_chat(llama_server, http_client):
    messages = [{"role": "user", "content": text} for text in CHAT_TEXTS]
    ours, server = count_messages(EstimateCounter(), messages), prompt_tokens(llama_server, messages)
    assert abs(ours - server) <= 0.10 * server, (ours, server)


def test_the_probe_is_asked_once_per_connection(llama_server, recording_proxy, http_client):
    proxy, recorder = recording_proxy(llama_server)
    server_target = target(proxy, connection_id="probe-once")
    assert counts_tokens(server_target, http_client) and counts_tokens(server_target, http_client)
    probes = [r for r in recorder.requests if r.path == "/extras/tokenize/count"]
    assert len(probes) == 1 and probes[0].sent_bearer(llama_server.api_key)


@pytest.mark.parametrize("fixture", ["katan_server", "llmock_factory"])
def test_servers_without_a_tokenizer_are_estimated(request, fixture, http_client):
    server = request.getfixturevalue(fixture)
    server = server() if callable(server) else server
    counter = counter_for(target(server, connection_id=fixture), http_client)
    assert isinstance(counter, EstimateCounter) and not counter.exact


def test_a_server_that_stops_counting_is_estimated_without_raising(canned_routes, http_client):
    server = canned_routes({"/extras/tokenize/count": (200, {"count": 7})})
    counter = ServerCounter(target(server, connection_id="stops"), http_client)
    assert counter.count("anything") == 7 and counter.exact
    counter.client = counter.client.with_options(base_url="http://127.0.0.1:9/")  # gone
    assert counter.count(CHAT_TEXTS[0]) == EstimateCounter().count(CHAT_TEXTS[0])
    assert not counter.exact and counter.identity == EstimateCounter().identity
