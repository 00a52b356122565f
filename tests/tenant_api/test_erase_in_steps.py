"""Erasing a user from a long session stream in bounded Redis calls, while the session goes on.

A Redis server of the test's own, so ``INFO commandstats`` counts exactly the
calls this erasure made (commands run by a script are counted too).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from auth.tenants import Tenant, TenantRegistry
from classroom.backends.broker.redis import RedisBroker
from classroom.backends.data.records import Records
from classroom.backends.data.redis import data_store_from_url
from classroom.domain.erasure import ERASED_BY
from classroom.sessions.messages import event_message, unpack_internal
from classroom.sessions.node import Node
from classroom.tenant_api.privacy_rights import PrivacyRights
from presence.memory import MemoryPresenceStore
from tests.multinode.conftest import RedisServer, free_port

TENANT = Tenant(id="acme", secrets=("erase-steps-secret-0123456789",), api_key="k")
EVENTS = 3000
CHUNK = 100


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(free_port(), tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def node(own_redis: RedisServer) -> AsyncIterator[Node]:
    made = Node(tenants=TenantRegistry([TENANT]),
                broker=RedisBroker(own_redis.url, rewrite_chunk=CHUNK),
                presence=MemoryPresenceStore(), secret=b"s",
                records=Records(data_store_from_url(own_redis.url), b"s"))
    await made.start()
    yield made
    await made.close()


def chat(sub: str, n: int) -> dict[str, Any]:
    return {"kind": "chat", "text": f"{sub} says {n}", "at": float(n),
            "by": {"pid": f"p-{sub}", "role": "student", "sub": sub, "name": f"Name {sub}"}}


async def command_calls(admin: aioredis.Redis) -> dict[str, int]:
    stats = await admin.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(row["calls"]) for name, row in stats.items()}


async def test_erasure_rewrites_a_long_stream_in_bounded_steps_while_others_publish(
    own_redis: RedisServer, node: Node,
) -> None:
    broker = node.broker
    authored = {n for n in range(1, EVENTS + 1) if n % 10 == 3}
    for n in range(1, EVENTS + 1):
        await broker.publish("acme:s1", event_message(chat("u1" if n in authored else "u2", n)))
    await node.records.joined("acme", "u1", "s1")
    other = RedisBroker(own_redis.url)  # another node: the session goes on meanwhile
    published: list[int] = []
    erasing = True

    async def keep_publishing() -> None:
        while erasing:
            result = await other.publish("acme:s1", event_message(chat("u2", 0)))
            published.append(result.position.offset)

    admin = aioredis.from_url(own_redis.url)
    try:
        before = await command_calls(admin)
        publisher = asyncio.create_task(keep_publishing())
        answer = await PrivacyRights(node, page_size=CHUNK).erase(TENANT, "u1")
        erasing = False
        await publisher
        after = await command_calls(admin)
    finally:
        await admin.aclose()
        await other.close()
    assert answer["events"] == len(authored)
    calls = {name: after.get(name, 0) - before.get(name, 0) for name in after}
    # Every entry is read once a page at a time, then copied once a step at a time:
    # no call grows with the stream (the old erasure made one read and one rewrite).
    assert calls["evalsha"] - len(published) >= EVENTS // CHUNK  # scripts but the publishes
    assert calls["xrange"] >= 2 * EVENTS // CHUNK
    assert calls["xadd"] - len(published) >= EVENTS  # the copy, and the publishes meanwhile

    newest = EVENTS + len(published)
    assert published  # the other node published while the erasure ran
    assert published == list(range(EVENTS + 1, newest + 1))  # none lost, none reordered
    history = (await broker.history("acme:s1")).publications
    assert [pub.offset for pub in history] == list(range(1, newest + 1))
    for pub in history:
        record = unpack_internal(pub.data)["record"]
        if pub.offset in authored:
            assert record == {"kind": "chat", "erased": True, "by": dict(ERASED_BY),
                              "at": float(pub.offset)}
        elif pub.offset <= EVENTS:
            assert record == chat("u2", pub.offset)  # nothing else changed
        else:
            assert record == chat("u2", 0)
