"""Where the OpenTok session id of each live session is kept, so it is created once.

Every node and user asking at the same moment must end up in the same OpenTok
session: in memory on the embedded default, or a Redis ``SET NX PX`` lock that one
node wins while the others poll for the id it stores. Concurrent callers within
one process share one attempt (and its failure), so an OpenTok outage is hit once
per node, not once per user.
"""

from __future__ import annotations

import asyncio
import logging
import math
import secrets
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol

from redis.exceptions import RedisError

from classroom.backends.redis_client import redis_client
from classroom.backends.redis_url import is_redis_url

logger = logging.getLogger("classroom.integrations.video")

SESSION_TTL = 86400.0  # an unused session id is forgotten after this long (sliding)
RETRY_AFTER = 1.0  # after a failed create, other nodes answer unavailable this long
POLL_INTERVAL = 0.05  # how often a node waiting for another node's create looks again

NOT_CONFIGURED = "video is not configured on this server"
UNAVAILABLE = "video is temporarily unavailable"

CreateSession = Callable[[], Awaitable[str]]


class VideoUnavailable(Exception):  # noqa: N818 - mirrors BrokerUnavailable
    """Video can't be offered right now; the message is safe to show and holds no personal data."""


class VideoSessionStore(Protocol):
    """Where the OpenTok session id of each channel lives, so it is created at most once."""

    async def get_or_create(self, channel: str, create: CreateSession, *, timeout: float) -> str:
        """The channel's session id; calls ``create`` only if nobody has one or is making one.

        Raises ``VideoUnavailable`` if no id is available within ``timeout`` seconds.
        """
        ...

    async def close(self) -> None:
        """Stop in-flight attempts and release connections."""
        ...


