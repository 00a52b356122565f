"""How long this node's event loop stops: a ticking timer's lag and the collector's pauses.

One event loop serves every client of a node, so whatever holds it (a full
garbage collection walking every live object, a burst of joins' work) delays
every member's events by as long. Latency measured at the clients cannot tell
such a stop from the network or from the clients' own pauses; these two can,
on ``/metrics`` and in every load test's report:

- ``classroom_event_loop_lag_seconds``: how late a timer due every ``interval``
  seconds fires. A stop of 400 ms is one observation of 0.3-0.4 s (the timer
  was due somewhere within it), so the buckets above 50 ms count the stops a
  member would notice;
- ``classroom_gc_pause_seconds{generation}``: how long each garbage collection
  took, from ``gc.callbacks`` (generation 2 is a full collection, the one that
  grows with the number of connections).

Both are cheap: ten timer wake-ups a second, two clock reads per collection.
"""

from __future__ import annotations

import asyncio
import gc
import time
from typing import Any

from prometheus_client import Histogram

from classroom.edge.collector_hooks import unhook

TICK_SECONDS = 0.1
"""How often the lag probe's timer is due: short enough to see a stop of 100 ms as one."""


class StallWatch:
    """Records the event loop's lag and every garbage collection's pause while started."""

    def __init__(self, loop_lag: Histogram, gc_pause: Histogram,
                 interval: float = TICK_SECONDS) -> None:
        self._loop_lag = loop_lag
        self._pause_by_generation = [gc_pause.labels(str(g)) for g in range(3)]
        self._interval = interval
        self._collection_began = 0.0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the probe on the running loop and hear of every collection in the process."""
        if self._task is not None:
            return
        self._task = asyncio.get_running_loop().create_task(self._tick())
        gc.callbacks.append(self._on_collection)

    async def stop(self) -> None:
        """Stop both (the collector's callbacks are process-wide: several apps share them)."""
        task, self._task = self._task, None
        await unhook(self._on_collection, task)

    async def _tick(self) -> None:
        interval = self._interval
        observe = self._loop_lag.observe
        clock = time.monotonic
        while True:
            due = clock() + interval
            await asyncio.sleep(interval)
            observe(max(0.0, clock() - due))

    def _on_collection(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._collection_began = time.perf_counter()
            return
        self._pause_by_generation[info["generation"]].observe(  # CPython's 0, 1 or 2
            time.perf_counter() - self._collection_began)
