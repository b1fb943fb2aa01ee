"""The message box in a real Chromium, against a small two-page app (tests/e2e/message_box_app.py)
under `streamlit run`, driven with the key presses and clicks a person makes.

The draft (typed text and attached files) comes back after a visit to another page, a removed
file stays removed, a sent draft never comes back; the context meter adds the typed text on a
pause, turns amber at 80 % of the window and red over it.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.browser import (
    DESKTOP,
    PHONE,
    REPO,
    assert_no_exception,
    chat_input,
    go_to,
    key,
    wait_idle,
)

HARNESS = REPO / "tests" / "e2e" / "message_box_app.py"
CHIP = '[data-testid="stChatInput"] [data-testid="stFileChip"]'
FILES = [
    {"name": "notes.txt", "mimeType": "text/plain", "buffer": b"first file\n"},
    {"name": "plan.md", "mimeType": "text/markdown", "buffer": b"# second file\n"},
]


@pytest.fixture
def harness(app_factory, new_page):
    """open(query="", device=DESKTOP) -> Page: the harness's chat page in a fresh context."""
    app = app_factory(script=HARNESS)

    def open_chat(query: str = "", device: dict = DESKTOP) -> Page:
        page = new_page(device)
        page.goto(app.url + query)
        wait_idle(page)
        expect(page.locator("h1", has_text="Chat")).to_be_visible()
        return page

    return open_chat


def _attach(page: Page, files: list[dict]) -> None:
    """Click the chat input's "Upload files" and pick `files` in the file chooser."""
    with page.expect_file_chooser() as chooser:
        page.get_by_role("button", name="Upload files").click()
    chooser.value.set_files(files)
    expect(page.locator(CHIP)).to_have_count(len(files))


def _chips(page: Page) -> list[str]:
    return page.locator(f'{CHIP} [data-testid="stFileChipName"]').all_inner_texts()


def _visit_other_page_and_back(page: Page) -> None:
    go_to(page, "Other")
    expect(chat_input(page)).to_have_count(0)
    go_to(page, "Chat")


def _received(page: Page) -> list[str]:
    return page.locator(key("harness-received")).locator('[data-testid="stText"]').all_inner_texts()


def test_typed_text_and_attached_files_come_back_after_another_page_and_go_once_sent(harness):
    page = harness()
    box = chat_input(page)
    box.click()
    page.keyboard.type("Compare these two files")
    _attach(page, FILES)
    page.keyboard.press("Tab")

    _visit_other_page_and_back(page)
    expect(box).to_have_value("Compare these two files")
    expect(page.locator(CHIP)).to_have_count(2)
    assert sorted(_chips(page)) == ["notes.txt", "plan.md"]

    box.click()
    page.keyboard.press("Enter")  # the files put back are uploaded and sent, as typed ones are
    wait_idle(page)
    assert _received(page) == ["received: 'Compare these two files' files: notes.txt, plan.md"]
    expect(box).to_have_value("")

    _visit_other_page_and_back(page)
    page.wait_for_timeout(500)  # a restore would have happened by now
    expect(box).to_have_value("")
    expect(page.locator(CHIP)).to_have_count(0)
    assert_no_exception(page)


def test_a_removed_file_stays_removed_and_a_draft_sent_with_the_button_is_forgotten(harness):
    page = harness()
    box = chat_input(page)
    box.click()
    page.keyboard.type("Only the plan")
    _attach(page, FILES)
    page.get_by_role("button", name="Remove notes.txt").click()
    expect(page.locator(CHIP)).to_have_count(1)

    _visit_other_page_and_back(page)
    expect(box).to_have_value("Only the plan")
    expect(page.locator(CHIP)).to_have_count(1)
    assert _chips(page) == ["plan.md"]

    page.locator('[data-testid="stChatInputSubmitButton"]').click()
    wait_idle(page)
    assert _received(page) == ["received: 'Only the plan' files: plan.md"]
    _visit_other_page_and_back(page)
    page.wait_for_timeout(500)
    expect(box).to_have_value("")
    expect(page.locator(CHIP)).to_have_count(0)


def test_typed_text_survives_a_reload_and_is_never_put_over_new_text(harness):
    page = harness()
    box = chat_input(page)
    box.click()
    page.keyboard.type("Half a thought")
    page.reload()
    wait_idle(page)
    expect(box).to_have_value("Half a thought")

    # What the user types after it came back is the draft now.
    box.click()
    page.keyboard.press("ControlOrMeta+a")
    page.keyboard.type("A new thought")
    _visit_other_page_and_back(page)
    expect(box).to_have_value("A new thought")



def _draft_wrapper_display(page: Page) -> str:
    return page.locator(key("message-box-draft")).evaluate(
        "e => getComputedStyle(e.parentElement).display")


def test_signing_out_forgets_the_draft(harness):
    page = harness()
    box = chat_input(page)
    box.click()
    page.keyboard.type("Not for the next user")
    _attach(page, FILES[:1])
    go_to(page, "Signed out")
    assert _draft_wrapper_display(page) == "none"  # takes no room (no gap) on any page
    go_to(page, "Chat")
    assert _draft_wrapper_display(page) == "none"
    page.wait_for_timeout(500)  # a restore would have happened by now
    expect(box).to_have_value("")
    expect(page.locator(CHIP)).to_have_count(0)
    page.reload()
    wait_idle(page)
    expect(box).to_have_value("")

def _meter(page: Page):
    return page.locator(".sb-meter")


