"""Reading a stream's pages on a Redis Cluster keeps to the event loop.

redis-py 8.1's asyncio cluster pipeline in a transaction (MULTI) runs each queued
command through ``asyncio.run`` in a thread of its own and waits for it, blocking the
node's event loop for every page an export or an erasure reads.
"""

from __future__ import annotations

import uuid

from classroom.backends.broker import broker_from_url
from tests.backends.conftest import drop_prefix
from tests.redis_topologies import ClusterSet


async def test_pages_of_history_are_read_on_a_cluster_without_a_thread(
    cluster_set: ClusterSet, thread_starts: list[str],
) -> None:
    prefix = f"t-{uuid.uuid4().hex[:8]}"
    broker = broker_from_url(cluster_set.url, prefix=prefix)
    try:
        for n in range(12):
            await broker.publish("acme:s1", b"event %d" % n)
        thread_starts.clear()
        pages = [await broker.read_page("acme:s1", after=after, limit=5)
                 for after in (0, 5, 10)]
        assert [[p.data for p in page] for page in pages] == [
            [b"event %d" % n for n in range(5)],
            [b"event %d" % n for n in range(5, 10)],
            [b"event %d" % n for n in range(10, 12)],
        ]
        assert thread_starts == []
    finally:
        await broker.close()
        await drop_prefix(cluster_set.url, prefix)
