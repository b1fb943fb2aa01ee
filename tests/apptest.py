"""Helpers for driving the app in streamlit.testing's AppTest."""

from __future__ import annotations

from itertools import takewhile
from pathlib import Path

from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[1] / "streamlit_app.py")


def open_app(page: str | None = None, timeout: float = 30) -> AppTest:
    """A fresh browser session on the app, optionally switched to `page` (e.g. 'settings')."""
    at = AppTest.from_file(APP, default_timeout=timeout).run()
    assert not at.exception, at.exception
    if page:
        at.switch_page(f"pages/{page}.py").run()
        assert not at.exception, at.exception
    return at


def navigation(at: AppTest) -> list[str]:
    """The titles of the page links atop the sidebar (the frame's navigation), top to bottom;
    what the page draws in the sidebar comes after them."""
    top = takewhile(lambda node: node.type == "page_link", at.sidebar.children.values())
    return [link.proto.label for link in top]


def widget(at: AppTest, kind: str, key: str):
    """The widget of `kind` ('text_input', 'button', ...) whose key is `key`."""
    return getattr(at, kind)(key=key)


def compatible(name: str) -> str:
    return f"settings:openai-compatible:{name}"


def configure_compatible(at: AppTest, base_url: str, key: str = "", model: str = "") -> AppTest:
    """Fill the OpenAI-compatible expander on the settings page and press Save."""
    at.text_input(key=compatible("base_url")).set_value(base_url).run()
    if key:
        at.text_input(key=compatible("key")).set_value(key).run()
    at.text_input(key=compatible("model")).set_value(model).run()
    at.button(key=compatible("save")).click().run()
    assert not at.exception, at.exception
    return at


def chat_messages(at: AppTest) -> list[tuple[str, str]]:
    """(role, text) for every chat message on the page, text being all its markdown (and the
    plain text of a long message of the user's, drawn as typed, and a reply's code blocks too
    big to highlight, drawn plain; not the Copy popover's code)."""
    return [
        (m.name, "\n".join([md.value for md in m.markdown] + [t.value for t in m.text]
                           + [c.value for c in outside_popovers(m, "code")]))
        for m in at.chat_message
    ]


def outside_popovers(block, kind: str) -> list:
    """The elements of `kind` in `block`, in order, leaving out what popovers hold."""
    found = []
    for child in block.children.values():
        if hasattr(child, "children"):  # a block: a container, a column, a popover
            if child.type != "popover":
                found += outside_popovers(child, kind)
        elif child.type == kind:
            found.append(child)
    return found


def shown_text(at: AppTest) -> str:
    """Everything the page sends to the browser, as text: each element's and container's full
    parameters (labels, captions, Markdown, code, placeholders, defaults) and each widget's
    current value."""
    parts = []
    for node in at:  # the main area, the sidebar and every container in them, depth first
        if getattr(node, "proto", None) is not None:  # the tree's root has none
            parts.append(str(node.proto))
        if hasattr(node, "value"):
            parts.append(repr(node.value))
    return "\n".join(parts)


def history_titles(at) -> list[str]:
    """The chats the sidebar lists, newest first."""
    return [b.label for b in at.sidebar.button if b.key and b.key.startswith("history:open:")]


def open_from_history(at, title: str):
    """Click the one chat the sidebar lists under `title`."""
    (button,) = [b for b in at.sidebar.button
                 if b.key and b.key.startswith("history:open:") and b.label == title]
    button.click().run()
    assert not at.exception, at.exception
    return at
