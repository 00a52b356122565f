"""What only the Redis broker does: survive connection loss, fail fast, trim exactly, expire."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Callable

import pytest
import redis.asyncio as aioredis

from classroom.backends.broker import (
    BrokerUnavailable,
    MemoryBroker,
    Publication,
    StreamPosition,
    broker_from_url,
)
from classroom.backends.broker.redis import RedisBroker
from tests.backends.conftest import REDIS_URL, Inbox

MakeRedisBroker = Callable[..., RedisBroker]


@pytest.fixture
async def admin() -> AsyncIterator[aioredis.Redis]:
    """Another client on the test database, to inspect keys and kill connections."""
    client = aioredis.from_url(REDIS_URL)
    yield client
    await client.aclose()


@pytest.fixture
async def make(redis_prefix: str) -> AsyncIterator[MakeRedisBroker]:
    """Build Redis brokers (nodes) sharing the test's prefix; closed after the test."""
    made: list[RedisBroker] = []

    def make(url: str = REDIS_URL, **options: object) -> RedisBroker:
        broker = RedisBroker(url, prefix=redis_prefix, **options)  # type: ignore[arg-type]
        made.append(broker)
        return broker

    yield make
    for broker in made:
        await broker.close()


async def eventually(check: Callable[[], bool], timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def kill(admin: aioredis.Redis, name: str, kind: str) -> int:
    """Kill the connections named ``name`` of type ``kind`` ("pubsub" or "normal")."""
    killed = 0
    for client in await admin.client_list(_type=kind):
        if client.get("name") == name:
            killed += await admin.client_kill_filter(_id=client["id"], _type=kind)
    return killed


async def test_reader_resubscribes_after_its_connection_is_killed(make, admin, caplog):
    name = f"node-{uuid.uuid4().hex[:8]}"
    broker = make(f"{REDIS_URL}?client_name={name}", reconnect_delay_max=0.2)
    inbox = Inbox(0.3)
    reconnects: list[None] = []
    broker.on_reconnect = lambda: reconnects.append(None)
    await broker.start(inbox)
    await broker.subscribe("s1")
    await broker.subscribe("s2")
    epoch = (await broker.publish("s1", b"before")).position.epoch
    await eventually(lambda: len(inbox.received) == 1)
    with caplog.at_level(logging.WARNING, logger="classroom.backends.broker"):
        assert await kill(admin, name, "pubsub") == 1
        await eventually(lambda: len(reconnects) == 1)
    assert "redis pub/sub connection failed" in caplog.text
    await broker.publish("s1", b"after")
    await broker.publish("s2", b"other")
    assert await inbox.settle() == [
        ("s1", Publication(1, epoch, b"before")),
        ("s1", Publication(2, epoch, b"after")),
        ("s2", Publication(1, (await broker.position("s2")).epoch, b"other")),
    ]
    assert await kill(admin, name, "pubsub") == 1  # exactly one pub/sub connection again


async def test_killed_command_connections_are_replaced_without_failing_a_call(make, admin):
    name = f"node-{uuid.uuid4().hex[:8]}"
    broker = make(f"{REDIS_URL}?client_name={name}")
    await broker.start(Inbox(0.0))
    await asyncio.gather(*(broker.publish("s1", b"x") for _ in range(5)))
    assert await kill(admin, name, "normal") >= 1
    await asyncio.sleep(0.05)
    assert (await broker.publish("s1", b"y")).position.offset == 6


async def test_unreachable_redis_raises_broker_unavailable_quickly(make, caplog):
    broker = make("redis://127.0.0.1:1/0", reconnect_delay_max=0.1)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with caplog.at_level(logging.WARNING, logger="classroom.backends.broker"):
        await broker.start(Inbox(0.0))
        with pytest.raises(BrokerUnavailable):
            await broker.publish("s1", b"x")
        with pytest.raises(BrokerUnavailable):
            await broker.publish("s1", b"x", stored=False, idempotency_key="k")
        with pytest.raises(BrokerUnavailable):
            await broker.history("s1")
        with pytest.raises(BrokerUnavailable):
            await broker.position("s1")
        with pytest.raises(BrokerUnavailable):
            await broker.recall("s1", "k")
        assert not await broker.ready()
        await asyncio.sleep(0.3)
    assert loop.time() - started < 2.0
    assert "redis pub/sub connection failed" in caplog.text


async def test_history_size_trims_the_stream_exactly(make, admin, redis_prefix):
    broker = make(history_size=150)
    for _ in range(4):
        await asyncio.gather(*(broker.publish("s1", b"x") for _ in range(100)))
    stream = f"{redis_prefix}:{{s1}}:stream"
    assert await admin.xlen(stream) == 150
    first = await admin.xrange(stream, count=1)
    assert first[0][0] == b"251-0"
    history = await broker.history("s1")
    assert [p.offset for p in history.publications] == list(range(251, 401))


async def test_every_key_carries_a_ttl(make, admin, redis_prefix):
    broker = make(history_ttl=60.0, idempotency_ttl=5.0)
    await broker.publish("s1", b"x", idempotency_key="k1")
    await broker.publish("s2", b"pointer", stored=False, idempotency_key="k2")
    await broker.position("s3")
    await broker.publish("s4", b"x", idempotency_key="k4", fingerprint="f4")
    ttls = {
        key.decode(): await admin.pttl(key)
        async for key in admin.scan_iter(match=f"{redis_prefix}:*")
    }
    assert set(ttls) == {
        f"{redis_prefix}:{{s1}}:meta",
        f"{redis_prefix}:{{s1}}:stream",
        f"{redis_prefix}:{{s1}}:idem:k1",
        f"{redis_prefix}:{{s2}}:idem:k2",
        f"{redis_prefix}:{{s3}}:meta",
        f"{redis_prefix}:{{s4}}:meta",
        f"{redis_prefix}:{{s4}}:stream",
        f"{redis_prefix}:{{s4}}:idem:k4",
        f"{redis_prefix}:{{s4}}:idemfp:k4",
    }
    for key, ttl in ttls.items():
        limit = 5000 if ":idem" in key else 60000
        assert 0 < ttl <= limit, key


async def test_a_lost_meta_starts_a_new_epoch_and_drops_the_old_stream(make, admin, redis_prefix):
    broker = make()
    old = (await broker.publish("s1", b"old")).position
    await admin.delete(f"{redis_prefix}:{{s1}}:meta")
    fresh = await broker.position("s1")
    assert fresh.offset == 0 and fresh.epoch != old.epoch
    assert (await broker.publish("s1", b"new")).position == StreamPosition(1, fresh.epoch)
    history = await broker.history("s1", since=old)
    assert not history.recovered
    assert history.publications == [Publication(1, fresh.epoch, b"new")]


async def test_two_nodes_share_offsets_and_see_one_order(make):
    nodes = [make(), make()]
    inboxes = [Inbox(0.3), Inbox(0.3)]
    channel = "tenant:ü{1}"  # a colon, a non-ASCII letter and braces survive the names
    for node, inbox in zip(nodes, inboxes, strict=True):
        await node.start(inbox)
        await node.subscribe(channel)
    results = await asyncio.gather(
        *(nodes[i % 2].publish(channel, str(i).encode()) for i in range(100))
    )
    assert sorted(r.position.offset for r in results) == list(range(1, 101))
    first, second = [await inbox.of(channel) for inbox in inboxes]
    assert [p.offset for p in first] == list(range(1, 101))
    assert first == second == (await nodes[1].history(channel)).publications


async def test_a_failing_handler_is_logged_and_delivery_goes_on(make, caplog):
    broker = make()
    seen: list[bytes] = []

    def handler(channel: str, publication: Publication) -> None:
        seen.append(publication.data)
        if publication.data == b"bad":
            raise RuntimeError("handler bug")

    await broker.start(handler)
    await broker.subscribe("s1")
    with caplog.at_level(logging.ERROR, logger="classroom.backends.broker"):
        await broker.publish("s1", b"bad")
        await broker.publish("s1", b"good")
        await eventually(lambda: len(seen) == 2)
    assert seen == [b"bad", b"good"]
    assert "publication handler failed" in caplog.text
    assert "bad" not in caplog.text.replace("handler bug", "")


def test_redis_broker_refuses_nonsense_options():
    with pytest.raises(ValueError):
        RedisBroker(REDIS_URL, history_size=-1)
    with pytest.raises(ValueError):
        RedisBroker(REDIS_URL, idempotency_ttl=0)
    with pytest.raises(ValueError):
        RedisBroker(REDIS_URL, prefix="a{b}")


async def test_factory_builds_the_redis_broker_by_scheme(redis_prefix):
    for url in (REDIS_URL, "rediss://localhost:6380/0"):
        broker = broker_from_url(url, prefix=redis_prefix, history_size=3)
        assert isinstance(broker, RedisBroker)
        await broker.close()
    assert isinstance(broker_from_url("memory://", prefix="ignored"), MemoryBroker)


async def test_fingerprints_sit_beside_the_position_readable_by_older_nodes(
    make, admin, redis_prefix
):
    broker = make()
    first = await broker.publish("s1", b"x", idempotency_key="k1", fingerprint="f1")
    position = f"{first.position.offset}:{first.position.epoch}".encode()
    assert await admin.get(f"{redis_prefix}:{{s1}}:idem:k1") == position  # as before
    assert await admin.get(f"{redis_prefix}:{{s1}}:idemfp:k1") == b"f1"
    # A key left by a node of the previous version has no fingerprint: it is recalled
    # without one, and a duplicate of it says so.
    await admin.set(f"{redis_prefix}:{{s1}}:idem:old", position, px=5000)
    recalled = await broker.recall("s1", "old")
    assert recalled is not None
    assert recalled.position == first.position and recalled.fingerprint is None
    retry = await broker.publish("s1", b"y", idempotency_key="old", fingerprint="f2")
    assert retry.duplicate and retry.position == first.position and retry.fingerprint is None
