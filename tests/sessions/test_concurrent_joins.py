"""Two first joiners of a session on one node, on a real Redis: each gets a snapshot at a
known offset and exactly the events after it, never an empty runtime and then a flood."""

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
from classroom.sessions.messages import event_message
from classroom.sessions.node import Node
from presence.memory import MemoryPresenceStore
from tests.backends.conftest import REDIS_URL, drop_prefix
from tests.sessions.test_hub import Recipient

TENANT = Tenant(id="acme", secrets=("acme-secret-0",), api_key="acme-key")
TRAINER = {"pid": "p-t", "role": "trainer", "sub": "t1"}


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    made = f"test-{uuid.uuid4().hex[:12]}"
    yield made
    await drop_prefix(REDIS_URL, made)


def student(sub: str) -> Identity:
    return Identity(tenant="acme", sub=sub, role="student", sessions=frozenset({"s1"}),
                    expires_at=time.time() + 600)


async def test_concurrent_first_joins_wait_for_one_settled_stream(prefix: str) -> None:
    publisher = RedisBroker(REDIS_URL, prefix=prefix)  # another node, publishing
    node = Node(tenants=TenantRegistry([TENANT]), broker=RedisBroker(REDIS_URL, prefix=prefix),
                presence=MemoryPresenceStore(), secret=b"test-secret")
    await node.start()
    try:
        for n in range(499):
            record = {"kind": "chat", "text": str(n), "by": TRAINER, "at": 1.0}
            await publisher.publish("acme:s1", event_message(record))
        record = {"kind": "screen.navigate", "screen": "chapter-7", "by": TRAINER, "at": 2.0}
        await publisher.publish("acme:s1", event_message(record))
        peers = [Recipient(f"c{n}", "json") for n in range(3)]
        outcomes = await asyncio.gather(*(
            node.joins.join(peer, student(f"u{n}"), "s1", None) for n, peer in enumerate(peers)
        ))
        for outcome in outcomes:
            assert outcome.reply["offset"] == outcome.live_after == 500
            assert outcome.reply["state"]["screen"] == "chapter-7"
            assert outcome.replay == []
            outcome.membership.go_live(outcome.live_after)  # as the join handler does
        record = {"kind": "chat", "text": "after", "by": TRAINER, "at": 3.0}
        await publisher.publish("acme:s1", event_message(record))
        await node.streams.wait_applied("acme:s1", await publisher.position("acme:s1"), 2.0)
        for peer in peers:  # exactly the events after the snapshot: no flood of history
            events = [orjson.loads(p) for p in peer.payloads]
            assert [e["offset"] for e in events if e["type"] == "event"] == [501]
    finally:
        await node.close()
        await publisher.close()
