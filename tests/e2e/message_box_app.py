"""A small app for the message box's browser tests and bench/meter.py: a chat page that draws
the meter and keeps the draft around a chat input that takes files, another page, and a
"Signed out" page that forgets the draft.

Query parameters (read on the first page load): `window` (tokens, 0: unknown; default 100),
`turns` (messages shown above the input; default 0). The meter counts 0.5 tokens a character,
keeps 10 tokens for the reply, and counts each message received.
    streamlit run tests/e2e/message_box_app.py
"""

import sys
from pathlib import Path

import streamlit as st

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run by path: the repository's modules

from pages.sections.message_box import (  # noqa: E402
    MeterNumbers,
    draw_meter,
    forget_draft,
    keep_draft,
)

TOKENS_PER_CHARACTER = 0.5
REPLY_ROOM = 10
FILE_TYPES = ["txt", "md"]
WORDS = ("the", "quick", "brown", "fox", "jumps", "over", "a", "lazy", "dog", "while", "the",
         "meter", "counts", "every", "word")


def _setting(name: str, default: int) -> int:
    if name not in st.session_state:
        st.session_state[name] = int(st.query_params.get(name, default))
    return st.session_state[name]


def _turns(count: int) -> list[str]:
    return [" ".join(WORDS[(i + j) % len(WORDS)] for j in range(40 + i % 60)) for i in range(count)]


def chat() -> None:
    st.title("Chat")
    shown = st.session_state.setdefault("shown", _turns(_setting("turns", 0)))
    sent = st.session_state.setdefault("sent", [])
    window = _setting("window", 100) or None
    got = st.chat_input("Message", accept_file="multiple", file_type=FILE_TYPES,
                        key="harness:input")
    keep_draft()
    if got:
        sent.append((got.text, [f.name for f in got.files]))
    for index, text in enumerate(shown + [text for text, _ in sent]):
        with st.chat_message("user" if index % 2 == 0 else "assistant"):
            st.markdown(text)
    with st.container(key="harness-received"):
        for text, files in sent:
            st.text(f"received: {text!r} files: {', '.join(files) or '-'}")
    characters = sum(len(t) for t in shown) + sum(len(text) for text, _ in sent)
    draw_meter(MeterNumbers(conversation=round(characters * TOKENS_PER_CHARACTER),
                            window=window, reply_room=REPLY_ROOM,
                            tokens_per_character=TOKENS_PER_CHARACTER, exact=False))


def other() -> None:
    st.title("Other")
    st.write("Another page of the app.")


def sign_out() -> None:
    st.title("Signed out")
    forget_draft()


PAGES = [st.Page(chat, title="Chat", url_path="chat", default=True),
         st.Page(other, title="Other", url_path="other"),
         st.Page(sign_out, title="Signed out", url_path="sign_out")]
page = st.navigation(PAGES, position="hidden")
for link in PAGES:  # as the app does: its own links in the sidebar
    st.sidebar.page_link(link)
page.run()
