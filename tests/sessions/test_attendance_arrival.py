"""An arrival after a span left open (the user's node died before anyone swept it)
closes that span where the user's presence expired, then opens the new one."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from classroom.backends.data.records import Records
from classroom.domain.channel import Channel
from classroom.domain.participants import Participant
from classroom.sessions.attendance import Attendance
from presence.memory import MemoryPresenceStore
from tests.records_backends import records_on

TTL = 30.0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["memory", "redis"])
async def records(request: pytest.FixtureRequest) -> AsyncIterator[Records]:
    async with records_on(str(request.param)) as made:
        yield made


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def attendance(records: Records, clock: Clock) -> Attendance:
    return Attendance(records, MemoryPresenceStore(), TTL, clock=clock)


STUDENT = Participant(pid="p1", role="student", sub="u1")
S1 = Channel("acme", "s1")


async def test_a_return_after_a_dead_node_closes_the_open_span_at_its_expiry(
    attendance: Attendance, clock: Clock
) -> None:
    await attendance.arrived(S1, STUDENT)
    clock.now = 1010.0
    await attendance.seen(S1, ["u1"])  # the last heartbeat of the node that then died
    clock.now = 2000.0
    await attendance.arrived(S1, STUDENT)  # on another node, long after
    log = await attendance.log.log("acme", "s1", "u1")
    assert [(e["k"], e["t"]) for e in log] == [("in", 1000.0), ("out", 1010.0 + TTL),
                                              ("in", 2000.0)]


async def test_a_return_right_after_an_open_span_closes_it_now(
    attendance: Attendance, clock: Clock
) -> None:
    await attendance.arrived(S1, STUDENT)
    clock.now = 1005.0  # within the presence TTL of its arrival
    await attendance.arrived(S1, STUDENT)
    log = await attendance.log.log("acme", "s1", "u1")
    assert [(e["k"], e["t"]) for e in log] == [("in", 1000.0), ("out", 1005.0),
                                              ("in", 1005.0)]


async def test_a_closed_span_is_not_closed_again(attendance: Attendance, clock: Clock) -> None:
    await attendance.arrived(S1, STUDENT)
    clock.now = 1100.0
    await attendance.departed(S1, "u1")
    clock.now = 1200.0
    await attendance.arrived(S1, STUDENT)
    log = await attendance.log.log("acme", "s1", "u1")
    assert [e["k"] for e in log] == ["in", "out", "in"]
