"""The data store in Redis, so that every node reads and writes the same records."""

from __future__ import annotations

import builtins
from collections.abc import Callable, Sequence
from typing import Any

from redis.exceptions import RedisError

from classroom.backends.data.store import (
    DataStore,
    DataUnavailable,
    MemoryDataStore,
    Op,
    dumps,
    loads,
)
from classroom.backends.redis_client import any_redis_client
from classroom.backends.redis_url import RETIRED_LIST

PUSH = """
redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('LTRIM', KEYS[1], -tonumber(ARGV[2]), -1)
return 1
"""
"""Append and cap a list in one step. A script rather than a MULTI pipeline: on a Redis
Cluster, redis-py's asyncio transaction pipeline queues each command by running a new
event loop in a thread and joining it, which blocks the node's loop (about 1 ms of CPU
and 2 ms of wall time per push, on every join through the attendance log) and, when the
cluster client must reinitialise, builds its connections on that short-lived loop."""


class RedisDataStore:
    """Each key lives under ``<prefix>:data:``; values are JSON."""

    def __init__(self, url: str, *, prefix: str = "classroom") -> None:
        self._redis = any_redis_client(url)
        self._prefix = f"{prefix}:data:"
        self._push = self._redis.register_script(PUSH)

    def _key(self, key: str) -> str:
        return self._prefix + key

    async def get(self, key: str) -> Any | None:
        """The JSON value at ``key``."""
        raw = await self._run(self._redis.get(self._key(key)))
        return None if raw is None else loads(raw)

    async def set(self, key: str, value: Any, ttl: float | None = None) -> None:
        """Store a JSON value."""
        px = None if ttl is None else max(1, int(ttl * 1000))
        await self._run(self._redis.set(self._key(key), dumps(value), px=px))

    async def hset(self, key: str, field: str, value: Any) -> None:
        """Store a hash field."""
        await self._run(self._redis.hset(self._key(key), field, dumps(value)))

    async def hset_many(self, key: str, values: dict[str, Any]) -> None:
        """Store several hash fields in one command."""
        if values:
            mapping: dict[Any, Any] = {name: dumps(value) for name, value in values.items()}
            await self._run(self._redis.hset(self._key(key), mapping=mapping))

    async def hget(self, key: str, field: str) -> Any | None:
        """One field of a hash."""
        raw = await self._run(self._redis.hget(self._key(key), field))
        return None if raw is None else loads(raw)

    async def hgetall(self, key: str) -> dict[str, Any]:
        """Every field of a hash."""
        raw = await self._run(self._redis.hgetall(self._key(key)))
        return {name.decode(): loads(value) for name, value in raw.items()}

    async def hdel(self, key: str, field: str) -> None:
        """Remove a hash field."""
        await self._run(self._redis.hdel(self._key(key), field))

    async def sadd(self, key: str, member: str, ttl: float | None = None) -> None:
        """Add to a set (and set its expiry in the same round trip)."""
        if ttl is None:
            await self._run(self._redis.sadd(self._key(key), member))
            return
        await self.batch([Op.of("sadd", key, member, ttl)])

    async def smembers(self, key: str) -> builtins.set[str]:
        """Members of a set."""
        raw = await self._run(self._redis.smembers(self._key(key)))
        return {member.decode() for member in raw}

    async def srem(self, key: str, member: str) -> None:
        """Remove from a set."""
        await self._run(self._redis.srem(self._key(key), member))

    async def push(self, key: str, value: Any, keep: int) -> None:
        """Append to a capped list (atomically: see ``PUSH``)."""
        await self._run(self._push(keys=[self._key(key)], args=[dumps(value), keep]))

    async def items(self, key: str, count: int) -> list[Any]:
        """Newest items of a list, oldest first."""
        if count <= 0:
            return []
        raw = await self._run(self._redis.lrange(self._key(key), -count, -1))
        return [loads(item) for item in raw]

    async def delete(self, *keys: str) -> None:
        """Remove keys."""
        if keys:
            await self._run(self._redis.delete(*(self._key(k) for k in keys)))

    async def expire(self, key: str, ttl: float) -> None:
        """Set an expiry on an existing key."""
        await self._run(self._redis.pexpire(self._key(key), max(1, int(ttl * 1000))))

    async def ttl(self, key: str) -> float | None:
        """Seconds until expiry."""
        millis = await self._run(self._redis.pttl(self._key(key)))
        return None if millis < 0 else millis / 1000

    async def expire_unless_set(self, keys: list[str], ttl: float) -> None:
        """``PEXPIRE ... NX`` for each key, in one pipeline (see :meth:`batch`)."""
        if keys:
            await self.batch([Op.of("expire_unless_set", keys, ttl)])

    async def batch(self, ops: Sequence[Op]) -> list[Any]:
        """Every op's commands in one pipeline (not a transaction: on a cluster the keys
        may live on several shards, and redis-py's cluster MULTI blocks the loop)."""
        if not ops:
            return []
        readers: list[tuple[int, Callable[[list[Any]], Any]]] = []
        async with self._redis.pipeline(transaction=False) as pipe:
            for op in ops:
                readers.append(self._queue(pipe, op))
            raw = await self._run(pipe.execute())
        results, at = [], 0
        for count, read in readers:
            results.append(read(raw[at:at + count]))
            at += count
        return results

    def _queue(self, pipe: Any, op: Op) -> tuple[int, Callable[[list[Any]], Any]]:
        """Queue ``op``'s commands; how many they are, and how to read their replies."""
        args = op.args
        if op.name == "get":
            pipe.get(self._key(args[0]))
            return 1, _first_json
        if op.name == "hget":
            pipe.hget(self._key(args[0]), args[1])
            return 1, _first_json
        if op.name == "items":
            key, count = args
            if count <= 0:
                return 0, _no_items
            pipe.lrange(self._key(key), -count, -1)
            return 1, _items
        if op.name == "hset":
            key, name, value = args
            pipe.hset(self._key(key), name, dumps(value))
            return 1, _nothing
        if op.name == "sadd":
            # With a TTL, both commands go to the key's one shard: not a MULTI, which on
            # a cluster blocks the loop.
            key, member, *ttl = args
            pipe.sadd(self._key(key), member)
            if ttl and ttl[0] is not None:
                pipe.pexpire(self._key(key), max(1, int(ttl[0] * 1000)))
                return 2, _nothing
            return 1, _nothing
        if op.name == "push":
            # RPUSH then LTRIM, not the PUSH script: appends stay atomic, and a trim
            # between another node's RPUSH and its own still keeps the newest ``keep``.
            key, value, keep = args
            pipe.rpush(self._key(key), dumps(value))
            pipe.ltrim(self._key(key), -keep, -1)
            return 2, _nothing
        if op.name == "expire_unless_set":
            keys, ttl = args
            for key in keys:
                pipe.pexpire(self._key(key), max(1, int(ttl * 1000)), nx=True)
            return len(keys), _nothing
        raise ValueError(f"{op.name} cannot be batched")

    async def close(self) -> None:
        """Close the connection pool."""
        await self._redis.aclose()

    @staticmethod
    async def _run(call: Any) -> Any:
        try:
            return await call
        except (RedisError, OSError) as exc:
            raise DataUnavailable(type(exc).__name__) from None


def _first_json(replies: list[Any]) -> Any:
    return None if replies[0] is None else loads(replies[0])


def _items(replies: list[Any]) -> list[Any]:
    return [loads(item) for item in replies[0]]


def _no_items(replies: list[Any]) -> list[Any]:
    return []


def _nothing(replies: list[Any]) -> None:
    return None


def data_store_from_url(url: str | None, *, prefix: str = "classroom") -> DataStore:
    """The data store for ``url``: memory when unset, Redis for ``redis://``."""
    if not url or url.startswith("memory://"):
        return MemoryDataStore()
    if "," in url and url.startswith(("redis://", "rediss://")):
        raise ValueError(RETIRED_LIST)
    return RedisDataStore(url, prefix=prefix)
