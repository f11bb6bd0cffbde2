"""Webhook targets: public hosts only, unless the operator allows a network.

Nothing here sends a packet: literal addresses are judged as written, and the
only name resolved is ``localhost`` (from the hosts file).
"""

from __future__ import annotations

import ipaddress
import re
import socket
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured

from gwm.events.webhooks.targets import (
    TargetRefused,
    UnresolvedHost,
    allowed_networks_from_settings,
    check_target,
    refusal,
)

LOOPBACK = [ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128")]


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1/hook", "127.0.0.1 is a loopback address"),
        ("http://127.9.9.9:8080/hook", "loopback"),
        ("http://[::1]/hook", "::1 is a loopback address"),
        ("http://10.1.2.3/hook", "10.1.2.3 is a private address"),
        ("https://192.168.0.10/hook", "private"),
        ("http://172.16.5.4/hook", "private"),
        ("http://169.254.169.254/latest/meta-data/", "a cloud metadata address"),
        ("http://[fd00:ec2::254]/", "a cloud metadata address"),
        ("http://169.254.1.1/", "link-local"),
        ("http://[fe80::1]/", "link-local"),
        ("http://100.64.0.1/hook", "100.64.0.1 is a shared (CGNAT) address"),
        ("http://0.0.0.0:8000/", "0.0.0.0 is the unspecified address"),
        ("http://[::]/", "unspecified"),
        ("http://224.0.0.1/", "multicast"),
        ("http://[ff02::1]/", "multicast"),
        ("http://240.0.0.1/", "private"),
        ("http://192.0.2.1/", "private"),  # documentation range
        ("http://[fc00::1]/", "private"),
        ("http://[::ffff:127.0.0.1]/", "::ffff:127.0.0.1 carries 127.0.0.1, a loopback address"),
        ("http://[::ffff:10.0.0.1]/", "carries 10.0.0.1, a private address"),
        ("http://[64:ff9b::a9fe:a9fe]/", "carries 169.254.169.254, a cloud metadata address"),
        ("http://[2002:7f00:1::]/", "carries 127.0.0.1, a loopback address"),
        # Legacy IPv4 spellings, which the resolver reads as 127.0.0.1 without any lookup.
        ("http://2130706433/", "resolves to 127.0.0.1, which is a loopback address"),
        ("http://127.1/", "resolves to 127.0.0.1"),
        ("http://localhost:8000/hook", "localhost resolves to 127.0.0.1, which is a loopback"),
        ("http://LOCALHOST/hook", "loopback"),
    ],
)
def test_internal_addresses_are_refused(url: str, reason: str) -> None:
    with pytest.raises(TargetRefused) as refused:
        check_target(url, [])
    assert reason in refused.value.reason


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://93.184.216.34/hook", "only http and https URLs are allowed, not ftp"),
        ("file:///etc/passwd", "not file"),
        ("gopher://93.184.216.34:70/", "not gopher"),
        ("93.184.216.34/hook", "not none"),
        ("http://user:pw@93.184.216.34/hook", "credentials"),
        ("http://93.184.216.34@127.0.0.1/hook", "credentials"),
        ("https://token@93.184.216.34/", "credentials"),
        ("http:///hook", "no host"),
        ("http://93.184.216.34:99999/", "not a valid URL"),
        ("http://[::1/", "not a valid URL"),
    ],
)
def test_malformed_urls_are_refused(url: str, reason: str) -> None:
    with pytest.raises(TargetRefused) as refused:
        check_target(url, LOOPBACK)
    assert reason in refused.value.reason


def test_a_public_literal_passes_without_any_lookup_or_connection(monkeypatch: Any) -> None:
    def no_network(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("check_target used the network")

    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    assert check_target("https://93.184.216.34/hook", []) == [ipaddress.ip_address("93.184.216.34")]
    assert check_target("http://[2606:4700::1]:8443/x", []) == [
        ipaddress.ip_address("2606:4700::1")
    ]
    # NAT64 and 6to4 forms of a public IPv4 address are public too.
    assert check_target("http://[64:ff9b::5db8:d822]/", [])
    assert check_target("http://[2002:5db8:d822::1]/", [])
    # A refused one is refused the same way, with no network either.
    with pytest.raises(TargetRefused):
        check_target("http://10.0.0.1/", [])


def test_an_allowed_network_lets_its_addresses_through() -> None:
    with pytest.raises(TargetRefused):
        check_target("http://10.1.2.3/hook", [])
    assert check_target("http://10.1.2.3/hook", [ipaddress.ip_network("10.1.0.0/16")])
    with pytest.raises(TargetRefused):  # only that network
        check_target("http://10.2.0.1/hook", [ipaddress.ip_network("10.1.0.0/16")])
    assert check_target("http://127.0.0.1:9/", LOOPBACK)
    assert check_target("http://[::1]:9/", LOOPBACK)
    # The IPv4-mapped form of an allowed address is allowed too.
    assert check_target("http://[::ffff:127.0.0.1]/", [ipaddress.ip_network("127.0.0.1/32")])
    # Metadata is allowed only when an operator lists a network holding it.
    metadata = ipaddress.ip_address("169.254.169.254")
    assert refusal(metadata, [ipaddress.ip_network("169.254.169.254/32")]) is None
    assert refusal(metadata, [ipaddress.ip_network("127.0.0.0/8")]) == "is a cloud metadata address"


def test_a_name_is_checked_by_every_address_it_resolves_to() -> None:
    with pytest.raises(TargetRefused, match="localhost resolves to"):
        check_target("http://localhost/hook", [])
    addresses = check_target("http://localhost/hook", LOOPBACK)
    assert addresses
    assert all(address.is_loopback for address in addresses)
    # One address outside the allow-list is enough to refuse the name.
    allowed = [ipaddress.ip_network("127.0.0.0/8")]
    if any(address.version == 6 for address in addresses):
        with pytest.raises(TargetRefused, match="::1"):
            check_target("http://localhost/hook", allowed)
    else:
        assert check_target("http://localhost/hook", allowed) == addresses


def test_a_name_that_does_not_resolve_is_unresolved(monkeypatch: Any) -> None:
    def nxdomain(*args: Any, **kwargs: Any) -> Any:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    # No real lookup: the resolver's answer for a name that does not exist.
    monkeypatch.setattr(socket, "getaddrinfo", nxdomain)
    with pytest.raises(UnresolvedHost, match=r"cannot resolve hooks\.example\.invalid"):
        check_target("https://hooks.example.invalid/x", [])
    assert issubclass(UnresolvedHost, TargetRefused)


def test_the_allow_list_comes_from_settings(settings: Any) -> None:
    del settings.GWM_WEBHOOK_ALLOWED_NETWORKS
    assert allowed_networks_from_settings() == []
    settings.GWM_WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.1/32", " 10.0.0.0/8", "::1", "192.168.1.7/24"]
    assert allowed_networks_from_settings() == [
        ipaddress.ip_network("127.0.0.1/32"),
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("::1/128"),
        ipaddress.ip_network("192.168.1.0/24"),
    ]
    settings.GWM_WEBHOOK_ALLOWED_NETWORKS = ["10.0.0.0/33"]
    with pytest.raises(ImproperlyConfigured, match=re.escape("10.0.0.0/33")):
        allowed_networks_from_settings()