class _SingleFlight:
    """Concurrent callers for one key share one attempt, its result and its failure."""

    def __init__(self) -> None:
        self._flights: dict[str, asyncio.Task[str]] = {}

    async def run(self, key: str, attempt: Callable[[], Coroutine[Any, Any, str]]) -> str:
        """Join the key's attempt in flight, or start one; a cancelled caller leaves it running."""
        task = self._flights.get(key)
        if task is None:
            task = asyncio.create_task(attempt(), name=f"video-session:{key}")
            self._flights[key] = task
            task.add_done_callback(lambda done: self._forget(key, done))
        return await asyncio.shield(task)

    def _forget(self, key: str, task: asyncio.Task[str]) -> None:
        if self._flights.get(key) is task:
            del self._flights[key]
        if not task.cancelled():
            task.exception()  # every caller may have gone: don't log "never retrieved"

    async def cancel(self) -> None:
        """Cancel every attempt and wait for them to end."""
        tasks = list(self._flights.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class MemoryVideoSessionStore:
    """Session ids of one process (the embedded default): nothing to share with other nodes."""

    def __init__(
        self, *, ttl: float = SESSION_TTL, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if ttl <= 0:
            raise ValueError("ttl must be > 0")
        self._ttl = ttl
        self._clock = clock
        self._sessions: dict[str, tuple[str, float]] = {}  # channel -> (id, forget at)
        self._flights = _SingleFlight()

    async def get_or_create(self, channel: str, create: CreateSession, *, timeout: float) -> str:
        """The stored id (kept another ``ttl``), or the one a single shared ``create`` makes."""
        now = self._clock()
        found = self._sessions.get(channel)
        if found is not None and found[1] > now:
            self._sessions[channel] = (found[0], now + self._ttl)
            return found[0]

        async def attempt() -> str:
            session_id = await create()
            now = self._clock()
            for stale in [ch for ch, (_, end) in self._sessions.items() if end <= now]:
                del self._sessions[stale]
            self._sessions[channel] = (session_id, now + self._ttl)
            return session_id

        try:
            async with asyncio.timeout(timeout):
                return await self._flights.run(channel, attempt)
        except TimeoutError:
            raise VideoUnavailable(UNAVAILABLE) from None

    async def close(self) -> None:
        """Cancel attempts in flight."""
        await self._flights.cancel()


# KEYS: session id, lock  ARGV: token, session ttl ms, lock ttl ms
# Returns {1, id} (found, ttl renewed), {2, ''} (lock claimed), {3, ''} (the last
# create failed moments ago) or {0, ''} (another node is creating it).
_CLAIM = """
local found = redis.call('GET', KEYS[1])
if found then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {1, found}
end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[3]) then return {2, ''} end
if redis.call('GET', KEYS[2]) == 'failed' then return {3, ''} end
return {0, ''}
"""

# KEYS: session id, lock  ARGV: token, session id or '', session ttl ms, retry-after ms
# Stores the id unless one is there already (returns the stored one), then frees the
# lock; or, with no id, turns our lock into a short-lived 'failed' marker.
_RELEASE = """
local mine = redis.call('GET', KEYS[2]) == ARGV[1]
if ARGV[2] == '' then
  if mine then redis.call('SET', KEYS[2], 'failed', 'PX', ARGV[4]) end
  return false
end
redis.call('SET', KEYS[1], ARGV[2], 'NX', 'PX', ARGV[3])
if mine then redis.call('DEL', KEYS[2]) end
return redis.call('GET', KEYS[1])
"""


class RedisVideoSessionStore:
    """Session ids shared by every node: ``<prefix>:{<channel>}:video`` and ``...:video:lock``.

    The node whose ``SET NX PX`` wins the lock creates the session and stores its id
    (``SET NX``, so a late second creator can never replace the first id); the
    others poll for the id until their timeout. A failed create leaves a ``failed``
    marker for ``retry_after`` seconds so the other nodes answer unavailable at once
    instead of each asking OpenTok again; afterwards anyone may retry.
    """

    def __init__(
        self,
        url: str,
        prefix: str = "classroom",
        *,
        ttl: float = SESSION_TTL,
        retry_after: float = RETRY_AFTER,
    ) -> None:
        if ttl <= 0 or retry_after <= 0:
            raise ValueError("ttl and retry_after must be > 0")
        if not prefix or "{" in prefix or "}" in prefix:
            raise ValueError("prefix must be non-empty and free of hash-tag braces")
        self._prefix = prefix
        self._ttl_ms = _ms(ttl)
        self._retry_after_ms = _ms(retry_after)
        # Built as the broker builds its client, so a Redis restart behaves the same.
        self._client = redis_client(url)
        self._claim = self._client.register_script(_CLAIM)
        self._release = self._client.register_script(_RELEASE)
        self._flights = _SingleFlight()

    async def get_or_create(self, channel: str, create: CreateSession, *, timeout: float) -> str:
        """The shared id: found, created here under the lock, or awaited from another node."""
        deadline = asyncio.get_running_loop().time() + timeout

        async def attempt() -> str:
            return await self._fetch_or_create(channel, create, deadline, timeout)

        try:
            async with asyncio.timeout(timeout):
                return await self._flights.run(channel, attempt)
        except TimeoutError:
            raise VideoUnavailable(UNAVAILABLE) from None
        except RedisError as exc:
            logger.warning("video session store unreachable: %s", type(exc).__name__)
            raise VideoUnavailable(UNAVAILABLE) from None

    async def _fetch_or_create(
        self, channel: str, create: CreateSession, deadline: float, timeout: float
    ) -> str:
        keys = self._keys(channel)
        token = secrets.token_hex(16)
        # The lock outlives a create bounded by ``timeout``; a crashed holder frees it soon.
        lock_ms = _ms(timeout + 1.0)
        loop = asyncio.get_running_loop()
        while True:
            state, found = await self._claim(keys=keys, args=[token, self._ttl_ms, lock_ms])
            if state == 1:
                return _text(found)
            if state == 2:
                break
            if state == 3 or loop.time() >= deadline:
                raise VideoUnavailable(UNAVAILABLE)
            await asyncio.sleep(min(POLL_INTERVAL, max(0.0, deadline - loop.time())))
        try:
            session_id = await create()
        except Exception:
            await self._release(keys=keys, args=[token, "", self._ttl_ms, self._retry_after_ms])
            raise
        stored = await self._release(
            keys=keys, args=[token, session_id, self._ttl_ms, self._retry_after_ms]
        )
        return _text(stored) if stored is not None else session_id

    def _keys(self, channel: str) -> list[str]:
        base = f"{self._prefix}:{{{channel}}}:video"
        return [base, f"{base}:lock"]

    async def close(self) -> None:
        """Cancel attempts in flight (their locks expire) and release the connections."""
        await self._flights.cancel()
        await self._client.aclose()


def _ms(seconds: float) -> int:
    return max(1, math.ceil(seconds * 1000))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def video_store_from_url(url: str | None, prefix: str) -> VideoSessionStore:
    """The store matching the broker: Redis for ``redis://``/``rediss://``, else in memory."""
    if url is not None and is_redis_url(url):
        # With a sharded list, session ids live on the first server (its db kept).
        return RedisVideoSessionStore(url, prefix)
    return MemoryVideoSessionStore()
