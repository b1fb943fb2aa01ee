"""SSRF guard for Supabase mode: each connection's host (every redirect hop) is resolved once,
every address judged, the vetted IP literal connected to, so DNS rebinding cannot slip through;
TLS still checks the host name. Local mode allows everything. The guarded transport's
connections can also space their reads (GatheringStream)."""

from __future__ import annotations

import contextlib
import functools
import http.cookiejar
import ipaddress
import logging
import socket
import ssl
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, NoReturn, Union

import httpcore2
import httpx2
import openai

from core.failures import UserFacingError

log = logging.getLogger(__name__)

IPAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]
IPNetwork = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]

ALLOW_ALL_PRIVATE = "private"  # the SWITCHBOARD_ALLOWED_HOSTS entry that turns the guard off
_SETTING = "SWITCHBOARD_ALLOWED_HOSTS"

_net = ipaddress.ip_network
_THIS_NETWORK = _net("0.0.0.0/8")
_SHARED = _net("100.64.0.0/10")
_METADATA = ipaddress.ip_address("169.254.169.254")
_PRIVATE_V4 = (_net("10.0.0.0/8"), _net("172.16.0.0/12"), _net("192.168.0.0/16"))
_ULA = _net("fc00::/7")
_SITE_LOCAL = _net("fec0::/10")  # deprecated, still routed inside some sites
_NAT64 = _net("64:ff9b::/96")  # well-known prefix: the last 32 bits are the IPv4 reached
_NAT64_LOCAL = _net("64:ff9b:1::/48")  # local-use NAT64 (RFC 8215): a site's own translator
_V4_COMPATIBLE = _net("::/96")  # deprecated ::a.b.c.d
_V4_TRANSLATED = _net("::ffff:0:0:0/96")  # SIIT ::ffff:0:a.b.c.d


@dataclass(frozen=True)
class NetworkPolicy:
    """`allow_private` refuses nothing; `allowed` holds lower-case host names (reach anything)
    and IP networks (a single IP is a /32 or /128)."""

    allow_private: bool = False
    allowed: tuple[Union[str, IPNetwork], ...] = ()

    @classmethod
    def from_entries(cls, entries: tuple[str, ...] | list[str]) -> NetworkPolicy:
        """A guarded policy from SWITCHBOARD_ALLOWED_HOSTS entries."""
        allow_private = False
        allowed: list[Union[str, IPNetwork]] = []
        for raw in entries:
            entry = raw.strip()
            if not entry:
                continue
            if entry.lower() == ALLOW_ALL_PRIVATE:
                allow_private = True
                continue
            try:
                allowed.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            except ValueError:
                allowed.append(_normal_host(entry))
        return cls(allow_private=allow_private, allowed=tuple(allowed))

    def allows_host(self, host: str) -> bool:
        """A named host's addresses are not judged."""
        return self.allow_private or _normal_host(host) in self.allowed

    def allows_address(self, address: IPAddress) -> bool:
        """An entry covering the address, or the IPv4 it embeds."""
        if self.allow_private:
            return True
        candidates = [_without_scope(address)]
        embedded = _embedded_v4(address)
        if embedded is not None:
            candidates.append(embedded[1])
        return any(
            isinstance(entry, (ipaddress.IPv4Network, ipaddress.IPv6Network))
            and entry.version == ip.version
            and ip in entry
            for entry in self.allowed
            for ip in candidates
        )


def policy_for(settings) -> NetworkPolicy:
    if settings.mode != "supabase":
        return NetworkPolicy(allow_private=True)
    return NetworkPolicy.from_entries(settings.allowed_hosts)


class BlockedAddress(UserFacingError, httpcore2.ConnectError):
    """A ConnectError so httpx2 and the SDK wrap it; a plain exception would escape raw."""

    def __init__(self, host: str, address: str, reason: str) -> None:
        self.host = host
        self.address = address
        self.reason = reason
        if _normal_host(host) == _normal_host(address):
            subject = f"{address} is {reason}"
        else:
            subject = f"{host} resolves to {address}, {reason}"
        super().__init__(
            f"Refused to connect: {subject}. That address is on a private network, "
            "and this server does not connect there."
        )


# --- judging one address -------------------------------------------------------------


def _without_scope(address: IPAddress) -> IPAddress:
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id:
        return ipaddress.IPv6Address(int(address))
    return address


