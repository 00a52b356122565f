"""The Lua scripts of the Redis presence store, kept apart so ``redis.py`` reads as Python.

Every script takes the seven keys of one channel (``KEY_SUFFIXES`` after
``<prefix>:{<channel>}:presence``), so they share one Cluster slot.
"""

from __future__ import annotations

KEY_SUFFIXES = ("", ":expire", ":order", ":users", ":count", ":gone", ":seq")
"""The channel's keys in the order the scripts read them as ``KEYS[1..7]``."""

PRELUDE = """
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
"""Shared Lua helpers, and a purge of expired connections before the script body runs.

KEYS: the seven keys of ``KEY_SUFFIXES``, in that order. ARGV[1]: how long the keys
outlive a write (ms); every script passes it first.
"""

ADD = PRELUDE + """
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
"""Record a connection; a user's first (and not just swept) one says so, for the join.

ARGV: key ttl (ms), ttl (s), client, user, value. Returns 1 first, 0 not, -1 when the
client id belongs to another user.
"""

REMOVE_MANY = PRELUDE + """
local out = {}
for i = 2, #ARGV do
  local value = redis.call('HGET', H, ARGV[i])
  out[#out + 1] = false
  if value then
    drop(ARGV[i])
    if last_gone(owner(value)) then out[#out] = entry(ARGV[i], value) end
  end
end
return out
"""
"""Drop connections, and say for each whether it was the user's last, for the leave
(one connection's leave, or a storm's leaves of one channel in one step).

ARGV: key ttl (ms), clients. Returns, per client in order, its entry iff it was the
user's last connection, else nil.
"""

PARTICIPANTS = PRELUDE + """
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
"""One entry per user, so a user with several tabs is listed once.

ARGV: key ttl (ms). Returns the newest entry of each user, in first-join order.
"""

CLIENTS = PRELUDE + """
local map, out = values(), {}
for _, client in ipairs(redis.call('ZRANGE', O, 0, -1)) do
  if owner(map[client]) == ARGV[2] then out[#out + 1] = client end
end
return out
"""
"""A user's connection ids, so a node can reach all of them.

ARGV: key ttl (ms), user. Returns the user's client ids, oldest first.
"""

REMOVE_USER = PRELUDE + """
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
"""Drop every connection of a user at once, for erasure.

ARGV: key ttl (ms), user. Returns the user's newest entry, or the swept one not yet announced.
"""

TOUCH = """
local at = redis.call('TIME')
at = tonumber(at[1]) + tonumber(at[2]) / 1000000 + tonumber(ARGV[2])
for i = 3, #ARGV do redis.call('ZADD', KEYS[2], 'XX', at, ARGV[i]) end
for _, key in ipairs(KEYS) do redis.call('PEXPIRE', key, ARGV[1]) end
"""
"""A node's heartbeat: push its connections' expiry ahead; purging is left to the others.

KEYS: as ``PRELUDE``. ARGV: key ttl (ms), ttl (s), client ids...; unknown ids are ignored.
"""

SWEEP = PRELUDE + """
local gone = redis.call('HVALS', G)
redis.call('DEL', G)
return gone
"""
"""Hand the users whose last connection expired to exactly one caller, for one leave.

ARGV: key ttl (ms). Returns one entry per such user.
"""
