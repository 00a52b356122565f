"""Sessions sharded over several Redis servers: placement, isolation and failure of one."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from classroom.backends.broker import BrokerUnavailable, MemoryBroker, Publication, broker_from_url
from classroom.backends.broker.redis import RedisBroker
from classroom.backends.presence_factory import presence_from_url
from classroom.backends.sharding.broker import ShardedBroker
from classroom.backends.sharding.presence import ShardedPresenceStore
from classroom.backends.sharding.rendezvous import (
    choose,
    shard_identities,
    shard_identity,
    split_urls,
)
from presence.redis import RedisPresenceStore
from tests.client import Client
from tests.multinode.conftest import Cluster, RedisServer, free_port, member

OLD = ["10.0.0.1:6379/0", "10.0.0.2:6379/0"]
NEW = [*OLD, "10.0.0.3:6379/0"]
CHANNELS = [f"acme:session-{n}" for n in range(1000)]
PREFIX = "shardtest"


@pytest.fixture
def two_redis(tmp_path: Path) -> Iterator[tuple[RedisServer, RedisServer]]:
    """Two redis-servers of the test's own, on free ports, stopped afterwards."""
    servers: list[RedisServer] = []
    try:
        for name in ("a", "b"):
            workdir = tmp_path / name
            workdir.mkdir()
            server = RedisServer(free_port(), workdir)
            server.start()
            servers.append(server)
        yield servers[0], servers[1]
    finally:
        for server in servers:
            server.stop()


async def keys_by_channel(url: str, prefix: str) -> dict[str, set[str]]:
    """``{channel: {key suffixes}}`` of every key under ``prefix`` on one server."""
    client = aioredis.from_url(url)
    try:
        keys = [key.decode() async for key in client.scan_iter(match=f"{prefix}:*", count=500)]
    finally:
        await client.aclose()
    found: dict[str, set[str]] = {}
    for key in keys:
        channel, _, suffix = key.partition("{")[2].partition("}:")
        found.setdefault(channel, set()).add(suffix)
    return found


def owners(servers: tuple[RedisServer, RedisServer], channels: list[str]) -> list[int]:
    """The shard index every node computes for each channel."""
    identities = shard_identities([server.url for server in servers])
    return [choose(identities, channel) for channel in channels]


def split_evenly(
    servers: tuple[RedisServer, RedisServer], candidates: list[str], per_shard: int
) -> list[str]:
    """``per_shard`` channels of each shard, so a test always exercises both."""
    picked: dict[int, list[str]] = {0: [], 1: []}
    for channel, owner in zip(candidates, owners(servers, candidates), strict=True):
        if len(picked[owner]) < per_shard:
            picked[owner].append(channel)
    assert all(len(chosen) == per_shard for chosen in picked.values())
    return picked[0] + picked[1]


# -- rendezvous ---------------------------------------------------------------------


def test_rendezvous_is_stable_across_instances_and_processes() -> None:
    first = ShardedBroker([MemoryBroker(), MemoryBroker()], OLD)
    second = ShardedBroker([MemoryBroker(), MemoryBroker()], OLD)
    swapped = ShardedBroker([MemoryBroker(), MemoryBroker()], OLD[::-1])
    for channel in CHANNELS:
        assert first.shard_for(channel) == second.shard_for(channel)
        assert OLD[first.shard_for(channel)] == OLD[::-1][swapped.shard_for(channel)]
    code = (
        "from classroom.backends.sharding.rendezvous import choose; "
        f"print(','.join(str(choose({OLD!r}, c)) for c in {CHANNELS[:200]!r}))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True,
                           env=env, text=True).stdout.strip()
    assert other == ",".join(str(first.shard_for(c)) for c in CHANNELS[:200])


@pytest.mark.parametrize("shards", [2, 3])
def test_rendezvous_spreads_channels_evenly(shards: int) -> None:
    counts = Counter(choose(NEW[:shards], channel) for channel in CHANNELS)
    fair = len(CHANNELS) / shards
    assert sorted(counts) == list(range(shards))
    assert all(abs(count - fair) <= 0.2 * fair for count in counts.values()), counts


def test_adding_a_shard_moves_only_the_channels_it_wins() -> None:
    before = {channel: OLD[choose(OLD, channel)] for channel in CHANNELS}
    after = {channel: NEW[choose(NEW, channel)] for channel in CHANNELS}
    moved = [channel for channel in CHANNELS if before[channel] != after[channel]]
    assert all(after[channel] == NEW[2] for channel in moved)
    assert len(moved) == sum(1 for owner in after.values() if owner == NEW[2])
    assert abs(len(moved) - len(CHANNELS) / 3) <= 0.2 * len(CHANNELS) / 3


