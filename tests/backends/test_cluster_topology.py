"""The broker on a real Redis Cluster: sessions on every shard, slot migration, kill -9."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import AsyncIterator

import pytest
import redis

from classroom.backends.broker import (
    Broker,
    BrokerUnavailable,
    Publication,
    StreamPosition,
    broker_from_url,
)
from tests.backends.conftest import drop_prefix
from tests.redis_topologies import ClusterSet


def slot_of(name: str) -> int:
    return int(redis.cluster.key_slot(name.encode()))


def channels_on_every_shard(cluster: ClusterSet, prefix: str, per_shard: int) -> list[str]:
    """``per_shard`` session channels owned by each primary."""
    picked: dict[int, list[str]] = {}
    n = 0
    while len(picked) < 3 or any(len(c) < per_shard for c in picked.values()):
        channel = f"acme:s{n}"
        n += 1
        owner = cluster.owner(slot_of(f"{prefix}:{{{channel}}}:meta")).port
        if len(picked.setdefault(owner, [])) < per_shard:
            picked[owner].append(channel)
    return [c for chosen in picked.values() for c in chosen]


class Node:
    """A broker as a node uses it: delivered publications, and a catch-up on reconnect."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.got: dict[str, list[Publication]] = {}
        self.reconnects = 0
        broker.on_reconnect = self._reconnected

    def __call__(self, channel: str, pub: Publication) -> None:
        self.got.setdefault(channel, []).append(pub)

    def _reconnected(self) -> None:
        self.reconnects += 1

    async def caught_up(self, channel: str) -> list[Publication]:
        """What a node applies: each delivered publication, after filling any gap before it
        from history (as ``SessionStreams`` does), then what history has after the last.

        Delivery itself must never go back or repeat within an epoch.
        """
        applied: list[Publication] = []
        for pub in [*self.got.get(channel, []), None]:
            last = applied[-1] if applied else None
            if pub is not None and last is not None and pub.epoch == last.epoch:
                assert pub.offset > last.offset, "delivered twice or out of order"
            if pub is not None and (last is None or pub.epoch != last.epoch
                                    or pub.offset == last.offset + 1):
                applied.append(pub)
                continue
            since = StreamPosition(last.offset, last.epoch) if last else None
            history = await self.broker.history(channel, since=since)
            assert history.recovered or since is None or history.position.epoch != since.epoch
            applied.extend(p for p in history.publications
                           if pub is None or p.offset < pub.offset or p.epoch != pub.epoch)
            if pub is not None:
                applied.append(pub)
        return applied


def in_order(pubs: list[Publication]) -> bool:
    """Within each epoch, offsets go up by exactly one, none twice."""
    for before, after in itertools.pairwise(pubs):
        if after.epoch == before.epoch and after.offset != before.offset + 1:
            return False
    return True


@pytest.fixture
async def prefix(cluster_set: ClusterSet) -> AsyncIterator[str]:
    made = f"test-{uuid.uuid4().hex[:12]}"
    yield made
    await drop_prefix(cluster_set.url, made)


async def started(url: str, prefix: str) -> Node:
    broker = broker_from_url(url, prefix=prefix, history_size=1000)
    node = Node(broker)
    await broker.start(node)
    return node


async def test_sessions_on_every_shard_keep_order_and_listen_on_their_shard_only(
    cluster_set: ClusterSet, prefix: str,
) -> None:
    channels = channels_on_every_shard(cluster_set, prefix, 2)
    node = await started(cluster_set.url, prefix)
    try:
        for channel in channels:
            await node.broker.subscribe(channel)

        async def chatter(channel: str) -> None:
            for n in range(20):
                await node.broker.publish(channel, f"{channel}:{n}".encode())

        await asyncio.gather(*(chatter(c) for c in channels))
        await asyncio.sleep(0.3)
        for channel in channels:
            pubs = node.got[channel]
            assert [p.offset for p in pubs] == list(range(1, 21))
            assert [p.data for p in pubs] == [f"{channel}:{n}".encode() for n in range(20)]
        for primary in cluster_set.primaries():
            listened = {c.decode() for c in primary.client().execute_command(
                "PUBSUB", "SHARDCHANNELS")}
            owned = {f"{prefix}:{{{c}}}:pub" for c in channels
                     if cluster_set.owner(slot_of(f"{prefix}:{{{c}}}:pub")).port == primary.port}
            assert {name for name in listened if name.startswith(prefix)} == owned
    finally:
        await node.broker.close()


