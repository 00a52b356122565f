"""Fixtures that run one contract suite against every backend of Broker and PresenceStore.

Adding Redis: append ``"redis"`` to ``BACKENDS`` (skipped when ``REDIS_URL`` is
unset), build the Redis implementations in ``make_broker`` / ``presence`` with a
key prefix unique to the test, and ``expire`` then waits the TTLs out for real,
which is why the TTLs below are short.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any

import pytest

from classroom.broker import Broker, MemoryBroker, Publication
from presence.memory import MemoryPresenceStore
from presence.store import PresenceStore

BACKENDS = ["memory"]  # "redis" goes here, next week.


@dataclass(frozen=True)
class Limits:
    """The broker options every contract test runs with unless it passes its own."""

    history_size: int = 50
    history_ttl: float = 2.0
    idempotency_ttl: float = 1.0


# How long an asynchronous backend may take to deliver a publication it acknowledged.
DELIVERY_GRACE = {"memory": 0.0}  # "redis": 0.3


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
def expire(backend: str, clock: FakeClock) -> Expire:
    """``await expire(seconds)``: let that much time pass for the backend's TTLs."""

    async def expire(seconds: float) -> None:
        if backend == "memory":
            clock.advance(seconds)
        else:
            await asyncio.sleep(seconds)

    return expire


@pytest.fixture
def limits() -> Limits:
    return Limits()


@pytest.fixture
def inbox(backend: str) -> Inbox:
    return Inbox(DELIVERY_GRACE[backend])


@pytest.fixture
async def make_broker(
    backend: str, clock: FakeClock, inbox: Inbox, limits: Limits
) -> AsyncIterator[MakeBroker]:
    """Build a started broker delivering to ``inbox``; options override the test defaults."""
    made: list[Broker] = []

    async def make(**options: Any) -> Broker:
        settings = {**asdict(limits), **options}
        if backend == "memory":
            broker: Broker = MemoryBroker(clock=clock, **settings)
        # elif backend == "redis": broker = RedisBroker(REDIS_URL, prefix=<unique>, **settings)
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
async def presence(backend: str) -> AsyncIterator[PresenceStore]:
    if backend == "memory":
        store: PresenceStore = MemoryPresenceStore()
    # elif backend == "redis": store = RedisPresenceStore(REDIS_URL, prefix=<unique>)
    else:
        raise AssertionError(f"unknown backend {backend}")
    yield store
    await store.close()
