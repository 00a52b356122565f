"""While connections pour in, keep their objects out of the middle generation's collections.

Every connection a node accepts keeps about 86 objects the collector tracks
(its protocol, parser, queues, tasks, coroutine frames) for as long as it lives.
When thousands arrive within seconds (a lecture starting, 5,000 clients coming
back after a node restart), nearly everything born between two young
collections survives them, so the middle generation fills with live
connections and every tenth young collection walks them all again: 30-45 ms
each, a dozen in a storm, with no event delivered meanwhile. They find nothing
to free: a closed connection is freed by its reference count, not by the
collector (``tests/edge/test_connection_teardown.py``).

So while the node is taking connections (at least ``connects_per_collection``
since the previous young collection), the survivors of each young collection
are frozen (``gc.freeze()``): the collector no longer walks them, and their
reference counts still free them when their connection closes. Objects that
were frozen and later become garbage only through a reference cycle wait: once
no collection has been frozen for ``thaw_after`` seconds, everything frozen is
handed back to the oldest generation (``gc.unfreeze()``), where CPython's full
collections find such cycles as they would have without the freeze. A storm of
5,000 reconnects (10,000 connections in all) left 120 such objects frozen, the
lookups of redis-py's version for its new Redis connections; a full collection
after the thaw found them all.

The objects ``classroom serve`` froze at start-up (``classroom/cli.py``) go
back with them at the thaw; a full collection then walks them too (they are a
fifth of a 5,000-connection node's objects, and full collections come after a
hundred middle ones).
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import Counter

from classroom.edge.collector_hooks import unhook

THAW_CHECK_SECONDS = 1.0
"""How often the thaw is considered, at most (less when ``thaw_after`` is shorter)."""


class RampFreeze:
    """Freezes young collections' survivors while connections arrive; thaws when they stop.

    ``accepted`` returns how many connections the node has accepted so far (a
    running total); the difference since the previous young collection is the
    signal. A ``connects_per_collection`` of 0 turns the freeze off.
    """

    def __init__(
        self,
        accepted: Callable[[], int],
        *,
        connects_per_collection: int,
        thaw_after: float,
        events: Counter | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._accepted = accepted
        self._threshold = connects_per_collection
        self._thaw_after = thaw_after
        self._freezes = events.labels("freeze") if events is not None else None
        self._thaws = events.labels("thaw") if events is not None else None
        self._clock = clock
        self._seen = 0
        self._last_freeze: float | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def frozen(self) -> bool:
        """Whether objects frozen by this node wait for a thaw."""
        return self._last_freeze is not None

    def start(self) -> None:
        """Watch the process's young collections, and thaw on the running loop."""
        if self._threshold <= 0 or self._task is not None:
            return
        self._seen = self._accepted()
        gc.callbacks.append(self._on_collection)
        self._task = asyncio.get_running_loop().create_task(self._thaw_when_calm())

    async def stop(self) -> None:
        """Stop watching, and hand back whatever is still frozen."""
        task, self._task = self._task, None
        await unhook(self._on_collection, task)
        self.thaw()

    def thaw(self) -> None:
        """Give every frozen object back to the oldest generation (if this node froze any)."""
        if self._last_freeze is None:
            return
        self._last_freeze = None
        gc.unfreeze()
        if self._thaws is not None:
            self._thaws.inc()

    def thaw_if_calm(self) -> bool:
        """Thaw once ``thaw_after`` seconds have passed without a freeze; whether it did."""
        if self._last_freeze is None or self._clock() - self._last_freeze < self._thaw_after:
            return False
        self.thaw()
        return True

    def _on_collection(self, phase: str, info: dict[str, Any]) -> None:
        """After a young collection, freeze its survivors if connections poured in."""
        if phase != "stop" or info["generation"] != 0:
            return
        accepted = self._accepted()
        arrived, self._seen = accepted - self._seen, accepted
        if arrived >= self._threshold:
            gc.freeze()
            self._last_freeze = self._clock()
            if self._freezes is not None:
                self._freezes.inc()

    async def _thaw_when_calm(self) -> None:
        interval = min(THAW_CHECK_SECONDS, self._thaw_after / 2) or THAW_CHECK_SECONDS
        while True:
            await asyncio.sleep(interval)
            self.thaw_if_calm()
