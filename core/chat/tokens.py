"""Counting a request's tokens before it is sent: exactly with OpenAI's own vocabularies or a
llama.cpp-python server's tokenizer, otherwise an estimate that the page marks with "≈".
Nothing here raises to the page: a server that stops counting is estimated from then on."""

from __future__ import annotations

import base64
import binascii
import dataclasses
import functools
import hashlib
import io
import math
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

import bpe_openai
import httpx2
from PIL import Image

from core.chat.client import Limits, build_client
from core.chat.soon import answer_soon
from core.providers.kinds import Target

SERVER_TIMEOUT = 3.0  # seconds for each request to a server's tokenizer
# o200k_base's count times these, per script, estimates a server that does not count for us.
# Measured by bench/tokens.py against llama.cpp-python serving SmolLM2 (a 49k-token vocabulary,
# mostly English): larger vocabularies need fewer tokens for other scripts, so the estimate
# errs on the side of warning early.
SCRIPT_FACTORS = (
    ("cyrillic", "[\u0400-\u052f]", 2.45),
    ("arabic", "[\u0600-\u06ff\u0750-\u077f\ufb50-\ufdff\ufe70-\ufeff]", 2.9),
    ("cjk", "[\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]", 2.15),
)
OTHER_FACTOR = 1.1  # Latin text and code
CACHE_SIZE = 4096


@dataclass(frozen=True)
class Overhead:
    """What a chat template adds around the words: per message besides its role's own tokens,
    and for the reply's opening besides the word "assistant"."""

    per_message: int
    reply: int


# OpenAI's rule for its chat models: 3 a message besides the role, the reply primed with 3.
OPENAI_OVERHEAD = Overhead(per_message=3, reply=2)
# ChatML, `<|im_start|>{role}\n{content}<|im_end|>\n` and `<|im_start|>assistant\n`, as
# measured against llama.cpp-python's usage.prompt_tokens for SmolLM2.
CHATML_OVERHEAD = Overhead(per_message=4, reply=2)


class Counter:
    """Counts one target's text. `identity` keys the cache (one identity, one way of counting);
    `exact` is False for an estimate."""

    identity = ""
    exact = False
    overhead = OPENAI_OVERHEAD
    final = True  # False: an estimate standing in until the server says whether it counts

    def count(self, text: str) -> int:
        raise NotImplementedError


@functools.cache
def _encoding(name: str):
    return bpe_openai.get_encoding(name)


class VocabularyCounter(Counter):
    """OpenAI's own vocabulary (o200k_base, cl100k_base): exact for OpenAI's models."""

    exact = True

    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        self.identity = f"vocabulary:{encoding}"

    def count(self, text: str) -> int:
        # Ordinary: "<|endoftext|>" typed by a user is text, as OpenAI counts it.
        return len(_encoding(self.encoding).encode_ordinary(text))


class EstimateCounter(Counter):
    """o200k_base's count of each script's stretch of the text times that script's factor:
    for servers that do not count for us."""

    overhead = CHATML_OVERHEAD  # most local servers' templates are ChatML or alike
    identity = "estimate:o200k_base"

    def count(self, text: str) -> int:
        encoding = _encoding("o200k_base")
        return math.ceil(sum(len(encoding.encode_ordinary(piece)) * factor
                             for piece, factor in script_stretches(text)))


_SCRIPT_RUNS = re.compile("|".join(f"(?P<{name}>{chars}+)" for name, chars, _ in SCRIPT_FACTORS))
_FACTOR = {name: factor for name, _, factor in SCRIPT_FACTORS}
_LETTER = re.compile(r"[^\W\d_]")


def script_stretches(text: str) -> list[tuple[str, float]]:
    """The text cut where its script changes, each stretch with its factor. Spaces, digits and
    punctuation between runs of one script stay in that stretch."""
    stretches: list[tuple[str, float]] = []
    start = last_end = 0  # the open stretch begins at `start`; its last run ends at `last_end`
    script = None  # the open stretch's script (None: other text)
    for run in _SCRIPT_RUNS.finditer(text):
        if run.lastgroup == script and not _LETTER.search(text, last_end, run.start()):
            last_end = run.end()
            continue
        if script is not None:
            stretches.append((text[start:last_end], _FACTOR[script]))
            start = last_end
        if _LETTER.search(text, start, run.start()):
            stretches.append((text[start:run.start()], OTHER_FACTOR))
            start = run.start()
        script, last_end = run.lastgroup, run.end()
    if script is not None:
        stretches.append((text[start:last_end], _FACTOR[script]))
        start = last_end
    if start < len(text):
        stretches.append((text[start:], OTHER_FACTOR))
    return stretches


