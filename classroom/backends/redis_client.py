"""The one way this server opens Redis: bounded pool, short timeouts, no blind retries.

Shared by the broker, the presence store, the data store and the video session
store, so a Redis restart or a silent Redis behaves the same everywhere. It
lives in ``presence`` because that is the lowest package that talks to Redis
(``classroom`` may import ``presence``, never the reverse).
"""

from __future__ import annotations

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.maint_notifications import MaintNotificationsConfig

SOCKET_TIMEOUT = 3.0  # no command waits longer on a silent Redis
MAX_CONNECTIONS = 32  # commands wait for a free connection instead of opening hundreds


def redis_client(url: str, *, health_check_interval: float = 0) -> aioredis.Redis:
    """A client on its own bounded pool; the caller closes it with ``aclose()``.

    No retries: a retried write could be applied twice (a publish stored twice,
    an add misreported as "first"); callers decide how to retry.
    """
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=MAX_CONNECTIONS,
        timeout=SOCKET_TIMEOUT,
        socket_timeout=SOCKET_TIMEOUT,
        socket_connect_timeout=SOCKET_TIMEOUT,
        health_check_interval=health_check_interval,
        retry=Retry(NoBackoff(), 0),
        # Off, so the pool replaces connections Redis closed (redis/redis-py#4252).
        maint_notifications_config=MaintNotificationsConfig(enabled=False),
    )
    return aioredis.Redis.from_pool(pool)
