"""Pick the broker from a URL scheme, the way encode/broadcaster picks its backend.

A comma-separated list of Redis URLs shards channels over those Redis servers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from classroom.backends.broker.base import Broker
from classroom.backends.broker.memory import MemoryBroker
from classroom.backends.broker.redis import RedisBroker
from classroom.backends.sharding.broker import ShardedBroker
from classroom.backends.sharding.rendezvous import shard_identities, split_urls


def _memory(url: str, options: dict[str, Any]) -> Broker:
    options.pop("prefix", None)  # a Redis key namespace; one process has none to share
    return MemoryBroker(**options)


def _redis(url: str, options: dict[str, Any]) -> Broker:
    return RedisBroker(url, **options)


_SCHEMES: dict[str, Callable[[str, dict[str, Any]], Broker]] = {
    "memory": _memory,
    "redis": _redis,
    "rediss": _redis,
}


def broker_from_url(url: str | None, **options: Any) -> Broker:
    """The broker for ``url`` (None means the embedded memory broker), built with ``options``.

    ``redis://a,redis://b`` gives a ``ShardedBroker`` with one ``RedisBroker`` per URL.
    """
    url = url or "memory://"
    if "," in url:
        urls = split_urls(url)
        identities = shard_identities(urls)  # validates every URL before anything is built
        return ShardedBroker([_redis(part, dict(options)) for part in urls], identities)
    scheme = urlsplit(url).scheme
    build = _SCHEMES.get(scheme)
    if build is None:
        raise ValueError(f"unsupported broker URL scheme {scheme!r}")
    return build(url, dict(options))
