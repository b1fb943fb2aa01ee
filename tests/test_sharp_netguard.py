"""The network guard's address rules pinned exactly: the reason given for each address class,
how operator entries are read, how host names are compared, and what the log says."""

from __future__ import annotations

import ipaddress
import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.chat.netguard import (
    BlockedAddress,
    NetworkPolicy,
    check_address,
    forbidden_reason,
)

THIS_MACHINE = "the unspecified address, which reaches this machine"
SPECIAL = "a special-purpose address that is not on the public internet"


@pytest.mark.parametrize(
    "address, reason",
    [
        ("0.0.0.0", THIS_MACHINE),
        ("0.1.2.3", "a reserved 'this network' address (0.0.0.0/8)"),
        ("127.0.0.1", "a loopback address"),
        ("169.254.169.254", "the cloud metadata address (link-local)"),
        ("169.254.1.1", "a link-local address (the range of cloud metadata services)"),
        ("100.64.0.1", "a shared address (100.64.0.0/10, carrier-grade NAT)"),
        ("10.0.0.1", "a private address"),
        ("224.0.0.1", "a multicast address"),
        ("240.0.0.1", "a reserved address"),
        ("255.255.255.255", "a reserved address"),
        ("192.0.2.1", SPECIAL),
        ("::", THIS_MACHINE),
        ("::1", "a loopback address"),
        ("fe80::1", "a link-local address (the range of cloud metadata services)"),
        ("64:ff9b:1::1", "a local-use NAT64 address (a private network)"),
        ("fd00::1", "a private address"),
        ("fec0::1", "a private address"),
        ("ff02::1", "a multicast address"),
        ("4000::1", "a reserved address"),
        ("2001:db8::1", SPECIAL),
        ("::ffff:10.0.0.1", "an IPv4-mapped form of 10.0.0.1, a private address"),
        ("::2", "an IPv4-compatible form of 0.0.0.2, a reserved 'this network' address "
                "(0.0.0.0/8)"),
        # Forms of a public IPv4 address are judged as that address:
        ("::ffff:8.8.8.8", None),
        ("2002:808:808::1", None),  # 6to4
        ("2001:0:4136:e378:8000:63bf:f7f7:f7f7", None),  # Teredo, client 8.8.8.8
        ("8.8.8.8", None),
        ("2606:4700:4700::1111", None),
    ],
)
def test_each_address_class_has_its_whole_reason(address, reason):
    assert forbidden_reason(address) == reason
    assert forbidden_reason(ipaddress.ip_address(address)) == reason


@given(st.integers(min_value=0, max_value=2**24 - 1))
def test_every_address_of_a_private_range_gets_the_same_reason(offset):
    """Property: any address in 10.0.0.0/8, as itself or in its IPv4-mapped form, is refused
    as "a private address"; the mapped form names the address it leads to."""
    ip = ipaddress.IPv4Address(int(ipaddress.IPv4Address("10.0.0.0")) + offset)
    assert forbidden_reason(str(ip)) == "a private address"
    assert forbidden_reason(f"::ffff:{ip}") == f"an IPv4-mapped form of {ip}, a private address"


def test_the_refusal_keeps_the_host_address_and_reason():
    refused = BlockedAddress("[::1]", "::1", "a loopback address")
    assert (refused.host, refused.address, refused.reason) == ("[::1]", "::1",
                                                                "a loopback address")
    # A bracketed literal is the address itself, not a name resolving to it.
    assert str(refused) == ("Refused to connect: ::1 is a loopback address. That address is on "
                            "a private network, and this server does not connect there.")
    named = BlockedAddress("db.internal", "10.0.0.5", "a private address")
    assert str(named) == ("Refused to connect: db.internal resolves to 10.0.0.5, a private "
                          "address. That address is on a private network, and this server does "
                          "not connect there.")


def test_a_refusal_tells_the_operator_which_setting_allows_it(caplog):
    with caplog.at_level(logging.WARNING, logger="core.chat.netguard"):
        with pytest.raises(BlockedAddress):
            check_address("db.internal", "10.0.0.5", NetworkPolicy())
    assert [r.getMessage() for r in caplog.records] == [
        "Refused a connection to db.internal (10.0.0.5, a private address). To allow it, list "
        "the host, address or range in SWITCHBOARD_ALLOWED_HOSTS (or 'private' for every "
        "private address)."]


def test_operator_entries_are_read_whole():
    policy = NetworkPolicy.from_entries(
        ["", "  ", "db.internal", "10.1.2.3/8", "[fd00::1]", "X10.0.0.1", "Example.COM."])
    assert policy.allow_private is False
    assert policy.allowed == (
        "db.internal", ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("fd00::1/128"),
        "x10.0.0.1", "example.com")
    assert NetworkPolicy.from_entries(["PRIVATE", "db.internal"]) == NetworkPolicy(
        allow_private=True, allowed=("db.internal",))


def test_an_open_policy_allows_every_address():
    assert NetworkPolicy(allow_private=True).allows_address(ipaddress.ip_address("10.0.0.1"))
    assert not NetworkPolicy().allows_address(ipaddress.ip_address("10.0.0.1"))


@pytest.mark.parametrize(
    "entry, host",
    [
        ("xbox.example", "Xbox.Example"),
        ("hostx", "HOSTX"),
        ("hostx", "hostx."),
        ("hostx", "[hostx]"),
        ("xn--r8jz45g.jp", "例え.jp"),
        ("例え.jp", "xn--r8jz45g.jp"),
    ],
)
def test_a_host_entry_matches_the_name_however_it_is_written(entry, host):
    assert NetworkPolicy.from_entries([entry]).allows_host(host)


def test_a_host_entry_matches_no_other_name():
    policy = NetworkPolicy.from_entries(["box.example"])
    assert not policy.allows_host("xbox.example")
    assert not policy.allows_host("Xbox.example")
