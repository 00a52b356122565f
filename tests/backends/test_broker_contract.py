"""The Broker contract: every implementation must pass these, memory today, Redis next."""

from __future__ import annotations

import asyncio
import logging

import pytest

from classroom.backends.broker import (
    Broker,
    BrokerUnavailable,
    MemoryBroker,
    Publication,
    StreamPosition,
    broker_from_url,
)
from classroom.backends.broker.base import RememberedPublish


async def publish_many(broker: Broker, channel: str, count: int) -> list[StreamPosition]:
    return [(await broker.publish(channel, f"m{i}".encode())).position for i in range(1, count + 1)]


def offsets(publications: list[Publication]) -> list[int]:
    return [pub.offset for pub in publications]


# -- offsets and positions -------------------------------------------------------------


async def test_offsets_start_at_one_and_are_gapless(broker):
    results = [await broker.publish("s1", f"m{i}".encode()) for i in range(5)]
    epoch = results[0].position.epoch
    assert epoch
    assert [r.position for r in results] == [StreamPosition(i, epoch) for i in range(1, 6)]
    assert not any(r.duplicate for r in results)
    assert await broker.position("s1") == StreamPosition(5, epoch)


async def test_position_of_a_new_channel_is_zero_with_a_stable_epoch(broker):
    first = await broker.position("s1")
    assert first.offset == 0
    assert first.epoch
    assert await broker.position("s1") == first
    assert (await broker.publish("s1", b"x")).position == StreamPosition(1, first.epoch)


async def test_channels_have_their_own_offsets(broker):
    await publish_many(broker, "a", 3)
    assert (await broker.publish("b", b"x")).position.offset == 1
    assert (await broker.position("a")).offset == 3


# -- delivery --------------------------------------------------------------------------


async def test_handler_gets_subscribed_channels_only_in_offset_order(broker, inbox):
    await broker.subscribe("a")
    positions = await publish_many(broker, "a", 3)
    await publish_many(broker, "b", 2)
    received = await inbox.settle()
    assert [ch for ch, _ in received] == ["a", "a", "a"]
    assert [pub for _, pub in received] == [
        Publication(p.offset, p.epoch, f"m{p.offset}".encode()) for p in positions
    ]


async def test_binary_data_is_delivered_and_stored_byte_for_byte(broker, inbox):
    data = bytes(range(256))
    await broker.subscribe("s1")
    await broker.publish("s1", data)
    assert [pub.data for pub in await inbox.of("s1")] == [data]
    assert [pub.data for pub in (await broker.history("s1")).publications] == [data]


async def test_subscribe_is_idempotent(broker, inbox):
    await broker.subscribe("s1")
    await broker.subscribe("s1")
    await broker.publish("s1", b"x")
    assert offsets(await inbox.of("s1")) == [1]


async def test_unsubscribe_stops_delivery_and_is_idempotent(broker, inbox):
    await broker.unsubscribe("never-subscribed")
    await broker.subscribe("s1")
    await broker.publish("s1", b"one")
    await broker.unsubscribe("s1")
    await broker.unsubscribe("s1")
    await broker.publish("s1", b"two")
    assert [pub.data for pub in await inbox.of("s1")] == [b"one"]
    assert offsets((await broker.history("s1")).publications) == [1, 2]


async def test_resubscribe_resumes_delivery(broker, inbox):
    await broker.subscribe("s1")
    await broker.unsubscribe("s1")
    await broker.publish("s1", b"missed")
    await broker.subscribe("s1")
    await broker.publish("s1", b"seen")
    assert await inbox.of("s1") == [Publication(2, (await broker.position("s1")).epoch, b"seen")]


