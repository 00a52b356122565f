"""What counts as one client for a per-address limit (connections, refused API keys).

An IPv4 address, or an IPv6 /64: one subscriber's prefix, so walking through the
addresses of one's own network gains nothing. An IPv4 address mapped into IPv6
counts as itself.
"""

from __future__ import annotations

import ipaddress

IPV6_PREFIX = 64


def address_key(host: str | None) -> str:
    """The key one client's address counts under; ``unknown`` when there is none."""
    if not host:
        return "unknown"
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, IPV6_PREFIX), strict=False))
    return str(ip)
