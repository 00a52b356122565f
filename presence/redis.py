"""The Redis presence store: connections of every node, with expiry, as centrifuge keeps them.

Keys of one channel share the hash tag ``{channel}`` (one Cluster slot), under
``<prefix>:{<channel>}:presence``: the hash itself (client -> user and info), and
``:expire`` (zset client -> expire-at, Redis time in seconds), ``:order`` (zset
client -> add sequence), ``:users`` (zset user -> first-join sequence), ``:count``
(hash user -> live connections), ``:gone`` (hash user -> last entry, awaiting
``sweep``) and ``:seq`` (the sequence). Values are length-prefixed so Lua can read
them: ``b"<len>:" + user + info``, and entries ``b"<len>:" + client + value``.
"""

from __future__ import annotations

import math
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ReadOnlyError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.maint_notifications import MaintNotificationsConfig

from presence.store import PresenceEntry, PresenceUnavailable

SOCKET_TIMEOUT = 3.0
MAX_CONNECTIONS = 16
UNREACHABLE = (RedisConnectionError, RedisTimeoutError, ReadOnlyError, OSError)
_SUFFIXES = ("", ":expire", ":order", ":users", ":count", ":gone", ":seq")

# KEYS: the seven keys above, in that order; ARGV[1]: how long the keys outlive a write (ms).
_PRELUDE = """
local H, E, O, U, N, G, S = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local function now()
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local function owner(value)
  local size, at = string.match(value, '^(%d+):()')
  return string.sub(value, at, at + tonumber(size) - 1)
end
local function entry(client, value) return #client .. ':' .. client .. value end
local function refresh()
  for _, key in ipairs(KEYS) do redis.call('PEXPIRE', key, ARGV[1]) end
end
local function drop(client)
  redis.call('HDEL', H, client)
  redis.call('ZREM', E, client)
  redis.call('ZREM', O, client)
end
local function last_gone(user)
  if redis.call('HINCRBY', N, user, -1) > 0 then return false end
  redis.call('HDEL', N, user)
  redis.call('ZREM', U, user)
  return true
end
local function purge()
  local expired = redis.call('ZRANGEBYSCORE', E, '-inf', now())
  for _, client in ipairs(expired) do
    local value = redis.call('HGET', H, client)
    drop(client)
    if value and last_gone(owner(value)) then
      redis.call('HSET', G, owner(value), entry(client, value))
    end
  end
  if #expired > 0 then redis.call('PEXPIRE', G, ARGV[1]) end
end
local function values()
  local flat, map = redis.call('HGETALL', H), {}
  for i = 1, #flat, 2 do map[flat[i]] = flat[i + 1] end
  return map
end
purge()
"""

# ARGV: key ttl, ttl, client, user, value. Returns 1 first, 0 not, -1 client owned by another.
_ADD = _PRELUDE + """
local client, user = ARGV[3], ARGV[4]
local old = redis.call('HGET', H, client)
local first = 0
if old then
  if owner(old) ~= user then return -1 end
elseif redis.call('HINCRBY', N, user, 1) == 1 then
  -- A user swept out but not yet announced as left never stopped being present.
  if redis.call('HDEL', G, user) == 0 then first = 1 end
  redis.call('ZADD', U, redis.call('INCR', S), user)
end
redis.call('HSET', H, client, ARGV[5])
redis.call('ZADD', O, redis.call('INCR', S), client)
redis.call('ZADD', E, now() + tonumber(ARGV[2]), client)
refresh()
return first
"""

# ARGV: key ttl, client. Returns the entry iff it was the user's last connection.
_REMOVE = _PRELUDE + """
local value = redis.call('HGET', H, ARGV[2])
if not value then return false end
drop(ARGV[2])
if last_gone(owner(value)) then return entry(ARGV[2], value) end
return false
"""

# ARGV: key ttl. Returns the newest entry of each user, in first-join order.
_PARTICIPANTS = _PRELUDE + """
local map, newest, out = values(), {}, {}
for _, client in ipairs(redis.call('ZREVRANGE', O, 0, -1)) do
  local user = owner(map[client])
  if not newest[user] then newest[user] = entry(client, map[client]) end
end
for _, user in ipairs(redis.call('ZRANGE', U, 0, -1)) do
  if newest[user] then out[#out + 1] = newest[user] end
end
return out
"""

# ARGV: key ttl, user. Returns the user's client ids, oldest first.
_CLIENTS = _PRELUDE + """
local map, out = values(), {}
for _, client in ipairs(redis.call('ZRANGE', O, 0, -1)) do
  if owner(map[client]) == ARGV[2] then out[#out + 1] = client end
end
return out
"""

# ARGV: key ttl, user. Returns the user's newest entry, or the swept one not yet announced.
_REMOVE_USER = _PRELUDE + """
local map, newest = values(), false
for _, client in ipairs(redis.call('ZREVRANGE', O, 0, -1)) do
  if owner(map[client]) == ARGV[2] then
    newest = newest or entry(client, map[client])
    drop(client)
  end
end
redis.call('HDEL', N, ARGV[2])
redis.call('ZREM', U, ARGV[2])
local gone = redis.call('HGET', G, ARGV[2])
redis.call('HDEL', G, ARGV[2])
return newest or gone
"""

