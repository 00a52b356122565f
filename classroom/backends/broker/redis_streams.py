"""The Redis broker's stream commands: publish, history, positions, retention and rewrites.

Each is a request and its answer, mostly one Lua script of
:mod:`~classroom.backends.broker.redis_scripts` on one channel's keys; none needs
the pub/sub connection, so they live apart from the listener
(:mod:`~classroom.backends.broker.redis_pubsub`). What they share with it, the
positions this node saw (``_seen``) and the pub/sub name a publish fans out on,
comes from :class:`~classroom.backends.broker.redis_core.RedisBrokerCore`.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from typing import Any

from redis.asyncio.cluster import RedisCluster
from redis.commands.core import AsyncScript

from classroom.backends.broker.base import (
    BrokerUnavailable,
    HistoryResult,
    Publication,
    PublishResult,
    RememberedPublish,
    StreamPosition,
)
from classroom.backends.broker.redis_core import UNREACHABLE, RedisBrokerCore, milliseconds
from classroom.backends.broker.redis_scripts import PUBLISH

logger = logging.getLogger("classroom.backends.broker")

REWRITE_TTL_MS = 10_000  # a rewrite's lock and copy outlive its last step this long
REWRITE_WAIT = 30.0  # how long a rewrite waits for another one of the same stream
REWRITE_RETRY = 0.05


def _position(raw: bytes | str) -> StreamPosition:
    offset, _, epoch = (raw.encode() if isinstance(raw, str) else raw).partition(b":")
    return StreamPosition(int(offset), epoch.decode())


def _fingerprint(raw: bytes | str | None) -> str | None:
    if not raw:
        return None
    return raw.decode() if isinstance(raw, bytes) else raw


def _data_of(fields: list[bytes]) -> bytes:
    """The ``d`` field of a stream entry as a script returns it (a flat name, value list)."""
    return dict(zip(fields[::2], fields[1::2], strict=True))[b"d"]


class RedisStreamCommands(RedisBrokerCore):
    """The ``Broker`` methods that store and read a channel's stream in Redis."""

    async def publish(
        self,
        channel: str,
        data: bytes,
        *,
        stored: bool = True,
        idempotency_key: str | None = None,
        fingerprint: str | None = None,
    ) -> PublishResult:
        """Store and publish in one Lua script, so offset order is delivery order everywhere."""
        keys = [self._key(channel, "meta"), self._key(channel, "stream")]
        if idempotency_key is not None:
            keys += [self._key(channel, "idem:" + idempotency_key),
                     self._key(channel, "idemfp:" + idempotency_key)]
        args = [
            data, secrets.token_urlsafe(6), self._history_size, self._history_ttl_ms,
            self._idempotency_ttl_ms, self._pubsub_name(channel), int(stored),
            fingerprint or "", self.PUBLISH_COMMAND, *self._seen.script_args(channel),
        ]
        if self._wait_replicas and stored:
            position, duplicate, *first = await self._publish_and_wait(keys, args)
        else:
            position, duplicate, *first = await self._call(self._publish_script, keys, args)
        result = PublishResult(
            _position(position), duplicate=bool(duplicate),
            fingerprint=_fingerprint(first[0] if first else None),
        )
        if stored and not result.duplicate:
            self._seen.saw(channel, result.position.offset, result.position.epoch, data)
        return result

    async def _publish_and_wait(self, keys: list[str], args: list[Any]) -> Any:
        """The publish script, then ``WAIT`` on the same connection (a pipeline of two).

        ``CLASSROOM_REDIS_WAIT_REPLICAS``: the publish is answered once that many
        replicas have it, or after the timeout. It narrows the window in which a
        failover loses an acknowledged event; it cannot close it (members already got
        it by pub/sub), and fewer acknowledgements only log a warning.
        """
        self._check_open()
        pipe = self._client.pipeline(transaction=False)
        pipe.eval(PUBLISH, len(keys), *keys, *args)  # EVAL: a pipeline cannot load a script
        target: dict[str, Any] = {}
        try:
            if isinstance(self._client, RedisCluster):  # WAIT names no key: to the shard
                await self._client.initialize()  # a no-op once the slot map is known
                target["target_nodes"] = self._client.get_node_from_key(keys[0])
            pipe.execute_command("WAIT", self._wait_replicas, self._wait_timeout_ms, **target)
            result, acks = await pipe.execute()
        except UNREACHABLE as exc:
            raise BrokerUnavailable("redis is unreachable") from exc
        if int(acks) < self._wait_replicas:
            logger.warning("a publish reached %d of %d replicas in time", int(acks),
                           self._wait_replicas)
        return result

    async def recall(self, channel: str, idempotency_key: str) -> RememberedPublish | None:
        """The position and fingerprint a publish with this key left, within the ttl."""
        self._check_open()
        keys = [self._key(channel, "idem:" + idempotency_key),
                self._key(channel, "idemfp:" + idempotency_key)]
        try:
            raw, fingerprint = await self._client.mget(keys)
        except UNREACHABLE as exc:
            raise BrokerUnavailable("redis is unreachable") from exc
        if raw is None:
            return None
        return RememberedPublish(_position(raw), _fingerprint(fingerprint))

    async def history(
        self,
        channel: str,
        *,
        since: StreamPosition | None = None,
        limit: int | None = None,
    ) -> HistoryResult:
        """Retained publications after ``since`` if recoverable, else the newest ones."""
        if limit is not None and limit < 0:
            raise ValueError("limit must be >= 0")
        args = [
            secrets.token_urlsafe(6), self._history_ttl_ms,
            "" if since is None else since.offset, "" if since is None else since.epoch,
            "" if limit is None else limit, *self._seen.script_args(channel),
        ]
        keys = [self._key(channel, "meta"), self._key(channel, "stream")]
        offset, raw_epoch, recovered, newest_first, entries = await self._call(
            self._history_script, keys, args, again=True
        )
        epoch = raw_epoch.decode()
        publications = [
            Publication(int(entry_id.partition(b"-")[0]), epoch, fields[1])
            for entry_id, fields in entries
        ]
        if newest_first:
            publications.reverse()
        return HistoryResult(publications, StreamPosition(offset, epoch), bool(recovered))

    async def retain(self, channel: str, ttl: float) -> None:
        """Keep the whole stream ``ttl`` seconds more, untrimmed by age."""
        self._check_open()
        keys = [self._key(channel, "meta"), self._key(channel, "stream")]
        await self._call(self._retain_script, keys, [secrets.token_urlsafe(6), milliseconds(ttl)])

    async def retention(self, channel: str) -> float | None:
        """Seconds left of a retained stream."""
        self._check_open()
        meta = self._key(channel, "meta")
        try:
            retained = await self._client.hexists(meta, "r")
            millis = await self._client.pttl(meta)
        except UNREACHABLE as exc:
            raise BrokerUnavailable("redis is unreachable") from exc
        return millis / 1000 if retained and millis > 0 else None

    async def rewrite(
        self, channel: str, replacements: dict[int, bytes], *, epoch: str | None = None
    ) -> int:
        """Replace the data of retained publications by offset (erasure), in bounded steps.

        Each step is one script call that copies at most ``rewrite_chunk`` entries
        (``redis_scripts.REWRITE``); the last swaps the copy in. No call grows with
        the stream, so other sessions on this Redis wait at most one step.
        """
        self._check_open()
        if not replacements:
            return 0
        keys = [self._key(channel, "meta"), self._key(channel, "stream"),
                self._key(channel, "rewrite:" + secrets.token_urlsafe(9)),
                self._key(channel, "rewriting")]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + REWRITE_WAIT
        pending = sorted(replacements.items())
        token, fixed_epoch = secrets.token_urlsafe(9), epoch or ""
        cursor, changed, first = "", 0, 0
        while True:
            window = pending[first:first + self._rewrite_chunk]
            beyond = first + len(window)
            bound = str(pending[beyond][0]) if beyond < len(pending) else ""
            args = [token, fixed_epoch, cursor, self._rewrite_chunk, REWRITE_TTL_MS, bound,
                    *(value for pair in window for value in pair)]
            status, *step = await self._call(self._rewrite_script, keys, args)
            if status in (b"busy", b"lost"):  # wait for the other rewrite / start over
                if loop.time() > deadline:
                    raise BrokerUnavailable("another rewrite of this stream did not finish")
                cursor, changed, first = "", 0, 0
                await asyncio.sleep(REWRITE_RETRY)
                continue
            if status == b"gone":
                return 0
            step_changed, _, stream_epoch, last = step
            changed += int(step_changed)
            fixed_epoch, cursor = stream_epoch.decode(), last.decode()
            if status == b"done":
                return changed
            while first < len(pending) and pending[first][0] <= int(cursor):
                first += 1

    async def position(self, channel: str) -> StreamPosition:
        """The newest offset and epoch of ``channel``; creates the stream if missing."""
        keys = [self._key(channel, "meta"), self._key(channel, "stream")]
        args = [secrets.token_urlsafe(6), self._history_ttl_ms, *self._seen.script_args(channel)]
        offset, epoch = await self._call(self._position_script, keys, args, again=True)
        return StreamPosition(offset, epoch.decode())

    async def read_page(self, channel: str, *, after: int, limit: int) -> list[Publication]:
        """Up to ``limit`` entries after ``after``, with the epoch read in the same step."""
        if limit < 0:
            raise ValueError("limit must be >= 0")
        self._check_open()
        if limit == 0:
            return []
        keys = [self._key(channel, "meta"), self._key(channel, "stream")]
        try:
            page = await self._read_page_script(keys=keys, args=[f"({after}-0", limit])
        except UNREACHABLE as exc:
            raise BrokerUnavailable("redis is unreachable") from exc
        if not page:
            return []
        epoch = page[0].decode()
        return [Publication(int(entry_id.partition(b"-")[0]), epoch, _data_of(fields))
                for entry_id, fields in page[1]]

    async def _call(
        self, script: AsyncScript, keys: list[str], args: list[Any], *, again: bool = False
    ) -> Any:
        """Run a script, turning an unreachable Redis into ``BrokerUnavailable``.

        ``again``: the script may run twice to the same effect (reads, which at most
        create or trim), so a connection error is retried once: after a failover the
        first call finds the old primary gone and makes the client look up the new
        one (Sentinel's primary, the cluster's slot map), and the second reaches it.
        """
        self._check_open()
        try:
            return await script(keys=keys, args=args)
        except UNREACHABLE as exc:
            if not again or self._closed:
                raise BrokerUnavailable("redis is unreachable") from exc
        try:
            return await script(keys=keys, args=args)
        except UNREACHABLE as exc:
            raise BrokerUnavailable("redis is unreachable") from exc
