"""Turns for joins and leaves: a storm of them waits in line instead of stalling the node.

A join is a dozen Redis calls and a few milliseconds of the node's one core.
When 5,000 clients reconnect within seconds (a node restarted, a network blip),
running all their joins at once fills the event loop's queue with their steps:
every event published meanwhile waits behind thousands of them (seconds, not
milliseconds), Redis calls wait past their timeout and joins fail ``unavailable``
only to be retried. With at most ``limit`` joins and leaves in progress, the
others wait their turn in arrival order; the members already in keep getting
their events within milliseconds, and the node's CPU goes to finishing joins
rather than to queueing them. The throughput of joins stays what the CPU allows:
a join spends most of its time waiting for Redis, so a dozen at once keep the
core busy.

Joins go before leaves. In a reconnect storm every client's old connection
leaves as its new one joins; the leaves have nobody waiting for an answer, the
joins have a person looking at a spinner. Letting the joins pass also spares
presence a flap: the user's new entry is there before the old one goes, so
neither a leave nor a second arrival is announced.

A join that waits longer than ``max_wait`` is answered ``unavailable`` ("the
server is busy"), which clients retry after a back-off, as for a Redis outage;
a leave always waits for its turn (it must not be lost).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import AsyncIterator

from prometheus_client import Gauge

from classroom.domain.refusals import RequestRefused

BUSY = "the server is busy; retry shortly"


class Admission:
    """At most ``limit`` joins and leaves at once on this node; the rest queue, joins first."""

    def __init__(self, limit: int, max_wait: float, waiting: Gauge | None = None) -> None:
        self._free = limit
        self._max_wait = max_wait
        if waiting is not None:
            # Read when /metrics is scraped, not set at every arrival and turn: in a storm
            # that was two locked gauge updates per join, 2% of the node's CPU.
            waiting.set_function(lambda: self.queued)
        self._joins: collections.deque[asyncio.Future[None]] = collections.deque()
        self._leaves: collections.deque[asyncio.Future[None]] = collections.deque()

    @property
    def queued(self) -> int:
        """Joins and leaves waiting for a turn now."""
        return len(self._joins) + len(self._leaves)

    @contextlib.asynccontextmanager
    async def join_turn(self) -> AsyncIterator[None]:
        """A turn for a join; ``unavailable`` after ``max_wait`` seconds in line."""
        if self._free and not self._joins:
            self._free -= 1
        else:
            try:
                async with asyncio.timeout(self._max_wait):
                    await self._wait(self._joins)
            except TimeoutError:
                raise RequestRefused("unavailable", BUSY) from None
        try:
            yield
        finally:
            self._release()

    @contextlib.asynccontextmanager
    async def leave_turn(self) -> AsyncIterator[None]:
        """A turn for a leave, after every join waiting, however long the line."""
        if self._free and not self._joins and not self._leaves:
            self._free -= 1
        else:
            await self._wait(self._leaves)
        try:
            yield
        finally:
            self._release()

    async def _wait(self, line: collections.deque[asyncio.Future[None]]) -> None:
        """Wait in ``line`` until :meth:`_release` hands this waiter a turn."""
        turn = asyncio.get_running_loop().create_future()
        line.append(turn)
        try:
            await turn
        except BaseException:
            if turn.done() and not turn.cancelled():
                self._release()  # handed a turn just as it gave up: pass it on
            else:
                with contextlib.suppress(ValueError):  # a release may have skipped it already
                    line.remove(turn)
            raise

    def _release(self) -> None:
        """Hand the turn to the first join waiting, else the first leave, else free it."""
        for line in (self._joins, self._leaves):
            while line:
                turn = line.popleft()
                if not turn.done():
                    turn.set_result(None)
                    return
        self._free += 1
