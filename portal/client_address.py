"""The address a request came from, for django-axes' lockouts: never an address the client could have written.

With no trusted proxy it is REMOTE_ADDR and X-Forwarded-For is ignored. Behind `TRUSTED_PROXY_COUNT` proxies
that each append the address they received from, it is that many entries from the right of X-Forwarded-For:
entries further left came from the client and are ignored.
"""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def client_address(request: HttpRequest) -> str | None:
    """The client's address as the outermost trusted proxy saw it (REMOTE_ADDR without one)."""
    remote_addr = request.META.get("REMOTE_ADDR")
    count = settings.TRUSTED_PROXY_COUNT
    if count == 0:
        return remote_addr
    hops = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
    if len(hops) < count:
        return remote_addr  # it did not come through every proxy
    candidate = hops[-count]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return remote_addr
