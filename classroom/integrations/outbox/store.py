"""The durable outbox's contract: at-least-once delivery, leases, back-off, dead letters.

Delivery is decoupled from the request that causes it, so a receiver that is down or
refusing only delays an item: it leaves the outbox when the receiver accepted it, and
otherwise comes back later with exponential back-off. Claims are leases (the due time
moves into the future), so with several nodes exactly one node holds an item at a
time, and a node that dies mid-delivery only delays it. An optional dedupe key makes
enqueueing idempotent across nodes (the first enqueue wins while the item is held).

After ``max_attempts`` failed attempts an item is *dead*: it is not tried again, and it
is kept (whole, so that the tenant can put it back with :meth:`Outbox.revive`) with
its attempt count and the label of its last error.

Delivered records and dead letters may hold personal data: they are kept for
``keep_sent`` seconds (seven days by default) after delivery or death, and erasure
(:meth:`Outbox.forget`) drops or minimises everything about a user.
"""

from __future__ import annotations

import abc
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Generic, TypeVar

from classroom.integrations.outbox.backoff import MAX_ATTEMPTS, Backoff
from classroom.integrations.outbox.item import DAY, Item, error_label, is_item_id

I = TypeVar("I", bound=Item)  # noqa: E741 - the item type, as in Outbox[I]

class Outbox(abc.ABC, Generic[I]):
    """The queue's interface; :class:`~.memory.MemoryOutbox` and ``RedisOutbox`` implement it."""

    def __init__(self, *, backoff: Backoff | None = None, keep_sent: float = 7 * DAY,
                 max_attempts: int = MAX_ATTEMPTS, clock: Callable[[], float] = time.time) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.backoff = backoff or Backoff()
        self.keep_sent = keep_sent  # for sent records and dead letters alike
        self.max_attempts = max_attempts
        self.clock = clock  # wall clock: due times are shared by every node

    @abc.abstractmethod
    async def enqueue(self, item: I) -> bool:
        """Queue an item; False (and nothing queued) if one with its dedupe key is held."""

    @abc.abstractmethod
    async def claim(self, limit: int, lease: float) -> list[I]:
        """Take up to ``limit`` due items for ``lease`` seconds; no other claim gets them."""

    @abc.abstractmethod
    async def _settle_sent(self, item: I, record: I) -> None:
        """Replace the queued item with its sent record, if it is still queued."""

    @abc.abstractmethod
    async def _reschedule(self, item: I) -> None:
        """Store the updated item and its new due time, if it is still queued."""

    @abc.abstractmethod
    async def _bury(self, item: I) -> None:
        """Move the (dead) item from the queue to the dead letters, if it is still queued."""

    @abc.abstractmethod
    async def dead_letters(self, tenant: str, limit: int) -> list[I]:
        """The tenant's newest ``limit`` dead letters, oldest first (by ``died_at``)."""

    @abc.abstractmethod
    async def dead_count(self, tenant: str | None = None) -> int:
        """Dead letters held: the tenant's, or every tenant's (for the metrics gauge)."""

    @abc.abstractmethod
    async def _requeue(self, tenant: str, item_id: str, revive: Callable[[I], I]) -> I | None:
        """Move the tenant's dead letter back to the queue as ``revive`` makes it; or None."""

    @abc.abstractmethod
    async def depth(self) -> int:
        """Items waiting (including those being delivered), for the metrics gauge."""

    @abc.abstractmethod
    async def next_due(self) -> float | None:
        """When the earliest item is due (None: the queue is empty)."""

    @abc.abstractmethod
    async def _records(self, tenant: str, sub: str) -> list[I]:
        """Queued, recently sent and dead items about a user of a tenant."""

    @abc.abstractmethod
    async def _drop(self, items: list[I], tenant: str, sub: str) -> None:
        """Remove the items wherever they are held, and the user's index."""

    @abc.abstractmethod
    async def _replace(self, item: I, tenant: str, sub: str) -> None:
        """Store ``item`` in place of the queued or dead item with its id (if still held),
        and take it out of the user's index."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release the backend."""

    async def mark_sent(self, item: I) -> None:
        """The receiver accepted it: keep only a record (unless it was erased meanwhile)."""
        await self._settle_sent(item, item.as_sent(self.clock()))

    async def retry_later(self, item: I, error: BaseException) -> I:
        """Count a failed attempt and put the item back, due after the back-off.

        The ``max_attempts``-th failure makes it a dead letter instead (``died_at`` set):
        it is not tried again unless the tenant revives it. Only the error's label is
        kept (:func:`~.item.error_label`): error texts often quote addresses.
        """
        attempts = item.attempts + 1
        now = self.clock()
        failed = replace(item, attempts=attempts, last_error=error_label(error))
        if attempts >= self.max_attempts:
            dead = replace(failed, died_at=now)
            await self._bury(dead)
            return dead
        updated = replace(failed, next_attempt_at=now + self.backoff.delay(attempts))
        await self._reschedule(updated)
        return updated

    async def revive(self, tenant: str, item_id: str) -> I | None:
        """Put the tenant's dead letter back in the queue, due now, with a fresh count.

        None when the tenant holds no dead letter with that id (another tenant's included).
        """
        if not is_item_id(item_id):
            return None

        def fresh(dead: I) -> I:
            return replace(dead, attempts=0, last_error=None, died_at=None,
                           next_attempt_at=self.clock())

        return await self._requeue(tenant, item_id, fresh)

    async def about(self, tenant: str, sub: str) -> list[dict[str, Any]]:
        """Every queued, recently sent or dead item about the user, as the export shows it."""
        found = await self._records(tenant, sub)
        found.sort(key=lambda m: (m.created_at, m.id))
        return [m.describe(sub) for m in found]

    async def forget(self, tenant: str, sub: str,
                     minimise: Callable[[I, str], I | None] | None = None) -> int:
        """Erasure: drop (or, with ``minimise``, rewrite) every item about the user; how many.

        Without ``minimise`` every queued item, sent record and dead letter about the
        user goes. With it, queued items and dead letters are kept as ``minimise(item,
        sub)`` returns them (None: dropped), no longer indexed under the user; sent
        records go either way.
        """
        doomed = await self._records(tenant, sub)
        dropped: list[I] = []
        for item in doomed:
            smaller = None if minimise is None or item.sent_at is not None else minimise(item, sub)
            if smaller is None:
                dropped.append(item)
            else:
                await self._replace(
                    replace(smaller, about=[a for a in smaller.about if a != sub]), tenant, sub)
        await self._drop(dropped, tenant, sub)
        return len(doomed)
