"""Attachments on the chat page: a message's files as thumbnails and chips that open them,
and the tray of files waiting to be sent with the next message."""

from collections.abc import Callable, Sequence

import streamlit as st

from core.attachments.reading import describe_kind
from core.history.model import Attachment

PREVIEW_CHARS = 20_000  # a document's text shown in its chip; the whole is downloaded
THUMBNAIL_PX = 160


def draw_attachments(attachments: Sequence[Attachment], key: str) -> None:
    """Images as thumbnails (Streamlit's own button shows one full size); documents as chips
    that open to their text and a download of the whole."""
    if not attachments:
        return
    with st.container(horizontal=True, gap="small", key=f"{key}-files"):
        for attachment in attachments:
            if attachment.kind == "image":
                st.image(attachment.data, width=THUMBNAIL_PX, caption=attachment.name)
            else:
                _document_chip(attachment, f"{key}-{attachment.id}")


def _document_chip(document: Attachment, key: str) -> None:
    with st.popover(document.name, icon="📄", width="content", key=f"{key}:open"):
        st.caption(f"{document.name} · {describe_kind(document)} · "
                   f"{len(document.text):,} characters read, sent whole to the model")
        st.download_button("Download the text", data=lambda: document.text,
                           file_name=f"{document.name}.txt", mime="text/plain",
                           on_click="ignore", key=f"{key}:download",
                           icon=":material/download:")
        shown = document.text[:PREVIEW_CHARS]
        if len(document.text) > PREVIEW_CHARS:
            st.caption(f"The first {PREVIEW_CHARS:,} characters:")
        st.text(shown)


def draw_tray(attachments: Sequence[Attachment], drop: Callable[[str], None]) -> None:
    """Files waiting to be sent with the next message, each with a button that removes it."""
    if not attachments:
        return
    with st.container(horizontal=True, gap="small", key="chat-tray",
                      vertical_alignment="center"):
        st.caption("Sent with your next message:", width="content")
        for attachment in attachments:
            icon = "🖼️" if attachment.kind == "image" else "📄"
            st.button(f"{attachment.name} ✕", icon=icon, key=f"chat:tray:{attachment.id}",
                      on_click=drop, args=(attachment.id,), type="secondary",
                      help=f"{attachment.name} · {describe_kind(attachment)}. Click to remove it "
                      "from the message.")
