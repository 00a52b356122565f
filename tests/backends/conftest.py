"""Fixtures that run one contract suite against every backend of Broker and PresenceStore.

Redis is always on: ``make test`` starts one on 127.0.0.1:6379, and the tests use
database 15 (or ``CLASSROOM_TEST_REDIS_URL``) under a key prefix unique to each
test, deleted afterwards. ``expire`` then waits the TTLs out for real, which is
why the TTLs below are short. ``sentinel`` and ``cluster`` run the same suites on
a Sentinel set and a Redis Cluster of the session's own (``tests/redis_topologies.py``),
except the tests that only wait for Redis' own key expiry: the server expires keys
the same whatever the topology, so they wait once, on ``redis``.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any

import pytest

from classroom.backends.broker import Broker, MemoryBroker, Publication, broker_from_url
from classroom.backends.data.records import Records
from classroom.backends.presence_factory import presence_from_url
from classroom.backends.redis_client import any_redis_client
from presence.memory import MemoryPresenceStore
from presence.store import PresenceStore

BACKENDS = ["memory", "redis", "sentinel", "cluster"]
REDIS_BACKENDS = ("redis", "sentinel", "cluster")
REDIS_URL = os.environ.get("CLASSROOM_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@dataclass(frozen=True)
class Limits:
    """The broker options every contract test runs with unless it passes its own."""

    history_size: int = 50
    history_ttl: float = 2.0
    idempotency_ttl: float = 1.0


# How long an asynchronous backend may take to deliver a publication it acknowledged.
DELIVERY_GRACE = {"memory": 0.0, "redis": 0.3, "sentinel": 0.3, "cluster": 0.3}


class FakeClock:
    """A monotonic clock the memory backends read, moved on by tests instead of sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Inbox:
    """The handler the brokers under test deliver to; records ``(channel, publication)``."""

    def __init__(self, grace: float) -> None:
        self.received: list[tuple[str, Publication]] = []
        self._grace = grace

    def __call__(self, channel: str, publication: Publication) -> None:
        self.received.append((channel, publication))

    async def settle(self) -> list[tuple[str, Publication]]:
        """Everything delivered, once in-flight deliveries had time to land."""
        await asyncio.sleep(self._grace)
        return self.received

    async def of(self, channel: str) -> list[Publication]:
        """The settled publications of one channel, in delivery order."""
        return [pub for ch, pub in await self.settle() if ch == channel]


MakeBroker = Callable[..., Awaitable[Broker]]
Expire = Callable[[float], Awaitable[None]]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def backend_url(backend: str, request: pytest.FixtureRequest) -> str:
    """The ``REDIS_URL`` of a Redis backend (its topology started on first use)."""
    if backend == "sentinel":
        return str(request.getfixturevalue("sentinel_set").url)
    if backend == "cluster":
        return str(request.getfixturevalue("cluster_set").url)
    return REDIS_URL


@pytest.fixture
def expire(backend: str, clock: FakeClock) -> Expire:
    """``await expire(seconds)``: let that much time pass for the backend's TTLs."""
    if backend in ("sentinel", "cluster"):
        pytest.skip("key expiry is Redis' own, the same on every topology: tested on redis")

    async def expire(seconds: float) -> None:
        if backend == "memory":
            clock.advance(seconds)
        else:
            await asyncio.sleep(seconds)

    return expire


async def drop_prefix(url: str, prefix: str) -> None:
    """Delete every key under ``prefix``, so tests leave the database as they found it.

    On a cluster ``scan_iter`` visits every primary and ``delete`` splits by slot.
    """
    client = any_redis_client(url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}:*", count=500)]
        for start in range(0, len(keys), 500):
            await client.delete(*keys[start : start + 500])
    finally:
        await client.aclose()


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    """A key prefix of this test's own on the test Redis, emptied when the test ends."""
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    yield prefix
    await drop_prefix(REDIS_URL, prefix)


@pytest.fixture
async def key_prefix(backend: str, backend_url: str) -> AsyncIterator[str]:
    """The test's Redis key prefix, emptied afterwards; memory backends have no keys."""
    if backend not in REDIS_BACKENDS:
        yield ""
        return
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    yield prefix
    await drop_prefix(backend_url, prefix)


@pytest.fixture
def limits() -> Limits:
    return Limits()


@pytest.fixture
def inbox(backend: str) -> Inbox:
    return Inbox(DELIVERY_GRACE[backend])


@pytest.fixture
async def make_broker(
    backend: str, clock: FakeClock, inbox: Inbox, limits: Limits, key_prefix: str,
    backend_url: str,
) -> AsyncIterator[MakeBroker]:
    """Build a started broker delivering to ``inbox``; options override the test defaults."""
    made: list[Broker] = []

    async def make(**options: Any) -> Broker:
        settings = {**asdict(limits), **options}
        if backend == "memory":
            broker: Broker = MemoryBroker(clock=clock, **settings)
        elif backend in REDIS_BACKENDS:
            broker = broker_from_url(backend_url, prefix=key_prefix, **settings)
        else:
            raise AssertionError(f"unknown backend {backend}")
        await broker.start(inbox)
        made.append(broker)
        return broker

    yield make
    for broker in made:
        await broker.close()


@pytest.fixture
async def broker(make_broker: MakeBroker) -> Broker:
    return await make_broker()


@pytest.fixture
async def presence(
    backend: str, key_prefix: str, backend_url: str
) -> AsyncIterator[PresenceStore]:
    if backend == "memory":
        store: PresenceStore = MemoryPresenceStore()
    elif backend in REDIS_BACKENDS:
        store = presence_from_url(backend_url, prefix=key_prefix)
    else:
        raise AssertionError(f"unknown backend {backend}")
    yield store
    await store.close()


@pytest.fixture
async def records(backend: str, backend_url: str) -> AsyncIterator[Records]:
    """Records (and their data store) on the module's ``backend``."""
    from tests.records_backends import records_on  # it imports this module

    async with records_on(backend, backend_url) as made:
        yield made
