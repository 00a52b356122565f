"""Cohort progress: the table a trainer watches, and the coalesced pushes that feed it.

The table covers every rostered student, online or not, so a trainer sees who
has not shown up as well as who is behind. Pushes are coalesced per session:
however many students report, trainers get at most one ``progress`` frame per
interval, carrying the latest report of every student that changed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from classroom.domain.participants import DisplayNamePolicy, display_name_for, make_pid


def roster_participant(
    student: dict[str, Any], *, secret: bytes, tenant: str, session: str,
    policy: DisplayNamePolicy,
) -> dict[str, Any]:
    """A participant record for a rostered student who may never have connected."""
    record: dict[str, Any] = {
        "pid": make_pid(secret, tenant, session, student["sub"]),
        "role": "student",
        "sub": student["sub"],
    }
    for key in ("name", "email", "phone", "username"):
        if student.get(key) is not None:
            record[key] = student[key]
    display_name = display_name_for(student.get("name"), policy)
    if display_name is not None:
        record["display_name"] = display_name
    return record


def cohort_rows(
    *,
    roster_students: list[dict[str, Any]],
    progress: dict[str, dict[str, Any]],
    online: set[str],
    hands: set[str],
    trainer_screen: str | None,
    screens: list[str] | None,
    idle_after: float,
    make_participant: Callable[[dict[str, Any]], dict[str, Any]],
    now: float | None = None,
) -> list[dict[str, Any]]:
    """One row per rostered student (then any other reporting student), in roster order."""
    now = time.time() if now is None else now
    order = {screen: index for index, screen in enumerate(screens or [])}
    rows = []
    seen: set[str] = set()
    rostered_subs = {s["sub"] for s in roster_students}
    people: list[tuple[str, dict[str, Any] | None]] = [(s["sub"], s) for s in roster_students]
    people += [(sub, None) for sub in progress if sub not in rostered_subs]
    for sub, rostered in people:
        if sub in seen:
            continue
        seen.add(sub)
        row = progress.get(sub, {})
        participant = make_participant(rostered) if rostered else dict(row.get("participant", {}))
        screen = row.get("screen")
        behind = None
        if trainer_screen in order and screen in order:
            behind = max(0, order[trainer_screen] - order[screen])
        last = row.get("last_activity")
        completed = list(row.get("completed", []))
        rows.append({
            "participant": participant,
            "screen": screen,
            "completed": completed,
            "completed_count": len(completed),
            "score": row.get("score"),
            "last_activity": last,
            "online": sub in online,
            "behind": behind,
            "idle": sub in online and (last is None or now - last > idle_after),
            "hand_raised": sub in hands,
        })
    return rows


PushBuilder = Callable[[str, list[tuple[dict[str, Any], dict[str, Any]]]], None]


class ProgressCoalescer:
    """Collects progress reports per session and flushes them at most once per interval."""

    def __init__(self, interval: float, flush: PushBuilder) -> None:
        self._interval = interval
        self._flush = flush
        self._pending: dict[str, dict[str, tuple[dict[str, Any], dict[str, Any]]]] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._last: dict[str, float] = {}

    def report(self, channel: str, participant: dict[str, Any], progress: dict[str, Any]) -> None:
        """Note a student's latest report; schedule the session's next push."""
        self._pending.setdefault(channel, {})[participant["pid"]] = (participant, progress)
        if channel in self._timers:
            return
        loop = asyncio.get_running_loop()
        wait = max(0.0, self._last.get(channel, 0.0) + self._interval - loop.time())
        self._timers[channel] = loop.call_later(wait, self._send, channel)

    def _send(self, channel: str) -> None:
        self._timers.pop(channel, None)
        pending = self._pending.pop(channel, {})
        self._last[channel] = asyncio.get_running_loop().time()
        if pending:
            self._flush(channel, list(pending.values()))

    def forget(self, channel: str) -> None:
        """Drop what is pending for a session (it ended, or nobody is left to tell)."""
        timer = self._timers.pop(channel, None)
        if timer is not None:
            timer.cancel()
        self._pending.pop(channel, None)
        self._last.pop(channel, None)

    def close(self) -> None:
        """Cancel every scheduled push."""
        for channel in list(self._timers):
            self.forget(channel)
