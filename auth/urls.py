"""URLs a tenant's configuration and roster may name: webhooks, and pages shown in frames.

Both are checked the same way wherever they come from (the tenants file, a roster
from the server API), so that what the server sends to or lets a browser load
stays on https, or on the loopback host of a test set-up. Messages never quote
the URL: it may hold a token in its query, and messages end up in logs.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from urllib.parse import urlsplit

# Standard Webhooks: "whsec_" and the base64 of 24 to 64 random bytes.
WEBHOOK_SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret
WEBHOOK_SECRET_BYTES = (24, 64)
LOOPBACK_PAGE_HOSTS = frozenset({"127.0.0.1", "localhost"})
"""The only hosts a page shown in a frame may be loaded from over plain http."""
DEFAULT_PORTS = {"https": 443, "http": 80}
_HOST = re.compile(r"^[a-z0-9](?:[a-z0-9.-]{0,251}[a-z0-9])?$")


def check_webhook_url(url: str) -> str:
    """``url`` if webhooks may go there: https, or http to loopback only (a test receiver).

    Plain http elsewhere would carry personal data and the signature in clear text; a
    user or password in the URL would end up wherever URLs are logged. Messages never
    quote the URL.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError("webhook_url must be an https:// URL")
    if parts.username is not None or parts.password is not None:
        raise ValueError("webhook_url must not hold a user or password")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ValueError("webhook_url must be https (http only to a loopback address)")
    return url


def check_webhook_secret(secret: str) -> str:
    """``secret`` if it is a Standard Webhooks secret; messages never quote it."""
    if not secret.startswith(WEBHOOK_SECRET_PREFIX):
        raise ValueError(f"webhook_secret must start with {WEBHOOK_SECRET_PREFIX!r}")
    try:
        key = base64.b64decode(secret[len(WEBHOOK_SECRET_PREFIX):], validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("webhook_secret must be whsec_ followed by base64") from None
    low, high = WEBHOOK_SECRET_BYTES
    if not low <= len(key) <= high:
        raise ValueError(f"webhook_secret must hold {low} to {high} bytes")
    return secret


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def page_origin(url: str, what: str = "url") -> str:
    """The origin (``scheme://host[:port]``) of a page a browser may show in a frame.

    https anywhere, http only on 127.0.0.1 or localhost (a content server on the
    developer's machine): a page over plain http elsewhere could be changed on the
    way. No user or password: they would end up wherever URLs are shown. The origin
    is normalised (lower case, no default port), as a Content-Security-Policy
    compares it. Raises ValueError naming ``what``.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ValueError(f"{what} is not a valid URL") from None
    host = parts.hostname
    if parts.scheme not in ("https", "http") or not host:
        raise ValueError(f"{what} must be an https:// URL")
    if parts.username is not None or parts.password is not None:
        raise ValueError(f"{what} must not hold a user or password")
    if parts.scheme == "http" and host not in LOOPBACK_PAGE_HOSTS:
        raise ValueError(f"{what} must be https (http only on 127.0.0.1 or localhost)")
    if not _HOST.match(host):  # also keeps a Content-Security-Policy made of it whole
        raise ValueError(f"{what} must name a host by letters, digits, '.' and '-' "
                         "(IDNA for other names)")
    shown = host
    if port is not None and port != DEFAULT_PORTS[parts.scheme]:
        shown = f"{shown}:{port}"
    return f"{parts.scheme}://{shown}"


def check_frame_origin(origin: str) -> str:
    """A tenant's ``frame_origins`` entry, normalised: an origin and nothing more."""
    parts = urlsplit(origin)
    if parts.path not in ("", "/") or parts.query or parts.fragment or origin.endswith("?"):
        raise ValueError("frame_origins entries must be origins (scheme://host[:port]), "
                         "without a path")
    return page_origin(origin, "each of frame_origins")
