"""A model's context window, where its server states it or a refusal names it, and its prices
where the server's model list states them (OpenRouter's `pricing`). Asked once per process per
(connection, base URL, model), at most WINDOW_TIMEOUT in all; never raises (None: unknown)."""

from __future__ import annotations

import dataclasses
import re
import threading
import time
from collections.abc import Callable

import httpx2

from core.chat.client import Limits, build_client
from core.chat.soon import answer_soon
from core.chat.tokens import server_root
from core.providers.kinds import Target

WINDOW_TIMEOUT = 3.0  # seconds for all the questions together

_windows: dict[tuple[str, str, str], int | None] = {}
_windows_lock = threading.Lock()


@dataclasses.dataclass(frozen=True)
class Prices:
    """US dollars per token, as the server's model list states them."""

    prompt: float
    completion: float

    def cost(self, usage) -> float:
        return ((usage.get("prompt_tokens") or 0) * self.prompt
                + (usage.get("completion_tokens") or 0) * self.completion)


_prices: dict[tuple[str, str, str], Prices] = {}  # set with the window, from the same answer

# llama-cpp-python streaming: "Requested tokens (3032) exceed context window of 2048";
# OpenAI, vLLM and llama-cpp-python's chat endpoint: "maximum context length is 2048 tokens".
_REFUSALS = (
    re.compile(r"exceeds? (?:the )?context window of (\d[\d,]*)", re.IGNORECASE),
    re.compile(r"maximum context length is (\d[\d,]*) tokens", re.IGNORECASE),
    re.compile(r"context length (?:of|is) (\d[\d,]*) tokens", re.IGNORECASE),
)


def _positive(value) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    return value if isinstance(value, int) and value > 0 else None


def window_in_refusal(text: str | None) -> int | None:
    """The window a server named when it refused a request as too long, or None."""
    for pattern in _REFUSALS:
        found = pattern.search(text or "")
        if found:
            return _positive(found.group(1).replace(",", ""))
    return None


def learn_from_refusal(target: Target, text: str | None) -> int | None:
    """The window named in a refusal's text, remembered for the target's model."""
    window = window_in_refusal(text)
    if window is not None:
        with _windows_lock:
            _windows[_key(target)] = window
    return window


def _key(target: Target) -> tuple[str, str, str]:
    return target.connection_id, target.base_url, target.model


# ---------------------------------------------------------------- what each server says
# Only llama-cpp-python, llm-katan and llmock run here (they state no window); vLLM, LM
# Studio, OpenRouter, Ollama and llama.cpp's own server are read as their documentation
# describes and tested against loopback fakes.


def _model_entry(items, model: str) -> dict | None:
    if not isinstance(items, list):
        return None
    for item in items:
        if isinstance(item, dict) and model in (item.get("id"), item.get("name"), item.get("model")):
            return item
    return None


def from_model_list(body, model: str) -> int | None:
    """vLLM's `max_model_len`, OpenRouter's `context_length` in `GET {base}/models`."""
    entry = _model_entry(body.get("data") if isinstance(body, dict) else body, model)
    if entry is None:
        return None
    return _positive(entry.get("max_model_len")) or _positive(entry.get("context_length"))


def prices_in_model_list(body, model: str) -> Prices | None:
    """OpenRouter's `pricing` (dollars per token, as strings) in `GET {base}/models`."""
    entry = _model_entry(body.get("data") if isinstance(body, dict) else body, model)
    pricing = entry.get("pricing") if entry else None
    if not isinstance(pricing, dict):
        return None
    try:
        prompt, completion = float(pricing["prompt"]), float(pricing["completion"])
    except (KeyError, TypeError, ValueError):
        return None
    if not (0 <= prompt < 1 and 0 <= completion < 1):  # per token: a dollar is no price
        return None
    return Prices(prompt, completion)


def prices(target: Target) -> Prices | None:
    """The model's prices, if its server stated them when its window was asked for."""
    with _windows_lock:
        return _prices.get(_key(target))


