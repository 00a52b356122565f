"""A node's census: how many of its live structures and objects exist right now.

Served at ``GET /debug/census`` only when ``CLASSROOM_DEBUG_CENSUS`` is on (and
then behind the ``/metrics`` bearer token), for the soak test of
``python -m loadtests soak``: it samples these counts while sessions start, run
and end in a loop, and checks that they come back to the baseline once every
session has ended. A count that keeps growing is a leak, and its name says
where to look.

Only numbers and class names leave the process, never an id, a name or a
payload. The structures are read where they live, some of them through private
attributes on purpose: the production classes then need no API of their own for
a debugging aid, and a layout that changed gives ``None`` (shown as ``n/a``)
instead of an error. Walking every object takes tens of milliseconds, which is
why this is not part of ``/metrics`` (scraped every second by the load tests).
"""

from __future__ import annotations

import asyncio
import gc
import os
import sys
import threading
from collections import Counter
from collections.abc import Iterable, Sized
from pathlib import Path
from typing import Any, Protocol

from classroom.edge.registry import ConnectionRegistry
from classroom.sessions.node import Node


class Classroom(Protocol):
    """The parts of a server process that are counted (``classroom.app.Classroom``)."""

    @property
    def connections(self) -> ConnectionRegistry:
        """Every live connection of the node."""

    @property
    def node(self) -> Node:
        """The session layer."""

    @property
    def mail_outbox(self) -> object:
        """The mail outbox (in memory without Redis)."""

    @property
    def key_throttle(self) -> object:
        """Refused API keys per address."""


OWN_PACKAGES = ("classroom.", "auth.", "presence.")
"""Classes of these packages are always counted, however few instances they have."""
WATCHED_PACKAGES = ("asyncio.", "_asyncio.", "uvicorn.", "websockets.", "starlette.", "redis.",
                    "uvloop")
"""Classes of the libraries that hold connections and tasks, also always counted."""
COMMON_TYPE_MIN = 200
"""Other types (dict, list, function, ...) are listed once they have this many instances."""


def _size(owner: object, *path: str) -> int | None:
    """``len()`` of the attribute at ``path`` under ``owner``; None if it is not there."""
    value: Any = owner
    for name in path:
        value = getattr(value, name, None)
        if value is None:
            return None
    if isinstance(value, str | bytes) or not isinstance(value, Sized):
        return None  # a Redis key name, say, where the embedded backend has a container
    return len(value)


def _total(values: Iterable[int | None]) -> int | None:
    """The sum of the known values; None when none is known."""
    known = [value for value in values if value is not None]
    return sum(known) if known else None


def _backends(broker: object) -> list[object]:
    """A sharded backend's shards, or the backend itself."""
    shards = getattr(broker, "shards", None)
    return list(shards) if isinstance(shards, tuple | list) else [broker]


def _connections(classroom: Classroom) -> dict[str, int | None]:
    registry = classroom.connections
    # Budgets of users gone for longer than their memory are dropped at the next connect;
    # drop them now, as that connect would, so that what is counted is what is held.
    forget = getattr(registry, "_forget_released", None)
    if callable(forget):
        forget()
    queued = [getattr(getattr(c, "_send_queue", None), "queued_bytes", None)
              for c in list(getattr(registry, "_all", ()))]
    return {
        "connections": len(registry),
        "registry_users": _size(registry, "_by_user"),
        "registry_budgets": _size(registry, "_budgets"),
        "registry_released": _size(registry, "_released"),
        "send_queues_nonempty": sum(1 for q in queued if q),
        "send_queue_bytes": sum(q for q in queued if q),
    }


def _sessions(classroom: Classroom) -> dict[str, int | None]:
    node = classroom.node
    hub, streams = node.hub, node.streams
    channels = hub.channels()
    memberships = [m for channel in channels for m in hub.members(channel)]
    # peek, not runtime(): counting a session must not count as using it (idle eviction)
    runtimes = [r for name in streams.channels() if (r := streams.peek(name)) is not None]
    coalescer = node.fanout.coalescer
    return {
        "hub_channels": len(channels),
        "hub_memberships": len(memberships),
        "hub_buffered_frames": sum(len(m.buffer) for m in memberships),
        "stream_runtimes": len(runtimes),
        "stream_runtimes_ended": sum(1 for r in runtimes if r.ended),
        "stream_pending": sum(len(r.pending) for r in runtimes),
        "progress_pending": _size(coalescer, "_pending"),
        "progress_timers": _size(coalescer, "_timers"),
        "presence_pending": _size(node.presence_pushes.windows, "_pending"),
        "presence_windows": node.presence_pushes.windows.waiting(),
        "presence_counts": _size(node.presence_views, "_present"),
        "presence_renderings": _size(node.presence_views, "_rendered"),
        "records_screens_cache": _size(node.records, "_screens"),
        "node_background_tasks": _size(node, "_background"),
    }


def _backend_state(classroom: Classroom) -> dict[str, int | None]:
    """What the backends hold in this process: subscriptions and waiters for Redis; with
    the embedded backends, all the data (kept by design for the retention periods)."""
    node = classroom.node
    brokers = _backends(node.broker)
    presences = _backends(node.presence)
    return {
        "broker_subscriptions": _total(
            _size(b, "_subscribed") if hasattr(b, "_subscribed") else _size(b, "_channels")
            for b in brokers),
        "broker_waiters": _total(_size(b, "_waiters") for b in brokers),
        "broker_memory_streams": _total(_size(b, "_streams") for b in brokers),
        "broker_memory_idempotency_keys": _total(_size(b, "_keys") for b in brokers),
        "presence_memory_channels": _total(_size(p, "_channels") for p in presences),
        "data_memory_keys": _size(node.records, "store", "_values"),
        "mail_outbox_memory": _total(_size(classroom.mail_outbox, name)
                                     for name in ("_queued", "_sent", "_dead")),
        "key_throttle_addresses": _size(classroom.key_throttle, "_windows"),
    }


def _objects() -> dict[str, Any]:
    """Instances per class: ours and the connection libraries' always, others when many."""
    counts: Counter[str] = Counter()
    for obj in gc.get_objects():
        kind = type(obj)
        counts[f"{kind.__module__}.{kind.__qualname__}"] += 1
    watched = OWN_PACKAGES + WATCHED_PACKAGES
    types = {name: count for name, count in counts.items()
             if count >= COMMON_TYPE_MIN or name.startswith(watched)}
    return {"gc_objects": sum(counts.values()), "types": dict(sorted(types.items()))}


def _rss_bytes() -> int | None:
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE")


def census(classroom: Classroom, *, collect: bool = False) -> dict[str, Any]:
    """Every count at once; with ``collect``, after a full garbage collection, so that
    cycles waiting for the collector are not mistaken for live objects."""
    collected = gc.collect() if collect else None
    return {
        "pid": os.getpid(),
        "rss_bytes": _rss_bytes(),
        "allocated_blocks": sys.getallocatedblocks(),
        "gc_collected": collected,
        "gc_garbage": len(gc.garbage),
        "asyncio_tasks": len(asyncio.all_tasks()),
        "threads": threading.active_count(),
        "structures": {**_connections(classroom), **_sessions(classroom),
                       **_backend_state(classroom)},
        **_objects(),
    }
