"""The embedded outbox (one process): lost on restart, like the memory broker."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from classroom.integrations.outbox.store import I, Outbox


class MemoryOutbox(Outbox[I]):
    """Dicts in this process; nodes sharing it are tasks of one process (as in tests)."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._queued: dict[str, I] = {}
        self._due: dict[str, float] = {}
        self._sent: dict[str, I] = {}
        self._dead: dict[str, I] = {}
        self._keys: dict[str, str] = {}

    async def enqueue(self, item: I) -> bool:
        """Queue an item unless its dedupe key is held."""
        if item.dedupe is not None:
            if item.dedupe in self._keys:
                return False
            self._keys[item.dedupe] = item.id
        self._queued[item.id] = item
        self._due[item.id] = item.next_attempt_at
        return True

    async def claim(self, limit: int, lease: float) -> list[I]:
        """Due items, earliest first, moved ``lease`` seconds into the future."""
        self._prune()  # the worker claims every poll: the housekeeping rides along
        now = self.clock()
        due = sorted((at, mid) for mid, at in self._due.items() if at <= now)[:limit]
        for _, mid in due:
            self._due[mid] = now + lease
        return [self._queued[mid] for _, mid in due]

    async def _settle_sent(self, item: I, record: I) -> None:
        if self._queued.pop(item.id, None) is None:
            return
        self._due.pop(item.id, None)
        self._sent[item.id] = record

    async def _reschedule(self, item: I) -> None:
        if item.id in self._queued:
            self._queued[item.id] = item
            self._due[item.id] = item.next_attempt_at

    async def _bury(self, item: I) -> None:
        if self._queued.pop(item.id, None) is None:
            return
        self._due.pop(item.id, None)
        self._dead[item.id] = item

    async def dead_letters(self, tenant: str, limit: int) -> list[I]:
        """The tenant's newest dead letters, oldest first."""
        self._prune()
        mine = sorted((m for m in self._dead.values() if m.tenant == tenant),
                      key=lambda m: (m.died_at or 0.0, m.id))
        return mine[-limit:] if limit > 0 else []

    async def dead_count(self, tenant: str | None = None) -> int:
        """Dead letters held."""
        self._prune()
        return sum(1 for m in self._dead.values() if tenant is None or m.tenant == tenant)

    async def _requeue(self, tenant: str, item_id: str, revive: Callable[[I], I]) -> I | None:
        dead = self._dead.get(item_id)
        if dead is None or dead.tenant != tenant:
            return None
        del self._dead[item_id]
        queued = revive(dead)
        self._queued[item_id] = queued
        self._due[item_id] = queued.next_attempt_at
        return queued

    async def depth(self) -> int:
        """Queued items (dead letters are not waiting)."""
        return len(self._queued)

    async def next_due(self) -> float | None:
        """The earliest due time."""
        return min(self._due.values(), default=None)

    async def _records(self, tenant: str, sub: str) -> list[I]:
        self._prune()
        every = [*self._queued.values(), *self._sent.values(), *self._dead.values()]
        return [m for m in every if m.tenant == tenant and sub in m.about]

    async def _drop(self, items: list[I], tenant: str, sub: str) -> None:
        for item in items:
            self._forget(item)

    async def _replace(self, item: I, tenant: str, sub: str) -> None:
        for held in (self._queued, self._dead):
            if item.id in held:
                held[item.id] = item

    def _forget(self, item: I) -> None:
        self._queued.pop(item.id, None)
        self._due.pop(item.id, None)
        self._sent.pop(item.id, None)
        self._dead.pop(item.id, None)
        if item.dedupe is not None and self._keys.get(item.dedupe) == item.id:
            del self._keys[item.dedupe]

    async def close(self) -> None:
        """Nothing to release."""

    def _prune(self) -> None:
        horizon = self.clock() - self.keep_sent
        settled = [*self._sent.values(), *self._dead.values()]
        for item in [m for m in settled if (m.settled_at or 0.0) < horizon]:
            self._forget(item)
