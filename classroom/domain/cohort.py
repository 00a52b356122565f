"""Cohort progress: the table a trainer watches, one row per student.

The table covers every rostered student, online or not, so a trainer sees who
has not shown up as well as who is behind.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from auth.identity import PROFILE_FIELDS
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
    for key in PROFILE_FIELDS:
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
