"""Sharded pub/sub on a Redis Cluster: one ``SSUBSCRIBE`` connection per primary in use.

redis-py (8.1) can send ``SSUBSCRIBE`` and parse ``smessage``, and its
``ClusterPubSub`` keeps a connection per node, but it does not fit a broker that
must never silently stop delivering a channel:

- it polls its per-node connections one after another, each with the read
  timeout, so an idle shard delays the others' messages;
- when a slot migrates, Redis sends an unrequested ``sunsubscribe``; redis-py
  keeps the channel filed under the old node and only moves it after its own slot
  map is refreshed, which a node that only listens never triggers;
- after a failover a per-node connection reconnects to the same, dead, address.

So this module keeps only redis-py's parts that work (the cluster client's slot
map and refresh, a plain ``PubSub`` per primary for the wire protocol) and adds
one reconciler: a single task that makes the connections match the wanted
channels, subscribing each on the primary that owns its slot now. A dropped
connection, a ``MOVED`` answer or an unrequested ``sunsubscribe`` refreshes the
slot map and moves the channels to their owners, retrying with backoff until all
are confirmed, and then reports that publications may have been missed
(``on_resubscribed``) so the node catches up from history.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio.client import PubSub
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import ConnectionPool
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from classroom.backends.broker.bursts import after_message

logger = logging.getLogger("classroom.backends.broker")

HEALTH_CHECK_INTERVAL = 5.0  # a shard connection pings when idle this long
READ_TIMEOUT = 1.0  # one get_message() wait; bounds how late the watchdog notices
CONFIRM_TIMEOUT = 3.0  # how long subscribe() waits for Redis' confirmation

Deliver = Callable[[bytes, bytes], None]
"""Gets ``(shard channel name, payload)`` of every message of a wanted channel."""


@dataclass(eq=False)
class _Shard:
    """The one sharded-pub/sub connection to one primary, and what it is subscribed to."""

    node: str
    pubsub: PubSub
    confirmed: set[bytes] = field(default_factory=set)
    sent: set[bytes] = field(default_factory=set)
    leaving: set[bytes] = field(default_factory=set)
    reader: asyncio.Task[None] | None = None


class ShardSubscriptions:
    """Keeps every wanted shard channel subscribed on the primary that owns its slot."""

    def __init__(self, cluster: RedisCluster, deliver: Deliver,
                 on_resubscribed: Callable[[], None], *, max_delay: float = 2.0,
                 current_on_drained: Callable[[], Callable[[], None] | None] = lambda: None,
                 ) -> None:
        self._cluster = cluster
        self._deliver = deliver
        # Reads the broker's on_drained at each burst's end: the node sets it after this
        # object is built, and may change it.
        self._current_on_drained = current_on_drained
        self._on_resubscribed = on_resubscribed
        self._max_delay = max_delay
        self._wanted: set[bytes] = set()
        self._shards: dict[str, _Shard] = {}
        self._poke = asyncio.Event()
        self._changed = asyncio.Event()
        self._refresh = False
        self._lost = False
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    def start(self) -> None:
        """Start the reconciler (idempotent)."""
        if self._task is None:
            self._task = asyncio.create_task(self._reconcile_forever(), name="shard-pubsub")

    async def close(self) -> None:
        """Stop the reconciler and every shard connection."""
        self._closed = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for shard in list(self._shards.values()):
            await self._drop(shard)

    def refresh_later(self) -> None:
        """Ask the reconciler to read the slot map again before its next pass."""
        self._refresh = True

    async def subscribe(self, name: bytes) -> None:
        """Want ``name``; returns once its owner confirmed, or raises ``TimeoutError``."""
        self._wanted.add(name)
        self._poke.set()
        try:
            async with asyncio.timeout(CONFIRM_TIMEOUT):
                while not self._ready(name):
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            self._wanted.discard(name)
            self._poke.set()
            raise

    async def unsubscribe(self, name: bytes) -> None:
        """Stop wanting ``name``; returns once its shard confirmed (what came before is delivered).

        A shard that does not answer in time is being replaced anyway, and its
        successor never subscribes a channel nobody wants.
        """
        self._wanted.discard(name)
        self._poke.set()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(CONFIRM_TIMEOUT):
                while any(name in s.confirmed or name in s.sent for s in self._shards.values()):
                    self._changed.clear()
                    await self._changed.wait()

    def _ready(self, name: bytes) -> bool:
        return any(name in s.confirmed and name not in s.leaving for s in self._shards.values())

    async def _reconcile_forever(self) -> None:
        failures = 0
        while not self._closed:
            await self._poke.wait()
            self._poke.clear()
            try:
                settled = await self._reconcile()
                failures = 0
            except (RedisError, OSError) as exc:
                settled = False
                failures += 1
                self._refresh = True
                if failures & (failures - 1) == 0:
                    logger.warning("sharded pub/sub not settled (%s, attempt %d)",
                                   type(exc).__name__, failures)
            if settled and self._lost:
                self._lost = False
                logger.info("sharded pub/sub resubscribed %d channels", len(self._wanted))
                try:
                    self._on_resubscribed()
                except Exception:
                    logger.exception("on_resubscribed callback failed")
            if not settled:  # try again after a backoff, even if nothing pokes
                await asyncio.sleep(min(self._max_delay, 0.05 * 2 ** min(failures, 16)))
                self._poke.set()

    async def _reconcile(self) -> bool:
        """One pass; whether every wanted channel is confirmed on its owner."""
        if self._refresh:
            self._refresh = False
            await self._cluster.nodes_manager.initialize()
        plan: dict[str, tuple[ClusterNode, set[bytes]]] = {}
        for name in self._wanted:
            node = self._cluster.get_node_from_key(name)  # type: ignore[arg-type]
            if node is None:
                raise RedisError("no primary serves the slot")
            plan.setdefault(node.name, (node, set()))[1].add(name)
        for shard in list(self._shards.values()):
            keep = plan.get(shard.node, (None, set()))[1]
            stale = (shard.confirmed | shard.sent) - keep - shard.leaving
            if not keep and not shard.leaving:
                await self._drop(shard)
                continue
            for name in stale:
                shard.leaving.add(name)
                await shard.pubsub.sunsubscribe(name)
        for node_name, (node, names) in plan.items():
            shard = self._shards.get(node_name) or await self._open(node)
            for name in names - shard.confirmed - shard.sent:
                shard.sent.add(name)
                await shard.pubsub.ssubscribe(name)
        return all(self._ready(name) for name in self._wanted) and not any(
            s.sent for s in self._shards.values())

    async def _open(self, node: ClusterNode) -> _Shard:
        options: dict[str, Any] = dict(node.connection_kwargs)
        options["health_check_interval"] = HEALTH_CHECK_INTERVAL
        pool = ConnectionPool(connection_class=node.connection_class, max_connections=2,
                              **options)
        pubsub = PubSub(pool, encoder=self._cluster.encoder)
        shard = _Shard(node.name, pubsub)
        self._shards[node.name] = shard
        await pubsub.connect()  # type: ignore[no-untyped-call]
        shard.reader = asyncio.create_task(self._read(shard), name=f"shard-pubsub:{node.name}")
        return shard

    async def _drop(self, shard: _Shard) -> None:
        if self._shards.get(shard.node) is shard:
            del self._shards[shard.node]
        reader, shard.reader = shard.reader, None
        if reader is not None and reader is not asyncio.current_task():
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
        with contextlib.suppress(RedisError, OSError):
            await shard.pubsub.aclose()  # type: ignore[no-untyped-call]
        await shard.pubsub.connection_pool.disconnect()
        self._changed.set()

    async def _read(self, shard: _Shard) -> None:
        """Deliver the shard's messages; on any failure give its channels back to the reconciler."""
        loop = asyncio.get_running_loop()
        connected_at = loop.time()
        try:
            while not self._closed:
                message = await shard.pubsub.get_message(timeout=READ_TIMEOUT)
                if message is not None:
                    self._dispatch(shard, message)
                    await after_message(shard.pubsub, self._current_on_drained())
                    continue
                connection = shard.pubsub.connection
                if connection is None:
                    raise RedisError("shard connection is gone")
                last = max(connected_at, connection.next_health_check - HEALTH_CHECK_INTERVAL)
                if loop.time() - last > HEALTH_CHECK_INTERVAL + READ_TIMEOUT * 3:
                    raise RedisTimeoutError("the shard did not answer its health check")
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure moves the channels, logged
            logger.warning("sharded pub/sub connection to a primary failed (%s)",
                           type(exc).__name__)
            self._lost = self._lost or bool(shard.confirmed)
            self._refresh = True
            shard.reader = None
            await self._drop(shard)
            self._poke.set()

    def _dispatch(self, shard: _Shard, message: dict[str, Any]) -> None:
        kind, name = message["type"], message["channel"]
        if kind == "smessage":
            if name in shard.confirmed:  # until its sunsubscribe, even if no longer wanted
                self._deliver(name, message["data"])
            return
        if kind == "ssubscribe":
            shard.sent.discard(name)
            shard.confirmed.add(name)
        elif kind == "sunsubscribe":
            shard.confirmed.discard(name)
            shard.sent.discard(name)
            if name in shard.leaving:
                shard.leaving.discard(name)
            elif name in self._wanted:  # the slot moved away: follow it to its new owner
                self._lost = True
                self._refresh = True
        else:
            return
        self._changed.set()
        self._poke.set()
