"""A node on Redis writes an event to its members as soon as it has read it off pub/sub.

Before, the frames waited for the write batcher's turn at the end of the event loop's
iteration, behind everything else ready by then: in a reconnect storm, hundreds of
joins' steps, and in uvloop the next poll's I/O callbacks as well.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import orjson
import pytest

from auth.identity import Identity
from auth.tenants import Tenant, TenantRegistry
from classroom.backends.broker.redis import RedisBroker
from classroom.edge.write_batching import WriteBatcher
from classroom.metrics import Metrics
from classroom.protocol.codec import Encoding, Payload
from classroom.sessions.messages import event_message
from classroom.sessions.node import Node
from presence.memory import MemoryPresenceStore
from tests.backends.conftest import REDIS_URL, drop_prefix

TENANT = Tenant(id="acme", secrets=("acme-secret-0",), api_key="acme-key")
TRAINER = {"pid": "p-t", "role": "trainer", "sub": "t1"}


class BatchedPeer:
    """A member's connection as the edge has it: frames are queued, the batcher writes."""

    def __init__(self, batcher: WriteBatcher) -> None:
        self.client_id = "c1"
        self.encoding: Encoding = "json"
        self.features: frozenset[str] = frozenset()
        self.batcher = batcher
        self.queued: list[Payload] = []
        self.log: list[str] = []

    def enqueue(self, payload: Payload) -> None:
        self.queued.append(payload)
        # Whatever else the loop is given while the event is fanned out runs after it.
        asyncio.get_running_loop().call_soon(self.log.append, "other work")
        self.batcher.mark(self)

    def flush(self) -> int:
        written = [orjson.loads(payload) for payload in self.queued]
        self.queued.clear()
        self.log.extend(f"written {frame['event']['text']}" for frame in written)
        return len(written)

    def session_ended(self, session: str) -> None:
        self.log.append(f"ended {session}")


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    made = f"test-{uuid.uuid4().hex[:12]}"
    yield made
    await drop_prefix(REDIS_URL, made)


async def test_an_event_off_redis_is_written_before_other_ready_work(prefix: str) -> None:
    metrics = Metrics()
    batcher = WriteBatcher(metrics.frames_written, metrics.publish_to_write)
    publisher = RedisBroker(REDIS_URL, prefix=prefix)  # another node, publishing
    node = Node(tenants=TenantRegistry([TENANT]), broker=RedisBroker(REDIS_URL, prefix=prefix),
                presence=MemoryPresenceStore(), secret=b"test-secret", write_clock=batcher)
    await node.start()
    try:
        peer = BatchedPeer(batcher)
        student = Identity(tenant="acme", sub="u1", role="student",
                           sessions=frozenset({"s1"}), expires_at=time.time() + 600)
        outcome = await node.joins.join(peer, student, "s1", None)
        outcome.membership.go_live(outcome.live_after)  # as the join handler does
        await asyncio.sleep(0.05)
        peer.log.clear()  # the join's own frames
        record = {"kind": "chat", "text": "hello", "by": TRAINER, "at": time.time()}
        await publisher.publish("acme:s1", event_message(record))
        async with asyncio.timeout(5):
            while "other work" not in peer.log:
                await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        assert peer.log == ["written hello", "other work"]
    finally:
        await node.close()
        await publisher.close()
