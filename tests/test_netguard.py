"""The SSRF guard (core/netguard.py): every address class, numeric host forms, and real
requests against real HTTP servers on loopback.

Network rule for this module: only loopback addresses are ever connected to. An audit hook
enforces it while these tests run (a connect to any other address is aborted and fails the
test), and it records every connect so a test can show that a refusal happened before any
connection was attempted.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import logging
import socket
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpcore2
import httpx2
import openai
import pytest
from hypothesis import given, strategies as st

from core.config import Settings
from core.failures import UserFacingError
from core.chat.errors import describe_error
from core.chat import netguard
from core.chat.netguard import (
    BlockedAddress,
    GuardedTransport,
    NetworkPolicy,
    RedirectRefused,
    check_address,
    check_base_url,
    forbidden_reason,
    guarded_http_client,
    policy_for,
)

SUPABASE = Settings(supabase_url="https://project.supabase.co", supabase_anon_key="anon")
LOCAL = Settings()
GUARDED = policy_for(SUPABASE)
OPEN = policy_for(LOCAL)


# --- the network rule ------------------------------------------------------------------

_CONNECTS: list[tuple] = []
_ARMED = [False]
_HOOK_INSTALLED = [False]


def _is_loopback(host: str) -> bool:
    try:
        ip = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return host.rstrip(".").lower() == "localhost"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def _audit(event: str, args: tuple) -> None:
    if event != "socket.connect" or not _ARMED[0]:
        return
    address = args[1]
    if isinstance(address, tuple):
        _CONNECTS.append(address)
        if not _is_loopback(str(address[0])):
            raise RuntimeError(f"test network rule: refusing to connect to {address!r}")


@pytest.fixture(autouse=True)
def loopback_only():
    """Record every connect; abort any to a non-loopback address."""
    if not _HOOK_INSTALLED[0]:
        sys.addaudithook(_audit)  # cannot be removed; inert unless armed
        _HOOK_INSTALLED[0] = True
    _CONNECTS.clear()
    _ARMED[0] = True
    yield _CONNECTS
    _ARMED[0] = False
    assert all(_is_loopback(str(a[0])) for a in _CONNECTS), _CONNECTS


# --- real servers on loopback ------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address, redirect_to=None):
        self.accepted: list[tuple] = []  # every TCP connection accepted
        self.requests: list[tuple[str, str, str | None]] = []  # (method, path, Host header)
        self.authorizations: list[str | None] = []  # the Authorization header of each request
        self.sni: list[str | None] = []
        self.redirect_to = redirect_to
        super().__init__(address, _Handler)

    def verify_request(self, request, client_address):
        self.accepted.append(client_address)
        return True

    @property
    def port(self) -> int:
        return self.server_address[1]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.server.requests.append((self.command, self.path, self.headers.get("Host")))
        self.server.authorizations.append(self.headers.get("Authorization"))
        if self.server.redirect_to and self.path != self.server.redirect_to:
            self.send_response(302)
            self.send_header("Location", self.server.redirect_to)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = json.dumps(
            {"object": "list", "data": [{"id": "m", "object": "model", "created": 0, "owned_by": "t"}]}
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET


@pytest.fixture
def serve():
    """serve(host, redirect_to=None, tls=None) -> a running server on that loopback address."""
    started: list[_Server] = []

    def start(host: str = "127.0.0.1", redirect_to: str | None = None, tls=None) -> _Server:
        server = _Server((host, 0), redirect_to)
        if tls is not None:
            tls.sni_callback = lambda sslobj, name, ctx: server.sni.append(name)
            server.socket = tls.wrap_socket(server.socket, server_side=True)
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.shutdown()
        server.server_close()


@pytest.fixture
def resolver(monkeypatch):
    """Map chosen names to chosen addresses; other names resolve as usual (no DNS leaves)."""
    real = socket.getaddrinfo
    table: dict[str, list[list[str]]] = {}
    calls: list[str] = []

    def fake(host, port, family=0, type=0, proto=0, flags=0):
        name = host.decode() if isinstance(host, bytes) else host
        if name in table:
            calls.append(name)
            answers = table[name][0] if len(table[name]) == 1 else table[name].pop(0)
            out = []
            for address in answers:
                ip = ipaddress.ip_address(address)
                if ip.version == 4:
                    out.append((socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port)))
                else:
                    out.append((socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, port, 0, 0)))
            return out
        return real(host, port, family, type, proto, flags)

    monkeypatch.setattr(socket, "getaddrinfo", fake)

    def add(name: str, *answers: list[str]) -> None:
        """`name` answers with answers[0] on the first lookup, answers[1] on the next, ..."""
        table[name] = [list(a) for a in answers]

    add.calls = calls
    return add


def _chain(exc: BaseException) -> list[BaseException]:
    out = []
    while exc is not None and exc not in out:
        out.append(exc)
        exc = exc.__cause__ or exc.__context__
    return out


def _blocked(exc_info) -> BlockedAddress:
    found = [e for e in _chain(exc_info.value) if isinstance(e, BlockedAddress)]
    assert found, _chain(exc_info.value)
    return found[0]


# --- every address class -----------------------------------------------------------------

REFUSED = [
    # (address, words the reason must contain)
    ("127.0.0.1", "loopback"),
    ("127.255.255.254", "loopback"),
    ("10.0.0.1", "private"),
    ("172.16.0.1", "private"),
    ("172.31.255.255", "private"),
    ("192.168.1.1", "private"),
    ("169.254.169.254", "cloud metadata"),
    ("169.254.1.1", "link-local"),
    ("100.64.0.1", "shared"),
    ("100.127.255.254", "shared"),
    ("0.0.0.0", "unspecified"),
    ("0.1.2.3", "this network"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "reserved"),
    ("192.0.2.1", "not on the public internet"),
    ("198.18.0.1", "not on the public internet"),
    ("::1", "loopback"),
    ("::", "unspecified"),
    ("fe80::1", "link-local"),
    ("fe80::1%1", "link-local"),
    ("fc00::1", "private"),
    ("fd00:ec2::254", "private"),  # AWS IPv6 metadata
    ("fec0::1", "private"),
    ("ff02::1", "multicast"),
    ("::ffff:127.0.0.1", "IPv4-mapped form of 127.0.0.1, a loopback"),
    ("::ffff:10.1.2.3", "IPv4-mapped form of 10.1.2.3, a private"),
    ("::ffff:169.254.169.254", "IPv4-mapped form of 169.254.169.254, the cloud metadata"),
    ("::ffff:100.64.0.1", "shared"),
    ("::ffff:0.0.0.0", "unspecified"),
    ("::7f00:1", "IPv4-compatible form of 127.0.0.1, a loopback"),
    ("::a00:1", "IPv4-compatible form of 10.0.0.1, a private"),
    ("::ffff:0:7f00:1", "IPv4-translated form of 127.0.0.1"),
    ("64:ff9b::7f00:1", "NAT64 form of 127.0.0.1, a loopback"),
    ("64:ff9b::a9fe:a9fe", "NAT64 form of 169.254.169.254"),
    ("64:ff9b:1::a00:1", "local-use NAT64"),
    ("2002:7f00:1::1", "6to4 form of 127.0.0.1, a loopback"),
    ("2002:c0a8:101::1", "6to4 form of 192.168.1.1, a private"),
    ("2001:0:4136:e378:8000:63bf:80ff:fffe", "Teredo form of 127.0.0.1"),
    ("2001:db8::1", "not on the public internet"),
]

ALLOWED_PUBLIC = [
    "8.8.8.8",
    "1.1.1.1",
    "100.63.255.255",  # just below the shared range
    "100.128.0.0",  # just above it
    "172.15.255.255",
    "172.32.0.0",
    "169.253.255.255",
    "2606:4700:4700::1111",
    "::ffff:8.8.8.8",
    "64:ff9b::808:808",  # NAT64 of a public address
    "2002:808:808::1",  # 6to4 of a public address
]


@pytest.mark.parametrize("address,words", REFUSED)
def test_every_address_class_is_refused_in_supabase_mode(address, words):
    assert words in forbidden_reason(address)
    with pytest.raises(BlockedAddress) as info:
        check_address(address.split("%")[0], address, GUARDED)
    message = str(info.value)
    assert words in message
    assert "SWITCHBOARD_ALLOWED_HOSTS" not in message  # a user is told no setting name
    assert "on a private network, and this server does not connect there" in message
    assert isinstance(info.value, UserFacingError)


@pytest.mark.parametrize("address,words", REFUSED)
def test_every_address_class_is_allowed_in_local_mode(address, words):
    check_address(address, address, OPEN)


@pytest.mark.parametrize("address", ALLOWED_PUBLIC)
def test_public_addresses_are_allowed(address):
    assert forbidden_reason(address) is None
    check_address("api.example.com", address, GUARDED)


def test_message_names_the_host_and_what_it_resolves_to():
    with pytest.raises(BlockedAddress) as info:
        check_address("models.internal", "127.0.0.1", GUARDED)
    assert str(info.value) == (
        "Refused to connect: models.internal resolves to 127.0.0.1, a loopback address. "
        "That address is on a private network, and this server does not connect there."
    )
    assert (info.value.host, info.value.address) == ("models.internal", "127.0.0.1")


NUMERIC_LOOPBACK = ["2130706433", "0x7f.1", "0x7f.0.0.1", "0x7F000001", "017700000001", "127.1"]


@pytest.mark.parametrize("form", NUMERIC_LOOPBACK)
def test_numeric_ipv4_forms_are_judged_as_the_address_they_reach(form):
    with pytest.raises(BlockedAddress) as info:
        check_base_url(f"http://{form}:8080/v1", GUARDED)
    assert info.value.address == "127.0.0.1"
    assert f"{form.lower()} resolves to 127.0.0.1, a loopback address" in str(info.value)


@pytest.mark.parametrize("form", ["0177.0.0.1", "127.000.000.001"])
def test_octal_dotted_quads_are_invalid_urls_and_never_sent(form, loopback_only):
    with guarded_http_client(OPEN) as client:
        with pytest.raises(httpx2.InvalidURL):
            client.get(f"http://{form}:8080/v1")
    check_base_url(f"http://{form}:8080/v1", GUARDED)  # nothing to judge: no request can go
    assert loopback_only == []


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost:11434/v1",
        "http://LOCALHOST./v1",
        "http://[::1]:8000/v1",
        "http://[::ffff:127.0.0.1]/v1",
        "http://[::ffff:7f00:1]/v1",
        "http://0.0.0.0:8000/v1",
        "http://169.254.169.254/latest/meta-data/",
        "https://10.0.0.1/v1",
        "http://app.localhost:3000/v1",
        "http://user:sk-secret@127.0.0.1/v1",
    ],
)
def test_check_base_url_refuses_private_targets(url):
    with pytest.raises(BlockedAddress) as info:
        check_base_url(url, GUARDED)
    assert "sk-secret" not in str(info.value)
    check_base_url(url, OPEN)  # the local default allows them all


@pytest.mark.parametrize("host", ["localhost", "LOCALHOST.", "app.localhost", "a.b.LocalHost."])
def test_localhost_names_mean_this_machine_whatever_the_resolver_says(host, resolver):
    resolver("app.localhost", ["93.184.216.34"])  # a resolver that disagrees with RFC 6761
    with pytest.raises(BlockedAddress) as info:
        check_base_url(f"http://{host}:8080/v1", GUARDED)
    assert info.value.address == "127.0.0.1"
    assert "a loopback address" in str(info.value)
    check_base_url(f"http://{host}:8080/v1", NetworkPolicy.from_entries(["127.0.0.0/8", "93.184.216.34"]))


def test_check_base_url_passes_what_it_cannot_judge():
    check_base_url("https://203.0.113.0.invalid/v1", GUARDED)  # does not resolve: not ours
    check_base_url("not a url", GUARDED)
    check_base_url("https://1.1.1.1/v1", GUARDED)


# --- the operator's setting ---------------------------------------------------------------


def test_policy_for_each_mode():
    assert OPEN == NetworkPolicy(allow_private=True, allowed=())
    assert GUARDED == NetworkPolicy(allow_private=False, allowed=())
    settings = Settings(
        supabase_url="https://p.supabase.co",
        supabase_anon_key="anon",
        allowed_hosts=("Ollama.Internal.", "10.0.0.0/8", "192.168.1.5", "[fd00::1]"),
    )
    policy = policy_for(settings)
    assert not policy.allow_private
    assert policy.allowed == (
        "ollama.internal",
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("192.168.1.5/32"),
        ipaddress.ip_network("fd00::1/128"),
    )
    assert policy_for(
        Settings(supabase_url="https://p.supabase.co", supabase_anon_key="a", allowed_hosts=("PRIVATE",))
    ).allow_private


def test_operator_entries_allow_exactly_what_they_name():
    policy = NetworkPolicy.from_entries(["ollama.internal", "10.0.0.0/8", "192.168.1.5"])
    check_address("ollama.internal", "172.16.0.9", policy)  # a named host: any address
    check_address("OLLAMA.internal.", "172.16.0.9", policy)
    check_address("other", "10.200.0.1", policy)  # inside the CIDR
    check_address("other", "::ffff:10.200.0.1", policy)  # its mapped form too
    check_address("other", "192.168.1.5", policy)
    for address in ("192.168.1.6", "127.0.0.1", "169.254.169.254", "::1"):
        with pytest.raises(BlockedAddress):
            check_address("other", address, policy)
    with pytest.raises(BlockedAddress):  # a name entry is not a suffix match
        check_address("ollama.internal.evil.example", "172.16.0.1", policy)
    assert NetworkPolicy.from_entries(["private"]).allow_private


# --- properties ---------------------------------------------------------------------------

PRIVATE_V4 = [
    ipaddress.ip_network(n)
    for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.0/8", "169.254.0.0/16", "100.64.0.0/10")
]


@st.composite
def private_v4(draw):
    net = draw(st.sampled_from(PRIVATE_V4))
    return net[draw(st.integers(0, net.num_addresses - 1))]


@given(private_v4())
def test_any_private_ipv4_and_its_mapped_form_is_refused_only_in_supabase_mode(ip):
    mapped = ipaddress.IPv6Address(f"::ffff:{ip}")
    for address in (ip, mapped):
        assert forbidden_reason(address) is not None
        with pytest.raises(BlockedAddress):
            check_address(str(address), address, GUARDED)
        check_address(str(address), address, OPEN)
    # the same through URL parsing and the real resolver (numeric: no DNS query is sent)
    for url in (f"http://{ip}/v1", f"http://[{mapped}]/v1"):
        with pytest.raises(BlockedAddress):
            check_base_url(url, GUARDED)
        check_base_url(url, OPEN)


@given(private_v4())
def test_any_private_ipv4_in_an_ipv6_transition_form_is_refused(ip):
    v4 = int(ip)
    for v6 in (
        ipaddress.IPv6Address((0x0064FF9B << 96) | v4),  # NAT64 64:ff9b::/96
        ipaddress.IPv6Address((0x2002 << 112) | (v4 << 80)),  # 6to4
        ipaddress.IPv6Address(v4) if v4 > 1 else ipaddress.IPv6Address(f"::ffff:{ip}"),
    ):
        with pytest.raises(BlockedAddress):
            check_address(str(v6), v6, GUARDED)


@given(st.integers(0, 2**32 - 1).map(ipaddress.IPv4Address))
def test_public_ipv4_is_allowed_and_special_ipv4_refused(ip):
    if ip.is_global and not ip.is_multicast:
        assert forbidden_reason(ip) is None
        check_address(str(ip), ip, GUARDED)
    else:
        assert forbidden_reason(ip) is not None


@given(
    st.sampled_from([ipaddress.ip_network("fc00::/7"), ipaddress.ip_network("fe80::/10")]).flatmap(
        lambda net: st.integers(0, net.num_addresses - 1).map(lambda i: net[i])
    )
)
def test_any_ula_or_link_local_ipv6_is_refused(ip):
    with pytest.raises(BlockedAddress):
        check_address(str(ip), ip, GUARDED)
    check_address(str(ip), ip, OPEN)


# --- real requests --------------------------------------------------------------------------


def test_supabase_mode_refuses_loopback_before_any_byte_is_sent(serve, loopback_only):
    server = serve("127.0.0.1")
    with guarded_http_client(GUARDED) as client:
        with pytest.raises(httpx2.ConnectError) as info:
            client.get(f"http://127.0.0.1:{server.port}/v1/models")
    assert _blocked(info).address == "127.0.0.1"
    assert server.accepted == [] and server.requests == []
    assert loopback_only == []  # not even a TCP connect was attempted


@pytest.mark.parametrize("form", NUMERIC_LOOPBACK + ["localhost", "LOCALHOST.", "[::ffff:127.0.0.1]", "0.0.0.0"])
def test_supabase_mode_refuses_every_spelling_of_this_machine(serve, loopback_only, form):
    server = serve("127.0.0.1")
    with guarded_http_client(GUARDED) as client:
        with pytest.raises(httpx2.ConnectError) as info:
            client.get(f"http://{form}:{server.port}/v1/models")
    assert "this server does not connect there" in str(_blocked(info))
    assert server.accepted == [] and loopback_only == []


def test_names_resolving_to_private_addresses_are_refused_without_connecting(
    serve, resolver, loopback_only
):
    resolver("intranet.test", ["10.20.30.40"])
    resolver("metadata.test", ["169.254.169.254"])
    resolver("ula.test", ["fd12:3456::1"])
    resolver("mapped.test", ["::ffff:192.168.0.10"])
    resolver("shared.test", ["100.64.1.1"])
    with guarded_http_client(GUARDED) as client:
        for name, address in [
            ("intranet.test", "10.20.30.40"),
            ("metadata.test", "169.254.169.254"),
            ("ula.test", "fd12:3456::1"),
            ("mapped.test", "::ffff:192.168.0.10"),
            ("shared.test", "100.64.1.1"),
        ]:
            with pytest.raises(httpx2.ConnectError) as info:
                client.get(f"http://{name}/v1/models")
            blocked = _blocked(info)
            assert (blocked.host, blocked.address) == (name, address)
            assert f"{name} resolves to {address}" in str(blocked)
    assert loopback_only == []


def test_a_name_with_any_forbidden_answer_is_refused_entirely(serve, resolver, loopback_only):
    server = serve("127.0.0.2")
    policy = NetworkPolicy.from_entries(["127.0.0.2"])
    resolver("mixed.test", ["127.0.0.2", "10.0.0.1"])
    with guarded_http_client(policy) as client:
        with pytest.raises(httpx2.ConnectError) as info:
            client.get(f"http://mixed.test:{server.port}/")
    assert _blocked(info).address == "10.0.0.1"
    assert server.accepted == [] and loopback_only == []


def test_the_vetted_address_is_the_one_connected_to(serve, resolver, loopback_only):
    """DNS rebinding: the name is resolved once per connection and the check's answer is used."""
    server = serve("127.0.0.2")
    policy = NetworkPolicy.from_entries(["127.0.0.2"])
    resolver("rebind.test", ["127.0.0.2"], ["127.0.0.1"])  # allowed first, loopback after
    with guarded_http_client(policy) as client:
        response = client.get(f"http://rebind.test:{server.port}/v1/models")
    assert response.status_code == 200
    assert resolver.calls == ["rebind.test"]  # resolved once: the connect did not look it up again
    assert [a[0] for a in loopback_only] == ["127.0.0.2"]
    assert server.requests == [("GET", "/v1/models", f"rebind.test:{server.port}")]
    with guarded_http_client(policy) as client:  # a new connection is judged again
        with pytest.raises(httpx2.ConnectError) as info:
            client.get(f"http://rebind.test:{server.port}/v1/models")
    assert _blocked(info).address == "127.0.0.1"
    assert len(server.accepted) == 1