class ServerCounter(Counter):
    """A llama.cpp-python server's own tokenizer (`POST /extras/tokenize/count` at the
    server's root). Once a request fails it estimates for the rest of its life."""

    overhead = CHATML_OVERHEAD

    def __init__(self, target: Target, http_client: httpx2.Client, limits: Limits = Limits()) -> None:
        root = dataclasses.replace(target, base_url=server_root(target.base_url))
        self.client = build_client(root, limits, http_client)
        self.model = target.model
        self.fallback = EstimateCounter()
        self.failed = False
        self._identity = f"server:{target.connection_id}:{target.base_url}:{target.model}"

    @property
    def exact(self) -> bool:  # type: ignore[override]
        return not self.failed

    @property
    def identity(self) -> str:  # type: ignore[override]
        return self.fallback.identity if self.failed else self._identity

    def count(self, text: str) -> int:
        if not self.failed:
            counted = _server_count(self.client, self.model, text)
            if counted is not None:
                return counted
            self.failed = True
        return self.fallback.count(text)


def server_root(base_url: str) -> str:
    """The server's root: OpenAI's paths sit under /v1, the server's own beside it."""
    return base_url.rstrip("/").removesuffix("/v1")


def _server_count(client, model: str, text: str) -> int | None:
    try:
        response = client.post("/extras/tokenize/count", body={"input": text, "model": model},
                               cast_to=httpx2.Response, options={"timeout": SERVER_TIMEOUT})
        count = response.json().get("count")
    except Exception:  # any failure of any server: the count is estimated instead
        return None
    return count if isinstance(count, int) and not isinstance(count, bool) and count >= 0 else None


_server_counts: dict[tuple[str, str], bool] = {}  # (connection id, base URL) -> counts for us
_server_counts_lock = threading.Lock()


def counts_tokens(target: Target, http_client: httpx2.Client, limits: Limits = Limits(),
                  wait: float | None = None) -> bool | None:
    """Whether the target's server counts tokens for us; asked once per process. `wait`:
    seconds to wait for a server not asked yet (None: as long as it takes); past them None
    (not known yet), and the answer for a later call."""
    key = (target.connection_id, target.base_url)
    with _server_counts_lock:
        known = _server_counts.get(key)
    if known is not None:
        return known

    def ask() -> bool:
        try:
            counter = ServerCounter(target, http_client, limits)
        except Exception:  # the connection rules refuse the target: nothing was sent
            return False
        answer = _server_count(counter.client, target.model, "probe") is not None
        with _server_counts_lock:
            _server_counts[key] = answer
        return answer

    if wait is None:
        return ask()
    return answer_soon(("counts", *key), ask, wait)[1]


# gpt-4o, gpt-4.1, gpt-4.5, gpt-5*, o1/o3/o4*, chatgpt-*, gpt-oss: o200k_base.
_O200K = re.compile(r"(gpt-4o|gpt-4\.[15]|gpt-5|gpt-oss|chatgpt-|o[134](-|$))")
_CL100K = re.compile(r"(gpt-4|gpt-3\.5|gpt-35)")


def openai_encoding(model: str) -> str | None:
    """The vocabulary of an OpenAI model name ("openai/gpt-4o" too), or None."""
    name = model.strip().lower().rsplit("/", 1)[-1]
    if _O200K.match(name):
        return "o200k_base"
    if _CL100K.match(name):
        return "cl100k_base"
    return None


def counter_for(target: Target, http_client: httpx2.Client, limits: Limits = Limits(),
                wait: float | None = None) -> Counter:
    """OpenAI's vocabulary for OpenAI's models, the server's tokenizer where it offers one,
    else an estimate. May ask the server once (at most SERVER_TIMEOUT; `wait` as for
    counts_tokens: an estimate until the server's answer is known, then `final` says so)."""
    encoding = openai_encoding(target.model)
    if encoding is None and target.provider_id == "openai":
        encoding = "o200k_base"
    if encoding is not None:
        return VocabularyCounter(encoding)
    counts = counts_tokens(target, http_client, limits, wait)
    if counts:
        return ServerCounter(target, http_client, limits)
    counter = EstimateCounter()
    counter.final = counts is not None
    return counter


# ---------------------------------------------------------------- the cache


