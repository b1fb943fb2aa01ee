"""Reading a server's model list (`GET {base}/models`) in any shape servers answer with."""

from __future__ import annotations

import json

import httpx2
import openai

from core.chat.errors import provider_message


class _NotAModelList(ValueError):
    """The body is not a model list; the text says what it was instead."""


def parse_model_ids(body: bytes | str) -> list[str]:
    """Sorted unique ids from `{"data": [...]}`, `{"models": [...]}` or a bare list of strings or
    objects with `id`/`name`/`model`; raises `_NotAModelList` otherwise."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    try:
        decoded = json.loads(text)
    except ValueError:
        said = provider_message(text)
        what = f" ({said})" if said else ""
        raise _NotAModelList(f"a page that is not JSON{what}") from None
    items = _items(decoded)
    if items is None:
        said = provider_message(decoded) if isinstance(decoded, dict) else None
        if said:
            raise _NotAModelList(f"an error instead of a model list: {said}")
        raise _NotAModelList("JSON that is not a model list")
    return sorted({model_id for item in items if (model_id := _item_id(item))})


def _items(decoded: object) -> list | None:
    if isinstance(decoded, list):
        return decoded
    if isinstance(decoded, dict):
        for key in ("data", "models"):
            value = decoded.get(key)
            if isinstance(value, list):
                return value
            if isinstance(value, dict) and isinstance(value.get("models"), list):
                return value["models"]
    return None


def _item_id(item: object) -> str | None:
    if isinstance(item, str):
        return item.strip() or None
    if isinstance(item, dict):
        for key in ("id", "name", "model"):
            value = item.get(key)
            if isinstance(value, str) and value.strip():
                return value.strip()
    return None


def read_model_list(client: openai.OpenAI, timeout: float | None = None) -> list[str]:
    """SDK errors propagate; a body that is not a model list raises _NotAModelList."""
    options = {} if timeout is None else {"timeout": timeout}
    response = client.get("/models", cast_to=httpx2.Response, options=options)
    return parse_model_ids(response.content)
