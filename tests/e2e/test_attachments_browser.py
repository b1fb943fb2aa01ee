"""Attachments and the context budget in a real Chromium against `streamlit run` and real
servers: files attached in the message box as a person does (the box's own file input), sent,
refused before sending with nothing lost, and kept with their message across a reload.

llm-katan's echo backend writes each image part as `[image:<mime>]` in its reply, which proves
what was sent; llama.cpp's server (no vision projector) sends an empty stream to a message with
an image; a recording proxy in front of a server shows each request's body.
"""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.chatting import add_connection, save_compatible
from tests.e2e.browser import (
    assert_no_exception,
    chat_input,
    go_to,
    key,
    messages,
    open_app,
    open_sidebar,
    pick,
    screenshot,
    send,
    wait_idle,
)
from tests.e2e.files import CHIP, attach, docx_file, pdf, photo

REFUSAL = '.st-key-chat-box [data-testid="stAlertContentError"]'


def _chat(app_factory, new_page, server, data_dir) -> Page:
    save_compatible(server.base_url, server.api_key, server.model)
    app = app_factory(data_dir=data_dir)
    page = new_page()
    open_app(page, app.url, "Chat")
    return page


def _posts(recorder) -> list[dict]:
    return [r.body for r in recorder.chat_requests]


def test_an_image_reaches_the_server_as_an_image_part_and_shows_on_the_message(
    app_factory, new_page, katan_server, recording_proxy, isolated_data_dir, tmp_path
):
    proxy, recorder = recording_proxy(katan_server)
    page = _chat(app_factory, new_page, proxy, isolated_data_dir)
    photo(tmp_path / "photo.png")
    attach(page, tmp_path / "photo.png")
    send(page, "What is in this picture?")
    wait_idle(page)
    expect(messages(page, "assistant").last).to_contain_text("[image:image/jpeg]",
                                                            timeout=20_000)
    content = _posts(recorder)[-1]["messages"][-1]["content"]
    assert content[0] == {"type": "text", "text": "What is in this picture?"}
    assert content[1]["image_url"]["url"].startswith("data:image/jpeg;base64,")
    user = messages(page, "user").last
    thumbnail = user.locator('[data-testid="stImage"] img')
    expect(thumbnail).to_have_count(1)
    expect(user).to_contain_text("photo.png")
    expect(page.locator(CHIP)).to_have_count(0)  # sent: the box is empty again
    screenshot(page, "attachments-image")

    page.reload()  # the chat's address opens it again, with its image
    wait_idle(page)
    expect(messages(page, "user").last.locator('[data-testid="stImage"] img')).to_have_count(1)
    assert_no_exception(page)


def test_a_model_that_takes_no_images_says_so_once_then_the_box_says_it_before_sending(
    app_factory, new_page, llama_server, recording_proxy, isolated_data_dir, tmp_path
):
    proxy, recorder = recording_proxy(llama_server)
    page = _chat(app_factory, new_page, proxy, isolated_data_dir)
    photo(tmp_path / "photo.png")
    attach(page, tmp_path / "photo.png")
    send(page, "Describe this.")
    wait_idle(page)
    reply = messages(page, "assistant").last
    expect(reply).to_contain_text("does not take images", timeout=30_000)
    expect(chat_input(page)).to_have_attribute("placeholder", f"Message ({proxy.model} does "
                                               "not take images)")
    asked = len(_posts(recorder))

    attach(page, tmp_path / "photo.png")
    send(page, "And this one?")
    wait_idle(page)
    expect(page.locator(REFUSAL)).to_contain_text("does not take images")
    expect(chat_input(page)).to_have_value("And this one?")  # nothing typed is lost
    expect(page.locator(".st-key-chat-tray")).to_contain_text("photo.png")
    assert len(_posts(recorder)) == asked  # refused before anything was sent

    # Without the image (its ✕ in the tray) the same words go, as plain text.
    page.locator(".st-key-chat-tray").get_by_role("button", name="photo.png").click()
    wait_idle(page)
    chat_input(page).press("Enter")
    wait_idle(page)
    expect(messages(page, "assistant")).to_have_count(2, timeout=30_000)
    sent = _posts(recorder)[-1]["messages"]
    assert sent[-1]["content"] == "And this one?"
    # The first message's image is named to it in its place, not sent and not dropped unsaid.
    assert sent[0]["content"] == ("[An image, photo.png, was attached here; this model does "
                                  "not take images.]\n\nDescribe this.")
    assert_no_exception(page)


