"""The one way this server opens Redis: bounded pool, short timeouts, no blind retries.

Shared by the broker, the presence store, the data store and the video session
store, so a Redis restart or a silent Redis behaves the same everywhere, on every
topology ``REDIS_URL`` can name (:mod:`classroom.backends.redis_url`): one server,
a primary found through Sentinel (redis-py's ``redis.asyncio.sentinel``, which asks
the sentinels again whenever a connection to the primary fails, so a failover is
followed without restart), or a Redis Cluster (redis-py's ``RedisCluster``, which
follows ``MOVED``/``ASK`` and refreshes its slot map after a failover).
"""

from __future__ import annotations

import asyncio
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.maint_notifications import MaintNotificationsConfig

from classroom.backends.redis_url import RedisTarget, parse_redis_url

SOCKET_TIMEOUT = 3.0  # no command waits longer on a silent Redis
MAX_CONNECTIONS = 32  # commands wait for a free connection instead of opening hundreds

RedisClient = aioredis.Redis | RedisCluster
"""What :func:`redis_client` returns; both run the same commands and Lua scripts."""


class _QuickCheckoutPool(aioredis.BlockingConnectionPool):
    """redis-py's blocking pool, with a checkout that costs nothing extra while one is free.

    redis-py 8.1 checks a free connection out under the pool's condition, inside a
    timeout (a timer armed and cancelled), through a deprecation wrapper, with five
    observability readings (this server exports none of redis-py's); the release
    takes the condition again and dispatches an event (heard only by re-authenticating
    credential providers, which this server does not use). A rejoin is nine round
    trips, so in a reconnect storm that bookkeeping was 4-6% of the node's CPU
    (py-spy). While a connection is free and no command waits for one, this takes it
    directly (the event loop runs one task at a time: the pool's lists cannot change
    under it) and checks it as redis-py does. Otherwise, and in redis-py's maintenance
    mode, redis-py's own checkout and release run: waiting commands stay in line and
    bounded by ``timeout``, and a release wakes the next one.
    """

    def _uncontended(self) -> bool:
        return not self._in_maintenance and not self._condition._waiters

    async def get_connection(self, command_name: Any = None, *keys: Any,
                             **options: Any) -> AbstractConnection:
        """A connected connection: a free one at once, else redis-py's waiting checkout."""
        if not (self._available_connections and self._uncontended()):
            connection: AbstractConnection = await super().get_connection()  # type: ignore[no-untyped-call]
            return connection
        connection = self._available_connections.pop()
        self._in_use_connections.add(connection)
        try:
            await self.ensure_connection(connection)
        except BaseException:
            await self.release(connection)
            raise
        return connection

    async def release(self, connection: AbstractConnection) -> None:
        """Back to the free list; through redis-py's release when a command waits for it."""
        if not self._uncontended():
            await super().release(connection)
            return
        self._in_use_connections.remove(connection)
        if connection.should_reconnect():  # type: ignore[no-untyped-call]
            await connection.disconnect()
        self._available_connections.append(connection)


class _SentinelBlockingPool(SentinelConnectionPool, _QuickCheckoutPool):
    """Sentinel's pool (connections go to the current primary) with the blocking bound."""


class _SentinelPrimary(aioredis.Redis):
    """The primary's client; closing it also closes the connections to the sentinels."""

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        """Close the pool, then the sentinels the pool asked."""
        manager = self.connection_pool.sentinel_manager  # type: ignore[attr-defined]
        await super().aclose(close_connection_pool)
        await manager.aclose()


class _SteadyCluster(RedisCluster):
    """redis-py's cluster client, routed right from its first command, and never closed
    under commands in flight because of redirections.

    What it adds to redis-py 8.1 (found by a burst of joins on a node just started):

    - redis-py picks a command's routing before it loads the slot map. On a client not
      yet initialised (a node just started, or after redis-py closed it), a keyed command
      is sent to an arbitrary primary, and two in three of them come back ``MOVED``. So
      every command first loads the map if it is missing.
    - Every fifth ``MOVED`` made redis-py close every connection of the client, the ones
      that other commands were reading from too: they failed with connection errors (or
      an ``AttributeError`` on a closed socket), which closed it again, a cascade that
      kept a cold node's joins failing for tens of seconds. ``reinitialize_steps=0``
      makes a ``MOVED`` update that one slot only (redis-py's ``move_slot``); a node that
      fails still refreshes the whole map on the next command, as before.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["reinitialize_steps"] = 0
        super().__init__(*args, **kwargs)

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        """Load the slot map if it is missing, then run the command as redis-py does.

        While a killed primary's connections are being dropped, redis-py 8.1 can write
        on a connection another task just closed and fail with ``AttributeError``
        (``'NoneType' object has no attribute 'writelines'``) instead of a connection
        error: a publish then answered ``internal`` instead of ``unavailable`` (which
        clients retry). It is turned into the connection error it is.
        """
        if self._initialize:
            await self.initialize()
        try:
            return await super().execute_command(*args, **kwargs)
        except AttributeError as exc:
            raise RedisConnectionError("the connection was closed under the command") from exc


class _BoundedCluster(_SteadyCluster):
    """A cluster client whose commands wait for one of ``MAX_CONNECTIONS`` turns.

    redis-py's cluster nodes have no blocking pool: past ``max_connections`` a command
    fails with ``MaxConnectionsError``. Waiting for a turn keeps the single-server
    behaviour (a burst waits, it does not fail) with as few connections per node.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._turns = asyncio.Semaphore(MAX_CONNECTIONS)

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        """Run one command once a turn is free."""
        async with self._turns:
            return await super().execute_command(*args, **kwargs)