def test_a_redirect_to_loopback_is_refused_after_an_allowed_first_hop(serve, loopback_only):
    target = serve("127.0.0.1")
    first = serve("127.0.0.2", redirect_to=f"http://127.0.0.1:{target.port}/v1/models")
    policy = NetworkPolicy.from_entries(["127.0.0.2"])  # stands in for a public host
    # The transport judges every hop, even where the client would follow a redirect to
    # another origin (the app's client refuses those before connecting: see below).
    every_hop = httpx2.Client(transport=GuardedTransport(policy), follow_redirects=True,
                              trust_env=False)
    with every_hop as client:
        with pytest.raises(httpx2.ConnectError) as info:
            client.get(f"http://127.0.0.2:{first.port}/v1/models")
    assert _blocked(info).address == "127.0.0.1"
    assert first.requests == [("GET", "/v1/models", f"127.0.0.2:{first.port}")]  # hop 1 went
    assert target.accepted == [] and target.requests == []  # hop 2 never connected
    assert {a[0] for a in loopback_only} == {"127.0.0.2"}


def test_a_redirect_to_a_name_for_a_private_address_is_refused(serve, resolver, loopback_only):
    resolver("internal.test", ["192.168.7.7"])
    first = serve("127.0.0.2", redirect_to="http://internal.test/admin")
    policy = NetworkPolicy.from_entries(["127.0.0.0/31", "127.0.0.2"])
    client = openai.OpenAI(
        base_url=f"http://127.0.0.2:{first.port}/v1",
        api_key="k",
        max_retries=0,
        http_client=guarded_http_client(policy),
    )
    with pytest.raises(openai.APIConnectionError) as info:
        client.models.list()
    refused = [e for e in _chain(info.value) if isinstance(e, RedirectRefused)]
    assert refused and "redirected the request to http://internal.test" in str(refused[0])
    assert len(first.requests) == 1