async def test_concurrent_publishes_get_distinct_gapless_offsets_delivered_in_order(
    make_broker, inbox
):
    broker = await make_broker(history_size=200)
    await broker.subscribe("s1")
    results = await asyncio.gather(*(broker.publish("s1", str(i).encode()) for i in range(200)))
    assert sorted(r.position.offset for r in results) == list(range(1, 201))
    assert len({r.position.epoch for r in results}) == 1
    sent = {r.position.offset: str(i).encode() for i, r in enumerate(results)}
    delivered = await inbox.of("s1")
    assert offsets(delivered) == list(range(1, 201))
    assert {pub.offset: pub.data for pub in delivered} == sent
    stored = (await broker.history("s1")).publications
    assert stored == delivered


# -- ephemeral publications --------------------------------------------------------------


async def test_ephemeral_publication_is_delivered_but_not_stored(broker, inbox):
    await broker.subscribe("s1")
    epoch = (await broker.publish("s1", b"stored")).position.epoch
    result = await broker.publish("s1", b"pointer", stored=False)
    assert result.position == StreamPosition(0, epoch)
    assert not result.duplicate
    assert (await inbox.of("s1"))[-1] == Publication(0, "", b"pointer")
    assert await broker.position("s1") == StreamPosition(1, epoch)
    assert offsets((await broker.history("s1")).publications) == [1]
    assert (await broker.publish("s1", b"next")).position == StreamPosition(2, epoch)


async def test_ephemeral_publication_on_a_fresh_channel_has_no_epoch(broker, inbox):
    await broker.subscribe("s1")
    result = await broker.publish("s1", b"pointer", stored=False)
    assert result.position == StreamPosition(0, "")
    assert await inbox.of("s1") == [Publication(0, "", b"pointer")]


async def test_ephemeral_publication_is_not_delivered_when_unsubscribed(broker, inbox):
    await broker.publish("s1", b"pointer", stored=False)
    assert await inbox.settle() == []


# -- idempotency -------------------------------------------------------------------------


async def test_idempotent_retry_returns_the_first_position_and_does_nothing(broker, inbox):
    await broker.subscribe("s1")
    first = await broker.publish("s1", b"chat", idempotency_key="k1")
    await broker.publish("s1", b"other")
    retry = await broker.publish("s1", b"chat again", idempotency_key="k1")
    assert retry.duplicate
    assert retry.position == first.position == StreamPosition(1, first.position.epoch)
    assert [pub.data for pub in await inbox.of("s1")] == [b"chat", b"other"]
    assert [p.data for p in (await broker.history("s1")).publications] == [b"chat", b"other"]
    assert (await broker.position("s1")).offset == 2


async def test_recall_returns_the_remembered_position(broker):
    assert await broker.recall("s1", "k1") is None
    first = await broker.publish("s1", b"chat", idempotency_key="k1")
    assert await broker.recall("s1", "k1") == RememberedPublish(first.position, None)
    assert await broker.recall("s1", "k2") is None
    assert await broker.recall("s2", "k1") is None


async def test_a_key_remembers_the_fingerprint_of_the_first_publish(broker, inbox):
    await broker.subscribe("s1")
    first = await broker.publish("s1", b"chat", idempotency_key="k1", fingerprint="f-one")
    assert not first.duplicate and first.fingerprint is None
    assert await broker.recall("s1", "k1") == RememberedPublish(first.position, "f-one")
    retry = await broker.publish("s1", b"other", idempotency_key="k1", fingerprint="f-two")
    assert retry.duplicate
    assert retry.position == first.position
    assert retry.fingerprint == "f-one"
    assert await broker.recall("s1", "k1") == RememberedPublish(first.position, "f-one")
    assert [pub.data for pub in await inbox.of("s1")] == [b"chat"]
    assert (await broker.position("s1")).offset == 1


async def test_a_key_without_fingerprint_recalls_none_and_duplicates_say_none(broker):
    first = await broker.publish("s1", b"chat", idempotency_key="k1")
    retry = await broker.publish("s1", b"chat", idempotency_key="k1", fingerprint="f-late")
    assert retry.duplicate and retry.fingerprint is None
    assert await broker.recall("s1", "k1") == RememberedPublish(first.position, None)
    unkeyed = await broker.publish("s1", b"x", fingerprint="ignored")
    assert not unkeyed.duplicate and unkeyed.fingerprint is None


