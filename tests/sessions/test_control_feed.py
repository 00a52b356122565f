"""The control feed on real Redis: commands about users reach a node that missed them live.

Each test runs nodes (the session layer, with a real ``RedisBroker``) on the test
Redis under a prefix of its own, with polling off, so only the mechanisms under
test (a reconnect, a skipped offset) bring a missed command back.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import redis.asyncio as aioredis

from auth.tenants import Tenant, TenantRegistry
from classroom.backends.broker.redis import RedisBroker
from classroom.sessions.control_feed import CONTROL_FEED_CHANNEL, LEGACY_CONTROL_CHANNEL
from classroom.sessions.messages import pack_internal
from classroom.sessions.node import Node
from presence.memory import MemoryPresenceStore
from tests.backends.conftest import REDIS_URL, drop_prefix

TENANT = Tenant(id="acme", secrets=("control-feed-secret-0123456789",), api_key="k")
MakeNode = Callable[..., Any]


class Acting:
    """A node and the commands it acted on, in order."""

    def __init__(self, node: Node, name: str) -> None:
        self.node = node
        self.name = name
        self.acted: list[dict[str, Any]] = []
        node.on_user_control = self.acted.append

    def subs(self) -> list[str]:
        return [message["sub"] for message in self.acted]


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    yield prefix
    await drop_prefix(REDIS_URL, prefix)


@pytest.fixture
async def admin() -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(REDIS_URL)
    yield client
    await client.aclose()


@pytest.fixture
async def start(redis_prefix: str) -> AsyncIterator[MakeNode]:
    """Start nodes sharing the test's prefix, each with a Redis client name of its own."""
    started: list[Node] = []

    async def start(**options: Any) -> Acting:
        name = f"node-{uuid.uuid4().hex[:8]}"
        broker = RedisBroker(f"{REDIS_URL}?client_name={name}", prefix=redis_prefix,
                             reconnect_delay_max=0.2, **options)
        node = Node(tenants=TenantRegistry([TENANT]), broker=broker,
                    presence=MemoryPresenceStore(), secret=b"s", control_poll_interval=0)
        await node.start()
        started.append(node)
        return Acting(node, name)

    yield start
    for node in started:
        await node.close()


async def kill_pubsub(admin: aioredis.Redis, name: str) -> int:
    killed = 0
    for client in await admin.client_list(_type="pubsub"):
        if client.get("name") == name:
            killed += await admin.client_kill_filter(_id=client["id"], _type="pubsub")
    return killed


async def eventually(check: Callable[[], bool], timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


def command(sub: str) -> dict[str, Any]:
    return {"t": "disconnect", "tenant": "acme", "sub": sub, "reason": "r"}


async def send(acting: Acting, *subs: str) -> None:
    for sub in subs:
        await acting.node.lifecycle.control(command(sub))


async def test_a_node_whose_subscription_dropped_applies_what_it_missed_once_in_order(
    start, admin
):
    one, two = await start(), await start()
    assert await kill_pubsub(admin, two.name) == 1
    await send(one, "a", "b", "c")  # while node two waits 0.1 s to reconnect: missed live
    assert one.subs() == ["a", "b", "c"]  # applied on the sending node before it returned
    await eventually(lambda: len(two.subs()) >= 3)
    await send(one, "d")
    await eventually(lambda: len(two.subs()) >= 4)
    await asyncio.sleep(0.2)
    assert two.subs() == ["a", "b", "c", "d"]  # each once: the legacy copies are skipped
    assert two.node.control.position == one.node.control.position


async def deaf(acting: Acting) -> None:
    """Stop node ``acting`` hearing the feed live, as if pub/sub lost what comes next."""
    await acting.node.broker.unsubscribe(CONTROL_FEED_CHANNEL)


async def test_a_skipped_offset_is_read_from_history(start):
    one, two = await start(), await start()
    await send(one, "a")
    await eventually(lambda: two.subs() == ["a"])
    await deaf(two)
    await send(one, "b")
    await two.node.broker.subscribe(CONTROL_FEED_CHANNEL)
    await send(one, "c")  # offset 3 after 1: node two reads 2 from history first
    await eventually(lambda: len(two.subs()) >= 3)
    assert two.subs() == ["a", "b", "c"]


async def test_a_node_does_not_replay_commands_older_than_itself(start):
    one = await start()
    await send(one, "before")
    late = await start()
    await send(one, "after")
    await eventually(lambda: late.subs() == ["after"])
    await asyncio.sleep(0.2)
    assert late.subs() == ["after"]


async def test_a_lost_stream_applies_every_command_of_the_new_epoch(
    start, admin, redis_prefix
):
    one, two = await start(), await start()
    await send(one, "a")
    await eventually(lambda: two.subs() == ["a"])
    old = two.node.control.position
    gaps: list[None] = []
    two.node.control.on_gap = lambda: gaps.append(None)
    # Redis lost the stream (a restart without persistence) while node two was cut off.
    await admin.delete(f"{redis_prefix}:{{{CONTROL_FEED_CHANNEL}}}:meta",
                       f"{redis_prefix}:{{{CONTROL_FEED_CHANNEL}}}:stream")
    assert await kill_pubsub(admin, two.name) == 1
    await send(one, "b", "c")
    await eventually(lambda: len(two.subs()) >= 3)
    assert two.subs() == ["a", "b", "c"]
    assert two.node.control.position.epoch != old.epoch
    assert len(gaps) <= 1  # one if node two had to read the new stream from history


async def test_history_trimmed_past_a_node_applies_what_is_left_and_warns(start, caplog):
    one, two = await start(history_size=2), await start(history_size=2)
    gaps: list[None] = []
    two.node.control.on_gap = lambda: gaps.append(None)
    await deaf(two)
    await send(one, "a", "b", "c", "d", "e")  # more than history keeps
    await two.node.broker.subscribe(CONTROL_FEED_CHANNEL)
    with caplog.at_level(logging.WARNING, logger="classroom.sessions.control_feed"):
        await two.node.control.catch_up()  # what a reconnect does
    assert two.subs() == ["d", "e"]
    assert two.node.control.position == one.node.control.position
    assert "control history trimmed past this node" in caplog.text
    assert gaps == [None]  # the app re-checks its connections against the revocations


async def test_a_command_from_a_node_of_the_previous_version_is_applied(start, redis_prefix):
    one = await start()
    old = RedisBroker(REDIS_URL, prefix=redis_prefix)
    try:  # what the previous version's Lifecycle.control sent: ephemeral, on "__control__"
        await old.publish(LEGACY_CONTROL_CHANNEL, pack_internal(command("legacy")),
                          stored=False)
    finally:
        await old.close()
    await eventually(lambda: one.subs() == ["legacy"])
