"""A connection's bounded send queue: the one place a slow reader is detected.

Fan-out only ever appends here; it never waits on a socket. When a client
stops reading, its queue grows past ``max_bytes`` and the connection is closed
with 4008, so one slow client never holds back the broker reader or its
neighbours. The queue is plain data: who writes it out, and when, is the
connection's business (:mod:`classroom.edge.write_batching`).
"""

from __future__ import annotations

from collections.abc import Callable

from classroom.protocol.codec import Payload

BATCH_BYTES = 64 * 1024
"""At most this much (or one frame, if bigger) leaves the outbox in one :meth:`SendQueue.take`."""


def wire_size(payload: Payload) -> int:
    """Bytes the payload takes on the wire: a text frame's UTF-8, not its characters.

    ``str.isascii`` is a flag CPython keeps on every string, so the common case
    (JSON of ASCII text) costs no encoding; only text with other characters
    (names with accents, chat) is measured by encoding it.
    """
    if isinstance(payload, bytes) or payload.isascii():
        return len(payload)
    return len(payload.encode())


class SendQueue:
    """FIFO of encoded frames with a byte bound."""

    __slots__ = ("_bytes", "_frames", "_on_overflow", "closed", "finishing", "max_bytes")

    def __init__(self, max_bytes: int, on_overflow: Callable[[], None]) -> None:
        self._frames: list[Payload] = []  # a list (56 bytes empty), not a deque (~600)
        self._bytes = 0
        self.max_bytes = max_bytes
        self._on_overflow = on_overflow
        self.finishing = False  # no more frames: drain what is queued, then close
        self.closed = False  # no more frames, and what is queued will not be written

    def release(self) -> None:
        """Closed for good: drop the frames and the overflow callback (a bound method of
        the connection, which holds this queue: a cycle only a full GC would free)."""
        self.closed = True
        self._frames = []
        self._bytes = 0
        self._on_overflow = _nothing

    def put(self, payload: Payload) -> bool:
        """Append a frame; False when it was refused (closing, or it overflowed).

        Overflowing the bound drops everything and reports it. A burst that may
        exceed the bound (a join's replay of history) waits for room before each
        frame instead (``Connection.send_replay``).
        """
        if self.closed or self.finishing:
            return False
        size = wire_size(payload)
        if self._bytes + size > self.max_bytes and self._frames:
            self.clear()
            self.closed = True
            self._on_overflow()
            return False
        self._frames.append(payload)
        self._bytes += size
        return True

    def clear(self) -> None:
        """Forget every queued frame."""
        self._frames.clear()
        self._bytes = 0

    def finish(self) -> None:
        """Refuse new frames; what is queued is still to be written, then the close."""
        self.finishing = True

    def take(self, max_bytes: int = BATCH_BYTES) -> list[Payload]:
        """The queued frames, oldest first, up to ``max_bytes`` (at least one frame);
        empty when nothing is queued."""
        frames = self._frames
        if not frames:
            return []
        taken = wire_size(frames[0])
        count = 1
        while count < len(frames) and taken + (size := wire_size(frames[count])) <= max_bytes:
            taken += size
            count += 1
        if count == len(frames):
            batch, self._frames = frames, []
        else:
            batch = frames[:count]
            del frames[:count]
        self._bytes -= taken
        return batch

    def __bool__(self) -> bool:
        """Whether any frame is queued."""
        return bool(self._frames)

    @property
    def queued_bytes(self) -> int:
        """Bytes waiting to be written."""
        return self._bytes


def _nothing() -> None:
    """The overflow callback of a released queue."""
