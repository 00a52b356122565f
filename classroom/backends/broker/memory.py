"""The embedded broker: one process, everything in bounded memory."""

from __future__ import annotations

import heapq
import logging
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from itertools import islice

from classroom.backends.broker.base import (
    BrokerUnavailable,
    HistoryResult,
    Publication,
    PublicationHandler,
    PublishResult,
    RememberedPublish,
    StreamPosition,
)

logger = logging.getLogger(__name__)


class _Stream:
    """One channel's stream: epoch, newest offset, retained publications, last write."""

    __slots__ = ("epoch", "history", "offset", "retained_until", "snapshot", "touched")

    def __init__(self, size: int, now: float) -> None:
        self.epoch = secrets.token_urlsafe(6)
        self.offset = 0
        self.history: deque[tuple[float, Publication]] = deque(maxlen=size)
        self.touched = now
        self.retained_until: float | None = None  # set when the session ended
        self.snapshot: tuple[int, bytes] | None = None  # classroom.backends.snapshots

    @property
    def position(self) -> StreamPosition:
        """The newest offset with this stream's epoch."""
        return StreamPosition(self.offset, self.epoch)

    @property
    def first_offset(self) -> int:
        """The oldest retained offset; newest + 1 when nothing is retained."""
        return self.history[0][1].offset if self.history else self.offset + 1

    def recoverable(self, since: StreamPosition) -> bool:
        """Whether every publication after ``since`` is still retained in this stream."""
        if since.epoch != self.epoch or not 0 <= since.offset <= self.offset:
            return False
        return since.offset >= self.first_offset - 1


