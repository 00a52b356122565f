"""The broker contract: per-channel offsets, bounded history and fan-out to one handler.

Modelled on centrifugal/centrifuge's ``Broker``: every stored publication gets the
next offset of its channel's stream, and the stream's epoch says which stream an
offset belongs to, so a client never "recovers" from a stream that storage lost.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class StreamPosition:
    """A place in a channel's stream; offsets only compare within one epoch."""

    offset: int
    epoch: str


@dataclass(frozen=True, slots=True)
class Publication:
    """One message as delivered or stored; offset 0 and epoch "" when ephemeral."""

    offset: int
    epoch: str
    data: bytes


@dataclass(frozen=True, slots=True)
class PublishResult:
    """Where a publish landed, and whether an idempotency key made it a no-op."""

    position: StreamPosition
    duplicate: bool
    fingerprint: str | None = None
    """With ``duplicate``: the fingerprint the first publish left with the key, if any."""


@dataclass(frozen=True, slots=True)
class RememberedPublish:
    """What an idempotency key remembers: the first publish's position and fingerprint."""

    position: StreamPosition
    fingerprint: str | None


@dataclass(frozen=True, slots=True)
class HistoryResult:
    """Retained publications, the current position, and whether ``since`` was recovered."""

    publications: list[Publication]
    position: StreamPosition
    recovered: bool


PublicationHandler = Callable[[str, Publication], None]
"""Receives ``(channel, publication)``; synchronous and must never block the broker."""


class BrokerUnavailable(Exception):  # noqa: N818 - the name is part of the contract
    """The backend cannot be reached, so callers can answer ``unavailable`` and carry on."""


