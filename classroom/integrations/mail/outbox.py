"""The mail outbox: messages wait here until an SMTP server takes them.

Sending is decoupled from the request that causes it, so an SMTP server that is
down or refusing only delays mail: a message leaves the outbox when the server
accepted it, and otherwise comes back later with exponential back-off. Claims
are leases (the due time moves into the future), so with several nodes exactly
one node sends a message, and a node that dies mid-send only delays it.

After ``max_attempts`` failed attempts a message is *dead*: it is not tried again,
and it is kept (whole, so that the tenant can put it back with :meth:`revive`) with
its attempt count and the class name of its last error.

Records of sent mail and dead letters are personal data: they are kept for
``keep_sent`` seconds (seven days by default) after sending or dying, for the export
and for the tenant to see, and dropped on erasure with the queue.
"""

from __future__ import annotations

import abc
import random
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from classroom.backends.data.store import DataUnavailable

DAY = 86400.0
MAX_ATTEMPTS = 36
"""Failed attempts before a message is dead: with the default :class:`Backoff`, about a day.

The waits after failures 1 to 35 add up to 1 + 2 + ... + 2048 s (4,095 s) plus 23 hours
(the one-hour cap), 86,895 s or 24.1 h; jitter shortens each by up to 20 % (19.3 h).
"""
MailKind = Literal["invitation", "summary"]
_MESSAGE_ID = re.compile(r"[0-9a-f]{32}")


def is_message_id(text: str) -> bool:
    """Whether ``text`` can be a message id (``Message.new`` makes 32 lowercase hex digits)."""
    return _MESSAGE_ID.fullmatch(text) is not None