async def test_fingerprints_are_per_channel_and_kept_for_ephemeral_publishes(broker):
    await broker.publish("a", b"x", idempotency_key="k1", fingerprint="fa")
    ephemeral = await broker.publish("b", b"x", stored=False, idempotency_key="k1",
                                     fingerprint="fb")
    assert (await broker.recall("a", "k1")).fingerprint == "fa"
    assert await broker.recall("b", "k1") == RememberedPublish(ephemeral.position, "fb")
    retry = await broker.publish("b", b"x", stored=False, idempotency_key="k1",
                                 fingerprint="fb")
    assert retry.duplicate and retry.fingerprint == "fb"


async def test_concurrent_publishes_with_one_key_store_once_and_agree(broker, inbox):
    await broker.subscribe("s1")
    results = await asyncio.gather(*(
        broker.publish("s1", f"m{i}".encode(), idempotency_key="k1", fingerprint=f"f{i}")
        for i in range(10)
    ))
    winners = [r for r in results if not r.duplicate]
    assert len(winners) == 1
    winner = results.index(winners[0])
    assert {r.position for r in results} == {winners[0].position}
    assert {r.fingerprint for r in results if r.duplicate} == {f"f{winner}"}
    assert [pub.data for pub in await inbox.of("s1")] == [f"m{winner}".encode()]


async def test_idempotency_keys_are_per_channel(broker):
    await broker.publish("a", b"x", idempotency_key="k1")
    await broker.publish("a", b"y")
    other = await broker.publish("b", b"x", idempotency_key="k1")
    assert not other.duplicate
    assert other.position.offset == 1


async def test_idempotency_key_expires(broker, expire, limits):
    first = await broker.publish("s1", b"chat", idempotency_key="k1")
    await expire(limits.idempotency_ttl * 0.5)
    assert (await broker.publish("s1", b"chat", idempotency_key="k1")).duplicate
    await expire(limits.idempotency_ttl * 0.6)
    assert await broker.recall("s1", "k1") is None
    again = await broker.publish("s1", b"chat", idempotency_key="k1")
    assert not again.duplicate
    assert again.position == StreamPosition(2, first.position.epoch)


async def test_a_fingerprint_expires_with_its_key(broker, expire, limits):
    await broker.publish("s1", b"chat", idempotency_key="k1", fingerprint="f-old")
    await expire(limits.idempotency_ttl * 1.1)
    assert await broker.recall("s1", "k1") is None
    again = await broker.publish("s1", b"chat", idempotency_key="k1")
    assert not again.duplicate
    assert await broker.recall("s1", "k1") == RememberedPublish(again.position, None)


async def test_idempotent_ephemeral_retry_is_not_delivered_twice(broker, inbox):
    await broker.subscribe("s1")
    first = await broker.publish("s1", b"wave", stored=False, idempotency_key="k1")
    retry = await broker.publish("s1", b"wave", stored=False, idempotency_key="k1")
    assert not first.duplicate
    assert retry.duplicate
    assert retry.position == first.position
    assert await inbox.of("s1") == [Publication(0, "", b"wave")]


# -- history -----------------------------------------------------------------------------


async def test_history_of_an_empty_channel(broker):
    history = await broker.history("s1")
    assert history.publications == []
    assert history.recovered
    assert history.position == await broker.position("s1")
    assert history.position.offset == 0
    assert history.position.epoch


async def test_history_since_zero_of_an_empty_channel_recovers(broker):
    epoch = (await broker.position("s1")).epoch
    history = await broker.history("s1", since=StreamPosition(0, epoch))
    assert history.recovered
    assert history.publications == []
    assert history.position == StreamPosition(0, epoch)


