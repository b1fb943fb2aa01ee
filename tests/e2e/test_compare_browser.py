"""Compare in a real Chromium against `streamlit run` and real servers: one message to several
models picked in the Compare popover, their replies streaming side by side, a failure kept to its
column, Stop per column and Stop all, Continue with one (the next request holds only its branch),
a reload mid-comparison, blind mode and its tally, and a phone's width.

llama.cpp's server (a real small model) and llm-katan's echo backend answer; canned servers pace
a 40-word reply (a reply in flight) or answer 503 (a server made to fail); recording proxies show
each request's body.
"""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.chatting import add_connection
from tests.e2e.browser import (
    PHONE,
    assert_no_exception,
    chat_input,
    go_to,
    messages,
    open_app,
    screenshot,
    send,
    wait_idle,
)
from tests.fixtures.llm_servers import FORTY_WORDS

PICKER = '.st-key-compare-picker button:visible'
SLOW = 0.15  # seconds between the canned reply's 42 events: about 6 s in flight
FAILURE = "The model fell over (made to fail for this test)"


def _column(page: Page, index: int):
    return page.locator(f".st-key-compare-col-{index}")


def _figures(page: Page, index: int):
    """A column's line of figures; the newest drawn (while a run redraws the column, the line
    it drew before may still be on the page for a moment)."""
    return _column(page, index).locator('[data-testid="stCaptionContainer"]').filter(
        has_text="tokens").last


def _compare(page: Page, labels: list[str], blind: bool = False) -> None:
    """Pick the models in the Compare popover as a person does: open it, type to filter, click."""
    page.locator(PICKER).first.click()
    box = page.locator('[data-testid="stMultiSelect"]')
    expect(box).to_be_visible()
    for label in labels:
        box.locator("input").click()
        page.keyboard.type(label)
        page.get_by_role("option", name=label).click()
        wait_idle(page)
    page.keyboard.press("Escape")  # the list of models closes
    if blind:
        page.locator('[data-testid="stPopoverBody"]').get_by_text("Blind").click()
        wait_idle(page)
    page.locator(PICKER).first.click()  # and the popover
    expect(box).to_be_hidden()
    wait_idle(page)
    expect(chat_input(page)).to_have_attribute("placeholder", f"Message to {len(labels)} models")


def _slow(canned_server):
    return canned_server(200, FORTY_WORDS, chunked=True, pace=SLOW)


def _open(app_factory, new_page, data_dir, device=None) -> Page:
    app = app_factory(data_dir=data_dir)
    page = new_page(device) if device else new_page()
    open_app(page, app.url, "Chat")
    return page


def test_four_models_stream_at_once_and_a_failing_server_says_so_in_its_column_only(
    app_factory, new_page, llama_server, katan_server, canned_server, isolated_data_dir
):
    add_connection("Llama", llama_server)
    add_connection("Echo", katan_server)
    add_connection("Slow", _slow(canned_server))
    broken = canned_server(503, {"error": {"message": FAILURE}})
    add_connection("Broken", broken)
    labels = [f"{llama_server.model} · Llama", f"{katan_server.model} · Echo",
              "canned-model · Slow", "canned-model · Broken"]
    page = _open(app_factory, new_page, isolated_data_dir)
    _compare(page, labels)
    send(page, "Name three colours.")

    # While the slow reply streams, the failure is said in its own column, and the others
    # have their replies: all four were asked at once.
    expect(_column(page, 2)).to_contain_text("word3", timeout=20_000)
    expect(_figures(page, 2)).to_contain_text("streaming")
    expect(_column(page, 3)).to_contain_text(FAILURE, timeout=10_000)
    expect(_column(page, 1)).to_contain_text("Name three colours.")  # the echo
    expect(_column(page, 2)).not_to_contain_text("word39")
    for index, label in enumerate(labels):
        expect(_column(page, index)).to_contain_text(label)

    expect(_figures(page, 2)).to_contain_text("complete", timeout=30_000)
    wait_idle(page)
    expect(_column(page, 2)).to_contain_text("word39")
    for index in (0, 1, 2):
        expect(_figures(page, index)).to_contain_text(re.compile(r"first token \d"))
        expect(_figures(page, index)).to_contain_text("complete")
        expect(_column(page, index).locator('[data-testid="stAlertContentError"]')).to_have_count(0)
    expect(_figures(page, 3)).to_contain_text("error")
    errors = page.locator('.stMain [data-testid="stAlertContentError"]')
    expect(errors).to_have_count(1)  # said once, in its column
    expect(chat_input(page)).to_have_attribute("placeholder", re.compile("Pick the reply"))
    messages(page, "user").last.scroll_into_view_if_needed()
    screenshot(page, "compare-four")
    assert_no_exception(page)


