"""Members first: new WebSocket upgrades wait while the node's core is nearly full.

The core is made busy for real: a task that burns CPU in slices, so the loop still
turns (as it does under a storm of joins) while the process uses all of a core.
"""

from __future__ import annotations

import asyncio
import time

import httpx

from classroom.edge.upgrade_gate import UpgradeGate
from tests.conftest import ServerFactory


async def burn(seconds: float, slice_seconds: float = 0.004) -> None:
    """Use the core for ``seconds``, letting the loop turn every ``slice_seconds``."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        busy_until = time.perf_counter() + slice_seconds
        while time.perf_counter() < busy_until:
            pass
        await asyncio.sleep(0)


class Upgrades:
    """Upgrades as the HTTP protocol hands them to the gate: who ran, who was paused."""

    def __init__(self, gate: UpgradeGate) -> None:
        self.gate = gate
        self.ran: list[str] = []
        self.paused: list[str] = []
        self.gone: set[str] = set()

    def arrive(self, name: str) -> bool:
        return self.gate.admit(lambda: self.ran.append(name), lambda: name in self.gone,
                               lambda: self.paused.append(name))


async def test_an_idle_core_lets_every_upgrade_through_at_once() -> None:
    upgrades = Upgrades(UpgradeGate(0.9, 50))
    assert all(upgrades.arrive(f"c{i}") for i in range(20))
    assert upgrades.ran == [f"c{i}" for i in range(20)] and upgrades.paused == []
    upgrades.gate.stop()


async def test_a_full_core_holds_new_upgrades_and_lets_them_in_in_order_once_it_has_room(
) -> None:
    # A low threshold: under a parallel test run this process may get half a core.
    upgrades = Upgrades(UpgradeGate(0.3, 1))  # at least one a second: none within the burn
    assert upgrades.arrive("before")  # starts the probe
    await burn(0.4)
    assert upgrades.gate.share > 0.3
    held = [upgrades.arrive(name) for name in ("a", "b", "c")]
    assert held == [False, False, False] and upgrades.paused == ["a", "b", "c"]
    upgrades.gone.add("b")  # gave up while waiting: skipped
    assert upgrades.ran == ["before"] and len(upgrades.gate) == 3
    for _ in range(100):  # the burn is over: the line goes through within a few ticks
        if not len(upgrades.gate):
            break
        await asyncio.sleep(0.01)
    assert upgrades.ran == ["before", "a", "c"]
    upgrades.gate.stop()


async def test_however_busy_the_core_the_line_moves_at_the_least_rate() -> None:
    upgrades = Upgrades(UpgradeGate(0.3, 20))  # one every 50 ms at least
    upgrades.arrive("start")
    await burn(0.3)
    for i in range(10):
        upgrades.arrive(f"c{i}")
    await burn(0.3)  # still full: about six get through meanwhile
    assert 2 <= len(upgrades.ran) - 1 <= 9
    assert upgrades.ran[1:] == [f"c{i}" for i in range(len(upgrades.ran) - 1)]
    upgrades.gate.stop()


async def test_turned_off_it_never_holds() -> None:
    upgrades = Upgrades(UpgradeGate(0, 50))
    await burn(0.2)
    assert upgrades.arrive("a") and upgrades.paused == []


async def test_a_busy_node_makes_new_websockets_wait_but_not_its_health_check(
    start_server: ServerFactory,
) -> None:
    server = await start_server(upgrade_gate_cpu=0.3, upgrade_gate_min_rate=1)
    first = await server.client("u0", "student", name="Early")  # starts the probe
    burning = asyncio.create_task(burn(1.0))
    await asyncio.sleep(0.3)
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=server.http_url) as http:
        ready = await http.get("/readyz")
    assert ready.status_code == 200 and time.monotonic() - started < 0.3
    late = asyncio.create_task(server.client("u1", "student", name="Late"))
    await asyncio.sleep(0.3)
    assert not late.done()  # its upgrade waits while the core is full
    gate = server.app.state.classroom.upgrade_gate
    assert len(gate) == 1
    await burning
    client = await asyncio.wait_for(late, 5)  # then it connects, as if nothing happened
    assert (await client.request("ping"))["type"] == "pong"
    await asyncio.gather(first.close(), client.close())