def _embedded_v4(address: IPAddress) -> tuple[str, ipaddress.IPv4Address] | None:
    """(kind, IPv4) for an IPv6 address that carries an IPv4 address it leads to."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    address = _without_scope(address)
    if address.ipv4_mapped is not None:
        return "an IPv4-mapped form of", address.ipv4_mapped
    if address in _NAT64:
        return "a NAT64 form of", ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return "a 6to4 form of", address.sixtofour
    if address.teredo is not None:
        return "a Teredo form of", address.teredo[1]
    if address in _V4_TRANSLATED:
        return "an IPv4-translated form of", ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address in _V4_COMPATIBLE and int(address) > 1:
        return "an IPv4-compatible form of", ipaddress.IPv4Address(int(address))
    return None


def _v4_reason(ip: ipaddress.IPv4Address) -> str | None:
    if ip.is_unspecified:
        return "the unspecified address, which reaches this machine"
    if ip in _THIS_NETWORK:
        return "a reserved 'this network' address (0.0.0.0/8)"
    if ip.is_loopback:
        return "a loopback address"
    if ip == _METADATA:
        return "the cloud metadata address (link-local)"
    if ip.is_link_local:
        return "a link-local address (the range of cloud metadata services)"
    if ip in _SHARED:
        return "a shared address (100.64.0.0/10, carrier-grade NAT)"
    if any(ip in net for net in _PRIVATE_V4):
        return "a private address"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_reserved or ip == ipaddress.IPv4Address("255.255.255.255"):
        return "a reserved address"
    if not ip.is_global:
        return "a special-purpose address that is not on the public internet"
    return None


def _v6_reason(ip: ipaddress.IPv6Address) -> str | None:
    embedded = _embedded_v4(ip)
    if embedded is not None:
        kind, v4 = embedded
        inner = _v4_reason(v4)
        if inner is not None:
            return f"{kind} {v4}, {inner}"
        if ip.ipv4_mapped is not None or ip in _NAT64 or ip.sixtofour or ip.teredo:
            return None  # leads to a public IPv4 address: judged as that address
        # IPv4-compatible / translated forms of a public IPv4 fall through (reserved)
    if ip.is_unspecified:
        return "the unspecified address, which reaches this machine"
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address (the range of cloud metadata services)"
    if ip in _NAT64_LOCAL:
        return "a local-use NAT64 address (a private network)"
    if ip in _ULA or ip in _SITE_LOCAL or ip.is_site_local:
        return "a private address"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_reserved:
        return "a reserved address"
    if not ip.is_global:
        return "a special-purpose address that is not on the public internet"
    return None


def forbidden_reason(address: str | IPAddress) -> str | None:
    """Why the address is refused ("a loopback address", ...), or None."""
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    ip = _without_scope(ip)
    if isinstance(ip, ipaddress.IPv4Address):
        return _v4_reason(ip)
    return _v6_reason(ip)


def check_address(host: str, address: str | IPAddress, policy: NetworkPolicy) -> None:
    if policy.allows_host(host):
        return
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    if policy.allows_address(ip):
        return
    reason = forbidden_reason(ip)
    if reason is not None:
        # The user's message names no setting; the operator learns here how to allow it.
        log.warning(
            "Refused a connection to %s (%s, %s). To allow it, list the host, address or range "
            "in %s (or %r for every private address).",
            host, address, reason, _SETTING, ALLOW_ALL_PRIVATE,
        )
        raise BlockedAddress(host, str(address), reason)


# --- resolving a host ----------------------------------------------------------------


def _normal_host(host: str) -> str:
    host = host.strip().strip("[]").rstrip(".").lower()
    try:
        return host.encode("idna").decode("ascii") if not host.isascii() else host
    except UnicodeError:
        return host


def vet(host: str, port: int, policy: NetworkPolicy) -> list[str]:
    """`host`'s addresses in resolver order. BlockedAddress if ANY is forbidden: public plus
    private is a rebinding trick, whatever the OS tries first. gaierror propagates."""
    if policy.allows_host(host):
        return [host]
    name = _normal_host(host)
    if name == "localhost" or name.endswith(".localhost"):
        # RFC 6761: localhost names mean this machine whatever a resolver says (and some
        # resolvers send `localhost.` or `app.localhost` to DNS): judged as 127.0.0.1 first.
        check_address(host, "127.0.0.1", policy)
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses: list[str] = []
    for *_, sockaddr in infos:
        literal = str(sockaddr[0])
        check_address(host, literal, policy)
        if literal not in addresses:
            addresses.append(literal)
    return addresses


def check_base_url(url: str, policy: NetworkPolicy) -> None:
    """Advisory, for the settings page: an unparseable URL or unresolved host passes."""
    if policy.allow_private:
        return
    try:
        parsed = httpx2.URL(url.strip())
    except (httpx2.InvalidURL, TypeError, ValueError):
        return
    if not parsed.host:
        return
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        vet(parsed.raw_host.decode("ascii"), port, policy)
    except socket.gaierror:
        return


# --- the transport -------------------------------------------------------------------


class GatheringStream(httpcore2.NetworkStream):
    """A connection's stream whose reads can be spaced out. With `spacing` set (a function
    giving seconds), a read first waits until that long after the previous one: a body that
    trickles in at a model's pace is then read several chunks at a time, one wake-up of its
    thread instead of one per chunk. The next request (a write) ends the spacing, so an answer's
    head is always read at once."""

    def __init__(self, stream: httpcore2.NetworkStream) -> None:
        self.stream = stream
        self.spacing: Callable[[], float] | None = None
        self._last_read = 0.0

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        if self.spacing is None:
            return self.stream.read(max_bytes, timeout)
        wait = self._last_read + self.spacing() - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        data = self.stream.read(max_bytes, timeout)
        self._last_read = time.monotonic()
        return data

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.spacing = None
        self.stream.write(buffer, timeout)

    def close(self) -> None:
        self.stream.close()

    def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                  timeout: float | None = None) -> GatheringStream:
        return GatheringStream(self.stream.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        return self.stream.get_extra_info(info)


class GuardedBackend(httpcore2.SyncBackend):
    """Judges and pins the address of every new connection; each is a GatheringStream."""

    def __init__(self, policy: NetworkPolicy) -> None:
        self.policy = policy

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[tuple] | None = None,
    ) -> httpcore2.NetworkStream:
        if self.policy.allow_private:
            return GatheringStream(
                super().connect_tcp(host, port, timeout, local_address, socket_options))
        try:
            addresses = vet(host, port, self.policy)
        except OSError as exc:  # the resolver failed: reported like httpcore2 reports it
            raise httpcore2.ConnectError(str(exc)) from exc
        last: Exception | None = None
        for address in addresses:
            try:
                # An IP literal: create_connection does no DNS lookup, so the socket reaches
                # exactly the address judged above. start_tls later gets the host name.
                return GatheringStream(
                    super().connect_tcp(address, port, timeout, local_address, socket_options))
            except (httpcore2.ConnectError, httpcore2.ConnectTimeout) as exc:
                last = exc
        raise last or httpcore2.ConnectError(f"{host} resolved to no address")


@functools.cache
def _default_ssl_context() -> ssl.SSLContext:
    """Built once per process: making one costs ~26 ms, paid by every reply otherwise."""
    return httpx2.create_ssl_context(verify=True)


# httpcore2's exceptions and the httpx2 ones of the same name that callers (and the openai SDK)
# expect, most specific first: the first match wins, so ConnectTimeout stays a ConnectTimeout.
_HTTPX_ERROR_FOR = tuple((getattr(httpcore2, name), getattr(httpx2, name)) for name in (
    "ConnectTimeout", "ReadTimeout", "WriteTimeout", "PoolTimeout", "TimeoutException",
    "ConnectError", "ReadError", "WriteError", "NetworkError", "ProxyError",
    "UnsupportedProtocol", "LocalProtocolError", "RemoteProtocolError", "ProtocolError",
))


def _raise_as_httpx(exc: Exception) -> NoReturn:
    """httpcore2's error raised as httpx2's (the original as `__cause__`); any other as it is."""
    for core_error, httpx_error in _HTTPX_ERROR_FOR:
        if isinstance(exc, core_error):
            raise httpx_error(str(exc)) from exc
    raise exc


@contextlib.contextmanager
def _as_httpx_errors() -> Iterator[None]:
    """Re-raise httpcore2's errors as httpx2's, the original kept as `__cause__`."""
    try:
        yield
    except Exception as exc:
        _raise_as_httpx(exc)


class _ResponseBody(httpx2.SyncByteStream):
    """Read with httpx2's errors. A reader stopping at `[DONE]` leaves httpcore2 a step short
    and it drops the connection: close() takes that step when Content-Length says all arrived.
    Not a generator: a dropped iterator must not close httpcore2's (and the connection)."""

    def __init__(self, body: Iterable[bytes], headers: list[tuple[bytes, bytes]]) -> None:
        self.body = body
        length = httpx2.Headers(headers).get("content-length", "")
        self.length = int(length) if length.isdigit() else None
        self.received = 0
        self.reading: Iterator[bytes] | None = None

    def __iter__(self) -> Iterator[bytes]:
        self.reading = iter(self.body)
        return self

    def __next__(self) -> bytes:
        try:  # not _as_httpx_errors(): a context manager per chunk costs more than the chunk
            chunk = next(self.reading, None)
        except Exception as exc:
            _raise_as_httpx(exc)
        if chunk is None:
            raise StopIteration
        self.received += len(chunk)
        return chunk

    def close(self) -> None:
        if self.reading is not None and self.length is not None and self.received >= self.length:
            try:
                with _as_httpx_errors():
                    for _ in self.reading:
                        pass
            except httpx2.TransportError:
                pass  # httpcore2 closed that connection: nothing to keep
        with _as_httpx_errors():
            close = getattr(self.body, "close", None)
            if close is not None:
                close()


