"""Redis' own cost per publication, without the nodes: the publish script in isolation.

In a scale-out run the owner shard's CPU per publication is a small difference
(a few ms per second at 10-20 publications/s) on top of Redis' background work
(its cron, presence heart-beats, the probe's own INFO), on a machine others use
too. Here the server's own broker class (``ClusterBroker``, the script and
``SPUBLISH`` the nodes run) publishes ``count`` events of the run's size one
after another into a session that 0, 1 or 3 other brokers (standing in for
nodes) subscribe to, and the owner shard's ``INFO`` before and after gives CPU,
script time and bytes per publication, with thousands of publications to
divide by. Publishing one at a time is the costliest way for Redis (one read
and one write syscall per publication); nodes publishing concurrently share
syscalls, so this is an upper bound on the per-publication CPU.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import redis

from classroom.backends.broker.base import Publication
from classroom.backends.broker.cluster import ClusterBroker
from loadtests.scaleout.probe import RedisReading, read_redis

CHANNEL = "scaleout:broker-probe"
SETTLE = 0.3  # seconds for the last messages to reach the subscribers


def _figures(before: RedisReading, after: RedisReading, count: int) -> dict[str, Any]:
    return {
        "cpu_us_per_publication": round((after.cpu_seconds - before.cpu_seconds)
                                        / count * 1e6, 1),
        "script_us_per_publication": round((after.usec.get("evalsha", 0)
                                            - before.usec.get("evalsha", 0)) / count, 1),
        "net_output_bytes_per_publication": round(
            (after.net_output_bytes - before.net_output_bytes) / count),
        "repl_output_bytes_per_publication": round(
            (after.repl_output_bytes - before.repl_output_bytes) / count),
    }


async def _measure(url: str, ports: list[int], prefix: str, subscribers: int, count: int,
                   payload: bytes) -> dict[str, Any]:
    delivered = 0

    def count_it(channel: str, publication: Publication) -> None:
        nonlocal delivered
        delivered += 1

    publisher = ClusterBroker(url, prefix=prefix)
    listeners = [ClusterBroker(url, prefix=prefix) for _ in range(subscribers)]
    clients = {port: redis.Redis(host="127.0.0.1", port=port, socket_timeout=2)
               for port in ports}
    try:
        await publisher.start(count_it)
        for listener in listeners:
            await listener.start(count_it)
            await listener.subscribe(CHANNEL)
        await publisher.publish(CHANNEL, payload)  # the script is loaded, the slot known
        await asyncio.sleep(SETTLE)
        delivered = 0
        before = {port: read_redis(client) for port, client in clients.items()}
        began = time.perf_counter()
        for _ in range(count):
            await publisher.publish(CHANNEL, payload)
        wall = time.perf_counter() - began
        await asyncio.sleep(SETTLE)
        after = {port: read_redis(client) for port, client in clients.items()}
    finally:
        for listener in listeners:
            await listener.close()
        await publisher.close()
        for client in clients.values():
            client.close()
    def published(port: int) -> int:
        first, last = before[port], after[port]
        if first is None or last is None:
            return -1
        return last.calls.get("spublish", 0) - first.calls.get("spublish", 0)

    owner = max(ports, key=published)
    a, b = before[owner], after[owner]
    if a is None or b is None:
        raise RuntimeError("the owner shard did not answer INFO")
    return {"subscribers": subscribers, "publications": count, "payload_bytes": len(payload),
            "delivered": delivered, "owner_shard": owner,
            "wall_us_per_publication": round(wall / count * 1e6, 1), **_figures(a, b, count)}


def publish_cost(url: str, primaries: list[int], prefix: str, payload: bytes,
                 count: int = 3000, subscribers: tuple[int, ...] = (0, 1, 3),
                 ) -> list[dict[str, Any]]:
    """One measurement per number of subscribing brokers."""
    return [asyncio.run(_measure(url, primaries, prefix, n, count, payload))
            for n in subscribers]