def from_lm_studio(body, model: str) -> int | None:
    """LM Studio's `GET /api/v0/models`: `max_context_length` (its loaded length if said)."""
    entry = _model_entry(body.get("data") if isinstance(body, dict) else None, model)
    if entry is None:
        return None
    return _positive(entry.get("loaded_context_length")) or _positive(entry.get("max_context_length"))


def from_llama_props(body, model: str) -> int | None:
    """llama.cpp's `GET /props`: `default_generation_settings.n_ctx`, or `n_ctx`."""
    if not isinstance(body, dict):
        return None
    settings = body.get("default_generation_settings")
    said = _positive(settings.get("n_ctx")) if isinstance(settings, dict) else None
    return said or _positive(body.get("n_ctx"))


def from_ollama_show(body, model: str) -> int | None:
    """Ollama's `POST /api/show`: a `num_ctx` in its parameters wins over the model's own
    `model_info.<architecture>.context_length`."""
    if not isinstance(body, dict):
        return None
    parameters = body.get("parameters")
    if isinstance(parameters, str):
        found = re.search(r"^\s*num_ctx\s+(\d+)\s*$", parameters, re.MULTILINE)
        if found:
            return _positive(int(found.group(1)))
    info = body.get("model_info")
    if not isinstance(info, dict):
        return None
    architecture = info.get("general.architecture")
    said = _positive(info.get(f"{architecture}.context_length")) if architecture else None
    return said or next((_positive(v) for k, v in info.items()
                         if k.endswith(".context_length") and _positive(v)), None)


# (at the base URL or the server's root, method, path, body, reader)
_QUESTIONS: tuple[tuple[str, str, str, bool, Callable], ...] = (
    ("base", "GET", "/models", False, from_model_list),
    ("root", "GET", "/props", False, from_llama_props),
    ("root", "GET", "/api/v0/models", False, from_lm_studio),
    ("root", "POST", "/api/show", True, from_ollama_show),
)


def _ask(client, method: str, path: str, body, timeout: float):
    options = {"timeout": timeout}
    if method == "GET":
        response = client.get(path, cast_to=httpx2.Response, options=options)
    else:
        response = client.post(path, body=body, cast_to=httpx2.Response, options=options)
    return response.json()


def _ask_server(target: Target, http_client: httpx2.Client, limits: Limits) -> int | None:
    deadline = time.monotonic() + WINDOW_TIMEOUT
    root = dataclasses.replace(target, base_url=server_root(target.base_url))
    try:
        clients = {"base": build_client(target, limits, http_client),
                   "root": build_client(root, limits, http_client)}
    except Exception:  # the connection rules refuse the target: nothing was sent
        return None
    for where, method, path, with_body, read in _QUESTIONS:
        left = deadline - time.monotonic()
        if left <= 0.05:
            return None
        body = {"model": target.model} if with_body else None
        try:
            answer = _ask(clients[where], method, path, body, left)
            if read is from_model_list and (stated := prices_in_model_list(answer, target.model)):
                with _windows_lock:
                    _prices[_key(target)] = stated
            window = read(answer, target.model)
        except Exception:  # not this kind of server, or it failed: ask the next way
            continue
        if window is not None:
            return window
    return None


def context_window(target: Target, http_client: httpx2.Client, limits: Limits = Limits(),
                   wait: float | None = None) -> int | None:
    """The target's model's context window as its server states it (or a refusal named it),
    or None. `wait`: seconds to wait for a server not asked yet (None: as long as it takes);
    past them None now, and the answer for a later call."""
    key = _key(target)
    with _windows_lock:
        if key in _windows:
            return _windows[key]

    def ask() -> int | None:
        window = _ask_server(target, http_client, limits)
        with _windows_lock:
            # A refusal learned meanwhile is what the server really enforces: it stays.
            return _windows.setdefault(key, window)

    if wait is None:
        return ask()
    return answer_soon(("window", *key), ask, wait)[1]
