"""The attendance log's keys: arrivals and departures per user, and when each was last seen.

Per session: a capped list per user (appends are atomic, so two nodes writing
for the same user never lose each other's entry), the set of users with a log,
and a hash of when each was last seen by a node's heartbeat, which tells where
a span ends when the node serving it died. Every key lives as long as the
session's progress records; ending the session sets the tenant's retention.
"""

from __future__ import annotations

from typing import Any

from classroom.backends.data.store import DataStore, Op
from classroom.domain.attendance import ARRIVED, DEPARTED

MAX_LOG = 2000
"""Arrivals and departures kept per user and session (a flaky phone's reconnects included)."""
LIVE_TTL = 400 * 86400.0
"""Until the session ends (which sets the tenant's retention), the keys live this long."""


class AttendanceLog:
    """Reads and writes the attendance keys of one deployment's data store."""

    def __init__(self, store: DataStore, *, max_log: int = MAX_LOG) -> None:
        self.store = store
        self.max_log = max_log

    def _log(self, tenant: str, session: str, sub: str) -> str:
        return f"attendance:{tenant}:{session}:{sub}"

    def _users(self, tenant: str, session: str) -> str:
        return f"attendance-users:{tenant}:{session}"

    def _seen(self, tenant: str, session: str) -> str:
        return f"attendance-seen:{tenant}:{session}"

    async def arrived(
        self, tenant: str, session: str, sub: str, role: str, at: float,
        *, left_at: float | None = None,
    ) -> None:
        """The user's first connection joined; ``left_at`` first closes the span their
        previous arrival left open (its node died and nobody swept). One round trip."""
        ops = []
        if left_at is not None:
            ops += self._appending(tenant, session, sub, {"k": DEPARTED, "t": left_at})
        ops.append(Op.of("hset", self._seen(tenant, session), sub, at))
        ops += self._appending(tenant, session, sub, {"k": ARRIVED, "t": at, "role": role})
        await self.store.batch(ops)

    async def departed(self, tenant: str, session: str, sub: str, at: float) -> None:
        """The user's last connection left (or its presence expired, at ``at``)."""
        await self.store.batch(self._appending(tenant, session, sub, {"k": DEPARTED, "t": at}))

    async def seen(self, tenant: str, session: str, subs: list[str], at: float) -> None:
        """A node's heartbeat: these users were present at ``at``."""
        await self.store.hset_many(self._seen(tenant, session), dict.fromkeys(subs, at))

    async def seen_of(self, tenant: str, session: str, sub: str) -> float | None:
        """When one user was last seen present."""
        at = await self.store.hget(self._seen(tenant, session), sub)
        return float(at) if isinstance(at, int | float) else None

    async def last_and_seen(
        self, tenant: str, session: str, sub: str
    ) -> tuple[dict[str, Any] | None, float | None]:
        """The user's newest entry and when they were last seen, in one round trip."""
        entries, at = await self.store.batch([
            Op.of("items", self._log(tenant, session, sub), 1),
            Op.of("hget", self._seen(tenant, session), sub),
        ])
        last = entries[0] if entries and isinstance(entries[0], dict) else None
        return last, float(at) if isinstance(at, int | float) else None

    async def last_seen(self, tenant: str, session: str) -> dict[str, float]:
        """When each user of the session was last seen, by sub."""
        raw = await self.store.hgetall(self._seen(tenant, session))
        return {sub: float(at) for sub, at in raw.items() if isinstance(at, int | float)}

    async def log(self, tenant: str, session: str, sub: str) -> list[dict[str, Any]]:
        """The user's arrivals and departures, oldest first."""
        entries = await self.store.items(self._log(tenant, session, sub), self.max_log)
        return [e for e in entries if isinstance(e, dict)]

    async def users(self, tenant: str, session: str) -> set[str]:
        """Everyone with a log in the session."""
        return await self.store.smembers(self._users(tenant, session))

    async def forget(self, tenant: str, session: str, sub: str) -> None:
        """Erase the user's log in the session."""
        await self.store.delete(self._log(tenant, session, sub))
        await self.store.srem(self._users(tenant, session), sub)
        await self.store.hdel(self._seen(tenant, session), sub)

    async def keep_pseudonymous(
        self, tenant: str, session: str, subject: str, line: dict[str, Any], ttl: float
    ) -> None:
        """Keep an erased user's minimal line (a keyed hash, minutes, met) for ``ttl``."""
        key = f"attendance-kept:{tenant}:{session}"
        await self.store.hset(key, subject, line)
        await self.store.expire(key, ttl)

    async def kept(self, tenant: str, session: str) -> dict[str, dict[str, Any]]:
        """The pseudonymous lines kept of erased users, by subject."""
        return await self.store.hgetall(f"attendance-kept:{tenant}:{session}")

    async def retain(self, tenant: str, session: str, ttl: float) -> None:
        """The session ended: every key of its register expires after ``ttl``."""
        for sub in await self.users(tenant, session):
            await self.store.expire(self._log(tenant, session, sub), ttl)
        await self.store.expire(self._users(tenant, session), ttl)
        await self.store.expire(self._seen(tenant, session), ttl)

    def _appending(self, tenant: str, session: str, sub: str, entry: dict[str, Any]) -> list[Op]:
        key = self._log(tenant, session, sub)
        return [
            Op.of("push", key, entry, self.max_log),
            Op.of("sadd", self._users(tenant, session), sub),
            # A departure right after the end must not undo the retention the end set.
            Op.of("expire_unless_set",
                  [key, self._users(tenant, session), self._seen(tenant, session)], LIVE_TTL),
        ]
