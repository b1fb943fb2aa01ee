"""Files a person attaches in the browser tests: made on the fly, and picked with the message
box's own file input (what its ＋ button opens)."""

from __future__ import annotations

import io

import docx
from fpdf import FPDF
from PIL import Image
from playwright.sync_api import Page, expect

FILE_INPUT = '[data-testid="stChatInput"] input[type="file"]'
CHIP = '[data-testid="stChatInput"] [data-testid="stFileChip"]'


def photo(path) -> None:
    """A 2,400 x 1,800 picture: downscaled and re-encoded before it is sent."""
    picture = Image.new("RGB", (2400, 1800), "navy")
    for x in range(0, 2400, 200):
        picture.paste((200, 40 + x % 200, 90), (x, 0, x + 100, 1800))
    picture.save(path, "PNG")


def pdf(path, first: str, last: str, pages: int = 3) -> None:
    document = FPDF()
    document.set_font("Helvetica", size=11)
    for number in range(pages):
        document.add_page()
        words = first if number == 0 else last if number == pages - 1 else f"Page {number + 1}."
        document.multi_cell(0, 5, f"{words} " + "The quarterly figures went up. " * 20)
    path.write_bytes(bytes(document.output()))


def docx_file(path, first: str, last: str) -> None:
    document = docx.Document()
    document.add_paragraph(first)
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text = "Region", "Sales"
    table.cell(1, 0).text, table.cell(1, 1).text = "North", "42"
    document.add_paragraph(last)
    out = io.BytesIO()
    document.save(out)
    path.write_bytes(out.getvalue())


def attach(page: Page, *paths) -> None:
    """Pick files with the message box's own file input, as its paper-clip button does."""
    before = page.locator(CHIP).count()
    page.locator(FILE_INPUT).set_input_files([str(p) for p in paths])
    expect(page.locator(CHIP)).to_have_count(before + len(paths))
