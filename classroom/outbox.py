"""A connection's bounded send queue: the one place a slow reader is detected.

Fan-out only ever appends here; it never waits on a socket. When a client
stops reading, its queue grows past ``max_bytes`` and the connection is closed
with 4008, so one slow client never holds back the broker reader or its
neighbours.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

from classroom.codec import Payload


class Outbox:
    """FIFO of encoded frames with a byte bound and a wake-up for the writer."""

    def __init__(self, max_bytes: int, on_overflow: Callable[[], None]) -> None:
        self._frames: deque[Payload] = deque()
        self._bytes = 0
        self._grace = 0  # bytes of unbounded bursts still queued; not held against the bound
        self._max_bytes = max_bytes
        self._on_overflow = on_overflow
        self._ready = asyncio.Event()
        self._finishing = False
        self.closed = False

    def put(self, payload: Payload, *, bounded: bool = True) -> None:
        """Append a frame; overflowing the bound drops everything and reports it.

        ``bounded=False`` is for a burst whose size is bounded elsewhere (a join's
        replay of history): it is queued whole, and later frames wait behind it.
        """
        if self.closed or self._finishing:
            return
        size = len(payload)
        if bounded and self._bytes - self._grace + size > self._max_bytes and self._frames:
            self.clear()
            self.closed = True
            self._on_overflow()
            return
        self._frames.append(payload)
        self._bytes += size
        if not bounded:
            self._grace += size
        self._ready.set()

    def clear(self) -> None:
        """Forget every queued frame."""
        self._frames.clear()
        self._bytes = 0
        self._grace = 0

    def finish(self) -> None:
        """Let the writer drain what is queued, then receive None (time to close)."""
        self._finishing = True
        self._ready.set()

    async def next(self) -> Payload | None:
        """The next frame, waiting for one; None once drained after :meth:`finish`."""
        while not self._frames:
            if self._finishing:
                return None
            self._ready.clear()
            await self._ready.wait()
        payload = self._frames.popleft()
        self._bytes -= len(payload)
        self._grace = max(0, self._grace - len(payload))
        return payload

    @property
    def queued_bytes(self) -> int:
        """Bytes waiting to be written."""
        return self._bytes