def test_stop_one_column_then_stop_all(
    app_factory, new_page, canned_server, isolated_data_dir
):
    slow = canned_server(200, FORTY_WORDS, chunked=True, pace=0.3)  # about 13 s in flight
    add_connection("First", slow)
    add_connection("Second", slow)
    page = _open(app_factory, new_page, isolated_data_dir)
    _compare(page, ["canned-model · First", "canned-model · Second"])
    send(page, "Count slowly.")
    expect(_column(page, 0)).to_contain_text("word2", timeout=20_000)
    _column(page, 0).get_by_role("button", name="Stop").click()
    expect(_figures(page, 0)).to_contain_text("stopped", timeout=10_000)
    expect(_figures(page, 1)).to_contain_text("streaming")  # the other goes on
    expect(_column(page, 1)).to_contain_text("word6", timeout=10_000)
    page.get_by_role("button", name="Stop all").click()
    expect(_figures(page, 1)).to_contain_text("stopped", timeout=10_000)
    wait_idle(page)
    for index in (0, 1):
        expect(_column(page, index)).not_to_contain_text("word39")
    page.reload()  # as stored: both stopped, what came kept
    wait_idle(page)
    for index in (0, 1):
        expect(_figures(page, index)).to_contain_text("stopped")
        expect(_column(page, index)).to_contain_text("word1")
    assert_no_exception(page)


