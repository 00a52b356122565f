"""Lean stand-ins for the asyncio primitives uvicorn's WebSocket protocol keeps per connection.

An idle connection is mostly bookkeeping, and a node holds tens of thousands of
them (docs/performance.md). uvicorn's protocol keeps an ``asyncio.Queue`` of
received messages (three deques, ~2.3 KB even when empty) and an
``asyncio.Event`` for flow control (a deque of waiters, ~0.7 KB). Only one task
ever waits on either (the connection's reader, or its one writer), so a list
and a single future do the same job in a few hundred bytes.
"""

from __future__ import annotations

import asyncio
from typing import Generic, TypeVar

T = TypeVar("T")


class MessageQueue(Generic[T]):
    """The subset of ``asyncio.Queue`` uvicorn uses: ``put_nowait``, ``get``, ``empty``.

    Unbounded, FIFO; any number of getters may wait (in practice there is one).
    """

    __slots__ = ("_items", "_waiters")

    def __init__(self) -> None:
        self._items: list[T] = []
        self._waiters: list[asyncio.Future[None]] | None = None

    def put_nowait(self, item: T) -> None:
        """Append an item and wake the oldest waiting getter."""
        self._items.append(item)
        self._wake_next()

    async def get(self) -> T:
        """The oldest item, waiting for one."""
        while not self._items:
            waiter = asyncio.get_running_loop().create_future()
            waiters = self._waiters
            if waiters is None:
                waiters = self._waiters = []
            waiters.append(waiter)
            try:
                await waiter
            except BaseException:
                if waiter in waiters:
                    waiters.remove(waiter)
                elif self._items:  # it was woken, then cancelled: pass the wake-up on
                    self._wake_next()
                raise
        return self._items.pop(0)

    def _wake_next(self) -> None:
        waiters = self._waiters
        while waiters:
            waiter = waiters.pop(0)
            if not waiter.done():
                waiter.set_result(None)
                return

    def empty(self) -> bool:
        """Whether no item is queued."""
        return not self._items

    def qsize(self) -> int:
        """How many items are queued."""
        return len(self._items)


class FlowGate:
    """The subset of ``asyncio.Event`` uvicorn uses for write flow control:
    ``set``, ``clear``, ``is_set``, ``wait``."""

    __slots__ = ("_open", "_waiters")

    def __init__(self, is_open: bool = True) -> None:
        self._open = is_open
        self._waiters: list[asyncio.Future[None]] | None = None

    def is_set(self) -> bool:
        """Whether writing may go on."""
        return self._open

    def set(self) -> None:
        """Open the gate and wake every waiter."""
        self._open = True
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    def clear(self) -> None:
        """Close the gate: writers wait."""
        self._open = False

    async def wait(self) -> bool:
        """Return once the gate is open (at once if it is)."""
        if self._open:
            return True
        waiter = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(waiter)
        try:
            await waiter
        finally:
            if self._waiters is not None and waiter in self._waiters:
                self._waiters.remove(waiter)
        return True