class Broker(Protocol):
    """Offsets, history and fan-out of channels; memory or Redis behind one contract.

    Streams: a channel's stream is created on first use (``publish``, ``history``,
    ``position``) with a new random epoch and offset 0. Each stored publish
    increments the offset by one (the first is 1), so offsets are gapless within an
    epoch. A stream with no publication for ``history_ttl`` seconds is lost whole:
    its offset, epoch and history are dropped, and the next use starts a new epoch
    at offset 1. History keeps at most ``history_size`` publications per channel
    (the oldest trimmed exactly) and drops publications older than ``history_ttl``.
    """

    on_reconnect: Callable[[], None] | None
    """Called after the backend connection came back and subscriptions were restored:
    publications may have been missed meanwhile, so the caller catches up from history."""

    on_drained: Callable[[], None] | None
    """Called when a Redis-backed broker has handed the handler every publication it had
    read and is about to wait for more, so the frames the handler queued can be written
    now rather than at the end of the event loop's iteration (after every other callback
    ready by then: in a reconnect storm, hundreds of joins' steps). Once per burst read
    off one connection, not once per publication, so a member who got several in one
    burst still gets one write. The embedded broker never calls it: it delivers inside
    ``publish``, and the end of that iteration comes as soon."""

    async def start(self, handler: PublicationHandler) -> None:
        """Set the one handler that gets every publication of subscribed channels.

        Per channel the handler sees stored publications in offset order, each once.
        """
        ...

    async def close(self) -> None:
        """Release the backend; afterwards nothing is delivered and calls fail."""
        ...

    async def subscribe(self, channel: str) -> None:
        """Deliver ``channel``'s publications to the handler; idempotent."""
        ...

    async def unsubscribe(self, channel: str) -> None:
        """Stop delivering ``channel``'s publications; idempotent."""
        ...

    async def publish(
        self,
        channel: str,
        data: bytes,
        *,
        stored: bool = True,
        idempotency_key: str | None = None,
        fingerprint: str | None = None,
    ) -> PublishResult:
        """Publish ``data``: stored gets the next offset and history, ephemeral neither.

        ``stored=True``: atomically increment the channel's offset, append
        ``Publication(offset, epoch, data)`` to history, then deliver it to the
        handler if this broker subscribes to the channel. ``stored=False``: no
        offset, no history; delivered as ``Publication(0, "", data)``, and the
        result's position is ``StreamPosition(0, <current epoch or "">)``.

        With ``idempotency_key``: if the same key was used on this channel within
        ``idempotency_ttl`` seconds, nothing is stored or delivered and the first
        publish's position comes back with ``duplicate=True``, with the
        ``fingerprint`` that publish left (None if it gave none). Otherwise the key
        is remembered, with ``fingerprint`` (a non-empty string naming what was
        published, so a caller can tell a retry from another message under the same
        key; ignored without a key), for ``idempotency_ttl`` seconds.

        Raises ``BrokerUnavailable`` when the backend cannot be reached.
        """
        ...

    async def recall(self, channel: str, idempotency_key: str) -> RememberedPublish | None:
        """The position and fingerprint a publish with this key left within ``idempotency_ttl``.

        None when the key is unknown or expired. Lets a caller answer a retry without
        checking it again against newer state, once it knows it is the same message.
        """
        ...

    async def history(
        self,
        channel: str,
        *,
        since: StreamPosition | None = None,
        limit: int | None = None,
    ) -> HistoryResult:
        """Retained publications in ascending offset order, for replay and recovery.

        ``since=None``: the newest ``limit`` retained publications (all if ``limit``
        is None), ``recovered=True``. ``since=pos``: the publications with offset
        greater than ``pos.offset`` (the first ``limit`` of them), and
        ``recovered=True`` only if ``pos.epoch`` is the current epoch, ``pos.offset``
        is not past the newest offset, and nothing after ``pos.offset`` was trimmed
        (``pos.offset >= first retained offset - 1``, or ``pos.offset`` is the newest
        offset when nothing is retained). Otherwise ``recovered=False`` and the
        publications are the newest ``limit`` of the whole retained history.

        ``position`` is always the channel's current newest position; a stream is
        created if missing, so an empty channel answers offset 0 with its epoch and
        ``since=StreamPosition(0, epoch)`` recovers with no publications.
        ``limit=0`` returns no publications. Raises ``BrokerUnavailable``.
        """
        ...

    async def retain(self, channel: str, ttl: float) -> None:
        """The session ended: keep its whole history ``ttl`` seconds more, then drop it.

        Replaces the rolling ``history_ttl``: a retained stream is no longer trimmed
        by age, and its keys expire at the deadline (the tenant's retention).
        """
        ...

    async def retention(self, channel: str) -> float | None:
        """Seconds left of a retained stream; None when the stream is not retained."""
        ...

    async def rewrite(
        self, channel: str, replacements: dict[int, bytes], *, epoch: str | None = None
    ) -> int:
        """Replace the data of retained publications, by offset; offsets and order stay.

        For erasure: the content of events a user authored is replaced by a
        tombstone, so no replay or recovery brings it back. With ``epoch``, only
        while the stream is still of that epoch (offsets read from a stream that
        was lost must not touch its successor); otherwise nothing changes.

        A long stream does not stop the world: the backend works in steps that
        each touch a bounded number of publications, so other channels wait at
        most one step; readers see the stream as it was or as rewritten, never a
        mix; publications stored meanwhile are kept, in order (they are not
        rewritten). Rewrites of one channel run one at a time. Returns how many
        publications changed. Raises ``BrokerUnavailable``.
        """
        ...

    async def position(self, channel: str) -> StreamPosition:
        """The newest offset (0 when empty) and epoch; creates the stream if missing."""
        ...

    async def ready(self) -> bool:
        """Whether the backend is reachable, for ``/readyz``."""
        ...

    async def read_page(self, channel: str, *, after: int, limit: int) -> list[Publication]:
        """At most ``limit`` retained publications with offset above ``after``, oldest first.

        Unlike ``history`` it never falls back to the newest: a caller walks a
        whole stream (erasure, export) in bounded steps, each going on after the
        last offset it got, until a page is shorter than ``limit``. A page whose
        epoch differs from the previous one means the stream was lost and
        replaced meanwhile. Creates nothing: an unknown channel has no
        publications. Raises ``BrokerUnavailable``.
        """
        ...