class MemoryBroker:
    """The ``Broker`` of a single process; the handler runs inside ``publish``.

    Memory stays bounded: streams idle for ``history_ttl`` and idempotency keys
    older than ``idempotency_ttl`` are dropped on every call, oldest first.
    """

    def __init__(
        self,
        *,
        history_size: int = 10000,
        history_ttl: float = 86400.0,
        idempotency_ttl: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.on_reconnect: Callable[[], None] | None = None  # one process never reconnects
        self.on_drained: Callable[[], None] | None = None  # never called (see Broker)
        if history_size < 0 or history_ttl <= 0 or idempotency_ttl <= 0:
            raise ValueError("history_size must be >= 0 and the ttls > 0")
        self._history_size = history_size
        self._history_ttl = history_ttl
        self._idempotency_ttl = idempotency_ttl
        self._clock = clock
        # Expiry looks at the front only, so a call costs O(1) however many
        # streams are kept: streams that age out by their last write are
        # ordered oldest first in ``_idle_order``; ended sessions' streams,
        # kept whole until a deadline, wait in a heap by that deadline.
        self._streams: dict[str, _Stream] = {}
        self._idle_order: OrderedDict[str, None] = OrderedDict()
        self._deadlines: list[tuple[float, str]] = []
        self._keys: OrderedDict[tuple[str, str], tuple[float, RememberedPublish]] = OrderedDict()
        self._subscribed: set[str] = set()
        self._handler: PublicationHandler | None = None
        self._closed = False

    async def start(self, handler: PublicationHandler) -> None:
        """Set the handler that subscribed channels' publications are delivered to."""
        self._check_open()
        self._handler = handler

    async def close(self) -> None:
        """Drop everything; later calls raise ``BrokerUnavailable``."""
        self._closed = True
        self._handler = None
        self._subscribed.clear()
        self._streams.clear()
        self._idle_order.clear()
        self._deadlines.clear()
        self._keys.clear()

    async def subscribe(self, channel: str) -> None:
        """Deliver ``channel``'s publications to the handler; idempotent."""
        self._check_open()
        self._subscribed.add(channel)

    async def unsubscribe(self, channel: str) -> None:
        """Stop delivering ``channel``'s publications; idempotent."""
        self._check_open()
        self._subscribed.discard(channel)

    async def publish(
        self,
        channel: str,
        data: bytes,
        *,
        stored: bool = True,
        idempotency_key: str | None = None,
        fingerprint: str | None = None,
    ) -> PublishResult:
        """Store and deliver in one step with no await, so concurrent publishes never interleave."""
        now = self._now()
        key = (channel, idempotency_key) if idempotency_key is not None else None
        if key is not None and key in self._keys:
            first = self._keys[key][1]
            return PublishResult(first.position, duplicate=True, fingerprint=first.fingerprint)
        if stored:
            stream = self._stream(channel, now)
            stream.offset += 1
            publication = Publication(stream.offset, stream.epoch, data)
            stream.history.append((now, publication))
            stream.touched = now
            if stream.retained_until is None:
                self._idle_order.move_to_end(channel)
            position = stream.position
        else:
            current = self._streams.get(channel)
            publication = Publication(0, "", data)
            position = StreamPosition(0, current.epoch if current is not None else "")
        if key is not None:
            remembered = RememberedPublish(position, fingerprint or None)
            self._keys[key] = (now + self._idempotency_ttl, remembered)
        self._deliver(channel, publication)
        return PublishResult(position, duplicate=False)

    async def recall(self, channel: str, idempotency_key: str) -> RememberedPublish | None:
        """The position and fingerprint a publish with this key left, within the ttl."""
        self._now()
        remembered = self._keys.get((channel, idempotency_key))
        return remembered[1] if remembered is not None else None

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
        stream = self._stream(channel, self._now())
        if since is not None and stream.recoverable(since):
            start = since.offset + 1 - stream.first_offset
            stop = None if limit is None else start + limit
            after = [pub for _, pub in islice(stream.history, start, stop)]
            return HistoryResult(after, stream.position, recovered=True)
        count = len(stream.history) if limit is None else min(limit, len(stream.history))
        newest = [pub for _, pub in islice(stream.history, len(stream.history) - count, None)]
        return HistoryResult(newest, stream.position, recovered=since is None)

    async def position(self, channel: str) -> StreamPosition:
        """The newest offset and epoch of ``channel``; creates the stream if missing."""
        return self._stream(channel, self._now()).position

    async def ready(self) -> bool:
        """Memory is always reachable until closed."""
        return not self._closed

    async def retain(self, channel: str, ttl: float) -> None:
        """Keep the whole stream, untrimmed by age, for ``ttl`` seconds more, then drop it."""
        now = self._now()
        stream = self._stream(channel, now)
        stream.retained_until = now + ttl
        self._idle_order.pop(channel, None)
        heapq.heappush(self._deadlines, (stream.retained_until, channel))

    async def retention(self, channel: str) -> float | None:
        """Seconds until a retained stream is dropped; None when not retained."""
        now = self._now()
        stream = self._streams.get(channel)
        if stream is None or stream.retained_until is None:
            return None
        return stream.retained_until - now

    async def rewrite(
        self, channel: str, replacements: dict[int, bytes], *, epoch: str | None = None
    ) -> int:
        """Replace the data of retained publications by offset (erasure); how many changed.

        One process has no other sessions to hold up: the deque is edited in place.
        """
        self._now()
        stream = self._streams.get(channel)
        if stream is None or (epoch is not None and stream.epoch != epoch):
            return 0
        changed = 0
        for index, (stamp, pub) in enumerate(stream.history):
            data = replacements.get(pub.offset)
            if data is not None:
                stream.history[index] = (stamp, Publication(pub.offset, pub.epoch, data))
                changed += 1
        return changed

    def kept_snapshot(self, channel: str) -> tuple[StreamPosition, bytes] | None:
        """The session-state snapshot kept on the channel's stream (see ``backends.snapshots``)."""
        snapshot = self._stream(channel, self._now()).snapshot
        if snapshot is None:
            return None
        offset, data = snapshot
        return StreamPosition(offset, self._streams[channel].epoch), data

    def keep_snapshot(self, channel: str, position: StreamPosition, data: bytes, *,
                      replace: bool = False) -> bool:
        """Keep a snapshot on the stream if it advances the kept one; it goes with the stream."""
        stream = self._stream(channel, self._now())
        if position.epoch != stream.epoch or not 0 <= position.offset <= stream.offset:
            return False
        kept = stream.snapshot[0] if stream.snapshot is not None else -1
        if kept > position.offset or (kept == position.offset and not replace):
            return False
        stream.snapshot = (position.offset, data)
        return True

    async def read_page(self, channel: str, *, after: int, limit: int) -> list[Publication]:
        """Up to ``limit`` retained publications after offset ``after``, oldest first."""
        if limit < 0:
            raise ValueError("limit must be >= 0")
        self._now()
        stream = self._streams.get(channel)
        if stream is None:
            return []
        start = max(0, after + 1 - stream.first_offset)
        return [pub for _, pub in islice(stream.history, start, start + limit)]

    def _check_open(self) -> None:
        if self._closed:
            raise BrokerUnavailable("the memory broker is closed")

    def _now(self) -> float:
        """The clock's time, after dropping idle streams and expired idempotency keys."""
        self._check_open()
        now = self._clock()
        while self._deadlines and self._deadlines[0][0] <= now:
            deadline, channel = heapq.heappop(self._deadlines)
            stream = self._streams.get(channel)
            if stream is not None and stream.retained_until == deadline:  # else retained again
                del self._streams[channel]
        while self._idle_order:
            channel = next(iter(self._idle_order))
            if now - self._streams[channel].touched < self._history_ttl:
                break
            del self._idle_order[channel]
            del self._streams[channel]
        while self._keys:
            expires_at, _ = next(iter(self._keys.values()))
            if expires_at > now:
                break
            self._keys.popitem(last=False)
        return now

    def _stream(self, channel: str, now: float) -> _Stream:
        """The channel's live stream, created if missing, with stale history trimmed."""
        stream = self._streams.get(channel)
        if stream is None:
            stream = self._streams[channel] = _Stream(self._history_size, now)
            self._idle_order[channel] = None
        while (stream.retained_until is None and stream.history
               and now - stream.history[0][0] >= self._history_ttl):
            stream.history.popleft()
        return stream

    def _deliver(self, channel: str, publication: Publication) -> None:
        """Hand a publication to the handler; its failure never fails the publisher."""
        if self._handler is None or channel not in self._subscribed:
            return
        try:
            self._handler(channel, publication)
        except Exception:
            logger.exception("publication handler failed")
