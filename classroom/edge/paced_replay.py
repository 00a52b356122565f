"""A burst larger than the send bound, sent at the pace the client reads it (a join's replay).

Fan-out never waits for a client; a replay may, because it belongs to that
client alone and must arrive whole and in order before ``joined``. Each frame is
queued once it fits the bound; while it does not, the sender waits for the
socket to take what is queued, and gives the client up as too slow after
``stall_timeout`` seconds without room. The event loop is yielded every
``FRAMES_PER_TURN`` frames, so a long replay does not hold up other connections.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable

from classroom.edge.send_queue import SendQueue, wire_size
from classroom.protocol.codec import Payload

FRAMES_PER_TURN = 100
"""Frames queued between two yields to the event loop."""

POLL_INTERVAL = 0.005
"""Seconds between two looks at the send queue while waiting for room."""


async def send_paced(
    payloads: Iterable[Payload],
    queue: SendQueue,
    put: Callable[[Payload], None],
    *,
    closing: Callable[[], bool],
    too_slow: Callable[[], None],
    stall_timeout: float,
) -> bool:
    """Queue every payload with ``put`` as room allows; False when the connection closes."""
    turn = 0
    for payload in payloads:
        if closing():
            return False
        size = wire_size(payload)
        if queue and queue.queued_bytes + size > queue.max_bytes:
            if not await _room_for(size, queue, closing, too_slow, stall_timeout):
                return False
            turn = 0
        elif turn >= FRAMES_PER_TURN:
            await asyncio.sleep(0)
            turn = 0
            if closing():
                return False
        put(payload)
        turn += 1
    return not closing()


async def _room_for(
    size: int,
    queue: SendQueue,
    closing: Callable[[], bool],
    too_slow: Callable[[], None],
    stall_timeout: float,
) -> bool:
    """Wait until ``size`` more bytes fit the bound; False if closing or too slow."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + stall_timeout
    while queue and queue.queued_bytes + size > queue.max_bytes:
        if closing():
            return False
        if loop.time() >= deadline:
            too_slow()
            return False
        await asyncio.sleep(POLL_INTERVAL)
    return not closing()
