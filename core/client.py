"""The HTTP side of every provider request: time limits, the guarded client, the SDK client."""

from __future__ import annotations

from dataclasses import dataclass

import httpx2
import openai

from core.config import Settings
from core.netguard import guarded_http_client, policy_for
from core.providers import Target

NO_KEY_PLACEHOLDER = "no-key"  # the SDK insists on a key; keyless local servers ignore it


@dataclass(frozen=True)
class Limits:
    connect: float = 5.0
    first_token: float = 60.0
    idle: float = 30.0

    def http_timeout(self) -> httpx2.Timeout:
        """Connect limit, and the first-token limit while waiting for the response head."""
        return httpx2.Timeout(connect=self.connect, read=self.first_token, write=30, pool=5)

    @property
    def body_read_backstop(self) -> float:
        # The watchdog enforces the limits inside the body; this only catches a dead watchdog.
        return max(self.first_token, self.idle) + 5


class _DoneAwareDecoder:
    """Wraps the SDK's SSE decoder to note whether the server sent `data: [DONE]`.

    The SDK ends iteration the same way for [DONE] and for a connection that just closed;
    only the first is a finished stream.
    """

    def __init__(self, inner):
        self._inner = inner
        self.saw_done = False

    def iter_bytes(self, iterator):
        for event in self._inner.iter_bytes(iterator):
            if event.data.startswith("[DONE]"):
                self.saw_done = True
            yield event


class _Client(openai.OpenAI):
    def _make_sse_decoder(self):
        return _DoneAwareDecoder(super()._make_sse_decoder())


def build_client(
    target: Target, limits: Limits = Limits(), http_client: httpx2.Client | None = None
) -> openai.OpenAI:
    """A client that talks to exactly `target.base_url` (P4) and never retries on its own."""
    return _Client(
        api_key=target.api_key or NO_KEY_PLACEHOLDER,
        organization=target.organization,
        project=None,
        base_url=target.base_url,
        timeout=limits.http_timeout(),
        max_retries=0,  # the page offers Retry; silent retries only delay the error
        http_client=http_client,
    )


def connection_for(settings: Settings) -> tuple[Limits, httpx2.Client]:
    """The time limits and the guarded HTTP client every provider request uses."""
    limits = limits_for(settings)
    return limits, http_client_for(settings, limits)


def http_client_for(settings: Settings, limits: Limits) -> httpx2.Client:
    """An HTTP client that checks every address it connects to (SSRF guard, SPEC Security)."""
    return guarded_http_client(policy_for(settings), limits.http_timeout())


def limits_for(settings: Settings) -> Limits:
    return Limits(settings.connect_timeout, settings.first_token_timeout, settings.idle_timeout)


