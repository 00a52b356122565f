"""The Lua scripts of the Redis broker, kept apart so ``redis_streams.py`` reads as Python.

Each script runs atomically on one channel's keys (``<prefix>:{<channel>}:meta`` and
``:stream``, plus ``:idem:<key>`` and ``:idemfp:<key>``, and while a rewrite runs
``:rewrite:<token>`` and ``:rewriting``), so they always share one Cluster slot.
"""

from __future__ import annotations

PRELUDE = """
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function epoch_of(meta, stream, new_epoch, ttl_ms)
  local epoch = redis.call('HGET', meta, 'e')
  if epoch then return epoch end
  redis.call('DEL', stream)
  redis.call('HSET', meta, 'e', new_epoch, 'o', 0)
  redis.call('PEXPIRE', meta, ttl_ms)
  return new_epoch
end
local function proven(meta, stream, offset, epoch, digest)
  if epoch == '' or redis.call('HGET', meta, 'e') ~= epoch then return true end
  local claimed = tonumber(offset)
  if claimed > tonumber(redis.call('HGET', meta, 'o')) then return false end
  if digest == '' then return true end
  local entry = redis.call('XRANGE', stream, claimed .. '-0', claimed .. '-0')[1]
  if not entry then return true end
  for i = 1, #entry[2], 2 do
    if entry[2][i] == 'd' then return redis.sha1hex(entry[2][i + 1]) == digest end
  end
  return true
end
local function continue_or_new_epoch(meta, stream, offset, epoch, digest, new_epoch)
  if not proven(meta, stream, offset, epoch, digest) then
    redis.call('HSET', meta, 'e', new_epoch)
  end
end
"""
"""Shared Lua helpers: Redis time in ms, the epoch (a new, empty stream if missing), and
the continuity check of a position somebody holds.

Replication is asynchronous: a primary that dies may take its last writes along,
and the promoted replica's offset counter is then lower than positions that nodes
and clients already hold; counting on from there would give new events offsets
that already meant other events in the same epoch. So a caller passes the newest
position it saw (offset, epoch, and with it the SHA-1 of that event's data when it
has it): if the stream is of that epoch but its counter is below the offset, or
the entry at that offset holds other data, continuity cannot be proven and the
stream gets a new epoch (``continue_or_new_epoch``). Offsets, entries and the
snapshot stay: only positions of the old epoch stop recovering. An entry trimmed
meanwhile proves nothing either way and is taken as continuous (lost writes are the
newest, never the oldest).

Takes no KEYS or ARGV of its own; the helpers get theirs from the script they prefix.
"""

PUBLISH = PRELUDE + """
if KEYS[3] then
  local seen = redis.call('GET', KEYS[3])
  if seen then return {seen, 1, redis.call('GET', KEYS[4])} end
end
continue_or_new_epoch(KEYS[1], KEYS[2], ARGV[10], ARGV[11], ARGV[12], ARGV[2])
local position, payload = '0:' .. (redis.call('HGET', KEYS[1], 'e') or ''), '0::' .. ARGV[1]
if ARGV[7] == '1' then
  local epoch = epoch_of(KEYS[1], KEYS[2], ARGV[2], ARGV[4])
  local offset = redis.call('HINCRBY', KEYS[1], 'o', 1)
  redis.call('XADD', KEYS[2], 'MAXLEN', '=', ARGV[3], offset .. '-0', 'd', ARGV[1], 't', now_ms())
  if redis.call('HEXISTS', KEYS[1], 'r') == 0 then  -- a retained stream keeps its deadline
    redis.call('PEXPIRE', KEYS[1], ARGV[4])
    redis.call('PEXPIRE', KEYS[2], ARGV[4])
  end
  position = offset .. ':' .. epoch
  payload = position .. ':' .. ARGV[1]
end
if KEYS[3] then
  redis.call('SET', KEYS[3], position, 'NX', 'PX', ARGV[5])
  if ARGV[8] ~= '' then redis.call('SET', KEYS[4], ARGV[8], 'PX', ARGV[5]) end
end
redis.call(ARGV[9], ARGV[6], payload)
return {position, 0}
"""
"""Store and publish in one step, so offset order is delivery order on every node.

Returns ``{"<offset>:<epoch>", duplicate, fingerprint}``: on a duplicate, the
fingerprint the first publish left (``false``, that is nil, when it left none).

KEYS: meta, stream[, idem, idem fingerprint]. ARGV: data, new_epoch, history size,
history ttl (ms), idempotency ttl (ms), pub/sub channel name, stored ('1' or '0'),
fingerprint ('' for none), 'PUBLISH' or 'SPUBLISH' (a cluster's sharded pub/sub: the
channel carries the session's hash tag, so it lives in the slot of the keys), then the
caller's claim: offset, epoch ('' for none) and data digest ('' for none).

The fingerprint has a key of its own beside ``:idem:<key>`` (which keeps holding the
position alone), so nodes of the previous version, reading only the position, keep
working during a rolling upgrade.
"""

