"""Snapshots on Redis, in the stream's own meta hash: ``so`` (offset) and ``s`` (state bytes).

The broker's ``<prefix>:{<channel>}:meta`` hash (``classroom.backends.broker.redis``)
already holds the stream's epoch and newest offset and carries its lifetime: the
publish script renews its TTL, ``retain`` sets the tenant's retention, and a lost
stream is re-created as a new hash. Storing the snapshot in two more fields
there gives it the same hash tag (one Cluster slot with the stream) and the same
lifetime for free, and nodes of the previous version ignore the extra fields.
"""

from __future__ import annotations

from typing import Any

from classroom.backends.broker.base import BrokerUnavailable, StreamPosition
from classroom.backends.broker.redis import UNREACHABLE
from classroom.backends.redis_client import RedisClient
from classroom.backends.snapshots.base import Snapshot

SAVE = """
local epoch = redis.call('HGET', KEYS[1], 'e')
if epoch ~= ARGV[1] then return 0 end
local offset = tonumber(ARGV[2])
if offset > tonumber(redis.call('HGET', KEYS[1], 'o')) then return 0 end
local stored = tonumber(redis.call('HGET', KEYS[1], 'so') or '-1')
if stored > offset or (stored == offset and ARGV[4] ~= '1') then return 0 end
redis.call('HSET', KEYS[1], 'so', offset, 's', ARGV[3])
return 1
"""
"""Advance the snapshot in one step: same epoch, not past the stream, newer (or equal
with replace). KEYS: meta. ARGV: epoch, offset, data, replace ('1' or '0')."""


class RedisSnapshotStore:
    """The ``SnapshotStore`` on the Redis of a ``RedisBroker``, sharing its client."""

    def __init__(self, client: RedisClient, *, prefix: str) -> None:
        self._client = client
        self._prefix = prefix
        self._save = client.register_script(SAVE)

    async def load(self, channel: str) -> Snapshot | None:
        """The snapshot of the channel's current stream, if it has one."""
        raw: list[Any] = await self._run(self._client.hmget(self._meta(channel), "e", "so", "s"))
        epoch, offset, data = raw
        if epoch is None or offset is None or data is None:
            return None
        return Snapshot(StreamPosition(int(offset), epoch.decode()), bytes(data))

    async def save(self, channel: str, snapshot: Snapshot, *, replace: bool = False) -> bool:
        """Store ``snapshot`` if it advances the stored one (one Lua script)."""
        position = snapshot.position
        args: list[Any] = [position.epoch, position.offset, snapshot.data, int(replace)]
        stored = await self._run(self._save(keys=[self._meta(channel)], args=args))
        return bool(stored)

    async def _run(self, call: Any) -> Any:
        try:
            return await call
        except UNREACHABLE as exc:
            raise BrokerUnavailable("redis is unreachable") from exc

    def _meta(self, channel: str) -> str:
        return f"{self._prefix}:{{{channel}}}:meta"
