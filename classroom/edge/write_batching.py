"""Socket writes batched per event-loop iteration, made straight from the fan-out.

Fan-out only queues frames and marks the connection. Once per loop iteration,
after every callback that could add frames has run, one callback writes each
marked connection's frames in a single ``transport.write``: no task wakes per
frame or per connection, and a connection that got several frames in the same
iteration (a busy room, a burst from the broker) pays for one system call, not
one per frame. Only a connection whose socket pushes back gets a writer task,
until it has caught up (:class:`classroom.edge.connection.Connection`).

The batcher also measures what a fan-out costs the people waiting for it: from
an event's publication (its ``at``) to the end of the write that carried it to
this node's members.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Protocol

from prometheus_client import Counter, Histogram

log = logging.getLogger("classroom.edge.write_batching")


class Flushable(Protocol):
    """A connection as the batcher sees it."""

    def flush(self) -> int:
        """Write what is queued, as far as the socket takes it; returns frames written."""


class WriteBatcher:
    """Collects the connections with queued frames and writes them once per iteration."""

    __slots__ = ("_frames_written", "_loop", "_marked", "_publish_to_write", "_published")

    def __init__(self, frames_written: Counter, publish_to_write: Histogram) -> None:
        self._frames_written = frames_written
        self._publish_to_write = publish_to_write
        self._marked: list[Flushable] = []
        self._published: list[float] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    def mark(self, connection: Flushable) -> None:
        """Write ``connection``'s frames at the end of this loop iteration.

        The caller marks a connection at most once per iteration (its own flag),
        so the list holds no duplicates.
        """
        if not self._marked:
            loop = self._loop
            if loop is None or loop.is_closed():
                loop = self._loop = asyncio.get_running_loop()
            loop.call_soon(self._flush)
        self._marked.append(connection)

    def published(self, at: float) -> None:
        """An event published at ``at`` (wall clock) was queued in this iteration.

        Ignored when nothing is waiting to be written (every member was still
        joining, say): there is no write to time.
        """
        if self._marked:
            self._published.append(at)

    def write_now(self) -> None:
        """Write the marked connections now (the end of a burst read off the broker).

        What is marked later in this iteration schedules its own write; the write
        already scheduled finds nothing left and returns at once.
        """
        if self._marked:
            self._flush()

    def _flush(self) -> None:
        marked, self._marked = self._marked, []
        published, self._published = self._published, []
        written = 0
        for connection in marked:
            try:
                written += connection.flush()
            except Exception:  # one connection's failure must not cost the others their frames
                log.exception("flush failed")
        if written:
            self._frames_written.inc(written)
        if published:
            now = time.time()
            observe = self._publish_to_write.observe
            for at in published:
                observe(now - at)