def _line(page: Page) -> str:
    return page.locator(".sb-meter-line").inner_text()


def _fill_colour(page: Page) -> str:
    return page.locator(".sb-meter-fill").evaluate("e => getComputedStyle(e).backgroundColor")


def test_the_meter_counts_the_typed_text_and_turns_amber_then_red(harness):
    # 100 tokens, 10 kept for the reply, 0.5 tokens a character (message_box_app.py).
    page = harness("?window=100")
    meter = _meter(page)
    expect(meter).to_have_attribute("role", "meter")
    expect(meter).to_have_attribute("aria-valuemax", "100")
    assert _line(page) == "≈10 of 100 tokens (10%) · 10 kept for the reply"
    ok_colour = _fill_colour(page)

    chat_input(page).click()
    page.keyboard.type("x" * 138)  # 69 tokens: 79 %
    expect(page.locator(".sb-meter-line")).to_have_text(
        "≈79 of 100 tokens (79%) · 10 kept for the reply")
    expect(meter).to_have_attribute("data-level", "ok")
    expect(meter).to_have_attribute("aria-valuenow", "79")

    page.keyboard.type("xx")  # 80 %
    expect(page.locator(".sb-meter-line")).to_have_text(
        "≈80 of 100 tokens (80%) · 10 kept for the reply · nearly full")
    expect(meter).to_have_attribute("data-level", "near")
    amber = _fill_colour(page)
    assert amber != ok_colour

    page.keyboard.type("x" * 41)  # 181 characters, 91 tokens: 101 of 100
    expect(page.locator(".sb-meter-line")).to_have_text(re.compile(
        r"^≈101 of 100 tokens \(101%\) · 10 kept for the reply · over the window: "
        r"Send will be refused$"))
    expect(meter).to_have_attribute("data-level", "over")
    assert _fill_colour(page) not in (ok_colour, amber)
    assert page.locator(".sb-meter-fill").evaluate("e => e.style.width") == "100%"

    page.keyboard.press("Backspace")  # 180 characters: 90 tokens, 100 of 100 is not over
    expect(meter).to_have_attribute("data-level", "near")


def test_the_meter_waits_for_a_pause_and_follows_a_chat_input_drawn_again(harness):
    page = harness("?window=1000")
    line = page.locator(".sb-meter-line")
    expect(line).to_have_text("≈10 of 1,000 tokens (1%) · 10 kept for the reply")
    changes = page.evaluate_handle("""() => {
        const seen = [];
        new MutationObserver(() => seen.push(document.querySelector('.sb-meter-line').textContent))
            .observe(document.querySelector('.sb-meter'), {subtree: true, childList: true,
                                                            characterData: true});
        return seen;
    }""")
    chat_input(page).click()
    page.keyboard.type("y" * 40, delay=10)  # faster than the pause: one update at the end
    expect(line).to_have_text("≈30 of 1,000 tokens (3%) · 10 kept for the reply")
    page.wait_for_timeout(300)
    assert changes.evaluate("seen => seen.length") <= 10, changes.json_value()  # 40 unpaused

    page.keyboard.press("Enter")  # sent: the conversation now holds it (20 tokens)
    wait_idle(page)
    expect(line).to_have_text("≈30 of 1,000 tokens (3%) · 10 kept for the reply")
    _visit_other_page_and_back(page)
    expect(line).to_have_text("≈30 of 1,000 tokens (3%) · 10 kept for the reply")
    chat_input(page).click()
    page.keyboard.type("zzzz")
    expect(line).to_have_text("≈32 of 1,000 tokens (3%) · 10 kept for the reply")
    assert page.evaluate("typeof window.sbMeter.refresh") == "function"


def test_a_window_not_known_is_said_with_where_to_set_it(harness):
    page = harness("?window=0")
    meter = _meter(page)
    expect(meter).not_to_have_attribute("role", "meter")
    expect(page.locator(".sb-meter-line")).to_have_text(
        "≈10 tokens · 10 kept for the reply · window unknown — set it in Chat options")
    chat_input(page).click()
    page.keyboard.type("abcd")
    expect(page.locator(".sb-meter-line")).to_have_text(
        "≈12 tokens · 10 kept for the reply · window unknown — set it in Chat options")


# Where the meter is, against the chat input, and what the browser finds at its middle.
_WHERE = """meter => {
    const box = meter.getBoundingClientRect();
    const input = document.querySelector('[data-testid="stChatInput"]').getBoundingClientRect();
    const hit = document.elementFromPoint(box.left + 20, box.top + box.height / 2);
    return {top: box.top, bottom: box.bottom, inputTop: input.top, height: innerHeight,
            onTop: meter.contains(hit)};
}"""


@pytest.mark.parametrize("device", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_the_meter_stays_just_above_the_chat_input_over_a_long_chat(harness, device):
    page = harness("?turns=30&window=100000", device)
    meter = page.locator(key("message-box-meter"))
    chat_input(page).click()
    _attach(page, FILES)  # the input grows taller: the meter moves up with it
    page.mouse.move(device["viewport"]["width"] // 2, 200)
    for _ in range(3):  # a reader scrolls back up the conversation
        page.mouse.wheel(0, -1500)
        page.wait_for_timeout(300)
    seen = meter.evaluate(_WHERE)
    assert 0 <= seen["top"] and seen["bottom"] <= seen["inputTop"] + 1, seen
    assert seen["inputTop"] - seen["bottom"] < 40, f"not just above the chat input: {seen}"
    assert seen["onTop"], f"something covers the meter: {seen}"