def channel_in_slot(prefix: str, slot: int) -> str:
    """A session channel whose keys hash to ``slot``."""
    for n in itertools.count():
        channel = f"acme:migrating-{n}"
        if slot_of(f"{prefix}:{{{channel}}}:meta") == slot:
            return channel
    raise AssertionError("unreachable")


async def publish_retrying(broker: Broker, channel: str, n: int) -> None:
    """Publish event ``n`` until it is stored once (its idempotency key makes retries safe)."""
    for _ in range(300):
        try:
            await broker.publish(channel, f"e{n}".encode(), idempotency_key=f"k{n}")
            return
        except BrokerUnavailable:
            await asyncio.sleep(0.05)
    raise AssertionError("publishing never came back")


async def test_a_live_sessions_slot_resharded_by_redis_cli_loses_and_repeats_nothing(
    cluster_set: ClusterSet, prefix: str,
) -> None:
    # `redis-cli --cluster reshard` moves a primary's lowest slots first: put the
    # session there, so the operator's own command moves it.
    source = cluster_set.primaries()[0]
    target = next(p for p in cluster_set.primaries() if p.port != source.port)
    slot = cluster_set.lowest_slot(source)
    channel = channel_in_slot(prefix, slot)
    listener = await started(cluster_set.url, prefix)
    publisher = await started(cluster_set.url, prefix)
    try:
        await listener.broker.subscribe(channel)
        before = cluster_set.owner(slot).port
        stop = asyncio.Event()
        count = 0

        async def load() -> None:
            nonlocal count
            while not stop.is_set():
                count += 1
                await publish_retrying(publisher.broker, channel, count)
                await asyncio.sleep(0.005)

        task = asyncio.create_task(load())
        await asyncio.sleep(0.3)
        await asyncio.to_thread(cluster_set.reshard, source, target)
        await asyncio.sleep(1.0)
        stop.set()
        await task
        await asyncio.sleep(0.5)
        assert cluster_set.owner(slot).port != before
        assert listener.reconnects >= 1  # its shard said sunsubscribe: it followed the slot
        final = await listener.caught_up(channel)
        assert [p.data for p in final] == [f"e{n}".encode() for n in range(1, count + 1)]
        assert in_order(final) and len({p.epoch for p in final}) == 1
        history = await publisher.broker.history(channel)
        assert [p.offset for p in history.publications] == list(range(1, count + 1))
        # The listener gets new publications from the new owner.
        await publisher.broker.publish(channel, b"after")
        await asyncio.sleep(0.3)
        assert listener.got[channel][-1].data == b"after"
    finally:
        await listener.broker.close()
        await publisher.broker.close()


async def test_kill_9_of_a_primary_under_load_service_is_back_and_never_gaps(
    cluster_set: ClusterSet, prefix: str,
) -> None:
    channels = channels_on_every_shard(cluster_set, prefix, 1)
    listener = await started(cluster_set.url, prefix)
    publisher = await started(cluster_set.url, prefix)
    loop = asyncio.get_running_loop()
    served: dict[str, float] = {}
    try:
        for channel in channels:
            await listener.broker.subscribe(channel)
            await publisher.broker.subscribe(channel)
        stop = asyncio.Event()

        async def load(channel: str) -> None:
            n = 0
            while not stop.is_set():
                n += 1
                await publish_retrying(publisher.broker, channel, n)
                served[channel] = loop.time()
                await asyncio.sleep(0.005)

        tasks = [asyncio.create_task(load(c)) for c in channels]
        await asyncio.sleep(0.5)
        victim_channel = channels[0]
        victim = cluster_set.owner(slot_of(f"{prefix}:{{{victim_channel}}}:meta"))
        victim.kill()
        await asyncio.to_thread(cluster_set.wait_promoted, victim)
        promoted_at = loop.time()
        while served[victim_channel] < promoted_at:
            assert loop.time() - promoted_at < 10, "service not back within 10 s of promotion"
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
        stop.set()
        await asyncio.gather(*tasks)
        await asyncio.sleep(0.5)
        for channel in channels:
            final = await listener.caught_up(channel)
            assert in_order(final), channel
            stored = (await publisher.broker.history(channel)).publications
            assert in_order(stored)
    finally:
        await listener.broker.close()
        await publisher.broker.close()
        await asyncio.to_thread(cluster_set.restore, victim)
