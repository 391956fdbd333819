"""Which webhook URLs the portal will call, and the one address it calls each at.

A webhook goes only to `https` on a public host, unless an admin allowed that host
(`WebhookHostAllowance`). "Public" is decided on the addresses the host resolves to, every one of
them, with `ipaddress`: loopback, private, link-local, shared, multicast, reserved and unspecified
addresses are refused, IPv4 written in the forms a resolver still accepts (`2130706433`, `0x7f.1`,
`127.1`) and IPv4 inside IPv6 (`::ffff:127.0.0.1`, NAT64, 6to4) are read as the IPv4 they carry. The
check runs when the member saves the URL and again at every send, whose connection goes to the very
address checked (no second lookup a rebinding DNS could answer differently). Must never know who
owns the URL or what is sent.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from portal.errors import InvalidInput

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]

NAT64 = ipaddress.ip_network("64:ff9b::/96")


class WebhookUrlRefused(InvalidInput):
    code = "WEBHOOK_URL_INVALID"
    user_message = "The webhook URL is not one the portal can call: use https://host/path."

    def __init__(self, user_message: str | None = None, *, code: str | None = None) -> None:
        super().__init__(user_message, code=code, details={"field": "webhook_url"})


@dataclass(frozen=True)
class WebhookTarget:
    """A checked URL: where to connect (an address that was checked) and what to ask for."""

    scheme: str
    host: str
    port: int
    address: str
    path: str  # path and query, never empty


def resolve_host(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (TCP)."""
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise WebhookUrlRefused(
            "The webhook's host name does not resolve; check it.", code="WEBHOOK_HOST_UNRESOLVED"
        ) from exc
    return [str(entry[4][0]) for entry in found]


def literal_address(host: str) -> IPAddress | None:
    """The address a host written as an IP literal means, in any form a resolver accepts; None for a name."""
    with contextlib.suppress(ValueError):
        return ipaddress.ip_address(host)
    try:  # inet_aton is the old resolver's reading: 2130706433, 0x7f.1 and 127.1 are all 127.0.0.1
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def carried_ipv4(address: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 one carries (mapped, 6to4, NAT64), else the address itself."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.sixtofour is not None:
            return address.sixtofour
        if address in NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def is_public(address: IPAddress) -> bool:
    """An address of the public internet: never this machine, its networks, multicast or reserved space."""
    inner = carried_ipv4(address)
    return all(ip.is_global and not ip.is_multicast and not ip.is_reserved for ip in {address, inner})


def check_webhook_url(
    url: str, *, allowed_hosts: Iterable[tuple[str, bool]], resolve: Resolver = resolve_host
) -> WebhookTarget:
    """The URL checked, with the address to call. `allowed_hosts`: (host, http allowed too) an admin allowed.

    Raises WebhookUrlRefused: WEBHOOK_URL_INVALID, WEBHOOK_URL_NOT_HTTPS, WEBHOOK_HOST_UNRESOLVED,
    WEBHOOK_HOST_PRIVATE.
    """
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise WebhookUrlRefused() from exc
    host = (parts.hostname or "").lower()
    if not host or parts.username is not None or parts.password is not None or any(c.isspace() for c in url.strip()):
        raise WebhookUrlRefused()
    allowance = dict(allowed_hosts)
    is_allowed = host in allowance
    if parts.scheme != "https" and not (parts.scheme == "http" and allowance.get(host)):
        raise WebhookUrlRefused(
            "Webhooks are sent over https only (ask an admin to allow a host that needs http).",
            code="WEBHOOK_URL_NOT_HTTPS",
        )
    port = port or (443 if parts.scheme == "https" else 80)
    literal = literal_address(host)
    addresses = [str(literal)] if literal is not None else resolve(host, port)
    if not is_allowed:
        for text in addresses:
            if not is_public(ipaddress.ip_address(text.split("%", 1)[0])):
                raise WebhookUrlRefused(
                    "The webhook's host is on a private or local network; the portal only calls public hosts "
                    "(an admin may allow a lab's own host).",
                    code="WEBHOOK_HOST_PRIVATE",
                )
    if not addresses:
        raise WebhookUrlRefused("The webhook's host name does not resolve; check it.", code="WEBHOOK_HOST_UNRESOLVED")
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return WebhookTarget(scheme=parts.scheme, host=host, port=port, address=addresses[0], path=path)
