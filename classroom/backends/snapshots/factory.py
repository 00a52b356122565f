"""The snapshot store that lives beside a broker's streams, whichever broker it is."""

from __future__ import annotations

from classroom.backends.broker.base import Broker
from classroom.backends.broker.memory import MemoryBroker
from classroom.backends.broker.redis import RedisBroker
from classroom.backends.sharding.broker import ShardedBroker
from classroom.backends.snapshots.base import SnapshotStore
from classroom.backends.snapshots.memory import MemorySnapshotStore
from classroom.backends.snapshots.redis import RedisSnapshotStore
from classroom.backends.snapshots.sharded import ShardedSnapshotStore


def snapshots_for(broker: Broker) -> SnapshotStore:
    """The store beside ``broker``'s streams: same process, same Redis, same shard."""
    if isinstance(broker, MemoryBroker):
        return MemorySnapshotStore(broker)
    if isinstance(broker, RedisBroker):
        return RedisSnapshotStore(broker.redis, prefix=broker.prefix)
    if isinstance(broker, ShardedBroker):
        return ShardedSnapshotStore([snapshots_for(shard) for shard in broker.shards],
                                    broker.identities)
    raise TypeError(f"no snapshot store beside a {type(broker).__name__}")