async def test_history_returns_all_retained_in_ascending_order(broker):
    positions = await publish_many(broker, "s1", 10)
    history = await broker.history("s1")
    assert history.recovered
    assert history.position == positions[-1]
    assert history.publications == [
        Publication(p.offset, p.epoch, f"m{p.offset}".encode()) for p in positions
    ]


async def test_history_limit_returns_the_newest(broker):
    await publish_many(broker, "s1", 10)
    assert offsets((await broker.history("s1", limit=3)).publications) == [8, 9, 10]
    assert offsets((await broker.history("s1", limit=100)).publications) == list(range(1, 11))
    empty = await broker.history("s1", limit=0)
    assert empty.publications == []
    assert empty.position.offset == 10


async def test_history_refuses_a_negative_limit(broker):
    with pytest.raises(ValueError):
        await broker.history("s1", limit=-1)


async def test_history_since_recovers_what_followed(broker):
    positions = await publish_many(broker, "s1", 10)
    epoch = positions[0].epoch
    history = await broker.history("s1", since=StreamPosition(4, epoch))
    assert history.recovered
    assert offsets(history.publications) == [5, 6, 7, 8, 9, 10]
    assert history.position == StreamPosition(10, epoch)


async def test_history_since_with_limit_returns_the_first_after(broker):
    epoch = (await publish_many(broker, "s1", 10))[0].epoch
    history = await broker.history("s1", since=StreamPosition(4, epoch), limit=2)
    assert history.recovered
    assert offsets(history.publications) == [5, 6]
    assert history.position == StreamPosition(10, epoch)


async def test_history_since_the_newest_recovers_nothing_new(broker):
    epoch = (await publish_many(broker, "s1", 3))[0].epoch
    history = await broker.history("s1", since=StreamPosition(3, epoch))
    assert history.recovered
    assert history.publications == []


async def test_history_since_another_epoch_is_not_recovered(broker):
    await publish_many(broker, "s1", 5)
    history = await broker.history("s1", since=StreamPosition(2, "another-epoch"))
    assert not history.recovered
    assert offsets(history.publications) == [1, 2, 3, 4, 5]
    limited = await broker.history("s1", since=StreamPosition(2, "another-epoch"), limit=2)
    assert not limited.recovered
    assert offsets(limited.publications) == [4, 5]


async def test_history_since_a_future_offset_is_not_recovered(broker):
    epoch = (await publish_many(broker, "s1", 3))[0].epoch
    history = await broker.history("s1", since=StreamPosition(7, epoch))
    assert not history.recovered
    assert offsets(history.publications) == [1, 2, 3]


async def test_history_size_trims_the_oldest_exactly(make_broker):
    broker = await make_broker(history_size=5)
    positions = await publish_many(broker, "s1", 7)
    history = await broker.history("s1")
    assert offsets(history.publications) == [3, 4, 5, 6, 7]
    assert history.position == positions[-1]


async def test_history_since_before_the_trimmed_part_is_not_recovered(make_broker):
    broker = await make_broker(history_size=5)
    epoch = (await publish_many(broker, "s1", 12))[0].epoch
    edge = await broker.history("s1", since=StreamPosition(7, epoch))
    assert edge.recovered
    assert offsets(edge.publications) == [8, 9, 10, 11, 12]
    lost = await broker.history("s1", since=StreamPosition(6, epoch))
    assert not lost.recovered
    assert offsets(lost.publications) == [8, 9, 10, 11, 12]
    assert lost.position == StreamPosition(12, epoch)
    limited = await broker.history("s1", since=StreamPosition(6, epoch), limit=2)
    assert not limited.recovered
    assert offsets(limited.publications) == [11, 12]


async def test_history_drops_publications_older_than_the_ttl(broker, expire, limits):
    epoch = (await publish_many(broker, "s1", 2))[0].epoch
    await expire(limits.history_ttl * 0.6)
    await broker.publish("s1", b"m3")
    await expire(limits.history_ttl * 0.6)
    history = await broker.history("s1")
    assert history.publications == [Publication(3, epoch, b"m3")]
    assert history.position == StreamPosition(3, epoch)
    assert not (await broker.history("s1", since=StreamPosition(1, epoch))).recovered
    assert (await broker.history("s1", since=StreamPosition(2, epoch))).recovered


