"""Pick the broker from a URL scheme (:mod:`classroom.backends.by_url`)."""

from __future__ import annotations

from typing import Any

from classroom.backends.broker.base import Broker
from classroom.backends.broker.cluster import ClusterBroker
from classroom.backends.broker.memory import MemoryBroker
from classroom.backends.broker.redis import RedisBroker
from classroom.backends.by_url import Build, backend_from_url


def _memory(url: str, options: dict[str, Any]) -> Broker:
    options.pop("prefix", None)  # a Redis key namespace; one process has none to share
    options.pop("rewrite_chunk", None)  # one process rewrites in place, holding up no one
    options.pop("wait_replicas", None)  # no replicas to wait for
    options.pop("wait_timeout", None)
    return MemoryBroker(**options)


def _redis(url: str, options: dict[str, Any]) -> Broker:
    return RedisBroker(url, **options)


def _cluster(url: str, options: dict[str, Any]) -> Broker:
    return ClusterBroker(url, **options)


_SCHEMES: dict[str, Build[Broker]] = {
    "memory": _memory, "redis": _redis, "rediss": _redis,
    "redis+sentinel": _redis, "rediss+sentinel": _redis,
    "redis+cluster": _cluster, "rediss+cluster": _cluster,
}


def broker_from_url(url: str | None, **options: Any) -> Broker:
    """The broker for ``url`` (None means the embedded memory broker), built with ``options``."""
    return backend_from_url(url, options, kind="broker", schemes=_SCHEMES)
