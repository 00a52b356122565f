"""The snapshot contract: one packed session state per channel, at a known stream position.

A session's live state is a fold over its stream; the stream's history is bounded
(``history_size``, ``history_ttl``), so a node that starts late cannot fold from
offset 1. The snapshot is the durable truth it starts from instead: the state
after exactly ``position.offset`` events of epoch ``position.epoch``, and a node
rebuilds the state as that snapshot plus the history after its offset.

A snapshot lives and dies with its stream: it is stored in the broker's backend
beside the stream (on Redis in the stream's meta hash, under the same hash tag),
expires with it, is kept as long as a retained stream, and a stream that was lost
and restarted with a new epoch has no snapshot (its state starts empty).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from classroom.backends.broker.base import StreamPosition


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Opaque state bytes and the stream position they reflect."""

    position: StreamPosition
    data: bytes


class SnapshotStore(Protocol):
    """Load and advance a channel's snapshot; memory or Redis behind one contract.

    Raises ``BrokerUnavailable`` when the backend cannot be reached, like the broker.
    """

    async def load(self, channel: str) -> Snapshot | None:
        """The channel's snapshot, or None when its current stream has none."""
        ...

    async def save(self, channel: str, snapshot: Snapshot, *, replace: bool = False) -> bool:
        """Store ``snapshot`` if it advances the stored one; whether it was stored.

        Stored only when ``snapshot.position.epoch`` is the stream's current epoch,
        its offset is not past the stream's newest offset, and it is newer than the
        stored snapshot (or, with ``replace``, at least as new: erasure rewrites a
        snapshot in place). So several nodes may compact at once and the stored
        snapshot only ever moves forward within its stream.
        """
        ...