# -- stream loss -------------------------------------------------------------------------


async def test_an_idle_stream_is_lost_and_restarts_with_a_new_epoch(broker, expire, limits):
    old = (await publish_many(broker, "s1", 3))[-1]
    await broker.publish("s1", b"k", idempotency_key="k1")
    await expire(limits.history_ttl * 1.2)
    fresh = await broker.position("s1")
    assert fresh.offset == 0
    assert fresh.epoch != old.epoch
    assert (await broker.publish("s1", b"new")).position == StreamPosition(1, fresh.epoch)
    history = await broker.history("s1", since=old)
    assert not history.recovered
    assert history.publications == [Publication(1, fresh.epoch, b"new")]


async def test_reading_does_not_keep_a_stream_alive(broker, expire, limits):
    old = (await broker.publish("s1", b"x")).position
    await expire(limits.history_ttl * 0.6)
    await broker.position("s1")
    await broker.history("s1")
    await expire(limits.history_ttl * 0.6)
    assert (await broker.position("s1")).epoch != old.epoch


async def test_publishing_keeps_a_stream_alive(broker, expire, limits):
    epoch = (await broker.publish("s1", b"x")).position.epoch
    for _ in range(3):
        await expire(limits.history_ttl * 0.6)
        await broker.publish("s1", b"x")
    assert await broker.position("s1") == StreamPosition(4, epoch)


# -- lifecycle ---------------------------------------------------------------------------


async def test_a_closed_broker_is_not_ready_and_refuses_to_publish(make_broker):
    broker = await make_broker()
    assert await broker.ready()
    await broker.close()
    assert not await broker.ready()
    with pytest.raises(BrokerUnavailable):
        await broker.publish("s1", b"x")
    with pytest.raises(BrokerUnavailable):
        await broker.history("s1")


# -- memory implementation ----------------------------------------------------------------


async def test_memory_handler_runs_inside_publish():
    broker = MemoryBroker()
    seen: list[int] = []
    await broker.start(lambda channel, pub: seen.append(pub.offset))
    await broker.subscribe("s1")
    publishing = broker.publish("s1", b"x")
    assert seen == []
    await publishing
    assert seen == [1]


async def test_memory_handler_failure_does_not_fail_the_publish(caplog):
    broker = MemoryBroker()

    def broken(channel: str, pub: Publication) -> None:
        raise RuntimeError("handler bug")

    await broker.start(broken)
    await broker.subscribe("s1")
    with caplog.at_level(logging.ERROR, logger="classroom.backends.broker.memory"):
        result = await broker.publish("s1", b"x")
    assert result.position.offset == 1
    assert "publication handler failed" in caplog.text


async def test_memory_forgets_idle_streams_and_expired_keys():
    now = [0.0]
    broker = MemoryBroker(history_ttl=10.0, idempotency_ttl=5.0, clock=lambda: now[0])
    for channel in ("a", "b", "c"):
        await broker.publish(channel, b"x", idempotency_key="k")
    now[0] = 11.0
    await broker.position("d")
    assert list(broker._streams) == ["d"]
    assert not broker._keys


def test_memory_refuses_nonsense_limits():
    with pytest.raises(ValueError):
        MemoryBroker(history_size=-1)
    with pytest.raises(ValueError):
        MemoryBroker(history_ttl=0)


# -- factory -------------------------------------------------------------------------------


def test_factory_builds_the_memory_broker_by_default():
    assert isinstance(broker_from_url(None), MemoryBroker)
    assert isinstance(broker_from_url("memory://", history_size=3), MemoryBroker)


def test_factory_refuses_unknown_schemes():
    with pytest.raises(ValueError, match="unsupported"):
        broker_from_url("kafka://broker:9092")


