"""The snapshot store that lives beside a broker's streams, whichever broker it is."""

from __future__ import annotations

from classroom.backends.broker.base import Broker
from classroom.backends.broker.memory import MemoryBroker
from classroom.backends.broker.redis import RedisBroker
from classroom.backends.snapshots.base import SnapshotStore
from classroom.backends.snapshots.memory import MemorySnapshotStore
from classroom.backends.snapshots.redis import RedisSnapshotStore


def snapshots_for(broker: Broker) -> SnapshotStore:
    """The store beside ``broker``'s streams: same process, same Redis (same cluster slot)."""
    if isinstance(broker, MemoryBroker):
        return MemorySnapshotStore(broker)
    if isinstance(broker, RedisBroker):
        return RedisSnapshotStore(broker.redis, prefix=broker.prefix)
    raise TypeError(f"no snapshot store beside a {type(broker).__name__}")
