"""Server-side records of a tenant: rosters, lifecycle, progress, profiles, audit.

Every key starts with the tenant id, so a tenant's API key can only ever reach
its own records. The user index (``user-sessions``) lists every session a user
appears in, so export and erasure find all of a user's data without scanning.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from auth.identity import PROFILE_FIELDS, Identity
from classroom.backends.data.attendance import AttendanceLog
from classroom.backends.data.recent_writes import RecentWrites
from classroom.backends.data.store import DataStore, Op
from classroom.domain.lifecycle import is_ended
from classroom.domain.screens import screen_objects

log = logging.getLogger("classroom.backends.data.records")

DAY = 86400.0
AUDIT_KEEP = 10000
PROFILE_TTL = 400 * DAY  # a profile outlives the longest progress retention, then goes
LIVE_PROGRESS_TTL = PROFILE_TTL
"""Progress rows of a session that has not ended expire this long after the last report
(ending a session sets the tenant's progress retention instead, in ``mark_ended``)."""
MAX_COMPLETED = 2000
"""Screens one progress row lists as completed at most: the most a roster may name. When
the roster names its screens, only those count, so a row holds at most that many."""
SCREENS_CACHE_SECONDS = 10.0
"""How long a roster's screens are reused for progress reports and joins before the roster
is read again (set on this node, they are fresh at once; set on another, within this long)."""
SCREENS_CACHE_SIZE = 512
"""Sessions whose screens are cached (the least recently used go first)."""


class Records:
    """Reads and writes the records; knows the keys, nothing of HTTP or WebSockets."""

    def __init__(
        self, store: DataStore, secret: bytes, *, progress_ttl: float = LIVE_PROGRESS_TTL
    ) -> None:
        self.store = store
        self.attendance = AttendanceLog(store)
        """The attendance register's keys (kept, retained and erased with the rest)."""
        self._secret = secret
        self._progress_ttl = progress_ttl
        self.on_live: Callable[[str, str], Awaitable[None]] | None = None
        """Set by the app: runs when this node turned a scheduled session live (webhooks)."""
        # A roster may hold 5,000 students: a progress report or a join reads only its
        # screens, cached (normalised to objects, as clients get them).
        self._screens: OrderedDict[
            tuple[str, str], tuple[float, tuple[dict[str, str], ...] | None]
        ] = OrderedDict()
        self.recent = RecentWrites()
        """Profiles and index entries this node wrote lately for a token (``recent_writes``)."""

    # -- sessions -------------------------------------------------------------------

    async def roster(self, tenant: str, session: str) -> dict[str, Any] | None:
        """The roster the back end set for a session."""
        value = await self.store.get(f"roster:{tenant}:{session}")
        return value if isinstance(value, dict) else None

    async def set_roster(self, tenant: str, session: str, roster: dict[str, Any]) -> None:
        """Store a roster and index every person on it."""
        await self.store.set(f"roster:{tenant}:{session}", roster)
        self._screens.pop((tenant, session), None)
        # The index only grows: someone taken off a roster may still have taken part,
        # and export and erasure must find that session.
        for sub in _roster_subs(roster):
            await self.store.sadd(f"user-sessions:{tenant}:{sub}", session)
        if await self.status(tenant, session) is None:
            await self.store.set(_status_key(tenant, session), {"status": "scheduled"})

    async def status(self, tenant: str, session: str) -> dict[str, Any] | None:
        """The session's lifecycle: scheduled, live or ended (None: unknown session)."""
        value = await self.store.get(_status_key(tenant, session))
        return value if isinstance(value, dict) else None

    async def mark_live(self, tenant: str, session: str) -> bool:
        """A trainer joined: the session is live (unless it already ended); True if it was not.

        Two nodes may both see the session scheduled and both return True: the
        ``on_live`` hook must be idempotent (the webhook outbox enqueues it once).
        """
        current = await self.status(tenant, session)
        if current is not None and current.get("status") != "scheduled":
            return False
        await self.store.set(
            _status_key(tenant, session), {"status": "live", "live_at": time.time()}
        )
        if self.on_live is not None:
            try:
                await self.on_live(tenant, session)
            except Exception:  # the trainer joins whatever the hook does
                log.exception("session-live hook failed")
        return True

    async def mark_ended(self, tenant: str, session: str, progress_ttl: float) -> bool:
        """End a session; its records now expire after the tenant's retention. False if ended."""
        current = await self.status(tenant, session) or {}
        if current.get("status") == "ended":
            return False
        ended = {**current, "status": "ended", "ended_at": time.time()}
        await self.store.set(_status_key(tenant, session), ended, ttl=progress_ttl)
        for key in (f"roster:{tenant}:{session}", f"progress:{tenant}:{session}"):
            await self.store.expire(key, progress_ttl)
        await self.attendance.retain(tenant, session, progress_ttl)
        return True

    # -- progress -------------------------------------------------------------------

    async def record_progress(
        self, tenant: str, session: str, record: dict[str, Any]
    ) -> dict[str, Any]:
        """Fold one ``progress`` event into the student's row, and return the row.

        The row stays bounded whatever screens a student reports: ``completed`` lists
        only the roster's screens when the roster names them, and at most
        :data:`MAX_COMPLETED` (the newest) otherwise. The rows expire
        ``progress_ttl`` after the last report until the session ends, when
        ``mark_ended`` gives them the tenant's retention (which a late report keeps).
        """
        by = record["by"]
        sub = by.get("sub", "")
        key = f"progress:{tenant}:{session}"
        rows = await self.store.hgetall(key)
        row: dict[str, Any] = rows.get(sub) or {"completed": []}
        row["participant"] = by
        screen = record.get("screen")
        row["screen"] = screen
        row["completed"] = _completed(
            row.get("completed") or [], screen if record.get("completed") else None,
            await self._roster_screens(tenant, session),
        )
        if record.get("score") is not None:
            row["score"] = record["score"]
        row["last_activity"] = record.get("at", time.time())
        await self.store.hset(key, sub, row)
        if not is_ended(await self.status(tenant, session)):
            await self.store.expire(key, self._progress_ttl)
        await self.store.sadd(f"user-sessions:{tenant}:{sub}", session)
        return row

    async def roster_screens(self, tenant: str, session: str) -> list[dict[str, str]] | None:
        """The roster's screens as ``{"id", "title"?, "url"?}`` (None: it names none), cached.

        Every join carries them, so a room of 500 joining at once reads the roster
        (which may hold 5,000 students) once per node, not 500 times.
        """
        key = (tenant, session)
        now = time.monotonic()
        cached = self._screens.get(key)
        if cached is not None and cached[0] > now:
            self._screens.move_to_end(key)
            screens = cached[1]
        else:
            roster = await self.roster(tenant, session)
            listed = screen_objects(roster.get("screens") if roster is not None else None)
            screens = tuple(listed) if listed else None
            self._screens[key] = (now + SCREENS_CACHE_SECONDS, screens)
            self._screens.move_to_end(key)
            while len(self._screens) > SCREENS_CACHE_SIZE:
                self._screens.popitem(last=False)
        return None if screens is None else [dict(screen) for screen in screens]

    async def _roster_screens(self, tenant: str, session: str) -> frozenset[str] | None:
        """The ids of the screens the session's roster names (None: it names none)."""
        screens = await self.roster_screens(tenant, session)
        return None if screens is None else frozenset(screen["id"] for screen in screens)

    async def progress(self, tenant: str, session: str) -> dict[str, dict[str, Any]]:
        """Every stored progress row of a session, by sub."""
        return await self.store.hgetall(f"progress:{tenant}:{session}")

    # -- people ---------------------------------------------------------------------

    async def remember(self, identity: Identity) -> None:
        """Keep the profile as last seen (unless this node just did, for the same token)."""
        written = ("profile", identity)
        if self.recent.recent(written):
            return
        profile = {
            key: getattr(identity, key)
            for key in ("sub", "role", *PROFILE_FIELDS)
            if getattr(identity, key) is not None
        }
        profile["last_seen"] = time.time()
        await self.store.set(
            f"profile:{identity.tenant}:{identity.sub}", profile, ttl=PROFILE_TTL
        )
        self.recent.made(written)

    async def joined(self, tenant: str, sub: str, session: str,
                     by: Identity | None = None) -> None:
        """Index a session a user took part in (kept as long as a profile); with ``by``,
        the identity that joined, not again if this node just did for it."""
        written = ("joined", by, session)
        if by is not None and self.recent.recent(written):
            return
        key = f"user-sessions:{tenant}:{sub}"
        await self.store.sadd(key, session, ttl=PROFILE_TTL)
        if by is not None:
            self.recent.made(written)

    async def profile(self, tenant: str, sub: str) -> dict[str, Any] | None:
        """The user's profile as last seen on a connection."""
        value = await self.store.get(f"profile:{tenant}:{sub}")
        return value if isinstance(value, dict) else None

    async def user_sessions(self, tenant: str, sub: str) -> set[str]:
        """Every session the user appears in."""
        return await self.store.smembers(f"user-sessions:{tenant}:{sub}")

    async def forget_user(self, tenant: str, sub: str) -> set[str]:
        """Remove the user's profile, progress rows and roster entries; their sessions."""
        sessions = await self.user_sessions(tenant, sub)
        for session in sessions:
            await self.store.hdel(f"progress:{tenant}:{session}", sub)
            await self.attendance.forget(tenant, session, sub)
            roster = await self.roster(tenant, session)
            if roster is not None and sub in _roster_subs(roster):
                cleaned = {
                    **roster,
                    "trainers": [t for t in roster.get("trainers", []) if t != sub],
                    "students": [s for s in roster.get("students", []) if s.get("sub") != sub],
                }
                ttl = await self.store.ttl(f"roster:{tenant}:{session}")
                await self.store.set(f"roster:{tenant}:{session}", cleaned, ttl=ttl)
        await self.store.delete(f"profile:{tenant}:{sub}", f"user-sessions:{tenant}:{sub}")
        return sessions

    # -- audit ----------------------------------------------------------------------

    async def revoke_tokens(self, tenant: str, sub: str, before: float) -> None:
        """Refuse the user's tokens issued before ``before`` (an erasure), for good.

        Kept under a keyed hash of the user, for as long as a profile would live: a
        token issued before the erasure cannot bring the user back, a new one can.
        ``iat`` counts whole seconds, so a token issued in the erasure's own second
        counts as new: a back end may let the user back at once.
        """
        await self.store.set(f"not-before:{self.subject(tenant, sub)}", before, ttl=PROFILE_TTL)

    async def token_revoked(self, identity: Identity) -> bool:
        """Whether the identity's token predates its user's erasure (no ``iat``: it may)."""
        return _predates(identity, await self.store.get(self._not_before(identity)))

    async def join_checks(
        self, identity: Identity, session: str
    ) -> tuple[bool, dict[str, Any] | None]:
        """Whether the token is revoked, and the session's status: what a join checks,
        read in one round trip (a storm of 5,000 rejoins reads them 5,000 times)."""
        before, status = await self.store.batch([
            Op.of("get", self._not_before(identity)),
            Op.of("get", _status_key(identity.tenant, session)),
        ])
        return _predates(identity, before), status if isinstance(status, dict) else None

    def _not_before(self, identity: Identity) -> str:
        return f"not-before:{self.subject(identity.tenant, identity.sub)}"

    def subject(self, tenant: str, sub: str) -> str:
        """A keyed hash of a user, so the audit log names no one yet can be matched."""
        digest = hmac.new(self._secret, f"audit\x1f{tenant}\x1f{sub}".encode(), hashlib.sha256)
        return "u" + digest.hexdigest()[:24]

    async def audit(self, tenant: str, entry: dict[str, Any]) -> None:
        """Append an audit entry (capped at the newest 10,000)."""
        await self.store.push(f"audit:{tenant}", {"at": time.time(), **entry}, AUDIT_KEEP)

    async def audit_log(self, tenant: str, count: int) -> list[dict[str, Any]]:
        """The newest ``count`` audit entries, oldest first."""
        return await self.store.items(f"audit:{tenant}", count)


def _completed(done: list[Any], screen: Any, screens: frozenset[str] | None) -> list[Any]:
    """``done`` with ``screen`` completed too (None: nothing new), bounded as the row must be."""
    if isinstance(screen, str) and screen not in done and (screens is None or screen in screens):
        done = [*done, screen]
    return done[-MAX_COMPLETED:]


def _roster_subs(roster: dict[str, Any]) -> set[str]:
    subs = set(roster.get("trainers", []))
    subs.update(s["sub"] for s in roster.get("students", []) if "sub" in s)
    return subs


def _status_key(tenant: str, session: str) -> str:
    """Where a session's status lives (read alone, or with a join's other checks)."""
    return f"status:{tenant}:{session}"


def _predates(identity: Identity, before: Any) -> bool:
    """Whether the token was issued before ``before`` (an erasure; None: no erasure)."""
    if before is None:
        return False
    return identity.issued_at is None or identity.issued_at < math.floor(before)
