"""Time limits, the guarded HTTP client and the SDK client. One httpx2 client per policy serves
the process: it holds no user data, since keys and headers travel per request from an SDK client
built from the Target alone (no operator OPENAI_* variable reaches a server)."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

import httpx2
import openai

from core.config import Settings
from core.chat.netguard import NetworkPolicy, guarded_http_client, policy_for
from core.failures import UserFacingError
from core.providers.connections import sending_problems
from core.providers.kinds import Target

NO_KEY_PLACEHOLDER = "no-key"  # the SDK insists on a key; keyless local servers ignore it


@dataclass(frozen=True)
class Limits:
    connect: float = Settings.connect_timeout
    first_token: float = Settings.first_token_timeout
    idle: float = Settings.idle_timeout


class SettingRefused(UserFacingError):
    """Nothing was sent; `field` is the setting to fix ("base_url", "key", or None)."""

    def __init__(self, message: str, field: str | None) -> None:
        super().__init__(message)
        self.field = field


_SETTING_NAMES = {"base_url": "base URL", "api_key": "API key",
                  "organization": "organization ID", "headers": "custom headers"}
_SETTING_LINKS = {"base_url": "base_url", "api_key": "key"}  # what Chat offers to check


def refuse_what_the_rules_refuse(target: Target) -> None:
    """Raise SettingRefused, naming the settings, for what sending_problems refuses."""
    problems = sending_problems(target)
    if not problems:
        return
    fields = list(dict.fromkeys(field for field, _ in problems))
    if fields == ["base_url"] and target.base_url.strip() and target.base_url.isprintable():
        what = f"The base URL {target.base_url}"  # as the HTTP client's refusal says it
    else:
        what = f"This connection's {' and '.join(_SETTING_NAMES[f] for f in fields)}"
    said = " ".join(message for _, message in problems)
    raise SettingRefused(
        f"{what} cannot be used: {said} Nothing was sent; correct this in Settings.",
        _SETTING_LINKS.get(fields[0]),
    )


def build_client(
    target: Target, limits: Limits = Limits(), http_client: httpx2.Client | None = None
) -> openai.OpenAI:
    """A client for exactly `target.base_url` that sends only what the target carries and never
    retries; SettingRefused, sending nothing, if the target breaks the connection rules."""
    refuse_what_the_rules_refuse(target)
    api_key = target.api_key or NO_KEY_PLACEHOLDER
    client = openai.OpenAI(
        api_key=api_key,
        organization=target.organization,
        base_url=target.base_url,
        # The first-token limit applies to the response head (call.py stretches it past that).
        timeout=httpx2.Timeout(connect=limits.connect, read=limits.first_token, write=30, pool=5),
        max_retries=0,  # the page offers Retry; silent retries only delay the error
        http_client=http_client,
        default_headers=_only_the_targets_headers(api_key, target.headers),
    )
    # The SDK reads these from OPENAI_* variables when they are None; the target decides.
    client.organization = target.organization
    client.project = None
    client.admin_api_key = None
    client.webhook_secret = None
    return client


def _only_the_targets_headers(api_key: str, custom: tuple[tuple[str, str], ...] = ()
                              ) -> dict[str, str | openai.Omit]:
    """The connection's headers, each OPENAI_CUSTOM_HEADERS name omitted; Authorization is set
    last so neither that variable nor a slipped-in custom header can replace the key."""
    headers: dict[str, str | openai.Omit] = {}
    for line in os.environ.get("OPENAI_CUSTOM_HEADERS", "").split("\n"):
        name = line.partition(":")[0].strip()
        if ":" in line and name and name.lower() != "authorization":
            headers[name] = openai.Omit()
    headers.update(custom)
    headers["Authorization"] = f"Bearer {api_key}"
    return headers


_shared_clients: dict[NetworkPolicy, httpx2.Client] = {}  # per policy; no user data inside
_shared_clients_lock = threading.Lock()


def connection_for(settings: Settings) -> tuple[Limits, httpx2.Client]:
    """The shared guarded client (callers must not close it); timeouts are per request."""
    limits = Limits(settings.connect_timeout, settings.first_token_timeout, settings.idle_timeout)
    policy = policy_for(settings)
    with _shared_clients_lock:
        client = _shared_clients.get(policy)
        if client is None or client.is_closed:  # closed by mistake: a new pool, not an error
            client = _shared_clients[policy] = guarded_http_client(policy)
        return limits, client