def test_shard_identity_names_the_database_not_credentials_or_options() -> None:
    assert shard_identity("redis://:pw@Example.com:6380/2?socket_timeout=1") == "example.com:6380/2"
    assert shard_identity("rediss://user:other@example.com:6380/2") == "example.com:6380/2"
    assert shard_identity("redis://example.com") == "example.com:6379/0"
    assert shard_identity("redis://example.com?db=3") == "example.com:6379/3"
    assert split_urls(" redis://a , redis://b ") == ["redis://a", "redis://b"]
    with pytest.raises(ValueError, match="empty"):
        split_urls("redis://a,")
    with pytest.raises(ValueError, match="more than once"):
        shard_identities(["redis://a/0", "redis://:pw@a:6379"])
    with pytest.raises(ValueError, match="sharded"):
        broker_from_url("redis://a,memory://")
    with pytest.raises(ValueError, match="sharded"):
        presence_from_url("memory://,redis://a")
    with pytest.raises(ValueError, match="identity"):
        ShardedBroker([MemoryBroker(), MemoryBroker()], ["same", "same"])


async def test_factories_shard_only_comma_separated_urls() -> None:
    sharded = broker_from_url("redis://127.0.0.1:1/0,redis://127.0.0.1:2/0", prefix="p",
                              history_size=7)
    single = broker_from_url("redis://127.0.0.1:1/0", prefix="p")
    store = presence_from_url("redis://127.0.0.1:1/0,redis://127.0.0.1:2/0", prefix="p", ttl=3)
    one_store = presence_from_url("redis://127.0.0.1:1/0", prefix="p", ttl=3)
    try:
        assert isinstance(sharded, ShardedBroker) and isinstance(single, RedisBroker)
        assert all(isinstance(shard, RedisBroker) for shard in sharded.shards)
        assert sharded.identities == ("127.0.0.1:1/0", "127.0.0.1:2/0")
        assert isinstance(store, ShardedPresenceStore) and isinstance(one_store, RedisPresenceStore)
        assert all(isinstance(shard, RedisPresenceStore) for shard in store.shards)
        assert store.shard_for("acme:s1") == sharded.shard_for("acme:s1")
    finally:
        for closable in (sharded, single, store, one_store):
            await closable.close()


# -- over two real Redis servers -----------------------------------------------------


async def test_sharded_broker_places_orders_and_survives_one_shard(
    two_redis: tuple[RedisServer, RedisServer],
) -> None:
    url = ",".join(server.url for server in two_redis)
    broker = broker_from_url(url, prefix=PREFIX, reconnect_delay_max=0.2)
    assert isinstance(broker, ShardedBroker)
    received: list[tuple[str, Publication]] = []
    reconnects: list[int] = []
    broker.on_reconnect = lambda: reconnects.append(1)
    channels = split_evenly(two_redis, [f"acme:c{n}" for n in range(200)], 10)
    expected = owners(two_redis, channels)
    per_channel = 8
    try:
        await broker.start(lambda channel, pub: received.append((channel, pub)))
        for channel in channels:
            await broker.subscribe(channel)

        async def publisher(channel: str) -> None:
            for n in range(per_channel):
                await broker.publish(channel, f"{channel}#{n}".encode())

        await asyncio.gather(*(publisher(channel) for channel in channels))
        for _ in range(100):
            if len(received) >= per_channel * len(channels):
                break
            await asyncio.sleep(0.05)
        for channel in channels:
            delivered = [pub for ch, pub in received if ch == channel]
            assert [pub.offset for pub in delivered] == list(range(1, per_channel + 1))
            assert [pub.data for pub in delivered] == [
                f"{channel}#{n}".encode() for n in range(per_channel)
            ]
            history = await broker.history(channel)
            assert [pub.data for pub in history.publications] == [pub.data for pub in delivered]
            assert history.position == (await broker.position(channel))
        placed = [await keys_by_channel(server.url, PREFIX) for server in two_redis]
        for channel, owner in zip(channels, expected, strict=True):
            assert broker.shard_for(channel) == owner
            assert {"meta", "stream"} <= placed[owner][channel]
            assert channel not in placed[1 - owner]
        assert set(placed[0]) | set(placed[1]) == set(channels)

        assert await broker.ready()
        two_redis[1].stop()
        assert not await broker.ready()
        for channel, owner in zip(channels, expected, strict=True):
            if owner == 0:
                result = await broker.publish(channel, b"still here")
                assert result.position.offset == per_channel + 1
            else:
                with pytest.raises(BrokerUnavailable):
                    await broker.publish(channel, b"lost")

        two_redis[1].start()
        for _ in range(100):
            if reconnects and await broker.ready():
                break
            await asyncio.sleep(0.05)
        assert reconnects and await broker.ready()
        back = channels[expected.index(1)]
        for _ in range(20):
            with contextlib.suppress(BrokerUnavailable):
                result = await broker.publish(back, b"again")
                break
            await asyncio.sleep(0.05)
        assert result.position.offset == 1  # the restarted Redis starts a new stream
    finally:
        await broker.close()


