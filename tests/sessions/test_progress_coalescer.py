"""Progress pushes: at most one per interval per session, and nothing kept once it is quiet."""

from __future__ import annotations

import asyncio
from typing import Any

from classroom.sessions.progress import ProgressCoalescer

INTERVAL = 0.05


def _student(pid: str) -> dict[str, Any]:
    return {"pid": pid, "role": "student"}


async def test_reports_are_coalesced_and_a_quiet_session_is_forgotten() -> None:
    pushes: list[tuple[str, list[str]]] = []
    coalescer = ProgressCoalescer(
        INTERVAL, lambda channel, rows: pushes.append((channel, [p["pid"] for p, _ in rows])))
    coalescer.report("s1", _student("a"), {"screen": "1"})
    await asyncio.sleep(0)  # the first report goes out at once (next loop iteration)
    assert pushes == [("s1", ["a"])]
    coalescer.report("s1", _student("b"), {"screen": "1"})
    coalescer.report("s1", _student("c"), {"screen": "2"})
    coalescer.report("s1", _student("b"), {"screen": "3"})
    await asyncio.sleep(INTERVAL / 2)
    assert len(pushes) == 1  # still within the interval since the first push
    await asyncio.sleep(INTERVAL)
    assert pushes[1] == ("s1", ["b", "c"])
    await asyncio.sleep(INTERVAL * 2)  # an interval with nothing new: the session is let go
    assert coalescer._timers == {} and coalescer._pending == {}
    coalescer.report("s1", _student("a"), {"screen": "4"})
    await asyncio.sleep(0)
    assert pushes[2] == ("s1", ["a"])  # and a later report is pushed at once again


async def test_forget_drops_what_is_pending() -> None:
    pushes: list[str] = []
    coalescer = ProgressCoalescer(INTERVAL, lambda channel, rows: pushes.append(channel))
    coalescer.report("s1", _student("a"), {"screen": "1"})
    coalescer.forget("s1")
    await asyncio.sleep(INTERVAL)
    assert pushes == [] and coalescer._timers == {} and coalescer._pending == {}