def test_a_pdf_and_a_docx_are_read_and_sent_whole(
    app_factory, new_page, katan_server, recording_proxy, isolated_data_dir, tmp_path
):
    proxy, recorder = recording_proxy(katan_server)
    page = _chat(app_factory, new_page, proxy, isolated_data_dir)
    pdf(tmp_path / "report.pdf", "PDF-FIRST-WORDS", "PDF-LAST-WORDS", pages=3)
    docx_file(tmp_path / "notes.docx", "DOCX-FIRST-WORDS", "DOCX-LAST-WORDS")
    attach(page, tmp_path / "report.pdf", tmp_path / "notes.docx")
    send(page, "Summarise both.")
    wait_idle(page)
    expect(messages(page, "assistant")).to_have_count(1, timeout=20_000)
    sent = _posts(recorder)[-1]["messages"][-1]["content"]
    assert isinstance(sent, str)  # no image: plain text, which every server takes
    for marker in ("PDF-FIRST-WORDS", "PDF-LAST-WORDS", "Page 2.", "DOCX-FIRST-WORDS",
                   "North | 42", "DOCX-LAST-WORDS"):
        assert marker in sent, marker
    assert sent.index("```report.pdf") < sent.index("```notes.docx") < sent.index(
        "Summarise both.")
    user = messages(page, "user").last
    expect(user.get_by_role("button", name="report.pdf")).to_be_visible()
    user.get_by_role("button", name="notes.docx").click()  # opens to the text read
    expect(page.locator('[data-testid="stPopoverBody"]')).to_contain_text("DOCX-FIRST-WORDS")
    assert_no_exception(page)


def test_a_bad_file_is_refused_and_the_words_and_other_files_stay(
    app_factory, new_page, katan_server, recording_proxy, isolated_data_dir, tmp_path
):
    proxy, recorder = recording_proxy(katan_server)
    page = _chat(app_factory, new_page, proxy, isolated_data_dir)
    photo(tmp_path / "photo.png")
    pdf(tmp_path / "whole.pdf", "x", "y")
    (tmp_path / "broken.pdf").write_bytes((tmp_path / "whole.pdf").read_bytes()[:400])
    attach(page, tmp_path / "photo.png", tmp_path / "broken.pdf")
    send(page, "Read these please")
    wait_idle(page)
    expect(page.locator(REFUSAL)).to_contain_text("broken.pdf")
    expect(chat_input(page)).to_have_value("Read these please")
    expect(page.locator(".st-key-chat-tray")).to_contain_text("photo.png")
    assert not _posts(recorder)
    chat_input(page).press("Enter")  # the words again, with the photo waiting in the tray
    wait_idle(page)
    expect(messages(page, "assistant").last).to_contain_text("[image:image/jpeg]",
                                                            timeout=20_000)
    expect(page.locator(".st-key-chat-tray")).to_have_count(0)
    expect(page.locator(REFUSAL)).to_have_count(0)
    assert_no_exception(page)


def _chat_options(page: Page) -> None:
    open_sidebar(page)
    options = page.locator('[data-testid="stSidebar"] [data-testid="stExpander"]',
                           has_text="Chat options")
    if not options.locator("details[open]").count():
        options.get_by_text("Chat options").click()
    expect(page.locator(key("chat:context_window")).locator("input")).to_be_visible()


def _type_number(page: Page, name: str, value: int) -> None:
    box = page.locator(key(name)).locator("input")
    box.fill(str(value))
    box.press("Tab")
    wait_idle(page)