@dataclass(frozen=True, slots=True, kw_only=True)
class Message:
    """One e-mail to one person; the address and the bodies stay out of ``repr`` (and logs)."""

    id: str
    tenant: str
    kind: MailKind
    to: str = field(repr=False)
    recipient: str = field(repr=False)  # the recipient's sub: only they see the body in an export
    subject: str = field(repr=False)
    text: str = field(repr=False)
    html: str | None = field(default=None, repr=False)
    about: list[str] = field(default_factory=list, repr=False)
    session: str | None = None
    dedupe: str | None = field(default=None, repr=False)  # one message per key while it is held
    attempts: int = 0
    next_attempt_at: float = 0.0
    created_at: float = 0.0
    last_error: str | None = None  # an exception class name, never its text
    sent_at: float | None = None
    died_at: float | None = None  # given up on after the outbox's max_attempts

    @classmethod
    def new(cls, *, now: float | None = None, **fields: Any) -> Message:
        """A fresh message, due now, with a random id (ids are logged, so they say nothing)."""
        at = time.time() if now is None else now
        return cls(id=uuid.uuid4().hex, created_at=at, next_attempt_at=at, **fields)

    @property
    def settled_at(self) -> float | None:
        """When it left the queue for good (sent or dead); retention counts from here."""
        return self.sent_at if self.sent_at is not None else self.died_at

    def dumps(self) -> bytes:
        """JSON, as the Redis outbox stores it.

        ``died_at`` is written only once the message is dead, so queued and sent
        messages look as they did to nodes that do not know dead letters yet.
        """
        fields = asdict(self)
        if self.died_at is None:
            del fields["died_at"]
        return orjson.dumps(fields)

    @classmethod
    def loads(cls, raw: bytes | str) -> Message:
        """The inverse of :meth:`dumps`."""
        return cls(**orjson.loads(raw))

    def describe(self, sub: str) -> dict[str, Any]:
        """What an export shows ``sub``: the address and body only if the mail went to them.

        A summary is about many students; its body and the trainer's address are not
        a student's data, so a student's export names the mail but not its contents.
        """
        status = "sent" if self.sent_at is not None else (
            "dead" if self.died_at is not None else "queued")
        view: dict[str, Any] = {
            "id": self.id, "kind": self.kind, "session": self.session, "subject": self.subject,
            "status": status, "attempts": self.attempts,
            "created_at": self.created_at, "sent_at": self.sent_at, "died_at": self.died_at,
        }
        if sub == self.recipient:
            view.update(to=self.to, text=self.text)
        return view


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delays between attempts: ``base`` doubling per attempt, capped, minus up to ``jitter``.

    Jitter spreads retries of many messages (and nodes) so a recovering server is not
    hit by all of them at once.
    """

    base: float = 1.0
    factor: float = 2.0
    cap: float = 3600.0
    jitter: float = 0.2

    def delay(self, attempts: int, rng: Callable[[], float] = random.random) -> float:
        """Seconds to wait after the ``attempts``-th failed attempt (1 for the first)."""
        raw = min(self.cap, self.base * self.factor ** max(0, attempts - 1))
        return raw * (1.0 - self.jitter * rng())


class MailOutbox(abc.ABC):
    """The queue's interface; :class:`MemoryMailOutbox` and ``RedisMailOutbox`` implement it."""

    def __init__(self, *, backoff: Backoff | None = None, keep_sent: float = 7 * DAY,
                 max_attempts: int = MAX_ATTEMPTS, clock: Callable[[], float] = time.time) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.backoff = backoff or Backoff()
        self.keep_sent = keep_sent  # for sent records and dead letters alike
        self.max_attempts = max_attempts
        self.clock = clock  # wall clock: due times are shared by every node

    @abc.abstractmethod
    async def enqueue(self, message: Message) -> bool:
        """Queue a message; False (and nothing queued) if one with its dedupe key is held."""

    @abc.abstractmethod
    async def claim(self, limit: int, lease: float) -> list[Message]:
        """Take up to ``limit`` due messages for ``lease`` seconds; no other claim gets them."""

    @abc.abstractmethod
    async def mark_sent(self, message: Message) -> None:
        """The server accepted it: keep only a record (unless it was erased meanwhile)."""

    @abc.abstractmethod
    async def _reschedule(self, message: Message) -> None:
        """Store the updated message and its new due time, if it is still queued."""

    @abc.abstractmethod
    async def _bury(self, message: Message) -> None:
        """Move the (dead) message from the queue to the dead letters, if it is still queued."""

    @abc.abstractmethod
    async def dead_letters(self, tenant: str, limit: int) -> list[Message]:
        """The tenant's newest ``limit`` dead letters, oldest first (by ``died_at``)."""

    @abc.abstractmethod
    async def dead_count(self, tenant: str | None = None) -> int:
        """Dead letters held: the tenant's, or every tenant's (for the metrics gauge)."""

    @abc.abstractmethod
    async def _requeue(self, tenant: str, message_id: str, revive: Callable[[Message], Message],
                       ) -> Message | None:
        """Move the tenant's dead letter back to the queue as ``revive`` makes it; or None."""

    @abc.abstractmethod
    async def depth(self) -> int:
        """Messages waiting (including those being sent), for the metrics gauge."""

    @abc.abstractmethod
    async def next_due(self) -> float | None:
        """When the earliest message is due (None: the queue is empty)."""

    @abc.abstractmethod
    async def _records(self, tenant: str, sub: str) -> list[Message]:
        """Queued, recently sent and dead messages about a user of a tenant."""

    @abc.abstractmethod
    async def forget(self, tenant: str, sub: str) -> int:
        """Erasure: drop queued mail, sent records and dead letters about the user; how many."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release the backend."""

    async def retry_later(self, message: Message, error: BaseException) -> Message:
        """Count a failed attempt and put the message back, due after the back-off.

        The ``max_attempts``-th failure makes it a dead letter instead (``died_at`` set):
        it is not tried again unless the tenant revives it. Only the error's class is
        kept: SMTP error texts often quote the address.
        """
        attempts = message.attempts + 1
        now = self.clock()
        failed = replace(message, attempts=attempts, last_error=type(error).__name__)
        if attempts >= self.max_attempts:
            dead = replace(failed, died_at=now)
            await self._bury(dead)
            return dead
        updated = replace(failed, next_attempt_at=now + self.backoff.delay(attempts))
        await self._reschedule(updated)
        return updated

    async def revive(self, tenant: str, message_id: str) -> Message | None:
        """Put the tenant's dead letter back in the queue, due now, with a fresh count.

        None when the tenant holds no dead letter with that id (another tenant's included).
        """
        if not is_message_id(message_id):
            return None

        def fresh(dead: Message) -> Message:
            return replace(dead, attempts=0, last_error=None, died_at=None,
                           next_attempt_at=self.clock())

        return await self._requeue(tenant, message_id, fresh)

    async def about(self, tenant: str, sub: str) -> list[dict[str, Any]]:
        """Every queued, recently sent or dead mail about the user, as the export shows it."""
        found = await self._records(tenant, sub)
        found.sort(key=lambda m: (m.created_at, m.id))
        return [m.describe(sub) for m in found]


