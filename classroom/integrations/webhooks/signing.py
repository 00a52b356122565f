"""Standard Webhooks signatures (https://www.standardwebhooks.com/).

The tenant's secret is ``whsec_`` and the base64 of 24 to 64 random bytes. Each
attempt carries ``webhook-id`` (the same on every retry of one event, so the receiver
can drop doubles), ``webhook-timestamp`` (seconds, of this attempt, so the receiver can
refuse replays) and ``webhook-signature``: ``v1,`` and the base64 HMAC-SHA256, keyed
with the secret's bytes, of ``{id}.{timestamp}.{body}``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from auth.urls import WEBHOOK_SECRET_PREFIX, check_webhook_secret


def secret_key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_`` secret; ValueError (never quoting it) if it is not one."""
    check_webhook_secret(secret)  # the tenant's configuration was checked the same way
    return base64.b64decode(secret[len(WEBHOOK_SECRET_PREFIX):], validate=True)


def sign(key: bytes, webhook_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value for one attempt."""
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def signed_headers(key: bytes, webhook_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """Every header an attempt carries."""
    return {
        "content-type": "application/json",
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(key, webhook_id, timestamp, body),
    }
