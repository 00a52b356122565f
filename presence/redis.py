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
from redis.asyncio.cluster import RedisCluster
from redis.commands.core import AsyncScript
from redis.exceptions import ClusterDownError, ReadOnlyError, SlotNotCoveredError, TryAgainError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from presence.redis_scripts import (
    ADD,
    CLIENTS,
    KEY_SUFFIXES,
    PARTICIPANTS,
    REMOVE_MANY,
    REMOVE_USER,
    SWEEP,
    TOUCH,
)
from presence.store import PresenceEntry, PresenceUnavailable

# CLUSTERDOWN, TRYAGAIN and an unserved slot: a cluster in the middle of a failover.
UNREACHABLE = (RedisConnectionError, RedisTimeoutError, ReadOnlyError, OSError,
               ClusterDownError, TryAgainError, SlotNotCoveredError)
PARSED_CHANNELS_MAX = 2_000
"""Channels whose entries are kept parsed; past it the memo starts afresh."""


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

    def __init__(
        self, client: aioredis.Redis | RedisCluster, *, prefix: str = "classroom",
        ttl: float = 30.0,
    ) -> None:
        """Keep entries through ``client``, which this store owns and closes.

        The caller opens the client (``classroom.backends.redis_client`` does it the one
        way the server opens Redis), so this package needs nothing of ``classroom``.
        """
        if ttl <= 0:
            raise ValueError("ttl must be > 0")
        if not prefix or "{" in prefix or "}" in prefix:
            raise ValueError("prefix must be non-empty and free of hash-tag braces")
        self._prefix = prefix
        self._ttl = ttl
        self._key_ttl_ms = math.ceil(ttl * 2000)  # keys outlive every entry they hold
        self._client = client
        register = self._client.register_script
        self._add, self._remove_many = register(ADD), register(REMOVE_MANY)
        self._participants, self._clients = register(PARTICIPANTS), register(CLIENTS)
        self._remove_user, self._touch = register(REMOVE_USER), register(TOUCH)
        self._sweep = register(SWEEP)
        self._parsed: dict[str, dict[bytes, PresenceEntry]] = {}

    async def add(self, channel: str, client: str, user: str, info: bytes) -> bool:
        """Record a connection; True iff it is the user's first live one in ``channel``."""
        first = await self._call(self._add, channel, self._ttl, client, user, _field(user) + info)
        if first < 0:
            raise ValueError("this client id is already present as another user")
        return bool(first)

    async def remove(self, channel: str, client: str) -> PresenceEntry | None:
        """Drop a connection; its entry iff it was the user's last in ``channel``."""
        (gone,) = await self.remove_many(channel, [client])
        return gone

    async def remove_many(self, channel: str, clients: list[str]) -> list[PresenceEntry | None]:
        """Drop several connections in one round trip; an entry per client iff it was the
        user's last in ``channel``."""
        if not clients:
            return []
        raws = await self._call(self._remove_many, channel, *clients)
        return [_entry(raw) if raw is not None else None for raw in raws]

    async def participants(self, channel: str) -> list[PresenceEntry]:
        """One entry per user, the newest connection's, in first-join order.

        Every join reads the whole list, so the entries are parsed once and reused while
        unchanged (in a room of 500 joining at once, parsing them anew was a tenth of
        the server's CPU). The memo keeps, per channel, the entries of the last read
        only, so people who left do not stay in it; a channel the node no longer
        serves is dropped (:meth:`forget_channel`).
        """
        raws = await self._call(self._participants, channel)
        before = self._parsed.get(channel) or {}
        parsed: dict[bytes, PresenceEntry] = {}
        entries = []
        for raw in raws:
            entry = before.get(raw)
            if entry is None:
                entry = _entry(raw)
            parsed[raw] = entry
            entries.append(entry)
        if channel not in self._parsed and len(self._parsed) >= PARSED_CHANNELS_MAX:
            self._parsed.clear()
        self._parsed[channel] = parsed
        return entries

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

    def forget_cached(self) -> None:
        """Drop the parsed entries (an erasure must not leave a profile in memory)."""
        self._parsed.clear()

    def forget_channel(self, channel: str) -> None:
        """Drop the channel's parsed entries: this node no longer serves it."""
        self._parsed.pop(channel, None)

    async def close(self) -> None:
        """Release the connections."""
        await self._client.aclose()

    async def _call(self, script: AsyncScript, channel: str, *args: Any) -> Any:
        """Run a script on the channel's keys; an unreachable Redis is ``PresenceUnavailable``."""
        base = f"{self._prefix}:{{{channel}}}:presence"
        keys = [base + suffix for suffix in KEY_SUFFIXES]
        try:
            return await script(keys=keys, args=[self._key_ttl_ms, *args])
        except UNREACHABLE as exc:
            raise PresenceUnavailable("redis is unreachable") from exc
