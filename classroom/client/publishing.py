"""Publishing so that an event is stored once, however often it has to be sent.

A publish cut off by a dropped link, a timeout or a busy server may or may not have
been stored. A stored kind therefore carries a ``client_msg_id``, the same on every
attempt, so the server stores it once, and only then is sending it again safe;
ephemeral kinds (pointers, reactions) are not stored, carry none and go once.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
from collections.abc import Awaitable
from typing import Any, Protocol

from classroom.client.errors import ClientError
from classroom.client.wire import Frame

EPHEMERAL_KINDS = frozenset({"pointer", "reaction"})
"""Kinds the server does not store: sent once, without a ``client_msg_id``."""


class Requester(Protocol):
    """Sends a command (waiting through a reconnect) and returns its reply."""

    def __call__(self, kind: str, **fields: Any) -> Awaitable[Frame]: ...


async def publish_with_retries(request: Requester, session: str, event: dict[str, Any], *,
                               client_msg_id: str | None, attempts: int) -> Frame:
    """Publish; stored kinds are retried (same ``client_msg_id``) when retrying is safe,
    up to ``attempts`` sends, pausing longer after ``rate_limited``."""
    fields: dict[str, Any] = {"session": session, "event": event}
    if event.get("kind") in EPHEMERAL_KINDS:
        return await request("publish", **fields)
    fields["client_msg_id"] = client_msg_id or secrets.token_hex(12)
    for attempt in itertools.count(1):
        try:
            return await request("publish", **fields)
        except ClientError as exc:
            if attempt >= attempts or not exc.retryable:
                raise
            await asyncio.sleep(1.0 if exc.code == "rate_limited" else 0.25 * attempt)
    raise AssertionError("unreachable")
