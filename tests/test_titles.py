"""A new chat's title written by a model: the answer cleaned to a title, written in the
background only while the chat has the title made from its first words (a rename wins), nothing
on a failure; the chat page shows it and Settings chooses who writes it. Real SQLite store,
canned servers on loopback (their answer is the title), llm-katan and llama.cpp."""

from __future__ import annotations

import time

from hypothesis import given
from hypothesis import strategies as st

from core.config import load_settings
from core.history.model import Chat, Message
from core.history.thread import title_from
from core.history.titles import (
    INSTRUCTION,
    TITLE_CHARS,
    TITLE_TOKENS,
    TitleAsk,
    Titles,
    ask_title,
    clean_title,
    is_first_words,
    title_request,
)
from core.providers.kinds import Target
from core.providers.profile import NO_TITLES
from core.store.sqlite import SQLiteChatStore
from tests.apptest import history_titles
from tests.chatting import send, start_chat, use_server
from tests.fixtures.llm_servers import SSE_DONE, sse_chunk
from tests.replying import target

FIRST = "what should I pack for a weekend in paris in march"


def _answering(canned_server, text: str):
    """A server whose every chat reply is `text`, streamed."""
    return canned_server(200, [sse_chunk({"role": "assistant", "content": ""}),
                               sse_chunk({"content": text}), sse_chunk({}, finish_reason="stop"),
                               SSE_DONE], chunked=True)


def test_a_models_answer_is_cleaned_to_a_title():
    assert clean_title('"Packing for Paris in March"') == "Packing for Paris in March"
    assert clean_title("Title: **Packing for Paris**.") == "Packing for Paris"
    assert clean_title("<think>They ask about packing.</think>\n\n## Paris packing list") == (
        "Paris packing list")
    assert clean_title("Paris trip\nHere is why: ...") == "Paris trip"
    assert clean_title('Here\'s a title for the conversation:\n"Tips for Dark Flats"') == (
        "Tips for Dark Flats")
    assert clean_title("Here is my answer:") == "Here is my answer:"  # nothing after it
    assert clean_title("") is None and clean_title(" ... ") is None
    assert clean_title('"""\nThe real title') == "The real title"  # a line of quotes only
    assert clean_title('"Paris trip."') == "Paris trip"  # the period inside the quotes
    assert clean_title("Project X") == "Project X"
    seventy = "A title of seventy characters that a smaller limit would cut short ok"
    assert clean_title(seventy) == seventy
    assert clean_title("<think>never closed") is None
    long = clean_title("word " * 40)
    assert long.endswith("…") and len(long) <= TITLE_CHARS + 1


@given(st.text(max_size=400))
def test_a_title_is_one_short_line_or_nothing(text):
    """Property: whatever a model answers, the title is None or one trimmed line of at most
    TITLE_CHARS characters (and its ellipsis) holding a letter or a digit."""
    title = clean_title(text)
    if title is not None:
        assert "\n" not in title and title == title.strip()
        assert 0 < len(title) <= TITLE_CHARS + 1
        assert any(ch.isalnum() for ch in title)


def test_the_request_holds_the_first_message_and_reply_cut_short():
    request = title_request("m" * 5_000, "r" * 5_000)
    assert request == [{"role": "user", "content": f"{INSTRUCTION}\n\nUser: {'m' * 2_000}"
                                                   f"\n\nAssistant: {'r' * 2_000}\n\nTitle:"}]


def test_a_chat_with_no_title_yet_or_its_first_words_is_one_to_title():
    assert is_first_words(Chat(title=""), FIRST)
    assert is_first_words(Chat(title=title_from(FIRST)), FIRST)
    assert not is_first_words(Chat(title="My trip"), FIRST)


def test_the_title_is_asked_briefly_and_cool_and_a_reply_cut_short_still_titles(
        canned_server, recording_proxy):
    cut = canned_server(200, [sse_chunk({"content": "Paris packing"}),
                              sse_chunk({}, finish_reason="length"), SSE_DONE], chunked=True)
    server, recorder = recording_proxy(cut)
    settings = load_settings(environ={}, dotenv_path=None)
    assert ask_title(settings, target(server), FIRST, "Layers.") == "Paris packing"
    (asked,) = recorder.chat_requests
    assert asked.body["temperature"] == 0.2 and asked.body["max_tokens"] == TITLE_TOKENS
    assert asked.body["messages"] == title_request(FIRST, "Layers.")


