"""A connection's bounded send queue: the one place a slow reader is detected.

Fan-out only ever appends here; it never waits on a socket. When a client
stops reading, its queue grows past ``max_bytes`` and the connection is closed
with 4008, so one slow client never holds back the broker reader or its
neighbours.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from classroom.codec import Payload

BATCH_BYTES = 64 * 1024
"""At most this much (or one frame, if bigger) leaves the outbox in one :meth:`Outbox.take`."""


class Outbox:
    """FIFO of encoded frames with a byte bound and a wake-up for the writer."""

    __slots__ = (
        "_bytes",
        "_finishing",
        "_frames",
        "_grace",
        "_max_bytes",
        "_on_overflow",
        "_waiter",
        "closed",
    )

    def __init__(self, max_bytes: int, on_overflow: Callable[[], None]) -> None:
        self._frames: list[Payload] = []  # a list (56 bytes empty), not a deque (~600)
        self._bytes = 0
        self._grace = 0  # bytes of unbounded bursts still queued; not held against the bound
        self._max_bytes = max_bytes
        self._on_overflow = on_overflow
        self._waiter: asyncio.Future[None] | None = None  # the writer, waiting for a frame
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
        self._wake()

    def clear(self) -> None:
        """Forget every queued frame."""
        self._frames.clear()
        self._bytes = 0
        self._grace = 0

    def finish(self) -> None:
        """Let the writer drain what is queued, then receive None (time to close)."""
        self._finishing = True
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    async def _wait(self) -> None:
        waiter = self._waiter = asyncio.get_running_loop().create_future()
        try:
            await waiter
        finally:
            if self._waiter is waiter:
                self._waiter = None

    async def next(self) -> Payload | None:
        """The next frame, waiting for one; None once drained after :meth:`finish`."""
        frames = await self.take(0)
        return None if frames is None else frames[0]

    async def take(self, max_bytes: int = BATCH_BYTES) -> list[Payload] | None:
        """The queued frames, oldest first, up to ``max_bytes`` (at least one), waiting for
        one; None once drained after :meth:`finish`."""
        while not self._frames:
            if self._finishing:
                return None
            await self._wait()
        frames = self._frames
        taken = len(frames[0])
        count = 1
        while count < len(frames) and taken + len(frames[count]) <= max_bytes:
            taken += len(frames[count])
            count += 1
        if count == len(frames):
            batch, self._frames = frames, []
        else:
            batch = frames[:count]
            del frames[:count]
        self._bytes -= taken
        self._grace = max(0, self._grace - taken)
        return batch

    @property
    def queued_bytes(self) -> int:
        """Bytes waiting to be written."""
        return self._bytes
