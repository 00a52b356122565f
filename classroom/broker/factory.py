"""Pick the broker from a URL scheme, the way encode/broadcaster picks its backend."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from classroom.broker.base import Broker
from classroom.broker.memory import MemoryBroker


def _memory(url: str, options: dict[str, Any]) -> Broker:
    return MemoryBroker(**options)


def _redis(url: str, options: dict[str, Any]) -> Broker:
    raise NotImplementedError("Redis broker arrives with the multi-node issue")


_SCHEMES: dict[str, Callable[[str, dict[str, Any]], Broker]] = {
    "memory": _memory,
    "redis": _redis,
    "rediss": _redis,
}


def broker_from_url(url: str | None, **options: Any) -> Broker:
    """The broker for ``url`` (None means the embedded memory broker), built with ``options``."""
    url = url or "memory://"
    scheme = urlsplit(url).scheme
    build = _SCHEMES.get(scheme)
    if build is None:
        raise ValueError(f"unsupported broker URL scheme {scheme!r}")
    return build(url, options)
