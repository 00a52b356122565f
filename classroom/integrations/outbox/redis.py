"""The outbox on Redis, shared by every node: claims, settling and revival are Lua scripts.

One instance per kind of item (``namespace``): mail lives under ``<prefix>:mail:``
(the keys it has always had), webhooks under ``<prefix>:webhooks:``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisError

from classroom.backends.data.store import DataUnavailable
from classroom.backends.redis_client import outbox_client
from classroom.integrations.outbox.store import I, Outbox

# Claims are atomic in Lua, so two nodes polling at once never take the same item.
_ENQUEUE = """
if ARGV[4] ~= '' and redis.call('HSETNX', KEYS[3], ARGV[4], ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
for i = 4, #KEYS do redis.call('SADD', KEYS[i], ARGV[1]) end
return 1
"""
_CLAIM = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
local out = {}
for _, id in ipairs(ids) do
  local raw = redis.call('HGET', KEYS[2], id)
  if raw then redis.call('ZADD', KEYS[1], ARGV[2], id); out[#out + 1] = raw
  else redis.call('ZREM', KEYS[1], id) end
end
return out
"""
# Sent (KEYS[3] = sent, then sent-at) or dead (dead, then dead-at and dead-of:<tenant>).
_SETTLE = """
if redis.call('HDEL', KEYS[2], ARGV[1]) == 0 then return 0 end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[2])
for i = 4, #KEYS do redis.call('ZADD', KEYS[i], ARGV[3], ARGV[1]) end
return 1
"""
# Only a dead letter still in its tenant's index (not erased, not expired) comes back.
_REVIVE = """
if redis.call('ZREM', KEYS[3], ARGV[1]) == 0 then return 0 end
redis.call('HDEL', KEYS[4], ARGV[1])
redis.call('ZREM', KEYS[5], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
return 1
"""
_RESCHEDULE = """
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
return 1
"""
# Erasure's minimised copy replaces the item only where it still is (queued or dead).
_REPLACE = """
for i = 1, #KEYS do
  if redis.call('HEXISTS', KEYS[i], ARGV[1]) == 1 then
    redis.call('HSET', KEYS[i], ARGV[1], ARGV[2]); return 1
  end
end
return 0
"""
# Every trace of the items (ARGV: count, then per item its id, dedupe key or '' and how
# many index keys follow its dead-of key in KEYS), then the extra KEYS are deleted. A
# script, not MULTI: redis-py 8.1's cluster transaction runs each command in a thread
# and blocks the event loop while it waits.
_REMOVE = """
local k, a = 8, 2
for _ = 1, tonumber(ARGV[1]) do
  local id, dedupe, n = ARGV[a], ARGV[a + 1], tonumber(ARGV[a + 2])
  a = a + 3
  redis.call('ZREM', KEYS[1], id); redis.call('HDEL', KEYS[2], id)
  redis.call('HDEL', KEYS[3], id); redis.call('ZREM', KEYS[4], id)
  redis.call('HDEL', KEYS[5], id); redis.call('ZREM', KEYS[6], id)
  if dedupe ~= '' then redis.call('HDEL', KEYS[7], dedupe) end
  redis.call('ZREM', KEYS[k], id)
  for j = 1, n do redis.call('SREM', KEYS[k + j], id) end
  k = k + 1 + n
end
for j = k, #KEYS do redis.call('DEL', KEYS[j]) end
return 1
"""


class RedisOutbox(Outbox[I]):
    """Shared by every node, under ``<prefix>:<namespace>:`` (``<prefix>:{<namespace>}:``
    on a Redis Cluster, so that every key of the outbox is in one slot).

    ``queue`` is a sorted set of ids by due time, ``messages``, ``sent`` and ``dead``
    hold the JSON, ``sent-at`` and ``dead-at`` order the records and dead letters for
    expiry, ``dead-of:<tenant>`` orders a tenant's dead letters for the server API,
    ``keys`` maps dedupe keys to ids and ``about:<tenant>:<sub>`` indexes the ids about
    a user for export and erasure.
    """

    def __init__(self, url: str, *, item_type: type[I], namespace: str,
                 prefix: str = "classroom", **options: Any) -> None:
        super().__init__(**options)
        self._type = item_type
        # Its own plain client (RESP2), as the outbox was built and tested: on the shared
        # blocking pool (classroom.backends.redis_client) one CI run hung at the worker's teardown.
        self._redis = outbox_client(url)
        # Its scripts and transactions touch several keys at once: on a cluster they must
        # share a slot, so the namespace becomes a hash tag (one slot per kind of item).
        tagged = isinstance(self._redis, RedisCluster)
        self._p = f"{prefix}:{{{namespace}}}:" if tagged else f"{prefix}:{namespace}:"
        self._queue, self._msgs = self._p + "queue", self._p + "messages"
        self._sent, self._sent_at = self._p + "sent", self._p + "sent-at"
        self._dead, self._dead_at = self._p + "dead", self._p + "dead-at"
        self._keys = self._p + "keys"
        self._enqueue = self._redis.register_script(_ENQUEUE)
        self._claim = self._redis.register_script(_CLAIM)
        self._settle = self._redis.register_script(_SETTLE)
        self._resched = self._redis.register_script(_RESCHEDULE)
        self._revive = self._redis.register_script(_REVIVE)
        self._swap = self._redis.register_script(_REPLACE)
        self._remove_script = self._redis.register_script(_REMOVE)

    def _index(self, tenant: str, sub: str) -> str:
        return f"{self._p}about:{tenant}:{sub}"

    def _dead_of(self, tenant: str) -> str:
        return f"{self._p}dead-of:{tenant}"

    async def enqueue(self, item: I) -> bool:
        """Queue an item unless its dedupe key is held."""
        keys = [self._queue, self._msgs, self._keys,
                *(self._index(item.tenant, sub) for sub in item.about)]
        args: list[str | bytes] = [
            item.id, item.dumps(), repr(item.next_attempt_at), item.dedupe or ""
        ]
        return bool(await _run(self._enqueue(keys=keys, args=args)))

    async def claim(self, limit: int, lease: float) -> list[I]:
        """Due items, earliest first, moved ``lease`` seconds into the future."""
        now = self.clock()
        await self._prune(now)  # the worker claims every poll: the housekeeping rides along
        raw = await _run(self._claim(keys=[self._queue, self._msgs],
                                     args=[repr(now), repr(now + lease), limit]))
        return [self._type.loads(item) for item in raw]

    async def _settle_sent(self, item: I, record: I) -> None:
        await _run(self._settle(keys=[self._queue, self._msgs, self._sent, self._sent_at],
                                args=[item.id, record.dumps(), repr(record.sent_at)]))

    async def _reschedule(self, item: I) -> None:
        await _run(self._resched(keys=[self._queue, self._msgs],
                                 args=[item.id, item.dumps(), repr(item.next_attempt_at)]))

    async def _bury(self, item: I) -> None:
        keys = [self._queue, self._msgs, self._dead, self._dead_at, self._dead_of(item.tenant)]
        await _run(self._settle(keys=keys, args=[item.id, item.dumps(), repr(item.died_at)]))

    async def dead_letters(self, tenant: str, limit: int) -> list[I]:
        """The tenant's newest dead letters, oldest first."""
        if limit <= 0:
            return []
        horizon = self.clock() - self.keep_sent
        ids = await _run(self._redis.zrevrangebyscore(
            self._dead_of(tenant), "+inf", repr(horizon), start=0, num=limit))
        if not ids:
            return []
        raw = await _run(self._redis.hmget(self._dead, [i.decode() for i in ids]))
        found = [self._type.loads(item) for item in reversed(raw) if item]
        return [m for m in found if m.tenant == tenant]

    async def dead_count(self, tenant: str | None = None) -> int:
        """Dead letters held (not yet expired)."""
        key = self._dead_at if tenant is None else self._dead_of(tenant)
        horizon = self.clock() - self.keep_sent
        return int(await _run(self._redis.zcount(key, repr(horizon), "+inf")))

    async def _requeue(self, tenant: str, item_id: str, revive: Callable[[I], I]) -> I | None:
        raw = await _run(self._redis.hget(self._dead, item_id))
        if raw is None:
            return None
        dead = self._type.loads(raw)
        if dead.tenant != tenant:
            return None
        queued = revive(dead)
        keys = [self._queue, self._msgs, self._dead_of(tenant), self._dead, self._dead_at]
        moved = await _run(self._revive(
            keys=keys, args=[item_id, queued.dumps(), repr(queued.next_attempt_at)]))
        return queued if moved else None

    async def depth(self) -> int:
        """Queued items."""
        return int(await _run(self._redis.zcard(self._queue)))

    async def next_due(self) -> float | None:
        """The earliest due time."""
        first = await _run(self._redis.zrange(self._queue, 0, 0, withscores=True))
        return float(first[0][1]) if first else None

    async def _records(self, tenant: str, sub: str) -> list[I]:
        ids = sorted(m.decode() for m in await _run(self._redis.smembers(self._index(tenant, sub))))
        if not ids:
            return []
        horizon = self.clock() - self.keep_sent
        found = await self._load(ids)
        return [m for m in found if m.tenant == tenant and (m.settled_at or horizon) >= horizon]

    async def _load(self, ids: list[str]) -> list[I]:
        queued = await _run(self._redis.hmget(self._msgs, ids))
        sent = await _run(self._redis.hmget(self._sent, ids))
        dead = await _run(self._redis.hmget(self._dead, ids))
        return [self._type.loads(q or s or d)
                for q, s, d in zip(queued, sent, dead, strict=True) if q or s or d]

    async def _drop(self, items: list[I], tenant: str, sub: str) -> None:
        await self._remove(items, extra=[self._index(tenant, sub)])

    async def _replace(self, item: I, tenant: str, sub: str) -> None:
        await _run(self._swap(keys=[self._msgs, self._dead], args=[item.id, item.dumps()]))

    async def _remove(self, items: list[I], extra: list[str] | None = None) -> None:
        """Every trace of ``items``, and the ``extra`` keys, in one atomic step."""
        keys = [self._queue, self._msgs, self._sent, self._sent_at, self._dead,
                self._dead_at, self._keys]
        args: list[str | int] = [len(items)]
        for m in items:
            keys += [self._dead_of(m.tenant), *(self._index(m.tenant, o) for o in m.about)]
            args += [m.id, m.dedupe or "", len(m.about)]
        keys += extra or []
        await _run(self._remove_script(keys=keys, args=args))

    async def _prune(self, now: float) -> None:
        for settled in (self._sent_at, self._dead_at):
            old = await _run(self._redis.zrangebyscore(settled, "-inf", now - self.keep_sent))
            if old:
                await self._remove(await self._load([m.decode() for m in old]))
                await _run(self._redis.zrem(settled, *old))

    async def close(self) -> None:
        """Close the connection pool."""
        await self._redis.aclose()


async def _run(call: Any) -> Any:
    """Redis failures become ``DataUnavailable``, as in the data store (the API answers 503)."""
    try:
        return await call
    except (RedisError, OSError) as exc:
        raise DataUnavailable(type(exc).__name__) from None