def test_environment_proxies_are_ignored(serve, monkeypatch, loopback_only):
    """A proxy connects to the target itself, so an env proxy would bypass the guard."""
    target = serve("127.0.0.1")
    proxy = serve("127.0.0.2")  # an allowed host posing as a proxy
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.setenv(name, f"http://127.0.0.2:{proxy.port}")
    policy = NetworkPolicy.from_entries(["127.0.0.2"])
    with guarded_http_client(policy) as client:
        with pytest.raises(httpx2.ConnectError) as info:
            client.get(f"http://127.0.0.1:{target.port}/v1/models")
    assert _blocked(info).address == "127.0.0.1"
    assert proxy.accepted == [] and target.accepted == []


def test_local_mode_reaches_localhost(serve, loopback_only):
    server = serve("127.0.0.1")
    with guarded_http_client(OPEN) as client:
        assert client.get(f"http://localhost:{server.port}/v1/models").status_code == 200
        assert client.get(f"http://127.0.0.1:{server.port}/v1/models").status_code == 200
        assert client.get(f"http://2130706433:{server.port}/v1/models").status_code == 200
    sdk = openai.OpenAI(
        base_url=f"http://localhost:{server.port}/v1",
        api_key="k",
        max_retries=0,
        http_client=guarded_http_client(policy_for(LOCAL)),
    )
    assert [m.id for m in sdk.models.list()] == ["m"]
    assert len(server.requests) == 4


