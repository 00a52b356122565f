"""While connections pour in, young collections' survivors are frozen, and thawed when calm.

A storm of reconnects filled the middle generation with live connections that
each of its collections walked again (30-45 ms, a dozen per storm, no event
delivered meanwhile); frozen, they are not walked, and they still go when their
reference count says so. What a freeze must not do is lose memory: anything
frozen that later becomes garbage through a cycle is found once thawed. These
run the real collector.
"""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from classroom.edge.ramp_freeze import RampFreeze
from tests.conftest import METRICS_TOKEN, ServerFactory
from tests.edge.test_stalls import series


class Thing:
    """A tracked object that can be watched with a weak reference."""

    partner: Thing | None = None


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Arrivals:
    """A node's running total of accepted connections."""

    def __init__(self) -> None:
        self.total = 0

    def __call__(self) -> int:
        return self.total


@pytest.fixture
def refreeze_after() -> Iterator[None]:
    """Freeze the test process's objects again afterwards, as ``pytest_collection_finish``
    did (a thaw hands back everything frozen, the test process's own too)."""
    yield
    gc.collect()
    gc.freeze()


@pytest.fixture
async def freezer(refreeze_after: None) -> AsyncIterator[tuple[RampFreeze, Arrivals, Clock]]:
    arrivals, clock = Arrivals(), Clock()
    freeze = RampFreeze(arrivals, connects_per_collection=5, thaw_after=30.0, clock=clock)
    freeze.start()
    yield freeze, arrivals, clock
    await freeze.stop()
    assert not freeze.frozen


def is_walked(thing: object) -> bool:
    """Whether the collector still walks ``thing`` (frozen objects are in no generation)."""
    return any(found is thing for found in gc.get_objects())


async def test_survivors_are_frozen_only_while_connections_arrive(
    freezer: tuple[RampFreeze, Arrivals, Clock],
) -> None:
    freeze, arrivals, _ = freezer
    calm = Thing()
    arrivals.total += 4  # fewer than five since the last young collection
    gc.collect(0)
    assert not freeze.frozen and is_walked(calm)

    ramp = Thing()  # made before the arrivals: no automatic collection between them
    arrivals.total += 5
    gc.collect(0)
    assert freeze.frozen
    assert not is_walked(ramp) and not is_walked(calm)

    gc.collect(0)  # nobody arrived since: this one's survivors stay in the generations
    later = Thing()
    gc.collect(0)
    assert is_walked(later)


async def test_a_frozen_object_still_goes_with_its_last_reference(
    freezer: tuple[RampFreeze, Arrivals, Clock],
) -> None:
    _, arrivals, _ = freezer
    connection = Thing()
    gone = weakref.ref(connection)
    arrivals.total += 5
    gc.collect(0)
    assert not is_walked(connection)
    del connection  # what a closed connection is: no cycle, freed at once, frozen or not
    assert gone() is None


async def test_a_cycle_frozen_in_a_ramp_is_collected_after_the_thaw(
    freezer: tuple[RampFreeze, Arrivals, Clock],
) -> None:
    freeze, arrivals, clock = freezer
    first, second = Thing(), Thing()
    first.partner, second.partner = second, first
    gone = weakref.ref(first)
    arrivals.total += 5
    gc.collect(0)
    del first, second
    gc.collect()
    assert gone() is not None  # frozen: even a full collection does not look at it

    clock.now += 29.0
    assert not freeze.thaw_if_calm()  # connections arrived under 30 s ago
    clock.now += 1.0
    assert freeze.thaw_if_calm()
    assert not freeze.frozen and gc.get_freeze_count() == 0  # all handed back
    gc.collect()
    assert gone() is None


async def test_the_node_thaws_by_itself_when_calm(refreeze_after: None) -> None:
    arrivals = Arrivals()
    freeze = RampFreeze(arrivals, connects_per_collection=1, thaw_after=0.1)
    freeze.start()
    try:
        arrivals.total += 1
        gc.collect(0)
        assert freeze.frozen
        for _ in range(100):
            if not freeze.frozen:
                break
            await asyncio.sleep(0.02)
        assert not freeze.frozen and gc.get_freeze_count() == 0
    finally:
        await freeze.stop()


async def test_off_when_the_setting_is_zero() -> None:
    arrivals = Arrivals()
    callbacks = len(gc.callbacks)
    freeze = RampFreeze(arrivals, connects_per_collection=0, thaw_after=1.0)
    freeze.start()
    assert len(gc.callbacks) == callbacks
    arrivals.total += 1000
    kept = Thing()
    gc.collect(0)
    assert not freeze.frozen and is_walked(kept)
    await freeze.stop()


async def _ramp_events(url: str) -> tuple[float, float]:
    async with httpx.AsyncClient(base_url=url) as http:
        text = (await http.get("/metrics",
                               headers={"Authorization": f"Bearer {METRICS_TOKEN}"})).text
    return (series(text, "classroom_gc_ramp_freeze_total", event="freeze"),
            series(text, "classroom_gc_ramp_freeze_total", event="thaw"))


async def test_a_node_freezes_in_a_ramp_of_connections_and_thaws_after_it(
    start_server: ServerFactory, refreeze_after: None,
) -> None:
    server = await start_server(gc_freeze_connects=1, gc_thaw_after=0.3)
    assert await _ramp_events(server.http_url) == (0, 0)
    clients = [await server.member(f"u{i}", "student", name=f"Student {i}") for i in range(6)]
    gc.collect(0)  # at least this one follows an arrival
    freezes, thaws = await _ramp_events(server.http_url)
    assert freezes >= 1 and thaws == 0
    replies = [await client.request("presence", session="s1") for client in clients]
    assert all(len(reply["participants"]) == 6 for reply in replies)  # the node serves on
    for _ in range(100):
        if (await _ramp_events(server.http_url))[1]:
            break
        await asyncio.sleep(0.05)
    assert await _ramp_events(server.http_url) == (freezes, 1)  # once calm, one thaw
    assert gc.get_freeze_count() == 0
    for client in clients:
        await client.close()