POSITION = PRELUDE + """
continue_or_new_epoch(KEYS[1], KEYS[2], ARGV[3], ARGV[4], ARGV[5], ARGV[1])
local epoch = epoch_of(KEYS[1], KEYS[2], ARGV[1], ARGV[2])
return {tonumber(redis.call('HGET', KEYS[1], 'o')), epoch}
"""
"""The newest position, creating the stream if missing; returns ``{offset, epoch}``.

KEYS: meta, stream. ARGV: new_epoch, history ttl (ms), the caller's claim (offset,
epoch, digest; '' for none).
"""

READ_PAGE = """
local epoch = redis.call('HGET', KEYS[1], 'e')
if not epoch then return {} end
return {epoch, redis.call('XRANGE', KEYS[2], ARGV[1], '+', 'COUNT', ARGV[2])}
"""
"""A page of stored entries and the epoch, read together (for exports and erasure).

KEYS: meta, stream. ARGV: the exclusive start (``(<offset>-0``), the page size.
Returns ``{}`` for a stream that does not exist, else ``{epoch, entries}``. A script,
not MULTI: redis-py 8.1's asyncio cluster pipeline in a transaction runs each command
in a thread of its own and blocks the event loop while it waits for it.
"""

HISTORY = PRELUDE + """
continue_or_new_epoch(KEYS[1], KEYS[2], ARGV[6], ARGV[7], ARGV[8], ARGV[1])
continue_or_new_epoch(KEYS[1], KEYS[2], ARGV[3], ARGV[4], '', ARGV[1])
local epoch = epoch_of(KEYS[1], KEYS[2], ARGV[1], ARGV[2])
local offset = tonumber(redis.call('HGET', KEYS[1], 'o'))
local cutoff = now_ms() - tonumber(ARGV[2])
if redis.call('HEXISTS', KEYS[1], 'r') == 1 then cutoff = -1 end
local stale = nil
repeat
  local start = stale and ('(' .. stale .. '-0') or '-'
  local batch = redis.call('XRANGE', KEYS[2], start, '+', 'COUNT', 100)
  local fresh = false
  for _, entry in ipairs(batch) do
    if tonumber(entry[2][4]) > cutoff then fresh = true break end
    stale = tonumber(string.match(entry[1], '^%d+'))
  end
until fresh or #batch < 100
if stale then redis.call('XTRIM', KEYS[2], 'MINID', '=', (stale + 1) .. '-0') end
local head = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)
local first = head[1] and tonumber(string.match(head[1][1], '^%d+')) or offset + 1
local since, limit = tonumber(ARGV[3]), tonumber(ARGV[5])
local recovered = 1
if since and (ARGV[4] ~= epoch or since < 0 or since > offset or since < first - 1) then
  recovered = 0
end
local entries, newest_first, count = {}, 0, limit and {'COUNT', limit} or {}
if limit == 0 then
  entries = {}
elseif since and recovered == 1 then
  entries = redis.call('XRANGE', KEYS[2], '(' .. since .. '-0', '+', unpack(count))
elseif limit then
  entries, newest_first = redis.call('XREVRANGE', KEYS[2], '+', '-', unpack(count)), 1
else
  entries = redis.call('XRANGE', KEYS[2], '-', '+')
end
return {offset, epoch, recovered, newest_first, entries}
"""
"""Drop expired entries, then read history in one step, so recovery sees one state.

Returns ``{offset, epoch, recovered, newest_first, entries}``.

KEYS: meta, stream. ARGV: new_epoch, history ttl (ms), since offset or '', since epoch,
limit or '', then the caller's claim (offset, epoch, digest; '' for none). ``since``
is a claim too (without digest): a client holding an offset the stream no longer
has starts a new epoch, so the offsets it holds never come to mean other events.
"""