def _llama_with_window(app_factory, new_page, llama_server, recording_proxy, data_dir,
                       reply_room: int):
    """A chat with SmolLM2 whose window (2,048 tokens, as served) is typed in Chat options,
    as the server does not state it."""
    proxy, recorder = recording_proxy(llama_server)
    page = _chat(app_factory, new_page, proxy, data_dir)
    _chat_options(page)
    _type_number(page, "chat:context_window", 2048)
    _type_number(page, "chat:max_tokens", reply_room)
    return page, recorder


def test_over_the_window_send_is_refused_with_what_to_drop(
    app_factory, new_page, llama_server, recording_proxy, isolated_data_dir, tmp_path
):
    page, recorder = _llama_with_window(app_factory, new_page, llama_server, recording_proxy,
                                        isolated_data_dir, reply_room=256)
    (tmp_path / "long.txt").write_text("The committee met again to discuss the budget. " * 400)
    attach(page, tmp_path / "long.txt")
    send(page, "Summarise the minutes.")
    wait_idle(page)
    refusal = page.locator(REFUSAL)
    expect(refusal).to_contain_text("context window is 2,048")
    expect(refusal).to_contain_text("remove the attachment long.txt")
    expect(chat_input(page)).to_have_value("Summarise the minutes.")
    expect(page.locator(".st-key-chat-tray")).to_contain_text("long.txt")
    assert not _posts(recorder)
    assert_no_exception(page)


def test_at_80_percent_the_meter_warns_and_the_message_still_goes(
    app_factory, new_page, llama_server, recording_proxy, isolated_data_dir, tmp_path
):
    page, recorder = _llama_with_window(app_factory, new_page, llama_server, recording_proxy,
                                        isolated_data_dir, reply_room=64)
    # About 1,650 tokens in SmolLM2's vocabulary, a short reply and 64 kept for it: 80 to 90%.
    (tmp_path / "notes.txt").write_text("Budget line items and their owners. " * 225)
    attach(page, tmp_path / "notes.txt")
    send(page, "Anything odd?")
    wait_idle(page)
    expect(messages(page, "assistant")).to_have_count(1, timeout=60_000)
    assert len(_posts(recorder)) == 1
    meter = page.locator(".sb-meter")
    expect(meter).to_have_attribute("data-level", "near")
    expect(meter).to_contain_text("nearly full")
    screenshot(page, "attachments-meter")
    assert_no_exception(page)


def test_the_draft_and_its_files_survive_a_model_switch_and_a_page_visit(
    app_factory, new_page, katan_server, recording_proxy, isolated_data_dir, tmp_path
):
    proxy, recorder = recording_proxy(katan_server)
    add_connection("Second", proxy)
    page = _chat(app_factory, new_page, proxy, isolated_data_dir)
    photo(tmp_path / "photo.png")
    (tmp_path / "plan.md").write_text("# Plan\n\nShip it on Friday.\n")
    box = chat_input(page)
    box.click()
    page.keyboard.type("Compare these two")
    attach(page, tmp_path / "photo.png", tmp_path / "plan.md")
    page.keyboard.press("Tab")
    open_sidebar(page)
    pick(page, page.locator(key("chat:model")), f"{proxy.model} · Second")
    expect(chat_input(page)).to_have_value("Compare these two")
    expect(page.locator(CHIP)).to_have_count(2)
    go_to(page, "Settings")
    go_to(page, "Chat")
    expect(chat_input(page)).to_have_value("Compare these two")
    expect(page.locator(CHIP)).to_have_count(2)
    chat_input(page).press("Enter")
    wait_idle(page)
    expect(messages(page, "assistant").last).to_contain_text("[image:image/jpeg]",
                                                            timeout=20_000)
    sent = _posts(recorder)[-1]["messages"][-1]["content"]
    assert "Ship it on Friday." in sent[0]["text"]
    assert_no_exception(page)
