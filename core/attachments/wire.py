"""A message's attachments as the OpenAI chat API takes them: documents as text fenced with
their file name, before the user's words; images as `image_url` parts with a `data:` URL."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable

from core.history.model import Attachment, Message

_BACKTICKS = re.compile(r"`{3,}")


def fence_for(text: str) -> str:
    """A Markdown code fence `text` cannot close: longer than any run of backticks in it."""
    longest = max((len(run) for run in _BACKTICKS.findall(text)), default=0)
    return "`" * max(3, longest + 1)


def fenced(document: Attachment) -> str:
    """The document's text in a Markdown fence whose info string is its file name."""
    fence = fence_for(document.text)
    name = " ".join(document.name.split())  # one line
    return f"{fence}{name}\n{document.text}\n{fence}"


def data_url(image: Attachment) -> str:
    return f"data:{image.mime};base64,{base64.b64encode(image.data).decode('ascii')}"


def message_text(message: Message) -> str:
    """The words sent: each document fenced, then what the user typed."""
    documents = [fenced(a) for a in message.attachments if a.kind == "document"]
    return "\n\n".join([*documents, message.content] if message.content else documents)


def images(message: Message) -> list[Attachment]:
    return [a for a in message.attachments if a.kind == "image"]


def left_out(image: Attachment) -> str:
    """What a model that takes no images reads in place of an earlier message's image."""
    return f"[An image, {image.name}, was attached here; this model does not take images.]"


def content(message: Message, with_images: bool = True) -> str | list[dict]:
    """A plain string unless the message carries images: many servers (llama.cpp's among them)
    take only a string, so content parts are sent only when they must be. Without images (a
    model known to take none), each image is named in its place, never dropped unsaid."""
    text = message_text(message)
    pictures = images(message)
    if pictures and not with_images:
        return "\n\n".join([*(left_out(a) for a in pictures), *([text] if text else [])])
    if not pictures:
        return text
    parts: list[dict] = [{"type": "text", "text": text}] if text else []
    return parts + [{"type": "image_url", "image_url": {"url": data_url(a)}} for a in pictures]


def carries_images(messages: Iterable[dict]) -> bool:
    """Whether a request's messages hold an image part."""
    return any(isinstance(m.get("content"), list)
               and any(p.get("type") == "image_url" for p in m["content"]) for m in messages)