REWRITE = """
local owner = redis.call('GET', KEYS[4])
if owner and owner ~= ARGV[1] then return {'busy'} end
if ARGV[3] ~= '' and not owner then  -- the lock and the copy expired between steps
  redis.call('DEL', KEYS[3])
  return {'lost'}
end
local epoch = redis.call('HGET', KEYS[1], 'e')
if not epoch or (ARGV[2] ~= '' and epoch ~= ARGV[2]) then
  redis.call('DEL', KEYS[3])
  if owner then redis.call('DEL', KEYS[4]) end
  return {'gone'}
end
redis.call('SET', KEYS[4], ARGV[1], 'PX', ARGV[5])
local replace = {}
for i = 7, #ARGV, 2 do replace[ARGV[i] .. '-0'] = ARGV[i + 1] end
local start = ARGV[3] == '' and '-' or ('(' .. ARGV[3] .. '-0')
local stop = ARGV[6] == '' and '+' or ('(' .. ARGV[6] .. '-0')
local entries = redis.call('XRANGE', KEYS[2], start, stop, 'COUNT', ARGV[4])
local changed, last = 0, ARGV[3]
for _, entry in ipairs(entries) do
  local fields = entry[2]
  local data, stamp = nil, nil
  for i = 1, #fields, 2 do
    if fields[i] == 'd' then data = fields[i + 1] end
    if fields[i] == 't' then stamp = fields[i + 1] end
  end
  if replace[entry[1]] then
    data = replace[entry[1]]
    changed = changed + 1
  end
  redis.call('XADD', KEYS[3], entry[1], 'd', data, 't', stamp)
  last = string.match(entry[1], '^%d+')
end
if #entries == tonumber(ARGV[4]) or ARGV[6] ~= '' then
  redis.call('PEXPIRE', KEYS[3], ARGV[5])
  if #entries < tonumber(ARGV[4]) then last = tostring(tonumber(ARGV[6]) - 1) end
  return {'more', changed, #entries, epoch, last}
end
local head = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)
if head[1] and redis.call('EXISTS', KEYS[3]) == 1 then
  redis.call('XTRIM', KEYS[3], 'MINID', '=', head[1][1])
  local ttl = redis.call('PTTL', KEYS[2])
  redis.call('UNLINK', KEYS[2])
  redis.call('RENAME', KEYS[3], KEYS[2])
  if ttl > 0 then redis.call('PEXPIRE', KEYS[2], ttl) else redis.call('PERSIST', KEYS[2]) end
else
  redis.call('DEL', KEYS[3])
end
redis.call('DEL', KEYS[4])
return {'done', changed, #entries, epoch, last}
"""
"""One bounded step of rewriting a stream: copy the next ``chunk`` entries, replaced.

Redis cannot edit a stream entry in place, and rebuilding a long stream in one
call would block every session on the shard, so each call copies at most
``chunk`` entries after ``cursor`` into a copy of the stream, replacing the data
of those named; the call that finds fewer than ``chunk`` left copies the tail
(entries published meanwhile included) and swaps the copy in, in the same
atomic step, after trimming it to the stream's oldest entry (trimmed meanwhile
by size or age). Readers see the old stream until then, so never a mix; a
publish between steps lands in the stream and is copied by a later step, in
order. The lock key lets one rewrite of the channel run at a time; it and the
copy expire ``ttl`` ms after the last step, should the caller stop.

Returns ``{'busy'}`` (another rewrite holds the lock), ``{'lost'}`` (this one's
lock and copy expired: start again), ``{'gone'}`` (no stream,
or no longer of ``epoch``: nothing to rewrite), or ``{'more' | 'done', changed,
copied, epoch, last copied offset}``.

KEYS: meta, stream, copy, lock. ARGV: token, epoch ('' for any), cursor (offset
after which to copy, '' for the start), chunk, ttl (ms), bound (the offset of
the first replacement not given in this call: the step copies nothing from
there on; '' when every remaining one is given), then offset, data, offset,
data, ... (at most ``chunk`` pairs, all below the bound).
"""

RETAIN = PRELUDE + """
epoch_of(KEYS[1], KEYS[2], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[1], 'r', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return 1
"""
"""Mark a stream retained: no more trimming by age, and both keys expire at the deadline.

KEYS: meta, stream. ARGV: new_epoch (if the stream is missing), retention (ms).
"""