class GuardedTransport(httpx2.BaseTransport):
    """Its own httpcore2 pool opens every connection through GuardedBackend. Public extension
    points only, so a library change fails loudly rather than bypass the guard. No proxy."""

    def __init__(self, policy: NetworkPolicy) -> None:
        limits = openai.DEFAULT_CONNECTION_LIMITS  # as the SDK's own client
        self.pool = httpcore2.ConnectionPool(
            # The SDK's default context (trusts SSL_CERT_FILE / SSL_CERT_DIR), shared by every pool.
            ssl_context=_default_ssl_context(),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            http1=True,
            http2=False,
            network_backend=GuardedBackend(policy),
        )

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        url = request.url
        core_request = httpcore2.Request(
            method=request.method,
            url=httpcore2.URL(scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,  # carries the per-request timeouts
        )
        with _as_httpx_errors():
            response = self.pool.handle_request(core_request)
        return httpx2.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_ResponseBody(response.stream, response.headers),
            extensions=response.extensions,
        )

    def close(self) -> None:
        self.pool.close()


class RedirectRefused(UserFacingError, httpx2.RequestError):
    """Keeps key and headers with the named server; a RequestError so the SDK wraps it."""

    def __init__(self, origin: str, elsewhere: str) -> None:
        super().__init__(
            f"The server at {origin} redirected the request to {elsewhere}. Switchboard does "
            "not follow a redirect to another server, so your key and headers stay with the "
            "one you named. If that address is right, use it as the base URL."
        )