# ARGV: key ttl, ttl, clients...
_TOUCH = """
local at = redis.call('TIME')
at = tonumber(at[1]) + tonumber(at[2]) / 1000000 + tonumber(ARGV[2])
for i = 3, #ARGV do redis.call('ZADD', KEYS[2], 'XX', at, ARGV[i]) end
for _, key in ipairs(KEYS) do redis.call('PEXPIRE', key, ARGV[1]) end
"""

# ARGV: key ttl. Returns one entry per user whose last connection expired, exactly once.
_SWEEP = _PRELUDE + """
local gone = redis.call('HVALS', G)
redis.call('DEL', G)
return gone
"""


def _field(text: str) -> bytes:
    raw = text.encode()
    return b"%d:" % len(raw) + raw


def _split(raw: bytes) -> tuple[bytes, bytes]:
    size, _, rest = raw.partition(b":")
    return rest[: int(size)], rest[int(size) :]


def _entry(raw: bytes) -> PresenceEntry:
    client, value = _split(raw)
    user, info = _split(value)
    return PresenceEntry(client.decode(), user.decode(), info)


class RedisPresenceStore:
    """The ``PresenceStore`` shared by every node; each node must ``touch`` its connections.

    A connection not touched for ``ttl`` seconds (its node died) expires: reads skip
    it, and ``sweep`` hands its user, if that was their last connection, to exactly
    one caller so the leave is announced once. A user whose connection expired but
    who connects again before any sweep was never seen leaving, so ``add`` says
    False and no sweep will report them.
    """

    def __init__(self, url: str, *, prefix: str = "classroom", ttl: float = 30.0) -> None:
        if ttl <= 0:
            raise ValueError("ttl must be > 0")
        if not prefix or "{" in prefix or "}" in prefix:
            raise ValueError("prefix must be non-empty and free of hash-tag braces")
        self._prefix = prefix
        self._ttl = ttl
        self._key_ttl_ms = math.ceil(ttl * 2000)  # keys outlive every entry they hold
        pool = aioredis.BlockingConnectionPool.from_url(
            url,
            max_connections=MAX_CONNECTIONS,
            timeout=SOCKET_TIMEOUT,
            socket_timeout=SOCKET_TIMEOUT,
            socket_connect_timeout=SOCKET_TIMEOUT,
            retry=Retry(NoBackoff(), 0),  # a retried add could misreport "first"
            # Off, so the pool replaces connections Redis closed (redis/redis-py#4252).
            maint_notifications_config=MaintNotificationsConfig(enabled=False),
        )
        self._client = aioredis.Redis.from_pool(pool)
        register = self._client.register_script
        self._add, self._remove = register(_ADD), register(_REMOVE)
        self._participants, self._clients = register(_PARTICIPANTS), register(_CLIENTS)
        self._remove_user, self._touch = register(_REMOVE_USER), register(_TOUCH)
        self._sweep = register(_SWEEP)

    async def add(self, channel: str, client: str, user: str, info: bytes) -> bool:
        """Record a connection; True iff it is the user's first live one in ``channel``."""
        first = await self._call(self._add, channel, self._ttl, client, user, _field(user) + info)
        if first < 0:
            raise ValueError("this client id is already present as another user")
        return bool(first)

    async def remove(self, channel: str, client: str) -> PresenceEntry | None:
        """Drop a connection; its entry iff it was the user's last in ``channel``."""
        raw = await self._call(self._remove, channel, client)
        return _entry(raw) if raw is not None else None

    async def participants(self, channel: str) -> list[PresenceEntry]:
        """One entry per user, the newest connection's, in first-join order."""
        return [_entry(raw) for raw in await self._call(self._participants, channel)]

    async def clients(self, channel: str, user: str) -> list[str]:
        """The user's live connection ids in ``channel``, oldest first."""
        return [client.decode() for client in await self._call(self._clients, channel, user)]

    async def remove_user(self, channel: str, user: str) -> PresenceEntry | None:
        """Drop all of a user's connections; their newest entry if there were any."""
        raw = await self._call(self._remove_user, channel, user)
        return _entry(raw) if raw is not None else None

    async def touch(self, channel: str, clients: list[str]) -> None:
        """Push the expiry of these connections ``ttl`` seconds ahead (this node's heartbeat)."""
        await self._call(self._touch, channel, self._ttl, *clients)

    async def sweep(self, channel: str) -> list[PresenceEntry]:
        """Drop expired connections; one entry per user left with none, in one atomic step."""
        return [_entry(raw) for raw in await self._call(self._sweep, channel)]

    async def close(self) -> None:
        """Release the connections."""
        await self._client.aclose()

    async def _call(self, script: AsyncScript, channel: str, *args: Any) -> Any:
        """Run a script on the channel's keys; an unreachable Redis is ``PresenceUnavailable``."""
        base = f"{self._prefix}:{{{channel}}}:presence"
        keys = [base + suffix for suffix in _SUFFIXES]
        try:
            return await script(keys=keys, args=[self._key_ttl_ms, *args])
        except UNREACHABLE as exc:
            raise PresenceUnavailable("redis is unreachable") from exc
