"""A running broker and presence store follow Sentinel's failover without a restart."""

from __future__ import annotations

import asyncio
import uuid

from classroom.backends.broker import BrokerUnavailable, broker_from_url
from classroom.backends.presence_factory import presence_from_url
from presence.store import PresenceUnavailable
from tests.backends.conftest import Inbox, drop_prefix
from tests.redis_topologies import SentinelSet

CHANNEL = "acme:failover"


async def until_it_works(call: object, timeout: float = 15.0) -> object:
    """Retry ``call()`` while Redis answers unavailable (the failover), up to ``timeout``."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            return await call()  # type: ignore[operator]
        except (BrokerUnavailable, PresenceUnavailable):
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.1)


async def test_broker_and_presence_follow_a_failover(sentinel_set: SentinelSet) -> None:
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    inbox = Inbox(0.3)
    broker = broker_from_url(sentinel_set.url, prefix=prefix)
    presence = presence_from_url(sentinel_set.url, prefix=prefix)
    reconnected = asyncio.Event()
    broker.on_reconnect = reconnected.set
    await broker.start(inbox)
    await broker.subscribe(CHANNEL)
    try:
        before = [await broker.publish(CHANNEL, f"m{n}".encode()) for n in range(1, 4)]
        assert await presence.add(CHANNEL, "c1", "u1", b"")
        old = sentinel_set.primary()
        # Replication is asynchronous: wait for the replica so nothing is lost here.
        assert old.client().execute_command("WAIT", 1, 2000) == 1
        sentinel_set.kill_primary()
        new_port = sentinel_set.wait_failover(old.port)
        assert new_port != old.port

        result = await until_it_works(lambda: broker.publish(CHANNEL, b"m4"))
        await asyncio.wait_for(reconnected.wait(), 10)
        assert result.position.offset == 4  # type: ignore[attr-defined]
        assert result.position.epoch == before[0].position.epoch  # type: ignore[attr-defined]
        await broker.publish(CHANNEL, b"m5")
        history = await broker.history(CHANNEL)
        assert [p.data for p in history.publications] == [b"m1", b"m2", b"m3", b"m4", b"m5"]
        received = [p.data for p in await inbox.of(CHANNEL)]
        assert received[:3] == [b"m1", b"m2", b"m3"] and received[-1] == b"m5"
        assert [p.client for p in await presence.participants(CHANNEL)] == ["c1"]
        assert await broker.ready()
    finally:
        await broker.close()
        await presence.close()
        sentinel_set.restore(old)
        await drop_prefix(sentinel_set.url, prefix)
