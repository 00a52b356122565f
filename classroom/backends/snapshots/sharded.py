"""Snapshots over sharded brokers: each channel's snapshot on the shard that holds its stream."""

from __future__ import annotations

from collections.abc import Sequence

from classroom.backends.sharding.rendezvous import choose
from classroom.backends.snapshots.base import Snapshot, SnapshotStore


class ShardedSnapshotStore:
    """Routes each channel to the store of its broker shard, chosen the same way."""

    def __init__(self, shards: Sequence[SnapshotStore], identities: Sequence[str]) -> None:
        self._shards = tuple(shards)
        self._identities = tuple(identities)

    def _shard(self, channel: str) -> SnapshotStore:
        return self._shards[choose(self._identities, channel)]

    async def load(self, channel: str) -> Snapshot | None:
        """Load from the channel's shard."""
        return await self._shard(channel).load(channel)

    async def save(self, channel: str, snapshot: Snapshot, *, replace: bool = False) -> bool:
        """Save on the channel's shard."""
        return await self._shard(channel).save(channel, snapshot, replace=replace)