def test_one_title_at_a_time_per_chat_and_a_store_failure_is_logged_not_shown(
        canned_server, recording_proxy, tmp_path, caplog):
    slow = canned_server(200, [sse_chunk({"content": "Slow title"}),
                               sse_chunk({}, finish_reason="stop"), SSE_DONE],
                         chunked=True, pace=0.3)
    server, recorder = recording_proxy(slow)
    titles, settings = Titles(), load_settings(environ={}, dotenv_path=None)

    def broken():
        raise RuntimeError("the store fell over")

    ask = TitleAsk(target(server), FIRST)
    titles.write(settings, ask, broken, "chat-1", "Layers.")
    titles.write(settings, ask, broken, "chat-1", "Layers.")  # the same chat: not asked again
    assert titles.pending("chat-1")
    deadline = time.monotonic() + 20
    while titles.pending("chat-1") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(recorder.chat_requests) == 1
    assert titles.written("chat-1") is None
    (logged,) = [r for r in caplog.records if r.name == "core.history.titles"]
    assert logged.getMessage() == "A chat's title could not be written"
    assert logged.exc_info and "the store fell over" in str(logged.exc_info[1])


def _chat(store: SQLiteChatStore, title: str = title_from(FIRST)) -> Chat:
    chat = store.save_chat(Chat(title=title))
    store.add_message(Message(chat.id, "user", FIRST))
    return chat


def _written(titles: Titles, server, store, chat: Chat) -> str:
    settings = load_settings(environ={}, dotenv_path=None)
    titles.write(settings, TitleAsk(target(server), FIRST), lambda: store, chat.id, "Pack layers.")
    deadline = time.monotonic() + 30
    while titles.pending(chat.id) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not titles.pending(chat.id)
    return store.get_chat(chat.id).title


def test_the_title_is_written_to_the_store_and_kept_for_the_pages(canned_server, tmp_path):
    server = _answering(canned_server, '"Packing for Paris in March"')
    store, titles = SQLiteChatStore(tmp_path), Titles()
    chat = _chat(store)
    assert _written(titles, server, store, chat) == "Packing for Paris in March"
    assert titles.written(chat.id) == "Packing for Paris in March"


def test_a_rename_by_the_user_wins(canned_server, tmp_path):
    server = _answering(canned_server, "Packing for Paris")
    store, titles = SQLiteChatStore(tmp_path), Titles()
    chat = _chat(store, title="My trip")
    assert _written(titles, server, store, chat) == "My trip"
    assert titles.written(chat.id) is None


def test_a_failing_model_leaves_the_first_words_silently(canned_server, tmp_path, caplog):
    server = canned_server(503, {"error": {"message": "overloaded"}})
    store, titles = SQLiteChatStore(tmp_path), Titles()
    chat = _chat(store)
    with caplog.at_level("INFO", logger="core.history.titles"):
        assert _written(titles, server, store, chat) == title_from(FIRST)
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]
    said = [r.getMessage() for r in caplog.records if r.name == "core.history.titles"]
    assert said and said[0].startswith(f"No title from {target(server).label}: ")


def test_a_real_small_model_writes_a_short_title(llama_server):
    settings = load_settings(environ={}, dotenv_path=None)
    model = Target("openai-compatible", "Llama", llama_server.base_url, llama_server.api_key,
                   llama_server.model)
    title = ask_title(settings, model, FIRST,
                      "Bring layers, a rain jacket and comfortable shoes.")
    assert title and len(title) <= TITLE_CHARS + 1 and "\n" not in title


def test_the_chat_page_shows_the_title_after_the_first_reply(canned_server, monkeypatch):
    monkeypatch.setenv("SWITCHBOARD_CHAT_TITLES", "on")
    use_server(_answering(canned_server, "Weekend in Paris"))
    at = start_chat()
    send(at, FIRST)
    deadline = time.monotonic() + 20
    while history_titles(at) != ["Weekend in Paris"] and time.monotonic() < deadline:
        time.sleep(0.2)
        at.run()
    assert history_titles(at) == ["Weekend in Paris"]
    send(at, "and in april?")  # the page's copy of the chat does not write the old title back
    again = start_chat()
    assert history_titles(again) == ["Weekend in Paris"]


def test_settings_can_turn_titles_off_for_this_user_and_the_administrator_for_all(
        canned_server, monkeypatch):
    monkeypatch.setenv("SWITCHBOARD_CHAT_TITLES", "on")
    use_server(_answering(canned_server, "Weekend in Paris"))
    at = start_chat()
    at.switch_page("pages/settings.py").run()
    picker = at.selectbox(key="titles:model")
    assert picker.options[-1] == "None: a chat keeps its first words"
    picker.select(NO_TITLES).run()
    assert not at.exception, at.exception
    at.switch_page("pages/chat.py").run()
    send(at, FIRST)
    time.sleep(1.5)
    at.run()
    assert history_titles(at) == [title_from(FIRST)]

    monkeypatch.setenv("SWITCHBOARD_CHAT_TITLES", "off")
    off = start_chat()
    off.switch_page("pages/settings.py").run()
    assert "The administrator turned chat titles off" in " ".join(c.value for c in off.caption)
