"""The message box: what the user typed and attached, checked before it is sent. A message that
is not sent loses nothing: its words go back into the box and its files wait in the tray, sent
with the next message."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import streamlit as st

from core.attachments.reading import AttachmentRefused, read_upload
from core.attachments.wire import images
from core.history.model import MAX_ATTACHMENTS, MAX_CONTENT_LENGTH, Attachment, Message
from core.providers.connections import no_images
from core.providers.kinds import Target

BOX = "chat:input"
TRAY = "chat:tray"  # attachments of a message that was not sent, sent with the next one
REFUSAL = "chat:refusal"  # why the last message was not sent, said above the box
RESTORE = "chat:restore"  # words to put back into the box before it is drawn


@dataclass(frozen=True)
class Draft:
    text: str
    attachments: tuple[Attachment, ...] = ()

    def as_message(self, chat_id: str) -> Message:
        return Message(chat_id, "user", self.text, attachments=self.attachments)


def read_files(files: Iterable) -> tuple[list[Attachment], list[str]]:
    """Each uploaded file read, and what was wrong with each one refused."""
    read, refused = [], []
    for upload in files:
        try:
            read.append(read_upload(upload.name, upload.getvalue(), upload.type or ""))
        except AttachmentRefused as exc:
            refused.append(str(exc))
    return read, refused


def tray() -> list[Attachment]:
    return list(st.session_state.get(TRAY, ()))


def drop_from_tray(attachment_id: str) -> None:
    """A chip's × (a callback)."""
    st.session_state[TRAY] = [a for a in tray() if a.id != attachment_id]
    if not st.session_state[TRAY]:
        st.session_state.pop(REFUSAL, None)


def hold(draft: Draft, why: str) -> None:
    """Not sent: the words back into the box on the next run, the files into the tray."""
    st.session_state[RESTORE] = draft.text
    st.session_state[TRAY] = list(draft.attachments)
    st.session_state[REFUSAL] = why


def refuse(why: str) -> None:
    """Not sent, nothing to put back (an edit stays open in its own box)."""
    st.session_state[REFUSAL] = why


def put_back() -> None:
    """Before the box is drawn: a held message's words go back into it."""
    if RESTORE in st.session_state:
        st.session_state[BOX] = st.session_state.pop(RESTORE)


def refusal() -> str | None:
    return st.session_state.get(REFUSAL)


def dismiss_refusal() -> None:
    st.session_state.pop(REFUSAL, None)


def sent() -> None:
    st.session_state.pop(TRAY, None)
    st.session_state.pop(REFUSAL, None)


def takes_no_images(target: Target) -> bool:
    """The model refused an image before (learned with its connection)."""
    return no_images(target.model) in target.quirks


def problem(draft: Draft, target: Target) -> str | None:
    """Why the draft cannot be sent to `target` as it is (the context budget aside)."""
    if len(draft.attachments) > MAX_ATTACHMENTS:
        return (f"A message can carry at most {MAX_ATTACHMENTS} files; this one has "
                f"{len(draft.attachments)}. Remove some and send again.")
    if len(draft.text) > MAX_CONTENT_LENGTH:
        return (f"Your message is {len(draft.text):,} characters long; a message can be at most "
                f"{MAX_CONTENT_LENGTH:,}. Shorten it, or attach it as a file.")
    pictures = images(draft.as_message(""))
    if pictures and takes_no_images(target):
        names = ", ".join(a.name for a in pictures)
        return (f"{target.model} does not take images (it refused one before). Remove {names} "
                "from the message, or pick a model that can see images.")
    return None
