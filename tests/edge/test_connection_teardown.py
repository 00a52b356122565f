"""A closed connection (and an upgraded one's HTTP protocol) is freed when its last reference
goes, not by the cycle collector.

Objects in reference cycles wait for a garbage collection of the oldest
generation, which walks every live object: after a storm of 5,000 reconnects the
closed connections' objects were freed in pauses of 200-650 ms in which no member
got an event (docs/performance.md, "5,000 reconnects").
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator

import pytest

from classroom.edge.connection import Connection
from classroom.edge.guarded_http import GuardedHttpProtocol
from classroom.edge.send_queue import SendQueue
from classroom.edge.server import FramesProtocol
from tests.conftest import RunningServer

OURS = (Connection, SendQueue, FramesProtocol, GuardedHttpProtocol)


@pytest.fixture
def collector_off() -> Iterator[None]:
    """No automatic collection while the test looks at what only a collection frees."""
    gc.collect()
    gc.disable()
    yield
    gc.set_debug(0)
    gc.garbage.clear()
    gc.enable()


async def test_closed_connections_leave_no_cycles_behind(
    server: RunningServer, collector_off: None,
) -> None:
    clients = [await server.member(f"u{i}", "student", name=f"Student {i}") for i in range(5)]
    trainer = await server.member("t1", "trainer", name="Tessa Trainer")
    sent = await trainer.request("publish", session="s1", event={"kind": "chat", "text": "hoi"})
    assert sent["type"] == "published"
    for client in clients:
        await client.close()
    registry = server.app.state.classroom.connections
    for _ in range(200):
        if len(registry) == 1:  # only the trainer's connection is left
            break
        await asyncio.sleep(0.01)
    assert len(registry) == 1
    await asyncio.sleep(0.1)  # the closed connections' tasks finish
    gc.set_debug(gc.DEBUG_SAVEALL)
    gc.collect()
    cyclic = [type(o).__name__ for o in gc.garbage if isinstance(o, OURS)]
    assert cyclic == []