def redis_client(url: str, *, health_check_interval: float = 0) -> aioredis.Redis:
    """A client on its own bounded pool, for one server or Sentinel's primary.

    The caller closes it with ``aclose()``. No retries: a retried write could be
    applied twice (a publish stored twice, an add misreported as "first"); callers
    decide how to retry. A cluster URL is refused here: use :func:`any_redis_client`.
    """
    client = any_redis_client(url, health_check_interval=health_check_interval)
    if isinstance(client, RedisCluster):
        raise ValueError("this store needs one Redis or a Sentinel URL, not a cluster")
    return client


def any_redis_client(url: str, *, health_check_interval: float = 0) -> RedisClient:
    """A client for whatever ``url`` names: one server, Sentinel's primary, or a cluster."""
    target = parse_redis_url(url)
    common: dict[str, Any] = {
        "socket_timeout": SOCKET_TIMEOUT,
        "socket_connect_timeout": SOCKET_TIMEOUT,
        "health_check_interval": health_check_interval,
        "retry": Retry(NoBackoff(), 0),
        # Off, so the pool replaces connections Redis closed (redis/redis-py#4252).
        "maint_notifications_config": MaintNotificationsConfig(enabled=False),
    }
    if target.topology == "cluster":
        return _cluster(target, common)
    if target.topology == "sentinel":
        return _sentinel_primary(target, common)
    pool = _QuickCheckoutPool.from_url(
        url, max_connections=MAX_CONNECTIONS, timeout=SOCKET_TIMEOUT, **common
    )
    return aioredis.Redis.from_pool(pool)


def outbox_client(url: str) -> RedisClient:
    """The outboxes' client: an unbounded pool speaking RESP2, on any topology.

    The outboxes were built and tested on redis-py's plain pool; on the shared blocking
    pool one CI run hung at the mail worker's teardown, so they keep their own.
    """
    target = parse_redis_url(url)
    options: dict[str, Any] = {"socket_timeout": SOCKET_TIMEOUT,
                               "socket_connect_timeout": SOCKET_TIMEOUT, "protocol": 2}
    if target.topology == "cluster":
        return _SteadyCluster(startup_nodes=[ClusterNode(h, p) for h, p in target.addresses],
                            username=target.username, password=target.password,
                            ssl=target.tls, **options)
    if target.topology == "sentinel":
        primary: aioredis.Redis = _sentinel(target).master_for(
            target.service, redis_class=_SentinelPrimary, db=target.db,
            username=target.username, password=target.password, ssl=target.tls, **options)
        return primary
    return aioredis.from_url(url, **options)


def _sentinel(target: RedisTarget) -> Sentinel:
    """The sentinels of ``target``: short timeouts, TLS with ``rediss+``, no credentials."""
    options: dict[str, Any] = {"socket_timeout": SOCKET_TIMEOUT,
                               "socket_connect_timeout": SOCKET_TIMEOUT}
    if target.tls:
        options["ssl"] = True
    return Sentinel(list(target.addresses), sentinel_kwargs=options,  # type: ignore[no-untyped-call]
                    **options)


def _sentinel_primary(target: RedisTarget, common: dict[str, Any]) -> aioredis.Redis:
    primary: aioredis.Redis = _sentinel(target).master_for(
        target.service, redis_class=_SentinelPrimary, connection_pool_class=_SentinelBlockingPool,
        db=target.db, username=target.username, password=target.password, ssl=target.tls,
        max_connections=MAX_CONNECTIONS, timeout=SOCKET_TIMEOUT, **common,
    )
    return primary


def _cluster(target: RedisTarget, common: dict[str, Any]) -> RedisCluster:
    # MOVED and ASK are followed whatever ``retry`` says (nothing ran on the wrong
    # node); ``retry`` only governs connection errors, and those are not retried.
    # Turns bound the commands; pipelines (a few, small) may take some more connections.
    return _BoundedCluster(
        startup_nodes=[ClusterNode(host, port) for host, port in target.addresses],
        username=target.username, password=target.password, ssl=target.tls,
        max_connections=MAX_CONNECTIONS + 8, **common,
    )
