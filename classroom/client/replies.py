"""Commands in flight, matched to their replies by ``id``.

The client reads its connection in a background task, while any number of callers
await their own command's reply; this is the table between the two. It outlives
each connection, so ids never repeat within a client, and when a connection drops
every caller still waiting is told at once instead of waiting out its timeout.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from websockets.exceptions import ConnectionClosed

from classroom.client.connection import Connection
from classroom.client.errors import ClientError
from classroom.client.wire import Frame


class PendingReplies:
    """One future per command sent and not yet answered, by command id."""

    def __init__(self, timeout: float) -> None:
        self._timeout = timeout
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[Frame]] = {}

    async def request(self, conn: Connection, kind: str, fields: dict[str, Any]) -> Frame:
        """Send a command on ``conn`` and wait for its reply; an ``error`` reply, no
        reply in time or a dropped connection raise :class:`ClientError`."""
        command_id = next(self._ids)
        waiter: asyncio.Future[Frame] = asyncio.get_running_loop().create_future()
        self._waiting[command_id] = waiter
        try:
            await conn.send_frame({"type": kind, "id": command_id, **fields})
            reply = await asyncio.wait_for(waiter, self._timeout)
        except TimeoutError:
            raise ClientError("timeout", f"no reply to {kind}") from None
        except ConnectionClosed:
            raise ClientError("connection_lost", "the connection dropped") from None
        finally:
            self._waiting.pop(command_id, None)
        if reply.get("type") == "error":
            raise ClientError(str(reply.get("code")), str(reply.get("message")))
        return reply

    def resolve(self, frame: Frame) -> bool:
        """Hand ``frame`` to the command waiting for it; False when it answers none
        (a push, which the caller then delivers)."""
        command_id = frame.get("id")
        waiter = self._waiting.get(command_id) if isinstance(command_id, int) else None
        if waiter is None:
            return False
        if not waiter.done():
            waiter.set_result(frame)
        return True

    def fail_all(self, error: ClientError) -> None:
        """Every command still waiting raises ``error``: its reply will never come."""
        for waiter in self._waiting.values():
            if not waiter.done():
                waiter.set_exception(error)
        self._waiting.clear()
