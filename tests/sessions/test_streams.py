"""Session streams: state in offset order, every event delivered once, gaps repaired."""

from __future__ import annotations

import asyncio
from typing import Any

from classroom.backends.broker import MemoryBroker, Publication, StreamPosition
from classroom.sessions.messages import pack_internal
from classroom.sessions.streams import SessionStreams

CHANNEL = "acme:s1"
TRAINER = {"pid": "p1", "role": "trainer", "sub": "t1"}


def navigate(screen: str) -> bytes:
    record = {"kind": "screen.navigate", "screen": screen, "by": TRAINER, "at": 1.0}
    return pack_internal({"t": "event", "record": record})


class Delivered:
    def __init__(self) -> None:
        self.offsets: list[int] = []

    def __call__(self, channel: str, pub: Publication, message: dict[str, Any]) -> None:
        self.offsets.append(pub.offset)


async def stored(broker: MemoryBroker, count: int, first: int = 1) -> list[Publication]:
    pubs = []
    for n in range(first, first + count):
        result = await broker.publish(CHANNEL, navigate(f"screen-{n}"))
        pubs.append(Publication(result.position.offset, result.position.epoch,
                                navigate(f"screen-{n}")))
    return pubs


async def test_in_order_publications_apply_and_deliver_once() -> None:
    broker = MemoryBroker()
    delivered = Delivered()
    streams = SessionStreams(broker, delivered)
    pubs = await stored(broker, 3)
    for pub in [*pubs, pubs[1]]:
        streams.receive(CHANNEL, pub)
    assert delivered.offsets == [1, 2, 3]
    assert streams.runtime(CHANNEL).state.screen == "screen-3"


async def test_a_gap_is_filled_from_history_in_order() -> None:
    broker = MemoryBroker()
    delivered = Delivered()
    streams = SessionStreams(broker, delivered)
    pubs = await stored(broker, 6)
    streams.receive(CHANNEL, pubs[0])
    streams.receive(CHANNEL, pubs[4])  # 2, 3 and 4 went missing
    streams.receive(CHANNEL, pubs[5])
    await streams.settled(CHANNEL)
    assert delivered.offsets == [1, 2, 3, 4, 5, 6]
    assert streams.runtime(CHANNEL).state.offset == 6


async def test_a_late_subscriber_catches_up_on_sync() -> None:
    broker = MemoryBroker()
    delivered = Delivered()
    streams = SessionStreams(broker, delivered)
    await stored(broker, 4)
    await streams.sync(CHANNEL)
    runtime = streams.runtime(CHANNEL)
    assert runtime.state.screen == "screen-4" and runtime.state.offset == 4
    assert delivered.offsets == [1, 2, 3, 4]


async def test_a_new_epoch_restarts_offsets_from_the_empty_state() -> None:
    broker = MemoryBroker()
    delivered = Delivered()
    streams = SessionStreams(broker, delivered)
    for pub in await stored(broker, 2):
        streams.receive(CHANNEL, pub)
    old_epoch = streams.runtime(CHANNEL).epoch
    fresh = Publication(1, "another-epoch", navigate("after-loss"))
    streams.receive(CHANNEL, fresh)
    runtime = streams.runtime(CHANNEL)
    assert runtime.epoch == "another-epoch" != old_epoch
    assert runtime.state.offset == 1 and runtime.state.screen == "after-loss"
    lock = pack_internal({"t": "event", "record": {"kind": "screen.lock", "locked": True,
                                                   "by": TRAINER, "at": 1.0}})
    streams.receive(CHANNEL, Publication(2, "another-epoch", lock))
    streams.receive(CHANNEL, Publication(1, "third-epoch", navigate("again")))
    assert streams.runtime(CHANNEL).state.locked is False  # nothing carried across epochs


async def test_wait_applied_returns_once_the_position_is_applied() -> None:
    broker = MemoryBroker()
    streams = SessionStreams(broker, Delivered())
    pubs = await stored(broker, 2)
    target = StreamPosition(2, pubs[1].epoch)
    waiter = asyncio.create_task(streams.wait_applied(CHANNEL, target, timeout=5))
    await asyncio.sleep(0.01)
    assert not waiter.done()
    streams.receive(CHANNEL, pubs[0])
    streams.receive(CHANNEL, pubs[1])
    await asyncio.wait_for(waiter, 1)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await streams.wait_applied(CHANNEL, StreamPosition(9, pubs[1].epoch), timeout=0.2)
    assert loop.time() - started < 1
