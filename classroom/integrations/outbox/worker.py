"""The delivery loop every outbox needs: poll, claim due items, deliver, sleep until due.

It runs as one background task per node. A subclass says how to deliver a claimed
batch (:meth:`OutboxWorker.run_once`); this loop survives any failure (Redis down, a
bug), wakes early when told something was enqueued, and reports the queue depth and
dead letters to metrics gauges. Logs name ids and exception classes only.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Generic

from classroom.integrations.outbox.store import I, Outbox


class OutboxWorker(abc.ABC, Generic[I]):
    """Background delivery: ``start()``, ``wake()`` after enqueueing, ``stop()`` at shutdown."""

    name = "outbox-worker"
    log = logging.getLogger("classroom.integrations.outbox")

    def __init__(self, outbox: Outbox[I], *, poll_interval: float, batch: int,
                 stop_timeout: float, on_depth: Callable[[int], None] | None = None,
                 on_dead: Callable[[int], None] | None = None) -> None:
        self.outbox = outbox
        self._poll = poll_interval
        self._batch = batch
        self._stop_timeout = stop_timeout
        self._on_depth = on_depth
        self._on_dead = on_dead
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    @abc.abstractmethod
    def configured(self) -> bool:
        """Whether items can leave at all (else they wait, and the loop only polls)."""

    @abc.abstractmethod
    async def run_once(self) -> int:
        """Claim due items and try to deliver them; how many were accepted."""

    def start(self) -> None:
        """Start the worker task (idempotent)."""
        if self._task is None or self._task.done():
            self._wake = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(self._run(), name=self.name)

    async def stop(self, timeout: float | None = None) -> None:
        """Stop the worker; a delivery in flight is abandoned and retried after its lease."""
        task, self._task = self._task, None
        if task is None:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (timeout if timeout is not None else self._stop_timeout)
        # Cancel again until it has ended: a cancel that lands as an awaited call
        # completes can be lost inside a library, and the worker must not outlive stop().
        while not task.done() and (remaining := deadline - loop.time()) > 0:
            task.cancel()
            await asyncio.wait([task], timeout=min(0.05, remaining))

    def wake(self) -> None:
        """Look at the outbox now rather than at the next poll."""
        self._wake.set()

    async def _run(self) -> None:
        while True:
            self._wake.clear()  # before looking, so a wake() during this pass is not lost
            delay = self._poll
            try:
                sent = await self.run_once()
                depth = await self.outbox.depth()
                if self._on_depth is not None:
                    self._on_depth(depth)
                if self._on_dead is not None:
                    self._on_dead(await self.outbox.dead_count())
                due = await self.outbox.next_due()
                if sent >= self._batch:
                    delay = 0.0  # a full batch went out; more may be due
                elif due is not None and self.configured:
                    delay = min(self._poll, max(0.0, due - self.outbox.clock()))
            except Exception as exc:  # noqa: BLE001 - the worker must outlive Redis or bugs
                self.log.warning("%s pass failed (%s)", self.name, type(exc).__name__)
            # asyncio.timeout, not wait_for: on Python 3.11, wait_for returns normally when
            # the wake-up and stop()'s cancel land in the same loop iteration, swallowing
            # the cancel, and this loop would outlive stop() (seen as a hung test teardown).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()

    async def failed(self, item: I, exc: BaseException) -> I:
        """Put a failed item back with back-off (or bury it), and log ids and classes only."""
        retry = await self.outbox.retry_later(item, exc)
        if retry.died_at is not None:
            self.log.warning("%s %s not delivered (%s), attempt %d: given up, kept as a dead"
                             " letter", self.name, item.id, retry.last_error, retry.attempts)
        else:
            self.log.warning("%s %s not delivered (%s), attempt %d, next in %.1f s", self.name,
                             item.id, retry.last_error, retry.attempts,
                             retry.next_attempt_at - self.outbox.clock())
        return retry
