"""Attendance for accreditation: who was present when, and whether it was enough.

A user's presence in a session is logged as arrivals and departures: an arrival
when their first connection joins (on any node, any device), a departure when
their last one leaves, or, when a node died with them, at the moment their
presence expired. From that log come the intervals present, the minutes within
the lesson (from its start, the first trainer's join, to its end) and whether
the session's threshold (``min_attendance_percent`` on the roster) was met.
This module is pure: the log is read and written elsewhere.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

ARRIVED = "in"
DEPARTED = "out"

Interval = tuple[float, float]


@dataclass(frozen=True, slots=True)
class Lesson:
    """The window the minutes count in, and the share of it a participant must attend."""

    started_at: float | None
    """When the session went live (None: it never did, so nobody attended any of it)."""
    ended_at: float | None
    """When it ended (None: still running; the window runs until now)."""
    min_percent: float | None = None

    def window(self, now: float) -> Interval | None:
        """The lesson's span so far, or None before it started."""
        if self.started_at is None:
            return None
        return self.started_at, max(self.started_at, self.ended_at or now)


def intervals(log: Iterable[dict[str, Any]], open_until: float) -> list[Interval]:
    """The spans present, from an arrival/departure log (in any order).

    Arrivals while already present and departures while absent change nothing (a
    second device, a late sweep). A span still open ends at ``open_until``: now
    for a user still present, their presence's expiry for one who is not.
    """
    spans: list[Interval] = []
    opened: float | None = None
    for entry in sorted(log, key=lambda e: (float(e["t"]), e["k"] == ARRIVED)):
        at = float(entry["t"])
        if entry["k"] == ARRIVED and opened is None:
            opened = at
        elif entry["k"] == DEPARTED and opened is not None:
            spans.append((opened, max(opened, at)))
            opened = None
    if opened is not None:
        spans.append((opened, max(opened, open_until)))
    return spans


def minutes_within(spans: Iterable[Interval], window: Interval | None) -> float:
    """Minutes of ``spans`` inside ``window`` (overlaps of spans are counted once)."""
    if window is None:
        return 0.0
    low, high = window
    total, reached = 0.0, low
    for start, end in sorted(spans):
        start, end = max(start, reached), min(end, high)
        if end > start:
            total += end - start
            reached = end
    return total / 60.0


def summary(spans: list[Interval], lesson: Lesson, now: float | None = None) -> dict[str, Any]:
    """A participant's line of the register: intervals, minutes, percent, threshold met."""
    moment = time.time() if now is None else now
    window = lesson.window(moment)
    minutes = minutes_within(spans, window)
    length = (window[1] - window[0]) / 60.0 if window is not None else 0.0
    percent = round(100.0 * minutes / length, 1) if length > 0 else None
    met = None
    if lesson.min_percent is not None:
        met = percent is not None and percent >= lesson.min_percent
    return {
        "intervals": [{"from": start, "to": end} for start, end in spans],
        "minutes": round(minutes, 2),
        "percent": percent,
        "met": met,
    }
