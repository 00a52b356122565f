"""The attendance register: kept as people come and go on every node, read by the back end.

Joins and leaves are logged where presence decides them (a user's first
connection, their last one), so a user with two devices on two nodes is one
span. A node that dies logs nothing more: its users' presence expires, the
sweeping node logs their departure at the moment it expired (the last
heartbeat that saw them, plus the presence TTL), not when they next join. A
failed write is logged and skipped: a lesson never stops for its register.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from classroom.backends.data.attendance import AttendanceLog
from classroom.backends.data.records import Records
from classroom.backends.data.store import DataUnavailable
from classroom.domain.attendance import ARRIVED, Lesson, intervals, summary
from classroom.domain.channel import Channel
from classroom.domain.participants import Participant
from presence.store import PresenceStore

log = logging.getLogger("classroom.sessions.attendance")

DepartureHook = Callable[[str, str, str], Awaitable[None]]
"""Runs after a departure is logged, with tenant, session and sub (``attendance.updated``)."""


class Attendance:
    """Logs arrivals and departures, and builds a session's register."""

    def __init__(
        self,
        records: Records,
        presence: PresenceStore,
        presence_ttl: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.log: AttendanceLog = records.attendance
        self._records = records
        self._presence = presence
        self._ttl = presence_ttl
        self._clock = clock
        self.on_departure: DepartureHook | None = None
        """Set by the app: the back end's ``attendance.updated`` webhook."""

    async def arrived(self, channel: Channel, participant: Participant) -> None:
        """The user's first connection in the session joined."""
        tenant, session, sub = channel.tenant, channel.session, participant.sub
        now = self._clock()
        try:
            last, seen = await self.log.last_and_seen(tenant, session, sub)
            left_at = None
            if last is not None and last.get("k") == ARRIVED:
                # Still open: the node that had them died and nobody swept since.
                left_at = self._expiry(seen, now)
            await self.log.arrived(tenant, session, sub, participant.role, now, left_at=left_at)
        except DataUnavailable as exc:  # the message is the Redis error's type, no data
            log.warning("attendance not logged",
                        extra={"session": channel.name, "reason": str(exc)})

    async def departed(self, channel: Channel, sub: str) -> None:
        """The user's last connection in the session left."""
        await self._depart(channel, sub, self._clock())

    async def expired(self, channel: Channel, sub: str) -> None:
        """The user's presence expired (their node died): they left when it did."""
        try:
            at = await self._expired_at(channel, sub, self._clock())
        except DataUnavailable:
            at = self._clock()
        await self._depart(channel, sub, at)

    async def seen(self, channel: Channel, subs: list[str]) -> None:
        """A heartbeat: these users are present on this node now."""
        if not subs:
            return
        try:
            await self.log.seen(channel.tenant, channel.session, subs, self._clock())
        except DataUnavailable:
            log.warning("attendance heartbeat not logged", extra={"session": channel.name})

    async def line_of(self, tenant: str, session: str, sub: str) -> dict[str, Any]:
        """One user's line of the register (for export, and what erasure may keep)."""
        lesson, _ = await self._lesson(tenant, session)
        present = await self._present(Channel(tenant, session))
        seen = await self.log.last_seen(tenant, session)
        return await self._line(tenant, session, sub, lesson, present, seen)

    async def register(self, tenant: str, session: str) -> dict[str, Any]:
        """Every participant's spans, minutes and threshold, rostered or not."""
        lesson, status = await self._lesson(tenant, session)
        roster = await self._records.roster(tenant, session) or {}
        registration = {s.get("sub"): s.get("registration_id")
                        for s in roster.get("students", []) if isinstance(s, dict)}
        roles = dict.fromkeys(roster.get("trainers", []), "trainer")
        roles.update(dict.fromkeys(registration, "student"))
        present = await self._present(Channel(tenant, session))
        seen = await self.log.last_seen(tenant, session)
        subs = sorted(set(roles) | await self.log.users(tenant, session))
        lines = []
        for sub in subs:
            line = await self._line(tenant, session, sub, lesson, present, seen)
            line["role"] = line["role"] or roles.get(sub)
            line["registration_id"] = registration.get(sub)
            lines.append(line)
        window = lesson.window(self._clock())
        return {
            "session": session,
            "status": status,
            "started_at": lesson.started_at,
            "ended_at": lesson.ended_at,
            "duration_minutes": round((window[1] - window[0]) / 60.0, 2) if window else 0.0,
            "min_attendance_percent": lesson.min_percent,
            "participants": lines,
            "erased": [{"subject": subject, **kept} for subject, kept
                       in sorted((await self.log.kept(tenant, session)).items())],
        }

    async def _line(
        self, tenant: str, session: str, sub: str, lesson: Lesson,
        present: set[str], seen: dict[str, float],
    ) -> dict[str, Any]:
        entries = await self.log.log(tenant, session, sub)
        now = self._clock()
        is_present = sub in present
        open_until = now if is_present else min(now, seen.get(sub, now) + self._ttl)
        role = next((e.get("role") for e in reversed(entries) if e.get("role")), None)
        return {"sub": sub, "role": role, "present": is_present,
                **summary(intervals(entries, open_until), lesson, now)}

    async def _lesson(self, tenant: str, session: str) -> tuple[Lesson, str | None]:
        status = await self._records.status(tenant, session) or {}
        roster = await self._records.roster(tenant, session) or {}
        threshold = roster.get("min_attendance_percent")
        lesson = Lesson(
            started_at=status.get("live_at"),
            ended_at=status.get("ended_at"),
            min_percent=float(threshold) if isinstance(threshold, int | float) else None,
        )
        return lesson, status.get("status")

    async def _present(self, channel: Channel) -> set[str]:
        return {entry.user for entry in await self._presence.participants(channel.name)}

    async def _expired_at(self, channel: Channel, sub: str, now: float) -> float:
        return self._expiry(await self.log.seen_of(channel.tenant, channel.session, sub), now)

    def _expiry(self, seen: float | None, now: float) -> float:
        """When presence last seen at ``seen`` expired (or now, if not yet or never seen)."""
        return now if seen is None else min(now, seen + self._ttl)

    async def _depart(self, channel: Channel, sub: str, at: float) -> None:
        try:
            await self.log.departed(channel.tenant, channel.session, sub, at)
        except DataUnavailable as exc:  # the message is the Redis error's type, no data
            log.warning("attendance not logged",
                        extra={"session": channel.name, "reason": str(exc)})
            return
        if self.on_departure is not None:
            try:
                await self.on_departure(channel.tenant, channel.session, sub)
            except Exception:  # a leave must not fail for the back end's notification
                log.warning("attendance hook failed", extra={"session": channel.name},
                            exc_info=True)
