"""Snapshots of the embedded broker: kept on the broker's own stream object, so they go with it."""

from __future__ import annotations

from classroom.backends.broker.memory import MemoryBroker
from classroom.backends.snapshots.base import Snapshot


class MemorySnapshotStore:
    """The ``SnapshotStore`` of one process, over a ``MemoryBroker``'s streams."""

    def __init__(self, broker: MemoryBroker) -> None:
        self._broker = broker

    async def load(self, channel: str) -> Snapshot | None:
        """The snapshot kept on the channel's current stream."""
        kept = self._broker.kept_snapshot(channel)
        return None if kept is None else Snapshot(*kept)

    async def save(self, channel: str, snapshot: Snapshot, *, replace: bool = False) -> bool:
        """Keep ``snapshot`` on the stream if it advances the kept one."""
        return self._broker.keep_snapshot(channel, snapshot.position, snapshot.data,
                                          replace=replace)
