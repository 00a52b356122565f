"""The Redis broker on a Redis Cluster: the same keys and scripts, sharded pub/sub.

Every key of a channel carries the channel as hash tag (``<prefix>:{<channel>}:...``),
so each Lua script of :mod:`classroom.backends.broker.redis_scripts` touches one
slot and redis-py's cluster client routes it to the primary that owns it
(following ``MOVED``/``ASK`` while a slot migrates). The publish script fans out
with ``SPUBLISH`` on ``<prefix>:{<channel>}:pub``, in the same slot, so a publish
touches only the shard owning the session; the node listens with ``SSUBSCRIBE``
through :class:`~classroom.backends.broker.shard_pubsub.ShardSubscriptions`, one
connection per primary it needs.
"""

from __future__ import annotations

import asyncio

from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisClusterException

from classroom.backends.broker.base import BrokerUnavailable, PublicationHandler
from classroom.backends.broker.redis import HEALTH_CHECK_INTERVAL, UNREACHABLE, RedisBroker
from classroom.backends.broker.shard_pubsub import ShardSubscriptions
from classroom.backends.redis_client import RedisClient, any_redis_client


class ClusterBroker(RedisBroker):
    """The ``Broker`` of many nodes sharing a Redis Cluster."""

    PUBLISH_COMMAND = "SPUBLISH"

    def _open(self, url: str) -> RedisClient:
        client = any_redis_client(url, health_check_interval=HEALTH_CHECK_INTERVAL)
        if not isinstance(client, RedisCluster):
            raise ValueError("a cluster broker needs a redis+cluster:// URL")
        self._cluster = client
        self._shards = ShardSubscriptions(client, self._deliver, self._reconnected,
                                          max_delay=self._reconnect_delay_max,
                                          current_on_drained=lambda: self.on_drained)
        return client

    async def start(self, handler: PublicationHandler) -> None:
        """Set the handler and start the shard subscriptions' reconciler."""
        self._check_open()
        self._handler = handler
        try:
            await self._cluster.initialize()
        except (*UNREACHABLE, RedisClusterException):  # the reconciler keeps trying
            self._shards.refresh_later()
        self._shards.start()

    async def close(self) -> None:
        """Stop listening and release every connection; later calls raise ``BrokerUnavailable``."""
        if self._closed:
            return
        self._closed = True
        self._handler = None
        await self._shards.close()
        await self._cluster.aclose()

    async def ready(self) -> bool:
        """Whether every primary answers a PING within a second."""
        if self._closed:
            return False
        try:
            async with asyncio.timeout(1.0):
                await self._cluster.ping(target_nodes=RedisCluster.PRIMARIES)
                return True
        except (*UNREACHABLE, LookupError):
            return False

    async def subscribe(self, channel: str) -> None:
        """Deliver ``channel``'s publications; returns once its shard confirmed it."""
        self._check_open()
        self._channels.add(channel)
        try:
            await self._shards.subscribe(self._pubsub_name(channel))
        except TimeoutError as exc:
            self._channels.discard(channel)
            raise BrokerUnavailable("redis did not confirm ssubscribe") from exc

    async def unsubscribe(self, channel: str) -> None:
        """Stop delivering ``channel``; what its shard sent before it took effect is delivered."""
        self._check_open()
        self._channels.discard(channel)
        self._seen.forget(channel)
        await self._shards.unsubscribe(self._pubsub_name(channel))
