"""Lost writes (a primary died before replicating them) start a new epoch, never reuse offsets.

The loss is made by hand here, as a promoted replica would have it: the offset
counter and the stream end before the last publications the nodes saw.
"""

from __future__ import annotations

import uuid

import pytest

from classroom.backends.broker import StreamPosition, broker_from_url
from classroom.backends.broker.redis import RedisBroker
from tests.backends.conftest import REDIS_URL, Inbox, drop_prefix

CHANNEL = "acme:s1"


async def lose_the_last(broker: RedisBroker, prefix: str, count: int) -> None:
    """What a replica promoted before receiving the last ``count`` publications holds."""
    client = broker.redis
    meta, stream = f"{prefix}:{{{CHANNEL}}}:meta", f"{prefix}:{{{CHANNEL}}}:stream"
    offset = int(await client.hget(meta, "o"))
    kept = await client.xrange(stream, "-", f"{offset - count}-0")
    await client.delete(stream)
    for entry_id, fields in kept:
        await client.xadd(stream, fields, id=entry_id)
    await client.hset(meta, "o", offset - count)


@pytest.fixture
async def brokers(redis_prefix: str):  # type: ignore[no-untyped-def]
    """A node that saw everything (subscribed) and one that saw nothing."""
    seen = RedisBroker(REDIS_URL, prefix=redis_prefix)
    blind = RedisBroker(REDIS_URL, prefix=redis_prefix)
    await seen.start(Inbox(0.3))
    await blind.start(Inbox(0.3))
    await seen.subscribe(CHANNEL)
    yield seen, blind
    await seen.close()
    await blind.close()


async def publish(broker: RedisBroker, count: int, tag: str) -> list[StreamPosition]:
    return [(await broker.publish(CHANNEL, f"{tag}{n}".encode())).position for n in range(count)]


async def test_a_node_that_saw_lost_writes_starts_a_new_epoch_at_its_next_publish(
    brokers: tuple[RedisBroker, RedisBroker], redis_prefix: str,
) -> None:
    seen, _ = brokers
    before = await publish(seen, 5, "old")
    await lose_the_last(seen, redis_prefix, 2)
    after = (await seen.publish(CHANNEL, b"new")).position
    assert after.epoch != before[-1].epoch and after.offset == 4
    history = await seen.history(CHANNEL, since=before[-1])
    assert not history.recovered and history.position == after
    assert [p.data for p in history.publications] == [b"old0", b"old1", b"old2", b"new"]


async def test_a_client_position_past_the_counter_starts_a_new_epoch(
    brokers: tuple[RedisBroker, RedisBroker], redis_prefix: str,
) -> None:
    seen, blind = brokers
    before = await publish(seen, 5, "old")
    await lose_the_last(seen, redis_prefix, 2)
    history = await blind.history(CHANNEL, since=before[-1])  # a client rejoins with since
    assert not history.recovered and history.position.epoch != before[-1].epoch
    assert (await blind.publish(CHANNEL, b"x")).position.epoch == history.position.epoch


async def test_offsets_reused_by_another_node_are_found_by_the_data_at_the_claim(
    brokers: tuple[RedisBroker, RedisBroker], redis_prefix: str,
) -> None:
    seen, blind = brokers
    await seen.unsubscribe(CHANNEL)  # its claim must come from its own publishes
    await seen.subscribe(CHANNEL)
    before = await publish(seen, 5, "old")
    await lose_the_last(seen, redis_prefix, 2)
    reused = await publish(blind, 2, "other")  # offsets 4 and 5 again, same epoch
    assert [p.offset for p in reused] == [4, 5] and reused[-1].epoch == before[-1].epoch
    position = await seen.position(CHANNEL)  # the node's catch-up asks first
    assert position.epoch != before[-1].epoch and position.offset == 5


async def test_an_intact_stream_keeps_its_epoch(
    brokers: tuple[RedisBroker, RedisBroker],
) -> None:
    seen, blind = brokers
    before = await publish(seen, 3, "a")
    await publish(blind, 2, "b")
    assert (await seen.position(CHANNEL)).epoch == before[0].epoch
    history = await seen.history(CHANNEL, since=before[-1])
    assert history.recovered and [p.offset for p in history.publications] == [4, 5]


@pytest.mark.parametrize("topology", ["sentinel", "cluster"])
async def test_a_publish_can_wait_for_its_replica(
    topology: str, request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture,
) -> None:
    url = request.getfixturevalue(f"{topology}_set").url
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    waits = broker_from_url(url, prefix=prefix, wait_replicas=1, wait_timeout=1.0)
    too_many = broker_from_url(url, prefix=prefix, wait_replicas=2, wait_timeout=0.05)
    try:
        first = await waits.publish(CHANNEL, b"one")
        assert first.position.offset == 1 and not caplog.records
        second = await too_many.publish(CHANNEL, b"two")  # one replica only: a warning
        assert second.position.offset == 2
        assert any("of 2 replicas" in r.getMessage() for r in caplog.records)
        assert [p.data for p in (await waits.history(CHANNEL)).publications] == [b"one", b"two"]
    finally:
        await waits.close()
        await too_many.close()
        await drop_prefix(url, prefix)
