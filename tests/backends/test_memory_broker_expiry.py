"""The embedded broker's expiry costs the same however many ended sessions it keeps.

Ended sessions' streams are kept whole for their retention (30 days). The
expiry that runs before every broker call used to visit every one of them, so
a publish took 5 us with no ended session and 6 ms with 10,000 (the soak in
docs/performance.md). These tests pin the semantics of expiry and that its
cost no longer grows with the number of retained streams.
"""

from __future__ import annotations

import time

from classroom.backends.broker.memory import MemoryBroker


class Clock:
    """A settable monotonic clock."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_retained_stream_outlives_the_idle_ttl_and_goes_at_its_deadline() -> None:
    clock = Clock()
    broker = MemoryBroker(history_ttl=10, clock=clock)
    await broker.publish("ended", b"a")
    await broker.retain("ended", 100)
    await broker.publish("idle", b"b")
    clock.now += 50
    assert await broker.retention("ended") == 50
    assert (await broker.history("ended")).publications
    assert (await broker.history("idle")).publications == []
    clock.now += 51
    assert await broker.retention("ended") is None
    assert (await broker.history("ended")).publications == []


async def test_retaining_again_moves_the_deadline_and_the_old_one_drops_nothing() -> None:
    clock = Clock()
    broker = MemoryBroker(history_ttl=10, clock=clock)
    await broker.publish("s", b"a")
    await broker.retain("s", 20)
    await broker.retain("s", 60)
    clock.now += 30
    assert await broker.retention("s") == 30
    assert [p.data for p in (await broker.history("s")).publications] == [b"a"]


async def test_a_stream_written_again_is_not_dropped_for_its_old_age() -> None:
    clock = Clock()
    broker = MemoryBroker(history_ttl=10, clock=clock)
    await broker.publish("a", b"1")
    await broker.publish("b", b"1")
    clock.now += 8
    await broker.publish("a", b"2")
    clock.now += 5
    assert (await broker.position("a")).offset == 2  # the stream lives on, its old entry aged out
    assert [p.data for p in (await broker.history("a")).publications] == [b"2"]
    assert (await broker.position("b")).offset == 0  # dropped whole: a new stream


async def _publish_seconds(broker: MemoryBroker, rounds: int = 300) -> float:
    """The fastest of a few batches of publishes, per publish."""
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(rounds):
            await broker.publish("live", b"x", stored=True)
        best = min(best, (time.perf_counter() - started) / rounds)
    return best


async def test_publish_cost_does_not_grow_with_retained_streams() -> None:
    """With 20,000 ended sessions kept, a publish costs about what it did with none.

    The old expiry made it ~1,000x dearer at 10,000; 20x is far above noise
    and far below that.
    """
    broker = MemoryBroker(history_size=10)
    alone = await _publish_seconds(broker)
    for index in range(20_000):
        channel = f"ended-{index}"
        await broker.publish(channel, b"e")
        await broker.retain(channel, 86400 * 30)
    crowded = await _publish_seconds(broker)
    assert crowded < alone * 20, (alone, crowded)
