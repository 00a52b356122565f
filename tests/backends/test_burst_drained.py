"""``Broker.on_drained``: a burst read off Redis is reported once, as soon as it is read.

The node writes the frames a burst of publications queued when the broker reports
the burst's end, instead of at the end of the event loop's iteration, after every
other callback ready by then (in a reconnect storm, hundreds of joins' steps).
Members who got several publications in one burst still get one write, so the
report comes once per burst, not once per publication.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from classroom.backends.broker import Broker, Publication, broker_from_url
from classroom.backends.broker.redis_core import RedisBrokerCore
from tests.backends.conftest import REDIS_BACKENDS

BURST = 5
# One script run publishes them all: Redis queues every message for the subscriber
# before it writes, so the node reads them in one go.
PUBLISH_ALL = "for i = 2, #ARGV do redis.call(ARGV[1], KEYS[1], ARGV[i]) end"


class Recorder:
    """The broker's handler and ``on_drained``: what happened, in order."""

    def __init__(self) -> None:
        self.events: list[str] = []

    def handler(self, channel: str, publication: Publication) -> None:
        self.events.append(publication.data.decode())
        # What the loop would run next: a write the batcher left for the iteration's end.
        asyncio.get_running_loop().call_soon(self.events.append, "next iteration")

    def drained(self) -> None:
        self.events.append("drained")

    def since(self, first: str) -> list[str]:
        """The events from ``first`` on (a subscription's confirmation is a burst too)."""
        return self.events[self.events.index(first):]


@pytest.fixture
async def redis_broker(backend: str, backend_url: str, key_prefix: str,
                       ) -> AsyncIterator[Broker]:
    if backend not in REDIS_BACKENDS:
        pytest.skip("the embedded broker delivers inside publish and never reports a burst")
    broker = broker_from_url(backend_url, prefix=key_prefix)
    yield broker
    await broker.close()


async def test_a_burst_is_reported_once_after_its_last_publication_within_the_iteration(
    redis_broker: Broker,
) -> None:
    recorder = Recorder()
    redis_broker.on_drained = recorder.drained
    await redis_broker.start(recorder.handler)
    await redis_broker.subscribe("burst")
    assert isinstance(redis_broker, RedisBrokerCore)
    command = type(redis_broker).PUBLISH_COMMAND
    # Ephemeral publications as the broker's own script sends them: offset 0, no epoch.
    payloads = [f"0::p{n}".encode() for n in range(1, BURST + 1)]
    name = f"{redis_broker.prefix}:{{burst}}:pub"  # where a session's publications go
    await redis_broker.redis.eval(PUBLISH_ALL, 1, name, command, *payloads)
    async with asyncio.timeout(5):
        while recorder.events.count("next iteration") < BURST:
            await asyncio.sleep(0.01)
    published = [f"p{n}" for n in range(1, BURST + 1)]
    assert recorder.since("p1") == [*published, "drained"] + ["next iteration"] * BURST


async def test_publications_one_at_a_time_are_each_reported(redis_broker: Broker) -> None:
    recorder = Recorder()
    redis_broker.on_drained = recorder.drained
    await redis_broker.start(recorder.handler)
    await redis_broker.subscribe("apart")
    for n in range(3):
        await redis_broker.publish("apart", f"q{n}".encode(), stored=False)
        async with asyncio.timeout(5):
            while "next iteration" not in recorder.events:
                await asyncio.sleep(0.01)
        assert recorder.since(f"q{n}") == [f"q{n}", "drained", "next iteration"]
        recorder.events.clear()
