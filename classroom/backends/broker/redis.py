"""The Redis broker: offsets, history and fan-out shared by every node, as in centrifuge.

Keys of one channel share the hash tag ``{channel}`` so they land in one Cluster slot:
``<prefix>:{<channel>}:meta`` (hash: ``o`` offset, ``e`` epoch), ``:stream`` (entries
``<offset>-0`` with ``d`` data and ``t`` publish time in ms), ``:idem:<key>``
(``"<offset>:<epoch>"``) and ``:idemfp:<key>`` (the publish's fingerprint, when it
gave one); while an erasure rewrites the stream, ``:rewrite:<token>`` (the copy) and
``:rewriting`` (the lock). Publications travel on the pub/sub channel
``<prefix>:{<channel>}:pub`` as ``b"<offset>:<epoch>:" + data``; one Lua script
(``redis_scripts.PUBLISH``) stores and publishes, so every node receives them in offset order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable
from typing import Any

from redis.asyncio.client import PubSub
from redis.asyncio.cluster import RedisCluster
from redis.commands.core import AsyncScript
from redis.exceptions import (
    ClusterDownError,
    ReadOnlyError,
    SlotNotCoveredError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from classroom.backends.broker.base import (
    BrokerUnavailable,
    HistoryResult,
    Publication,
    PublicationHandler,
    PublishResult,
    RememberedPublish,
    StreamPosition,
)
from classroom.backends.broker.redis_scripts import (
    HISTORY,
    POSITION,
    PUBLISH,
    READ_PAGE,
    RETAIN,
    REWRITE,
)
from classroom.backends.broker.seen import SeenPositions
from classroom.backends.redis_client import SOCKET_TIMEOUT, RedisClient, any_redis_client

logger = logging.getLogger("classroom.backends.broker")

HEALTH_CHECK_INTERVAL = 5.0  # the pub/sub connection pings when idle this long
READ_TIMEOUT = 1.0  # one get_message() wait; bounds how late the watchdog notices
REWRITE_CHUNK = 500  # entries one rewrite step copies, by default
REWRITE_TTL_MS = 10_000  # a rewrite's lock and copy outlive its last step this long
REWRITE_WAIT = 30.0  # how long a rewrite waits for another one of the same stream
REWRITE_RETRY = 0.05
# A cluster between a primary's death and its replica's promotion answers CLUSTERDOWN,
# TRYAGAIN or has a slot nobody serves: as unreachable as a server that is down.
UNREACHABLE = (RedisConnectionError, RedisTimeoutError, ReadOnlyError, OSError,
               ClusterDownError, TryAgainError, SlotNotCoveredError)


def _position(raw: bytes | str) -> StreamPosition:
    offset, _, epoch = (raw.encode() if isinstance(raw, str) else raw).partition(b":")
    return StreamPosition(int(offset), epoch.decode())


def _fingerprint(raw: bytes | str | None) -> str | None:
    if not raw:
        return None
    return raw.decode() if isinstance(raw, bytes) else raw


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


class RedisBroker:
    """The ``Broker`` of many nodes sharing one Redis; one pub/sub connection per broker.

    A supervised reader task delivers publications to the handler in arrival order,
    reconnects forever with capped backoff, resubscribes every subscribed channel,
    then calls ``on_reconnect`` so the node can tell its clients to recover what
    they missed while the connection was down.
    """

    PUBLISH_COMMAND = "PUBLISH"
    """How the publish script fans out; a cluster's broker uses ``SPUBLISH``."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "classroom",
        history_size: int = 10000,
        history_ttl: float = 86400.0,
        idempotency_ttl: float = 300.0,
        reconnect_delay_max: float = 2.0,
        rewrite_chunk: int = REWRITE_CHUNK,
        wait_replicas: int = 0,
        wait_timeout: float = 0.1,
    ) -> None:
        if wait_replicas < 0 or wait_timeout <= 0:
            raise ValueError("wait_replicas must be >= 0 and wait_timeout > 0")
        self._wait_replicas = wait_replicas
        self._wait_timeout_ms = _ms(wait_timeout)
        if history_size < 0 or history_ttl <= 0 or idempotency_ttl <= 0:
            raise ValueError("history_size must be >= 0 and the ttls > 0")
        if rewrite_chunk < 1:
            raise ValueError("rewrite_chunk must be >= 1")
        self._rewrite_chunk = rewrite_chunk
        if not prefix or "{" in prefix or "}" in prefix:
            raise ValueError("prefix must be non-empty and free of hash-tag braces")
        self._prefix = prefix
        self._history_size = history_size
        self._history_ttl_ms = _ms(history_ttl)
        self._idempotency_ttl_ms = _ms(idempotency_ttl)
        self._reconnect_delay_max = reconnect_delay_max
        # No retries: a retried publish could store twice; callers retry with a key.
        self._client = self._open(url)
        self._publish_script = self._client.register_script(PUBLISH)
        self._position_script = self._client.register_script(POSITION)
        self._history_script = self._client.register_script(HISTORY)
        self._rewrite_script = self._client.register_script(REWRITE)
        self._retain_script = self._client.register_script(RETAIN)
        self._read_page_script = self._client.register_script(READ_PAGE)
        self.on_reconnect: Callable[[], None] | None = None
        self._handler: PublicationHandler | None = None
        self._channels: set[str] = set()
        self._seen = SeenPositions(self._channels)
        self._pubsub: PubSub | None = None
        self._live = asyncio.Event()
        self._lock = asyncio.Lock()
        self._waiters: dict[tuple[str, bytes], list[asyncio.Future[None]]] = {}
        self._resubscribing: set[bytes] | None = None
        self._reader: asyncio.Task[None] | None = None
        self._closed = False

    def _open(self, url: str) -> RedisClient:
        """The shared client: one server, or Sentinel's primary (a cluster's broker overrides)."""
        return any_redis_client(url, health_check_interval=HEALTH_CHECK_INTERVAL)

    @property
    def redis(self) -> RedisClient:
        """The shared client, for stores kept beside the streams (``backends.snapshots``)."""
        return self._client

    @property
    def prefix(self) -> str:
        """The key prefix of this broker's channels."""
        return self._prefix

    async def start(self, handler: PublicationHandler) -> None:
        """Set the handler and start the supervised pub/sub reader."""
        self._check_open()
        self._handler = handler
        if self._reader is None:
            self._reader = asyncio.create_task(self._read_forever(), name="redis-broker-reader")

    async def close(self) -> None:
        """Stop the reader and release every connection; later calls raise ``BrokerUnavailable``."""
        if self._closed:
            return
        self._closed = True
        self._handler = None
        reader, self._reader = self._reader, None
        while reader is not None and not reader.done():
            # Cancel again until it ends: redis-py can swallow a cancellation that
            # races with a read timeout, and the loops also stop on ``_closed``.
            reader.cancel()
            await asyncio.wait({reader}, timeout=0.1)
        if reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await reader
        await self._drop_pubsub()
        for waiters in self._waiters.values():
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_exception(BrokerUnavailable("the redis broker is closed"))
        self._waiters.clear()
        self._channels.clear()
        await self._client.aclose()

    async def ready(self) -> bool:
        """Whether Redis answers a PING within a second."""
        if self._closed:
            return False
        try:
            async with asyncio.timeout(1.0):
                return bool(await self._client.ping())
        except UNREACHABLE:  # OSError covers asyncio's TimeoutError
            return False

    async def subscribe(self, channel: str) -> None:
        """Deliver ``channel``'s publications; returns once Redis confirmed it."""
        self._check_open()
        if channel in self._channels:
            return
        self._channels.add(channel)
        if self._reader is None:
            return  # start() subscribes everything in the set
        try:
            await self._confirmed("subscribe", channel)
        except BrokerUnavailable:
            self._channels.discard(channel)
            raise

    async def unsubscribe(self, channel: str) -> None:
        """Stop delivering ``channel``; what Redis sent before it took effect is still delivered."""
        self._check_open()
        if channel not in self._channels:
            return
        self._channels.discard(channel)
        self._seen.forget(channel)
        if self._live.is_set():  # else the next connection simply leaves it out
            await self._confirmed("unsubscribe", channel)

    async def _confirmed(self, kind: str, channel: str) -> None:
        """Send (un)subscribe on the pub/sub connection and wait for Redis's confirmation."""
        name = self._pubsub_name(channel)
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiters = self._waiters.setdefault((kind, name), [])
        waiters.append(waiter)
        try:
            async with asyncio.timeout(SOCKET_TIMEOUT):
                await self._live.wait()
                async with self._lock:
                    pubsub = self._pubsub
                    if pubsub is None:
                        # Reconnecting: the resubscription covers a subscribe, and the
                        # new connection never had an unsubscribed channel.
                        if kind == "unsubscribe":
                            return
                    elif kind == "subscribe":
                        await pubsub.subscribe(name)
                    else:
                        await pubsub.unsubscribe(name)
                await waiter
        except UNREACHABLE as exc:
            raise BrokerUnavailable(f"redis did not confirm {kind}") from exc
        finally:
            waiters.remove(waiter)
            if not waiters:
                self._waiters.pop((kind, name), None)

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
        await self._call(self._retain_script, keys, [secrets.token_urlsafe(6), _ms(ttl)])

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

    async def _read_forever(self) -> None:
        """Connect, resubscribe and read until closed; every failure is logged and retried."""
        failures = 0
        while not self._closed:
            try:
                pubsub = await self._connect(after_failure=failures > 0)
                failures = 0
                await self._read(pubsub)
            except Exception as exc:  # noqa: BLE001 - any failure means reconnect, logged below
                failures += 1
                delay = min(self._reconnect_delay_max, 0.05 * 2 ** min(failures, 16))
                if failures & (failures - 1) == 0:  # 1st, 2nd, 4th, 8th... failure
                    logger.warning(
                        "redis pub/sub connection failed (%s, attempt %d); retrying in %.2fs",
                        type(exc).__name__, failures, delay,
                    )
                await self._drop_pubsub()
                await asyncio.sleep(delay)

    async def _connect(self, *, after_failure: bool) -> PubSub:
        """A new pub/sub connection subscribed to every channel in the set."""
        async with self._lock:
            pubsub = self._client.pubsub()
            self._pubsub = pubsub
            await pubsub.connect()  # type: ignore[no-untyped-call]
            names = [self._pubsub_name(channel) for channel in self._channels]
            if names:
                await pubsub.subscribe(*names)
            self._live.set()
        if after_failure:
            logger.info("redis pub/sub reconnected; resubscribed %d channels", len(names))
            self._resubscribing = set(names)
            if not names:
                self._reconnected()
        return pubsub

    async def _read(self, pubsub: PubSub) -> None:
        """Hand every message to ``_dispatch`` in arrival order until the connection fails."""
        loop = asyncio.get_running_loop()
        connected_at = loop.time()
        while not self._closed:
            message = await pubsub.get_message(timeout=READ_TIMEOUT)
            if message is not None:
                self._dispatch(message)
                continue
            # get_message() hides health-check replies; the connection's next check
            # moves on at every read, so it tells when Redis last answered.
            connection = pubsub.connection
            if connection is None:
                raise RedisConnectionError("pub/sub connection is gone")
            last_read = max(connected_at, connection.next_health_check - HEALTH_CHECK_INTERVAL)
            if loop.time() - last_read > HEALTH_CHECK_INTERVAL + SOCKET_TIMEOUT:
                raise RedisTimeoutError("redis did not answer the pub/sub health check")

    def _dispatch(self, message: dict[str, Any]) -> None:
        """Deliver one publication or settle one (un)subscribe confirmation."""
        kind, name = message["type"], message["channel"]
        if kind == "message":
            self._deliver(name, message["data"])
        elif kind in ("subscribe", "unsubscribe"):
            for waiter in self._waiters.get((kind, name), ()):
                if not waiter.done():
                    waiter.set_result(None)
            if kind == "subscribe" and self._resubscribing is not None:
                self._resubscribing.discard(name)
                if not self._resubscribing:
                    self._reconnected()

    def _deliver(self, name: bytes, payload: bytes) -> None:
        """Hand one publication, as it travelled on pub/sub, to the handler."""
        head = len(self._prefix.encode()) + 2  # b"<prefix>:{"
        try:
            channel = name[head:-5].decode()
            offset, epoch, data = payload.split(b":", 2)
            publication = Publication(int(offset), epoch.decode(), data)
        except (ValueError, UnicodeDecodeError):
            logger.error("dropped a malformed publication")
            return
        if publication.offset:
            self._seen.saw(channel, publication.offset, publication.epoch, data)
        if self._handler is None:
            return
        try:
            self._handler(channel, publication)
        except Exception:
            logger.exception("publication handler failed")

    def _reconnected(self) -> None:
        """Tell the node, once every channel is subscribed again, that clients should recover."""
        self._resubscribing = None
        if self.on_reconnect is None:
            return
        try:
            self.on_reconnect()
        except Exception:
            logger.exception("on_reconnect callback failed")

    async def _drop_pubsub(self) -> None:
        """Forget the pub/sub connection; unsubscribes waiting on it have taken effect."""
        self._live.clear()
        self._resubscribing = None
        pubsub, self._pubsub = self._pubsub, None
        for (kind, _), waiters in self._waiters.items():
            for waiter in waiters:
                if kind == "unsubscribe" and not waiter.done():
                    waiter.set_result(None)
        if pubsub is not None:
            with contextlib.suppress(*UNREACHABLE):
                await pubsub.aclose()  # type: ignore[no-untyped-call]

    def _key(self, channel: str, suffix: str) -> str:
        return f"{self._prefix}:{{{channel}}}:{suffix}"

    def _pubsub_name(self, channel: str) -> bytes:
        return f"{self._prefix}:{{{channel}}}:pub".encode()

    def _check_open(self) -> None:
        if self._closed:
            raise BrokerUnavailable("the redis broker is closed")

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


def _data_of(fields: list[bytes]) -> bytes:
    """The ``d`` field of a stream entry as a script returns it (a flat name, value list)."""
    return dict(zip(fields[::2], fields[1::2], strict=True))[b"d"]