def test_an_operator_allowed_address_is_reached_in_supabase_mode(serve):
    server = serve("127.0.0.1")
    settings = Settings(
        supabase_url="https://p.supabase.co", supabase_anon_key="a", allowed_hosts=("127.0.0.0/8",)
    )
    sdk = openai.OpenAI(
        base_url=f"http://localhost:{server.port}/v1",
        api_key="k",
        max_retries=0,
        http_client=guarded_http_client(policy_for(settings)),
    )
    assert [m.id for m in sdk.models.list()] == ["m"]


def test_openai_sdk_wraps_the_refusal_in_api_connection_error(serve):
    server = serve("127.0.0.1")
    base_url = f"http://127.0.0.1:{server.port}/v1"
    client = openai.OpenAI(
        base_url=base_url, api_key="k", max_retries=0, http_client=guarded_http_client(GUARDED)
    )
    for call in (
        lambda: client.models.list(),
        lambda: client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}], stream=True
        ),
    ):
        with pytest.raises(openai.APIConnectionError) as info:
            call()
        chain = _chain(info.value)
        # APIConnectionError --__cause__--> httpx2.ConnectError --__cause__--> BlockedAddress
        assert [type(e) for e in chain] == [openai.APIConnectionError, httpx2.ConnectError, BlockedAddress]
        assert chain[0].__cause__ is chain[1] and chain[1].__cause__ is chain[2]
        assert str(chain[1]) == str(chain[2])
        assert describe_error(info.value, base_url=base_url) == str(chain[2])
    assert server.accepted == []


