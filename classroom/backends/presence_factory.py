"""Pick the presence store from a URL scheme, like the broker.

A comma-separated list of Redis URLs shards channels over those Redis servers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from classroom.backends.redis_client import redis_client
from classroom.backends.sharding.presence import ShardedPresenceStore
from classroom.backends.sharding.rendezvous import shard_identities, split_urls
from presence.memory import MemoryPresenceStore
from presence.redis import RedisPresenceStore
from presence.store import PresenceStore


def _memory(url: str, options: dict[str, Any]) -> PresenceStore:
    options.pop("prefix", None)  # a Redis key namespace; one process has none to share
    options.pop("ttl", None)  # entries of one process never expire
    return MemoryPresenceStore(**options)


def _redis(url: str, options: dict[str, Any]) -> PresenceStore:
    return RedisPresenceStore(redis_client(url), **options)


_SCHEMES: dict[str, Callable[[str, dict[str, Any]], PresenceStore]] = {
    "memory": _memory,
    "redis": _redis,
    "rediss": _redis,
}


def presence_from_url(url: str | None, **options: Any) -> PresenceStore:
    """The presence store for ``url`` (None means in memory), built with ``options``.

    ``redis://a,redis://b`` gives a ``ShardedPresenceStore`` with one Redis store per URL.
    """
    url = url or "memory://"
    if "," in url:
        urls = split_urls(url)
        identities = shard_identities(urls)  # validates every URL before anything is built
        return ShardedPresenceStore([_redis(part, dict(options)) for part in urls], identities)
    scheme = urlsplit(url).scheme
    build = _SCHEMES.get(scheme)
    if build is None:
        raise ValueError(f"unsupported presence URL scheme {scheme!r}")
    return build(url, dict(options))
