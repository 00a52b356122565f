"""The Redis broker's listening side: its one pub/sub connection, kept alive and subscribed.

It is the broker's only long-lived part: a supervised reader task that
reconnects forever with capped backoff, resubscribes every channel and then
reports the reconnection (``on_reconnect``), and the handshake that makes
``subscribe`` return only once Redis confirmed it. The stream commands
(:mod:`~classroom.backends.broker.redis_streams`) never touch it. The read loop is
the path of every delivered publication: it calls ``_dispatch``, ``_deliver`` and
the handler and nothing else. A cluster's broker replaces the connection handling
with :mod:`~classroom.backends.broker.shard_pubsub` and keeps ``_deliver``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from redis.asyncio.client import PubSub
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from classroom.backends.broker.base import BrokerUnavailable, Publication, PublicationHandler
from classroom.backends.broker.bursts import after_message
from classroom.backends.broker.redis_core import (
    HEALTH_CHECK_INTERVAL,
    UNREACHABLE,
    RedisBrokerCore,
)
from classroom.backends.redis_client import SOCKET_TIMEOUT

logger = logging.getLogger("classroom.backends.broker")

READ_TIMEOUT = 1.0  # one get_message() wait; bounds how late the watchdog notices


class RedisPubSubListener(RedisBrokerCore):
    """The ``Broker`` methods that start, stop and steer delivery over Redis pub/sub."""

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
                await after_message(pubsub, self.on_drained)
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