def _origin(url: httpx2.URL) -> tuple[str, str, int | None]:
    return url.scheme, url.host, url.port


def _stay_on_origin(response: httpx2.Response) -> None:
    """Redirects stay on the origin: elsewhere httpx2 drops Authorization but keeps the rest."""
    if not response.has_redirect_location:
        return
    here = response.request.url
    there = here.join(response.headers["location"])
    if _origin(there) != _origin(here):
        raise RedirectRefused(f"{here.scheme}://{here.netloc.decode('ascii')}",
                              f"{there.scheme}://{there.netloc.decode('ascii')}")


def guarded_http_client(policy: NetworkPolicy) -> httpx2.Client:
    """For openai.OpenAI(http_client=...): the SDK's defaults, but no environment, no cookies
    and no redirect to another origin, so one client can serve every user."""
    return httpx2.Client(
        transport=GuardedTransport(policy),
        timeout=openai.DEFAULT_TIMEOUT,  # the SDK's; each request sets its own
        follow_redirects=True,  # as the SDK does; every hop goes through GuardedBackend
        # An environment proxy would connect to the target itself, bypassing the guard (which
        # would judge only the proxy's address); also no .netrc credentials.
        trust_env=False,
        # One client serves every user: a cookie kept for one would be sent for another.
        cookies=http.cookiejar.CookieJar(http.cookiejar.DefaultCookiePolicy(allowed_domains=[])),
        event_hooks={"response": [_stay_on_origin]},
    )
