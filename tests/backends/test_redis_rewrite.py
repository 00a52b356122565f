"""Rewriting a long Redis stream in bounded steps, while other nodes keep publishing to it.

The script calls are observed through the broker's own script object (a recorder
around it, the real script still runs on the real Redis).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from classroom.backends.broker.redis import RedisBroker
from tests.backends.conftest import REDIS_URL, Inbox

EVENTS = 3000


class Steps:
    """Records every rewrite step (its replacement count and reply); may run a hook after each."""

    def __init__(self, broker: RedisBroker,
                 after: Callable[[], Awaitable[None]] | None = None) -> None:
        self._script = broker._rewrite_script
        self._after = after
        self.replies: list[list[Any]] = []
        self.given: list[int] = []
        broker._rewrite_script = self  # type: ignore[assignment]

    async def __call__(self, *, keys: list[str], args: list[Any]) -> Any:
        reply = await self._script(keys=keys, args=args)
        self.replies.append(reply)
        self.given.append((len(args) - 6) // 2)
        if self._after is not None:
            await self._after()
        return reply

    def copied(self) -> list[int]:
        return [int(reply[2]) for reply in self.replies]


@pytest.fixture
async def make(redis_prefix: str) -> AsyncIterator[Callable[..., RedisBroker]]:
    made: list[RedisBroker] = []

    def make(**options: Any) -> RedisBroker:
        broker = RedisBroker(REDIS_URL, prefix=redis_prefix, **options)
        made.append(broker)
        return broker

    yield make
    for broker in made:
        await broker.close()


async def fill(broker: RedisBroker, count: int) -> None:
    for n in range(1, count + 1):
        await broker.publish("acme:s1", f"e{n}".encode())


async def test_each_step_copies_at_most_a_chunk_and_everything_named_is_replaced(make):
    broker = make(rewrite_chunk=100)
    await fill(broker, EVENTS)
    ttl_before = await broker._client.pttl(broker._key("acme:s1", "stream"))
    replacements = {n: f"tomb{n}".encode() for n in range(1, EVENTS + 1) if n % 7 in (0, 1)}
    steps = Steps(broker)
    assert await broker.rewrite("acme:s1", replacements) == len(replacements)
    assert max(steps.copied()) <= 100 and max(steps.given) <= 100
    assert sum(steps.copied()) == EVENTS
    assert len(steps.replies) == math.ceil(EVENTS / 100) + 1  # the last finds the end
    history = (await broker.history("acme:s1")).publications
    assert [p.offset for p in history] == list(range(1, EVENTS + 1))
    assert [p.data for p in history] == [replacements.get(n, f"e{n}".encode())
                                         for n in range(1, EVENTS + 1)]
    ttl_after = await broker._client.pttl(broker._key("acme:s1", "stream"))
    assert 0 < ttl_after <= ttl_before
    assert (await broker.publish("acme:s1", b"next")).position.offset == EVENTS + 1
    leftovers = [key async for key in broker._client.scan_iter(
        match=broker._key("acme:s1", "rewrit*"))]
    assert leftovers == []  # no copy and no lock left behind


async def test_publishes_during_a_rewrite_are_kept_in_order_and_trimmed_as_usual(make):
    size = EVENTS + 200
    broker = make(rewrite_chunk=50, history_size=size)
    other = make(history_size=size)  # another node, publishing to the same session
    inbox = Inbox(0.3)
    await other.start(inbox)
    await other.subscribe("acme:s1")
    await fill(broker, EVENTS)
    published: list[int] = []

    async def publish_some() -> None:  # between every two steps of the rewrite
        for _ in range(5):
            result = await other.publish("acme:s1", f"p{len(published)}".encode())
            published.append(result.position.offset)

    replacements = {n: f"tomb{n}".encode() for n in range(1, EVENTS + 1, 3)}
    steps = Steps(broker, after=publish_some)
    await broker.rewrite("acme:s1", replacements)
    newest = EVENTS + len(published)
    assert len(steps.replies) > 60 and newest > size  # the front was trimmed meanwhile
    assert published == list(range(EVENTS + 1, newest + 1))  # none lost, none reordered
    live = [pub.offset for pub in await inbox.of("acme:s1")]
    assert live == list(range(1, newest + 1))  # a subscribed node heard every one, in order
    expected = {n: replacements.get(n, f"e{n}".encode()) for n in range(1, EVENTS + 1)}
    expected.update({offset: f"p{k}".encode() for k, offset in enumerate(published)})
    history = (await broker.history("acme:s1")).publications
    assert [p.offset for p in history] == list(range(newest - size + 1, newest + 1))
    assert {p.offset: p.data for p in history} == {
        n: expected[n] for n in range(newest - size + 1, newest + 1)}


async def test_two_rewrites_of_one_stream_both_land(make):
    first, second = make(rewrite_chunk=10), make(rewrite_chunk=10)
    await fill(first, 300)
    changed = await asyncio.gather(
        first.rewrite("acme:s1", dict.fromkeys(range(1, 301, 2), b"A")),
        second.rewrite("acme:s1", dict.fromkeys(range(2, 301, 4), b"B")),
    )
    assert changed == [150, 75]
    history = (await first.history("acme:s1")).publications
    assert [p.data for p in history] == [
        b"A" if n % 2 else b"B" if n % 4 == 2 else f"e{n}".encode() for n in range(1, 301)]


async def test_a_rewrite_of_a_lost_stream_resurrects_nothing(make):
    broker = make(rewrite_chunk=10)
    await fill(broker, 50)
    epoch = (await broker.position("acme:s1")).epoch

    async def lose_the_stream() -> None:
        await broker._client.delete(broker._key("acme:s1", "meta"),
                                    broker._key("acme:s1", "stream"))

    Steps(broker, after=lose_the_stream)
    assert await broker.rewrite("acme:s1", dict.fromkeys(range(1, 51), b"x"), epoch=epoch) == 0
    assert (await broker.history("acme:s1")).publications == []