def test_continue_with_one_sends_only_its_branch_and_the_comparison_can_be_reopened(
    app_factory, new_page, llama_server, katan_server, recording_proxy, isolated_data_dir
):
    llama, llama_log = recording_proxy(llama_server)
    echo, echo_log = recording_proxy(katan_server)
    add_connection("Llama", llama)
    add_connection("Echo", echo)
    llama_label, echo_label = f"{llama.model} · Llama", f"{echo.model} · Echo"
    page = _open(app_factory, new_page, isolated_data_dir)
    _compare(page, [llama_label, echo_label])
    send(page, "First question, for both.")
    expect(_figures(page, 0)).to_contain_text("complete", timeout=60_000)
    expect(_figures(page, 1)).to_contain_text("complete", timeout=30_000)
    wait_idle(page)
    llama_reply = _column(page, 0).locator('[data-testid="stMarkdownContainer"]').nth(1)
    llama_text = llama_reply.inner_text().strip()
    assert llama_text
    asked_llama = len(llama_log.chat_requests)

    _column(page, 1).get_by_role("button", name="Continue with this one").click()
    wait_idle(page)
    expect(_column(page, 0)).to_have_count(0)  # the chat goes on with the echo's reply
    expect(page.get_by_role("combobox", name="Model")).to_have_value(echo_label)
    reply = messages(page, "assistant").last
    expect(reply).to_contain_text(echo_label)
    expect(reply).to_contain_text("Compared with 1 other model")
    expect(reply).to_contain_text(re.compile(r"\d / 2"))  # the other reply is a version

    send(page, "Second question, for the echo only.")
    expect(messages(page, "assistant")).to_have_count(2, timeout=30_000)
    wait_idle(page)
    sent = echo_log.chat_requests[-1].body["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]
    assert sent[0]["content"] == "First question, for both."
    assert sent[1]["content"].startswith("[echo]")
    assert sent[2]["content"] == "Second question, for the echo only."
    assert llama_text[:40] not in echo_log.chat_requests[-1].raw_body.decode()
    assert len(llama_log.chat_requests) == asked_llama  # the other model is not asked again

    # The comparison reopens; continuing with the echo again finds the branch it had.
    messages(page, "assistant").first.get_by_role("button", name="Show the comparison").click()
    wait_idle(page)
    expect(_column(page, 0)).to_contain_text(llama_label)
    expect(_column(page, 1)).to_contain_text("picked")
    _column(page, 1).get_by_role("button", name="Continue with this one").click()
    wait_idle(page)
    expect(messages(page, "user").last).to_contain_text("Second question")
    assert_no_exception(page)


def test_a_reload_mid_comparison_shows_the_replies_still_streaming_then_complete(
    app_factory, new_page, canned_server, katan_server, isolated_data_dir
):
    add_connection("Slow", _slow(canned_server))
    add_connection("Echo", katan_server)
    page = _open(app_factory, new_page, isolated_data_dir)
    _compare(page, ["canned-model · Slow", f"{katan_server.model} · Echo"])
    send(page, "Keep going while I reload.")
    expect(_column(page, 0)).to_contain_text("word2", timeout=20_000)
    page.reload()
    page.wait_for_selector('[data-testid="stApp"]')
    expect(_column(page, 0)).to_be_visible(timeout=20_000)
    expect(_column(page, 1)).to_contain_text("Keep going while I reload.")
    expect(_figures(page, 0)).to_contain_text("complete", timeout=30_000)
    wait_idle(page)
    expect(_column(page, 0)).to_contain_text("word39")
    expect(_figures(page, 1)).to_contain_text("complete")
    assert_no_exception(page)


def _tally_row(page: Page, label: str) -> list[str]:
    """Wins, losses, ties and compared of `label` in Settings' tally (the last table there)."""
    table = page.locator('[data-testid="stDataFrame"]').last
    expect(table).to_contain_text(label)
    text = " ".join(table.evaluate("t => t.textContent").split())
    found = re.search(re.escape(label) + r"\s*(\d+)\s*(\d+)\s*(\d+)\s*(\d+)", text)
    return list(found.groups()) if found else []


def test_blind_mode_hides_the_names_until_the_pick_and_the_tally_counts_it(
    app_factory, new_page, llama_server, katan_server, isolated_data_dir
):
    add_connection("Llama", llama_server)
    add_connection("Echo", katan_server)
    labels = [f"{llama_server.model} · Llama", f"{katan_server.model} · Echo"]
    page = _open(app_factory, new_page, isolated_data_dir)
    _compare(page, labels, blind=True)
    send(page, "Which of you is better?")
    for index in (0, 1):
        expect(_figures(page, index)).to_contain_text("complete", timeout=60_000)
    wait_idle(page)
    columns = page.locator(".st-key-compare-col-0, .st-key-compare-col-1")
    expect(_column(page, 0)).to_contain_text("Model A")
    expect(_column(page, 1)).to_contain_text("Model B")
    for label in labels:  # no name anywhere in the columns, nor in the model selector's place
        expect(columns.filter(has_text=label)).to_have_count(0)
    echo_column = 0 if "[echo]" in _column(page, 0).inner_text() else 1
    _column(page, echo_column).get_by_role("button", name="This one is best").click()
    wait_idle(page)
    # Picked: the names show, and the chat goes on with the echo.
    reply = messages(page, "assistant").last
    expect(reply).to_contain_text(labels[1])
    reply.get_by_role("button", name="Show the comparison").click()
    wait_idle(page)
    expect(_column(page, echo_column)).to_contain_text(labels[1])
    expect(_column(page, echo_column)).to_contain_text("picked")
    expect(_column(page, 1 - echo_column)).to_contain_text(labels[0])

    # A second blind comparison (Blind stays on) judged a tie.
    _column(page, echo_column).get_by_role("button", name="Continue with this one").click()
    wait_idle(page)
    _compare(page, labels)
    send(page, "And now?")
    for index in (0, 1):
        expect(_figures(page, index)).to_contain_text("complete", timeout=60_000)
    wait_idle(page)
    page.get_by_role("button", name="Tie").click()
    wait_idle(page)
    expect(_column(page, 0)).to_contain_text("tie")

    go_to(page, "Settings")
    assert _tally_row(page, labels[1]) == ["1", "0", "1", "2"]  # wins, losses, ties, compared
    assert _tally_row(page, labels[0]) == ["0", "1", "1", "2"]
    screenshot(page, "compare-tally")
    assert_no_exception(page)


def test_on_a_phone_the_columns_stand_one_under_the_other(
    app_factory, new_page, llama_server, katan_server, isolated_data_dir
):
    add_connection("Llama", llama_server)
    add_connection("Echo", katan_server)
    page = _open(app_factory, new_page, isolated_data_dir, device=PHONE)
    _compare(page, [f"{llama_server.model} · Llama", f"{katan_server.model} · Echo"])
    send(page, "Hello from a phone.")
    for index in (0, 1):
        expect(_figures(page, index)).to_contain_text("complete", timeout=60_000)
    wait_idle(page)
    first, second = (_column(page, i).bounding_box() for i in (0, 1))
    assert second["y"] >= first["y"] + first["height"] - 1  # one under the other
    for box in (first, second):  # each as wide as the screen allows, none cut off
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["viewport"]["width"]
        assert box["width"] >= PHONE["viewport"]["width"] * 0.7
    _column(page, 0).scroll_into_view_if_needed()
    screenshot(page, "compare-phone")
    assert_no_exception(page)


def test_a_reply_that_ended_can_be_picked_while_a_slower_one_still_arrives(
    app_factory, new_page, canned_server, katan_server, isolated_data_dir
):
    add_connection("Slow", canned_server(200, FORTY_WORDS, chunked=True, pace=0.3))
    add_connection("Echo", katan_server)
    page = _open(app_factory, new_page, isolated_data_dir)
    _compare(page, ["canned-model · Slow", f"{katan_server.model} · Echo"])
    send(page, "The quick one wins.")
    expect(_figures(page, 1)).to_contain_text("complete", timeout=20_000)
    expect(_figures(page, 0)).to_contain_text("streaming")
    _column(page, 1).get_by_role("button", name="Continue with this one").click()
    wait_idle(page)
    expect(_column(page, 0)).to_have_count(0)
    expect(messages(page, "assistant").last).to_contain_text("The quick one wins.")
    expect(chat_input(page)).to_be_enabled()
    # The slow reply went on as a version: reopened, it has all its words.
    page.wait_for_timeout(14_000)
    messages(page, "assistant").last.get_by_role("button", name="Show the comparison").click()
    wait_idle(page)
    expect(_column(page, 0)).to_contain_text("word39", timeout=10_000)
    expect(_column(page, 1)).to_contain_text("picked")
    assert_no_exception(page)