class MemoryMailOutbox(MailOutbox):
    """The embedded default (one process): lost on restart, like the memory broker."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._queued: dict[str, Message] = {}
        self._due: dict[str, float] = {}
        self._sent: dict[str, Message] = {}
        self._dead: dict[str, Message] = {}
        self._keys: dict[str, str] = {}

    async def enqueue(self, message: Message) -> bool:
        """Queue a message unless its dedupe key is held."""
        if message.dedupe is not None:
            if message.dedupe in self._keys:
                return False
            self._keys[message.dedupe] = message.id
        self._queued[message.id] = message
        self._due[message.id] = message.next_attempt_at
        return True

    async def claim(self, limit: int, lease: float) -> list[Message]:
        """Due messages, earliest first, moved ``lease`` seconds into the future."""
        self._prune()  # the worker claims every poll: the housekeeping rides along
        now = self.clock()
        due = sorted((at, mid) for mid, at in self._due.items() if at <= now)[:limit]
        for _, mid in due:
            self._due[mid] = now + lease
        return [self._queued[mid] for _, mid in due]

    async def mark_sent(self, message: Message) -> None:
        """Replace the queued message with its sent record."""
        if self._queued.pop(message.id, None) is None:
            return
        self._due.pop(message.id, None)
        self._sent[message.id] = replace(message, sent_at=self.clock())

    async def _reschedule(self, message: Message) -> None:
        if message.id in self._queued:
            self._queued[message.id] = message
            self._due[message.id] = message.next_attempt_at

    async def _bury(self, message: Message) -> None:
        if self._queued.pop(message.id, None) is None:
            return
        self._due.pop(message.id, None)
        self._dead[message.id] = message

    async def dead_letters(self, tenant: str, limit: int) -> list[Message]:
        """The tenant's newest dead letters, oldest first."""
        self._prune()
        mine = sorted((m for m in self._dead.values() if m.tenant == tenant),
                      key=lambda m: (m.died_at or 0.0, m.id))
        return mine[-limit:] if limit > 0 else []

    async def dead_count(self, tenant: str | None = None) -> int:
        """Dead letters held."""
        self._prune()
        return sum(1 for m in self._dead.values() if tenant is None or m.tenant == tenant)

    async def _requeue(self, tenant: str, message_id: str, revive: Callable[[Message], Message],
                       ) -> Message | None:
        dead = self._dead.get(message_id)
        if dead is None or dead.tenant != tenant:
            return None
        del self._dead[message_id]
        queued = revive(dead)
        self._queued[message_id] = queued
        self._due[message_id] = queued.next_attempt_at
        return queued

    async def depth(self) -> int:
        """Queued messages (dead letters are not waiting)."""
        return len(self._queued)

    async def next_due(self) -> float | None:
        """The earliest due time."""
        return min(self._due.values(), default=None)

    async def _records(self, tenant: str, sub: str) -> list[Message]:
        self._prune()
        every = [*self._queued.values(), *self._sent.values(), *self._dead.values()]
        return [m for m in every if m.tenant == tenant and sub in m.about]

    async def forget(self, tenant: str, sub: str) -> int:
        """Drop every message and record about the user."""
        doomed = await self._records(tenant, sub)
        for message in doomed:
            self._drop(message)
        return len(doomed)

    def _drop(self, message: Message) -> None:
        self._queued.pop(message.id, None)
        self._due.pop(message.id, None)
        self._sent.pop(message.id, None)
        self._dead.pop(message.id, None)
        if message.dedupe is not None and self._keys.get(message.dedupe) == message.id:
            del self._keys[message.dedupe]

    async def close(self) -> None:
        """Nothing to release."""

    def _prune(self) -> None:
        horizon = self.clock() - self.keep_sent
        settled = [*self._sent.values(), *self._dead.values()]
        for message in [m for m in settled if (m.settled_at or 0.0) < horizon]:
            self._drop(message)


