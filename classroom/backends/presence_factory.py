"""Pick the presence store from a URL scheme, like the broker (:mod:`classroom.backends.by_url`)."""

from __future__ import annotations

from typing import Any

from classroom.backends.by_url import Build, backend_from_url
from classroom.backends.redis_client import any_redis_client
from presence.memory import MemoryPresenceStore
from presence.redis import RedisPresenceStore
from presence.store import PresenceStore


def _memory(url: str, options: dict[str, Any]) -> PresenceStore:
    options.pop("prefix", None)  # a Redis key namespace; one process has none to share
    options.pop("ttl", None)  # entries of one process never expire
    return MemoryPresenceStore(**options)


def _redis(url: str, options: dict[str, Any]) -> PresenceStore:
    return RedisPresenceStore(any_redis_client(url), **options)


_SCHEMES: dict[str, Build[PresenceStore]] = {
    "memory": _memory, "redis": _redis, "rediss": _redis,
    "redis+sentinel": _redis, "rediss+sentinel": _redis,
    "redis+cluster": _redis, "rediss+cluster": _redis,
}


def presence_from_url(url: str | None, **options: Any) -> PresenceStore:
    """The presence store for ``url`` (None means in memory), built with ``options``."""
    return backend_from_url(url, options, kind="presence", schemes=_SCHEMES)