class TokenCache:
    """Counts already made, by counter identity and a hash of the text; the least recently
    used go first. Kept by the caller (one per browser session)."""

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self.size = size
        self._counts: OrderedDict[tuple[str, bytes], int] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._counts)

    def get(self, key: tuple[str, bytes]) -> int | None:
        with self._lock:
            count = self._counts.get(key)
            if count is not None:
                self._counts.move_to_end(key)
            return count

    def put(self, key: tuple[str, bytes], count: int) -> None:
        with self._lock:
            self._counts[key] = count
            self._counts.move_to_end(key)
            while len(self._counts) > self.size:
                self._counts.popitem(last=False)


def _digest(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def count_text(counter: Counter, text: str, cache: TokenCache | None = None) -> int:
    if not text:
        return 0
    if cache is None:
        return counter.count(text)
    identity = counter.identity
    key = (identity, _digest(text))
    count = cache.get(key)
    if count is None:
        count = counter.count(text)
        if counter.identity == identity:  # a server that failed meanwhile: not its count
            cache.put(key, count)
    return count


# ---------------------------------------------------------------- images


IMAGE_BASE = 85  # OpenAI: every image, and all a low-detail one costs
IMAGE_TILE = 170  # OpenAI: each 512 px tile of a high-detail image
_HEADER_BYTES = 64 * 1024  # image headers (JPEG's after its EXIF block) fit in this


def image_tokens(width: int, height: int, detail: str = "auto") -> int:
    """OpenAI's formula: fit in 2048 x 2048, shortest side down to 768, 170 per 512 px tile
    plus 85. "auto" is counted as "high", the most it can cost."""
    if detail == "low" or width <= 0 or height <= 0:
        return IMAGE_BASE
    scale = min(1.0, 2048 / max(width, height))
    width, height = width * scale, height * scale
    scale = min(1.0, 768 / min(width, height))
    width, height = width * scale, height * scale
    return IMAGE_BASE + IMAGE_TILE * math.ceil(width / 512) * math.ceil(height / 512)


def image_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from the image's header (Pillow reads no pixels), or None."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.size
    except Exception:  # not an image Pillow knows, or cut before its header ended
        return None


def data_url_size(url: str) -> tuple[int, int] | None:
    """The size of a `data:...;base64,` image, decoding only its head when that suffices."""
    head, comma, payload = url.partition(",")
    if not comma or not head.startswith("data:") or not head.endswith(";base64"):
        return None
    prefix = payload[: _HEADER_BYTES // 3 * 4]
    try:
        size = image_size(base64.b64decode(prefix))
        if size is None and len(prefix) < len(payload):
            size = image_size(base64.b64decode(payload))
    except (binascii.Error, ValueError):
        return None
    return size


def _image_part_tokens(part: dict, cache: TokenCache | None) -> int:
    image_url = part.get("image_url")
    url = image_url.get("url", "") if isinstance(image_url, dict) else ""
    detail = image_url.get("detail", "auto") if isinstance(image_url, dict) else "auto"
    key = (f"image:{detail}", _digest(url))
    count = cache.get(key) if cache is not None else None
    if count is None:
        size = data_url_size(url) if isinstance(url, str) else None
        count = image_tokens(*size, detail) if size else IMAGE_BASE
        if cache is not None:
            cache.put(key, count)
    return count


# ---------------------------------------------------------------- messages


def content_tokens(counter: Counter, content, cache: TokenCache | None = None) -> int:
    """A message's content: a string, or text and image_url parts."""
    if isinstance(content, str):
        return count_text(counter, content, cache)
    total = 0
    for part in content if isinstance(content, Iterable) else ():
        if not isinstance(part, dict):
            continue
        if part.get("type") == "text":
            total += count_text(counter, str(part.get("text") or ""), cache)
        elif part.get("type") == "image_url":
            total += _image_part_tokens(part, cache)
    return total


def message_tokens(counter: Counter, message: dict, cache: TokenCache | None = None) -> int:
    """One wire message: its content, its role and the chat template's share around it (what
    leaving the message out of a request saves)."""
    return (counter.overhead.per_message + count_text(counter, str(message.get("role", "")), cache)
            + content_tokens(counter, message.get("content") or "", cache))


def reply_opening(counter: Counter, cache: TokenCache | None = None) -> int:
    """What the chat template puts before the reply, once per request."""
    return counter.overhead.reply + count_text(counter, "assistant", cache)


def count_messages(counter: Counter, messages: list[dict], cache: TokenCache | None = None) -> int:
    """The prompt's tokens for these wire messages, with the chat template's overhead and the
    reply's opening."""
    return reply_opening(counter, cache) + sum(message_tokens(counter, m, cache)
                                               for m in messages)