# Claims are atomic in Lua, so two nodes polling at once never take the same message.
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


class RedisMailOutbox(MailOutbox):
    """Shared by every node, under ``<prefix>:mail:``.

    ``queue`` is a sorted set of ids by due time, ``messages``, ``sent`` and ``dead``
    hold the JSON, ``sent-at`` and ``dead-at`` order the records and dead letters for
    expiry, ``dead-of:<tenant>`` orders a tenant's dead letters for the server API,
    ``keys`` maps dedupe keys to ids and ``about:<tenant>:<sub>`` indexes the ids about
    a user for export and erasure.
    """

    def __init__(self, url: str, *, prefix: str = "classroom", **options: Any) -> None:
        super().__init__(**options)
        # Its own plain client (RESP2), as the outbox was built and tested: on the shared
        # blocking pool (classroom.backends.redis_client) one CI run hung at the sender's teardown.
        self._redis = aioredis.from_url(
            url, socket_timeout=3.0, socket_connect_timeout=3.0, protocol=2
        )
        self._p = f"{prefix}:mail:"
        self._queue, self._msgs = self._p + "queue", self._p + "messages"
        self._sent, self._sent_at = self._p + "sent", self._p + "sent-at"
        self._dead, self._dead_at = self._p + "dead", self._p + "dead-at"
        self._keys = self._p + "keys"
        self._enqueue = self._redis.register_script(_ENQUEUE)
        self._claim = self._redis.register_script(_CLAIM)
        self._settle = self._redis.register_script(_SETTLE)
        self._resched = self._redis.register_script(_RESCHEDULE)
        self._revive = self._redis.register_script(_REVIVE)

    def _index(self, tenant: str, sub: str) -> str:
        return f"{self._p}about:{tenant}:{sub}"

    def _dead_of(self, tenant: str) -> str:
        return f"{self._p}dead-of:{tenant}"

    async def enqueue(self, message: Message) -> bool:
        """Queue a message unless its dedupe key is held."""
        keys = [self._queue, self._msgs, self._keys,
                *(self._index(message.tenant, sub) for sub in message.about)]
        args: list[str | bytes] = [
            message.id, message.dumps(), repr(message.next_attempt_at), message.dedupe or ""
        ]
        return bool(await _run(self._enqueue(keys=keys, args=args)))

    async def claim(self, limit: int, lease: float) -> list[Message]:
        """Due messages, earliest first, moved ``lease`` seconds into the future."""
        now = self.clock()
        await self._prune(now)  # the worker claims every poll: the housekeeping rides along
        raw = await _run(self._claim(keys=[self._queue, self._msgs],
                                     args=[repr(now), repr(now + lease), limit]))
        return [Message.loads(item) for item in raw]

    async def mark_sent(self, message: Message) -> None:
        """Replace the queued message with its sent record."""
        now = self.clock()
        record = replace(message, sent_at=now).dumps()
        await _run(self._settle(keys=[self._queue, self._msgs, self._sent, self._sent_at],
                                args=[message.id, record, repr(now)]))

    async def _reschedule(self, message: Message) -> None:
        await _run(self._resched(keys=[self._queue, self._msgs],
                                 args=[message.id, message.dumps(), repr(message.next_attempt_at)]))

    async def _bury(self, message: Message) -> None:
        keys = [self._queue, self._msgs, self._dead, self._dead_at, self._dead_of(message.tenant)]
        await _run(self._settle(keys=keys,
                                args=[message.id, message.dumps(), repr(message.died_at)]))

    async def dead_letters(self, tenant: str, limit: int) -> list[Message]:
        """The tenant's newest dead letters, oldest first."""
        if limit <= 0:
            return []
        horizon = self.clock() - self.keep_sent
        ids = await _run(self._redis.zrevrangebyscore(
            self._dead_of(tenant), "+inf", repr(horizon), start=0, num=limit))
        if not ids:
            return []
        raw = await _run(self._redis.hmget(self._dead, [i.decode() for i in ids]))
        found = [Message.loads(item) for item in reversed(raw) if item]
        return [m for m in found if m.tenant == tenant]

    async def dead_count(self, tenant: str | None = None) -> int:
        """Dead letters held (not yet expired)."""
        key = self._dead_at if tenant is None else self._dead_of(tenant)
        horizon = self.clock() - self.keep_sent
        return int(await _run(self._redis.zcount(key, repr(horizon), "+inf")))

    async def _requeue(self, tenant: str, message_id: str, revive: Callable[[Message], Message],
                       ) -> Message | None:
        raw = await _run(self._redis.hget(self._dead, message_id))
        if raw is None:
            return None
        dead = Message.loads(raw)
        if dead.tenant != tenant:
            return None
        queued = revive(dead)
        keys = [self._queue, self._msgs, self._dead_of(tenant), self._dead, self._dead_at]
        moved = await _run(self._revive(
            keys=keys, args=[message_id, queued.dumps(), repr(queued.next_attempt_at)]))
        return queued if moved else None

    async def depth(self) -> int:
        """Queued messages."""
        return int(await _run(self._redis.zcard(self._queue)))

    async def next_due(self) -> float | None:
        """The earliest due time."""
        first = await _run(self._redis.zrange(self._queue, 0, 0, withscores=True))
        return float(first[0][1]) if first else None

    async def _records(self, tenant: str, sub: str) -> list[Message]:
        ids = sorted(m.decode() for m in await _run(self._redis.smembers(self._index(tenant, sub))))
        if not ids:
            return []
        horizon = self.clock() - self.keep_sent
        found = await self._load(ids)
        return [m for m in found if m.tenant == tenant and (m.settled_at or horizon) >= horizon]

    async def _load(self, ids: list[str]) -> list[Message]:
        queued = await _run(self._redis.hmget(self._msgs, ids))
        sent = await _run(self._redis.hmget(self._sent, ids))
        dead = await _run(self._redis.hmget(self._dead, ids))
        return [Message.loads(q or s or d)
                for q, s, d in zip(queued, sent, dead, strict=True) if q or s or d]

    async def forget(self, tenant: str, sub: str) -> int:
        """Drop every message and record about the user, and the user's index."""
        doomed = await self._records(tenant, sub)
        await self._drop(doomed, extra=[self._index(tenant, sub)])
        return len(doomed)

    async def _drop(self, messages: list[Message], extra: list[str] | None = None) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            for m in messages:
                pipe.zrem(self._queue, m.id)
                pipe.hdel(self._msgs, m.id)
                pipe.hdel(self._sent, m.id)
                pipe.zrem(self._sent_at, m.id)
                pipe.hdel(self._dead, m.id)
                pipe.zrem(self._dead_at, m.id)
                pipe.zrem(self._dead_of(m.tenant), m.id)
                if m.dedupe is not None:
                    pipe.hdel(self._keys, m.dedupe)
                for other in m.about:
                    pipe.srem(self._index(m.tenant, other), m.id)
            if extra:
                pipe.delete(*extra)
            await _run(pipe.execute())

    async def _prune(self, now: float) -> None:
        for settled in (self._sent_at, self._dead_at):
            old = await _run(self._redis.zrangebyscore(settled, "-inf", now - self.keep_sent))
            if old:
                await self._drop(await self._load([m.decode() for m in old]))
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