async def test_sharded_presence_counts_users_once_per_channel(
    two_redis: tuple[RedisServer, RedisServer],
) -> None:
    url = ",".join(server.url for server in two_redis)
    store = presence_from_url(url, prefix=PREFIX, ttl=5.0)
    assert isinstance(store, ShardedPresenceStore)
    channels = split_evenly(two_redis, [f"acme:p{n}" for n in range(200)], 2)
    try:
        for channel in channels:
            assert await store.add(channel, f"{channel}/tab1", "u1", b"one") is True
            assert await store.add(channel, f"{channel}/tab2", "u1", b"two") is False
            assert await store.add(channel, f"{channel}/other", "u2", b"x") is True
        for channel in channels:
            participants = await store.participants(channel)
            assert [(p.user, p.client) for p in participants] == [
                ("u1", f"{channel}/tab2"), ("u2", f"{channel}/other")
            ]
            assert await store.clients(channel, "u1") == [f"{channel}/tab1", f"{channel}/tab2"]
        placed = [await keys_by_channel(server.url, PREFIX) for server in two_redis]
        for channel, owner in zip(channels, owners(two_redis, channels), strict=True):
            assert store.shard_for(channel) == owner
            assert channel in placed[owner] and channel not in placed[1 - owner]
        channel = channels[0]
        assert await store.remove(channel, f"{channel}/tab1") is None
        gone = await store.remove(channel, f"{channel}/tab2")
        assert gone is not None and gone.user == "u1"
        assert [p.user for p in await store.participants(channel)] == ["u2"]
        assert [p.user for p in await store.participants(channels[-1])] == ["u1", "u2"]
    finally:
        await store.close()


# -- end to end: real nodes ------------------------------------------------------------


async def events_of(client: Client, count: int, timeout: float = 15) -> list[dict]:
    events: list[dict] = []
    while len(events) < count:
        events.append(await client.expect(
            lambda f: f.get("type") == "event" and "offset" in f, timeout=timeout))
    return events


async def test_sessions_on_two_redis_servers_behave_as_one_server(
    cluster: Cluster, two_redis: tuple[RedisServer, RedisServer],
) -> None:
    cluster.redis_url = ",".join(server.url for server in two_redis)
    nodes = await cluster.start(2)
    sessions = [channel.partition(":")[2] for channel in split_evenly(
        two_redis, [f"acme:s{n}" for n in range(200)], 2)]
    members: dict[str, list[Client]] = {}
    for index, session in enumerate(sessions):
        members[session] = [
            await member(nodes[0], f"t{index}", "trainer", session, name="Tess"),
            await member(nodes[1], f"u{index}", "student", session, name="Sam",
                         encoding="msgpack"),
            await member(nodes[index % 2], f"v{index}", "student", session, name="Val"),
        ]
    per_member = 5

    async def chatter(client: Client, session: str, who: int) -> None:
        for n in range(per_member):
            reply = await client.request("publish", session=session,
                                         event={"kind": "chat", "text": f"{session}:{who}:{n}"})
            assert reply["type"] == "published", reply

    await asyncio.gather(*(chatter(client, session, who)
                           for session, clients in members.items()
                           for who, client in enumerate(clients)))
    total = per_member * 3
    for session, clients in members.items():
        for client in clients:
            events = await events_of(client, total)
            assert [e["offset"] for e in events] == list(range(1, total + 1))
            assert len({e["epoch"] for e in events}) == 1
            assert sorted(e["event"]["text"] for e in events) == sorted(
                f"{session}:{who}:{n}" for who in range(3) for n in range(per_member))
    placed = [await keys_by_channel(server.url, cluster.prefix) for server in two_redis]
    channels = [f"acme:{session}" for session in sessions]
    for channel, owner in zip(channels, owners(two_redis, channels), strict=True):
        assert {"meta", "stream", "presence"} <= placed[owner][channel]
        assert channel not in placed[1 - owner]
    for clients in members.values():
        for client in clients:
            await client.close()
