"""The SnapshotStore contract, on the memory broker and on Redis: a snapshot lives beside
its stream, only moves forward within it, and goes when the stream goes."""

from __future__ import annotations

import asyncio

from classroom.backends.broker import Broker, StreamPosition
from classroom.backends.snapshots.base import Snapshot
from classroom.backends.snapshots.factory import snapshots_for

CHANNEL = "acme:s1"


async def published(broker: Broker, count: int) -> StreamPosition:
    position = await broker.position(CHANNEL)
    for n in range(count):
        position = (await broker.publish(CHANNEL, f"m{n}".encode())).position
    return position


async def test_a_new_stream_has_no_snapshot(broker: Broker) -> None:
    assert await snapshots_for(broker).load(CHANNEL) is None


async def test_a_snapshot_is_loaded_as_saved(broker: Broker) -> None:
    store = snapshots_for(broker)
    position = await published(broker, 3)
    snapshot = Snapshot(position, b"\x00state\xff")
    assert await store.save(CHANNEL, snapshot)
    assert await store.load(CHANNEL) == snapshot
    assert await store.load("acme:other") is None


async def test_a_snapshot_only_moves_forward(broker: Broker) -> None:
    store = snapshots_for(broker)
    epoch = (await published(broker, 5)).epoch
    assert await store.save(CHANNEL, Snapshot(StreamPosition(4, epoch), b"four"))
    assert not await store.save(CHANNEL, Snapshot(StreamPosition(3, epoch), b"three"))
    assert not await store.save(CHANNEL, Snapshot(StreamPosition(4, epoch), b"again"))
    assert await store.save(CHANNEL, Snapshot(StreamPosition(5, epoch), b"five"))
    assert await store.load(CHANNEL) == Snapshot(StreamPosition(5, epoch), b"five")


async def test_replace_rewrites_a_snapshot_in_place(broker: Broker) -> None:
    store = snapshots_for(broker)
    position = await published(broker, 2)
    assert await store.save(CHANNEL, Snapshot(position, b"with someone"))
    assert await store.save(CHANNEL, Snapshot(position, b"scrubbed"), replace=True)
    older = StreamPosition(position.offset - 1, position.epoch)
    assert not await store.save(CHANNEL, Snapshot(older, b"older"), replace=True)
    assert await store.load(CHANNEL) == Snapshot(position, b"scrubbed")


async def test_a_snapshot_of_another_epoch_or_past_the_stream_is_refused(broker: Broker) -> None:
    store = snapshots_for(broker)
    position = await published(broker, 2)
    assert not await store.save(CHANNEL, Snapshot(StreamPosition(1, "another"), b"x"))
    ahead = StreamPosition(position.offset + 1, position.epoch)
    assert not await store.save(CHANNEL, Snapshot(ahead, b"x"))
    assert await store.load(CHANNEL) is None


async def test_concurrent_saves_keep_the_newest(broker: Broker) -> None:
    store = snapshots_for(broker)
    epoch = (await published(broker, 20)).epoch
    await asyncio.gather(*(store.save(CHANNEL, Snapshot(StreamPosition(n, epoch), b"%d" % n))
                           for n in (7, 20, 3, 15, 20, 11)))
    assert await store.load(CHANNEL) == Snapshot(StreamPosition(20, epoch), b"20")


async def test_a_snapshot_goes_with_its_lost_stream(broker: Broker, expire, limits) -> None:
    store = snapshots_for(broker)
    position = await published(broker, 2)
    assert await store.save(CHANNEL, Snapshot(position, b"state"))
    await expire(limits.history_ttl + 0.5)
    fresh = await broker.position(CHANNEL)
    assert fresh.epoch != position.epoch and fresh.offset == 0
    assert await store.load(CHANNEL) is None
    assert not await store.save(CHANNEL, Snapshot(position, b"stale"))


async def test_a_retained_stream_keeps_its_snapshot(broker: Broker, expire, limits) -> None:
    store = snapshots_for(broker)
    position = await published(broker, 2)
    assert await store.save(CHANNEL, Snapshot(position, b"final"))
    await broker.retain(CHANNEL, limits.history_ttl * 3)
    await expire(limits.history_ttl + 0.5)
    assert await store.load(CHANNEL) == Snapshot(position, b"final")
