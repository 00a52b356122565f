"""Turns for joins and leaves: how many run at once, who goes first, and who gives up."""

from __future__ import annotations

import asyncio
import contextlib

import httpx
import pytest
from prometheus_client import CollectorRegistry, Gauge

from classroom.domain.refusals import RequestRefused
from classroom.sessions.admission import BUSY, Admission
from tests.conftest import METRICS_TOKEN, ServerFactory


class Line:
    """Holders of turns: each records its name when it gets one and keeps it until
    ``release`` is set."""

    def __init__(self, limit: int, max_wait: float = 5) -> None:
        self.admission = Admission(limit=limit, max_wait=max_wait)
        self.release = asyncio.Event()
        self.started: list[str] = []

    def join(self, name: str) -> asyncio.Task[None]:
        return asyncio.create_task(self._hold(self.admission.join_turn(), name))

    def leave(self, name: str) -> asyncio.Task[None]:
        return asyncio.create_task(self._hold(self.admission.leave_turn(), name))

    async def _hold(self, turn: contextlib.AbstractAsyncContextManager[None], name: str) -> None:
        async with turn:
            self.started.append(name)
            await self.release.wait()


async def test_no_more_than_the_limit_run_at_once_and_the_rest_go_in_arrival_order() -> None:
    line = Line(limit=2)
    tasks = [line.join(f"j{i}") for i in range(5)]
    await asyncio.sleep(0.01)
    assert line.started == ["j0", "j1"]
    assert line.admission.queued == 3
    line.release.set()
    await asyncio.gather(*tasks)
    assert line.started == ["j0", "j1", "j2", "j3", "j4"]
    assert line.admission.queued == 0


async def test_the_waiting_gauge_tells_the_line_as_it_is_when_read() -> None:
    registry = CollectorRegistry()
    gauge = Gauge("waiting", "joins and leaves in line", registry=registry)
    admission = Admission(limit=1, max_wait=5, waiting=gauge)
    release = asyncio.Event()

    async def hold(turn: contextlib.AbstractAsyncContextManager[None]) -> None:
        async with turn:
            await release.wait()

    tasks = [asyncio.create_task(hold(admission.join_turn())) for _ in range(3)]
    tasks.append(asyncio.create_task(hold(admission.leave_turn())))
    await asyncio.sleep(0.01)
    assert registry.get_sample_value("waiting") == 3  # one holds the turn, three in line
    release.set()
    await asyncio.gather(*tasks)
    assert registry.get_sample_value("waiting") == 0


async def test_joins_waiting_go_before_leaves_waiting() -> None:
    line = Line(limit=1)
    first = line.join("first")
    await asyncio.sleep(0)
    waiting = [line.leave("leave1"), line.leave("leave2"), line.join("join1")]
    await asyncio.sleep(0.01)
    line.release.set()
    await asyncio.gather(first, *waiting)
    assert line.started == ["first", "join1", "leave1", "leave2"]


async def test_a_join_that_waits_too_long_is_told_the_server_is_busy_and_frees_its_place(
) -> None:
    line = Line(limit=1, max_wait=0.05)
    holder = line.join("holder")
    await asyncio.sleep(0)
    with pytest.raises(RequestRefused) as refused:
        async with line.admission.join_turn():
            pytest.fail("got a turn while the only one was held")
    assert (refused.value.code, refused.value.message) == ("unavailable", BUSY)
    assert line.admission.queued == 0
    # A leave waits however long it takes, and gets the turn when it is given back.
    leave = line.leave("leave")
    await asyncio.sleep(0.1)
    assert not leave.done()
    line.release.set()
    await asyncio.gather(holder, leave)
    assert line.started == ["holder", "leave"]


async def test_a_waiter_cancelled_as_it_is_handed_the_turn_passes_it_on() -> None:
    line = Line(limit=1)
    holder = line.join("holder")
    await asyncio.sleep(0)
    cancelled, after = line.join("cancelled"), line.join("after")
    await asyncio.sleep(0.01)
    line.release.set()
    while line.admission.queued == 2:  # the holder gives its turn to the next in line...
        await asyncio.sleep(0)
    assert "cancelled" not in line.started
    cancelled.cancel()  # ...which is cancelled before it could run
    await asyncio.gather(holder, after)
    assert line.started == ["holder", "after"]
    # The turn came back exactly once: one can be taken, a second waits.
    async with line.admission.join_turn():
        assert line.admission.queued == 0
        blocked = line.join("next")
        await asyncio.sleep(0.01)
        assert not blocked.done()
    await blocked


async def test_a_node_with_one_turn_still_lets_a_burst_of_members_in_and_out(
    start_server: ServerFactory,
) -> None:
    server = await start_server(admission_limit=1)
    clients = [await server.client(f"u{i}", "student", ["s1"], name=f"Student {i}")
               for i in range(30)]
    replies = await asyncio.gather(*(c.request("join", session="s1") for c in clients))
    assert [r["type"] for r in replies] == ["joined"] * 30
    await asyncio.gather(*(c.close() for c in clients[10:]))  # 20 leave at once
    trainer = await server.member("t1", "trainer", name="Tessa Trainer")
    for _ in range(100):
        listed = await trainer.request("presence", session="s1")
        if len(listed["participants"]) == 11:
            break
        await asyncio.sleep(0.05)
    assert sorted(p["name"] for p in listed["participants"]) == sorted(
        ["Tessa Trainer", *(f"Student {i}" for i in range(10))])
    async with httpx.AsyncClient(base_url=server.http_url) as http:
        metrics = await http.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert "classroom_admission_waiting 0.0" in metrics.text