async def test_rewrite_replaces_data_and_keeps_offsets_and_order(broker):
    for n in range(1, 6):
        await broker.publish("acme:s1", f"event-{n}".encode())
    changed = await broker.rewrite("acme:s1", {2: b"tomb-2", 4: b"tomb-4", 99: b"absent"})
    assert changed == 2
    history = await broker.history("acme:s1")
    assert [p.offset for p in history.publications] == [1, 2, 3, 4, 5]
    assert [p.data for p in history.publications] == [
        b"event-1", b"tomb-2", b"event-3", b"tomb-4", b"event-5"]
    result = await broker.publish("acme:s1", b"event-6")
    assert result.position.offset == 6
    assert await broker.rewrite("acme:s1", {}) == 0
    assert await broker.rewrite("acme:other", {1: b"x"}) == 0


async def test_rewrite_of_an_older_epoch_changes_nothing(broker):
    await broker.publish("acme:s1", b"event-1")
    epoch = (await broker.position("acme:s1")).epoch
    assert await broker.rewrite("acme:s1", {1: b"tomb"}, epoch="another-epoch") == 0
    assert await broker.rewrite("acme:s1", {1: b"tomb"}, epoch=epoch) == 1
    assert [p.data for p in (await broker.history("acme:s1")).publications] == [b"tomb"]


async def test_rewrite_of_a_trimmed_stream_keeps_what_is_retained(make_broker):
    broker = await make_broker(history_size=3)
    for n in range(1, 7):
        await broker.publish("acme:s1", f"event-{n}".encode())
    assert await broker.rewrite("acme:s1", {2: b"gone", 5: b"tomb-5"}) == 1
    history = await broker.history("acme:s1")
    assert [(p.offset, p.data) for p in history.publications] == [
        (4, b"event-4"), (5, b"tomb-5"), (6, b"event-6")]


async def test_read_page_walks_a_trimmed_stream_from_its_oldest_retained(make_broker):
    broker = await make_broker(history_size=5)
    for n in range(1, 9):
        await broker.publish("acme:s1", f"event-{n}".encode())
    epoch = (await broker.position("acme:s1")).epoch
    first = await broker.read_page("acme:s1", after=0, limit=2)
    assert [(p.offset, p.epoch, p.data) for p in first] == [
        (4, epoch, b"event-4"), (5, epoch, b"event-5")]
    rest = await broker.read_page("acme:s1", after=5, limit=10)
    assert [p.offset for p in rest] == [6, 7, 8]
    assert await broker.read_page("acme:s1", after=8, limit=10) == []
    assert await broker.read_page("acme:s1", after=0, limit=0) == []
    assert await broker.read_page("acme:unknown", after=0, limit=10) == []


async def test_retain_keeps_the_whole_history_until_its_deadline(make_broker, expire):
    broker = await make_broker(history_ttl=1.0)
    await broker.publish("acme:s1", b"one")
    await broker.publish("acme:s1", b"two")
    assert await broker.retention("acme:s1") is None
    await broker.retain("acme:s1", 3.0)
    left = await broker.retention("acme:s1")
    assert left is not None and 2.0 < left <= 3.0
    await expire(1.5)  # past history_ttl: a retained stream is not trimmed by age
    history = await broker.history("acme:s1")
    assert [p.data for p in history.publications] == [b"one", b"two"]
    await expire(2.0)  # past the retention: the stream is gone, a new epoch starts
    after = await broker.history("acme:s1")
    assert after.publications == [] and after.position.epoch != history.position.epoch


async def test_a_publish_after_retain_does_not_extend_the_retention(make_broker):
    """An ended session's stream goes at its deadline, even if an event slipped in late."""
    broker = await make_broker(history_ttl=60.0)
    await broker.publish("acme:s1", b"one")
    await broker.retain("acme:s1", 3.0)
    await broker.publish("acme:s1", b"late")
    left = await broker.retention("acme:s1")
    assert left is not None and left <= 3.0
