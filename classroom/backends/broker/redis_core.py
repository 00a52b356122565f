"""What every part of the Redis broker shares: its settings, its client and its key names.

The broker has two jobs with little in common: running the stream commands
(:mod:`~classroom.backends.broker.redis_streams`) and listening on the pub/sub
connection (:mod:`~classroom.backends.broker.redis_pubsub`).
:class:`~classroom.backends.broker.redis.RedisBroker` is one object made of both,
each a class over :class:`RedisBrokerCore`, so they share one set of attributes and
a delivered publication reaches the handler through no extra calls.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from redis.asyncio.client import PubSub
from redis.exceptions import (
    ClusterDownError,
    ReadOnlyError,
    SlotNotCoveredError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from classroom.backends.broker.base import BrokerUnavailable, PublicationHandler
from classroom.backends.broker.redis_scripts import (
    HISTORY,
    POSITION,
    PUBLISH,
    READ_PAGE,
    RETAIN,
    REWRITE,
)
from classroom.backends.broker.seen import SeenPositions
from classroom.backends.redis_client import RedisClient, any_redis_client

HEALTH_CHECK_INTERVAL = 5.0  # the pub/sub connection pings when idle this long
REWRITE_CHUNK = 500  # entries one rewrite step copies, by default
# A cluster between a primary's death and its replica's promotion answers CLUSTERDOWN,
# TRYAGAIN or has a slot nobody serves: as unreachable as a server that is down.
UNREACHABLE = (RedisConnectionError, RedisTimeoutError, ReadOnlyError, OSError,
               ClusterDownError, TryAgainError, SlotNotCoveredError)


def milliseconds(seconds: float) -> int:
    """``seconds`` in whole milliseconds, never 0: a 0 ms expiry is "now", a 0 ms WAIT "forever"."""
    return max(1, round(seconds * 1000))


class RedisBrokerCore:
    """The settings, client, scripts and subscription state of one Redis broker."""

    PUBLISH_COMMAND = "PUBLISH"
    """How the publish script fans out; a cluster's broker uses ``SPUBLISH``."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "classroom",
        history_size: int = 10000,
        history_ttl: float = 86400.0,
        idempotency_ttl: float = 300.0,
        reconnect_delay_max: float = 2.0,
        rewrite_chunk: int = REWRITE_CHUNK,
        wait_replicas: int = 0,
        wait_timeout: float = 0.1,
    ) -> None:
        if wait_replicas < 0 or wait_timeout <= 0:
            raise ValueError("wait_replicas must be >= 0 and wait_timeout > 0")
        self._wait_replicas = wait_replicas
        self._wait_timeout_ms = milliseconds(wait_timeout)
        if history_size < 0 or history_ttl <= 0 or idempotency_ttl <= 0:
            raise ValueError("history_size must be >= 0 and the ttls > 0")
        if rewrite_chunk < 1:
            raise ValueError("rewrite_chunk must be >= 1")
        self._rewrite_chunk = rewrite_chunk
        if not prefix or "{" in prefix or "}" in prefix:
            raise ValueError("prefix must be non-empty and free of hash-tag braces")
        self._prefix = prefix
        self._history_size = history_size
        self._history_ttl_ms = milliseconds(history_ttl)
        self._idempotency_ttl_ms = milliseconds(idempotency_ttl)
        self._reconnect_delay_max = reconnect_delay_max
        # No retries: a retried publish could store twice; callers retry with a key.
        self._client = self._open(url)
        self._publish_script = self._client.register_script(PUBLISH)
        self._position_script = self._client.register_script(POSITION)
        self._history_script = self._client.register_script(HISTORY)
        self._rewrite_script = self._client.register_script(REWRITE)
        self._retain_script = self._client.register_script(RETAIN)
        self._read_page_script = self._client.register_script(READ_PAGE)
        self.on_reconnect: Callable[[], None] | None = None
        self.on_drained: Callable[[], None] | None = None
        self._handler: PublicationHandler | None = None
        self._channels: set[str] = set()
        self._seen = SeenPositions(self._channels)
        self._pubsub: PubSub | None = None
        self._live = asyncio.Event()
        self._lock = asyncio.Lock()
        self._waiters: dict[tuple[str, bytes], list[asyncio.Future[None]]] = {}
        self._resubscribing: set[bytes] | None = None
        self._reader: asyncio.Task[None] | None = None
        self._closed = False

    def _open(self, url: str) -> RedisClient:
        """The shared client: one server, or Sentinel's primary (a cluster's broker overrides)."""
        return any_redis_client(url, health_check_interval=HEALTH_CHECK_INTERVAL)

    @property
    def redis(self) -> RedisClient:
        """The shared client, for stores kept beside the streams (``backends.snapshots``)."""
        return self._client

    @property
    def prefix(self) -> str:
        """The key prefix of this broker's channels."""
        return self._prefix

    async def ready(self) -> bool:
        """Whether Redis answers a PING within a second."""
        if self._closed:
            return False
        try:
            async with asyncio.timeout(1.0):
                return bool(await self._client.ping())
        except UNREACHABLE:  # OSError covers asyncio's TimeoutError
            return False

    def _key(self, channel: str, suffix: str) -> str:
        return f"{self._prefix}:{{{channel}}}:{suffix}"

    def _pubsub_name(self, channel: str) -> bytes:
        return f"{self._prefix}:{{{channel}}}:pub".encode()

    def _check_open(self) -> None:
        if self._closed:
            raise BrokerUnavailable("the redis broker is closed")