def test_tls_still_verifies_the_host_name(serve, resolver, tmp_path, loopback_only, monkeypatch):
    """The socket goes to the vetted IP, but SNI and the certificate check use the name."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "guarded.test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("guarded.test")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    (tmp_path / "cert.pem").write_bytes(cert_pem)
    (tmp_path / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    server = serve("127.0.0.2", tls=server_ctx)
    client_ctx = ssl.create_default_context(cadata=cert_pem.decode())
    # The app's context, trusting this certificate (as SSL_CERT_FILE would make it)
    monkeypatch.setattr(netguard, "_default_ssl_context", lambda: client_ctx)
    policy = NetworkPolicy.from_entries(["127.0.0.2"])

    resolver("guarded.test", ["127.0.0.2"])
    with guarded_http_client(policy) as client:
        assert client.get(f"https://guarded.test:{server.port}/v1/models").status_code == 200
    assert server.sni[-1] == "guarded.test"

    resolver("impostor.test", ["127.0.0.2"])  # same address, a name the certificate lacks
    with guarded_http_client(policy) as client:
        with pytest.raises(httpx2.ConnectError) as info:
            client.get(f"https://impostor.test:{server.port}/v1/models")
    assert any(isinstance(e, ssl.SSLCertVerificationError) for e in _chain(info.value))
    assert server.sni[-1] == "impostor.test"


# --- the transport, on public APIs ---------------------------------------------------------


def test_a_redirect_that_leaves_the_origin_is_refused_before_anything_is_sent(serve):
    """httpx2 drops Authorization on another origin but keeps every other header (a
    connection's custom headers): the app's client does not follow such a redirect at all."""
    second = serve("127.0.0.3")
    first = serve("127.0.0.2", redirect_to=f"http://127.0.0.3:{second.port}/v1/models")
    policy = NetworkPolicy.from_entries(["127.0.0.2", "127.0.0.3"])  # stand in for public hosts
    with guarded_http_client(policy) as client:
        with pytest.raises(RedirectRefused) as info:
            client.get(f"http://127.0.0.2:{first.port}/v1/models",
                       headers={"Authorization": "Bearer sk-user", "X-Team-Secret": "t0p"})
    assert first.authorizations == ["Bearer sk-user"]
    assert second.accepted == [] and second.requests == []
    assert f"http://127.0.0.3:{second.port}" in str(info.value)


def test_a_redirect_on_the_same_origin_is_followed(serve):
    server = serve("127.0.0.2", redirect_to="/v1/models/")
    policy = NetworkPolicy.from_entries(["127.0.0.2"])
    with guarded_http_client(policy) as client:
        response = client.get(f"http://127.0.0.2:{server.port}/v1/models")
    assert response.status_code == 200
    assert [path for _, path, _ in server.requests] == ["/v1/models", "/v1/models/"]


def test_an_operator_hint_is_logged_once_per_refusal_and_never_shown(serve, caplog):
    server = serve("127.0.0.1")
    caplog.set_level(logging.WARNING, logger="core.chat.netguard")
    with guarded_http_client(GUARDED) as client:
        with pytest.raises(httpx2.ConnectError) as info:
            client.get(
                f"http://user:sk-in-url@127.0.0.1:{server.port}/v1/models",
                headers={"Authorization": "Bearer sk-in-header"},
            )
    hints = [r for r in caplog.records if r.name == "core.chat.netguard"]
    assert len(hints) == 1
    hint = hints[0].getMessage()
    assert hints[0].levelno == logging.WARNING
    assert "SWITCHBOARD_ALLOWED_HOSTS" in hint and "127.0.0.1" in hint and "loopback" in hint
    assert "sk-in-url" not in hint and "sk-in-header" not in hint
    shown = str(_blocked(info))
    assert "SWITCHBOARD_ALLOWED_HOSTS" not in shown and "sk-in" not in shown
    assert server.accepted == []


class _RawServer:
    """A TCP server on 127.0.0.1 that answers one connection with `reply`, then closes it, or
    with `hang` keeps it open and silent until the event is set."""

    def __init__(self, reply: bytes, hang: threading.Event | None):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.reply, self.hang = reply, hang
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        with self.sock:
            conn, _ = self.sock.accept()
            with conn:
                conn.recv(65536)
                conn.sendall(self.reply)
                if self.hang is not None:  # keep the connection open, silent
                    self.hang.wait(10)


@pytest.mark.parametrize(
    "reply,hangs,httpx_error,httpcore_error",
    [
        # a body cut short: the server closes after 5 of 100 bytes
        (b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhello", False,
         httpx2.RemoteProtocolError, httpcore2.RemoteProtocolError),
        # a body that stops arriving: the read limit ends it
        (b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhello", True,
         httpx2.ReadTimeout, httpcore2.ReadTimeout),
        # no valid response head at all
        (b"NOT HTTP AT ALL\r\n\r\n", False, httpx2.RemoteProtocolError, httpcore2.RemoteProtocolError),
    ],
)
def test_transport_failures_surface_as_the_matching_httpx2_errors(reply, hangs, httpx_error, httpcore_error):
    """httpcore2's errors become httpx2's (what the openai SDK and core/errors.py catch)."""
    hang = threading.Event()
    server = _RawServer(reply, hang if hangs else None)
    try:
        with guarded_http_client(OPEN) as client:
            with pytest.raises(httpx_error) as info:
                client.get(f"http://127.0.0.1:{server.port}/v1/models",
                           timeout=httpx2.Timeout(5, read=0.3))
    finally:
        hang.set()
    assert type(info.value) is httpx_error
    assert isinstance(info.value.__cause__, httpcore_error)
