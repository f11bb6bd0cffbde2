"""Which URLs a webhook may be sent to: public hosts, unless an operator allows more.

A webhook URL is chosen by a user, and gwm's workers sit inside the network
next to Ganeti's RAPI, databases and cloud metadata services. Without a check
a user could make gwm POST to any of them (server-side request forgery) and
read the answer back from the delivery log. So a target is refused when any
address its host resolves to is not public: loopback, private, link-local,
shared (CGNAT 100.64/10), reserved, multicast, unspecified, cloud metadata.
IPv4 addresses wrapped in IPv6 (``::ffff:a.b.c.d``, NAT64 ``64:ff9b::/96``,
6to4 ``2002::/16``) are judged by the IPv4 address they carry.

``settings.GWM_WEBHOOK_ALLOWED_NETWORKS`` (CIDRs) lets an operator allow
networks that would be refused (an internal receiver, loopback in tests); an
address inside one of them is allowed whatever its kind, metadata included.

Checking the URL before sending is not enough on its own (the name may
resolve differently a moment later): the transport checks the addresses again
when it connects, and connects only to those it checked (see transport.py).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

SCHEMES = {"http": 80, "https": 443}
#: Cloud instance metadata (AWS, GCP, Azure, OpenStack; AWS's IPv6 one): credentials live there.
METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
SHARED = ipaddress.ip_network("100.64.0.0/10")  # RFC 6598, carrier-grade NAT
NAT64 = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052: the last 32 bits are an IPv4 address


class TargetRefused(Exception):
    """A webhook URL gwm will not send to; ``reason`` says why, for the user."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class UnresolvedHost(TargetRefused):
    """The host has no address right now: maybe a DNS outage, worth retrying later."""


def allowed_networks_from_settings() -> list[IPNetwork]:
    """``settings.GWM_WEBHOOK_ALLOWED_NETWORKS`` (CIDR strings) as networks."""
    networks = []
    for cidr in getattr(settings, "GWM_WEBHOOK_ALLOWED_NETWORKS", []):
        try:
            networks.append(ipaddress.ip_network(cidr.strip(), strict=False))
        except ValueError:
            raise ImproperlyConfigured(
                f"GWM_WEBHOOK_ALLOWED_NETWORKS: {cidr!r} is not a network (CIDR)"
            ) from None
    return networks


def check_target(url: str, allowed_networks: Sequence[IPNetwork]) -> list[IPAddress]:
    """The addresses ``url``'s host resolves to, all acceptable; else :class:`TargetRefused`.

    Nothing is sent: a literal address is judged as written, a name is resolved.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise TargetRefused(f"not a valid URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise TargetRefused(f"only http and https URLs are allowed, not {scheme or 'none'}")
    if parts.username is not None or parts.password is not None:
        # A password in a URL ends up in logs and in the delivery log; and
        # "http://trusted@evil/" is a classic way to disguise where a URL goes.
        raise TargetRefused("URLs with credentials (user:password@) are not allowed")
    if not parts.hostname:
        raise TargetRefused("the URL has no host")
    return check_host(parts.hostname, port or SCHEMES[scheme], allowed_networks)


def check_host(host: str, port: int, allowed_networks: Sequence[IPNetwork]) -> list[IPAddress]:
    """Every address of ``host``, if each is acceptable; else :class:`TargetRefused`.

    Every address, not only the first: a name with one public and one internal
    address would otherwise reach the internal one whenever the client picks it.
    """
    addresses = resolve(host, port)
    for address in addresses:
        reason = refusal(address, allowed_networks)
        if reason is not None:
            named = f"{host} resolves to {address}, which" if _literal(host) is None else host
            raise TargetRefused(f"{named} {reason}")
    return addresses


def resolve(host: str, port: int) -> list[IPAddress]:
    """The addresses of ``host``: a literal as it is (no lookup), a name through the resolver."""
    literal = _literal(host)
    if literal is not None:
        return [literal]
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnresolvedHost(f"cannot resolve {host}: {exc}") from None
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in found:
        # The scope of a link-local IPv6 address ("%eth0") does not change its kind.
        address = ipaddress.ip_address(str(sockaddr[0]).partition("%")[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise UnresolvedHost(f"cannot resolve {host}: no address")
    return addresses


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def refusal(address: IPAddress, allowed_networks: Sequence[IPNetwork]) -> str | None:
    """Why gwm will not connect to ``address`` (a phrase), or None when it may."""
    carried = _carried_ipv4(address)
    judged = carried or address
    if any(candidate in network for candidate in {address, judged} for network in allowed_networks):
        return None
    kind = _kind(judged)
    if kind is None:
        return None
    return f"is {kind}" if carried is None else f"carries {carried}, {kind}"


def _carried_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one stands for (mapped, NAT64, 6to4), if any."""
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address.sixtofour


def _kind(address: IPAddress) -> str | None:
    """What makes ``address`` internal, as a phrase; None for a public address."""
    if address in METADATA:
        return "a cloud metadata address"
    checks = [
        (address.is_loopback, "a loopback address"),
        (address.is_unspecified, "the unspecified address"),
        (address.is_link_local, "a link-local address"),
        (address.is_multicast, "a multicast address"),
        (address in SHARED, "a shared (CGNAT) address"),
        (address.is_private, "a private address"),
        (address.is_reserved, "a reserved address"),
        (not address.is_global, "not a public address"),
    ]
    return next((phrase for matched, phrase in checks if matched), None)
