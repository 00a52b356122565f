"""Session state to and from its durable snapshot, and when to write one (compaction).

The snapshot is ``SessionState.to_document()`` packed as an internal message
(MessagePack, like every broker payload, so whatever a record carried into the
state comes back unchanged) with the stream position it reflects. Nodes write it
as they apply the stream (:class:`Compaction` says when); any node rebuilds a
session as the snapshot plus the history after its offset.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import msgpack

from classroom.backends.broker import StreamPosition
from classroom.backends.snapshots.base import Snapshot
from classroom.domain.state import SessionState
from classroom.sessions.messages import pack_internal, unpack_internal

log = logging.getLogger("classroom.sessions.snapshots")


@dataclass(frozen=True, slots=True)
class Compaction:
    """When a node writes a session's snapshot, and when it forgets an idle session.

    ``every``: after this many applied events not yet in a snapshot; it must stay
    below the broker's ``history_size`` so the history after the snapshot is
    always still retained (the app clamps it). ``max_age``: also once the oldest
    such event is this many seconds old, so history trimmed by age
    (``history_ttl``, of which the app keeps it at most half) never passes the
    snapshot either. ``idle``: a session with no member on this node and no
    activity for this long is dropped from memory, and rebuilt on its next use.
    """

    every: int = 1000
    max_age: float = 60.0
    idle: float = 300.0

    def __post_init__(self) -> None:
        if self.every < 1 or self.max_age <= 0 or self.idle <= 0:
            raise ValueError("every must be >= 1 and max_age and idle > 0")

    @classmethod
    def within(cls, *, history_size: int, history_ttl: float, every: int, max_age: float,
               idle: float) -> Compaction:
        """The policy asked for, tightened so the history after a snapshot stays retained.

        At most half of ``history_size`` events and half of ``history_ttl`` seconds
        pass between snapshots; the other half is slack for a snapshot still being
        written while events go on.
        """
        return cls(every=max(1, min(every, history_size // 2)),
                   max_age=min(max_age, history_ttl / 2), idle=idle)


def state_snapshot(state: SessionState, epoch: str) -> Snapshot:
    """The snapshot of ``state`` (which is at ``state.offset`` of ``epoch``)."""
    return Snapshot(StreamPosition(state.offset, epoch), pack_internal(state.to_document()))


def restored_state(snapshot: Snapshot) -> SessionState | None:
    """The state a snapshot holds; None (logged) when it is unreadable or of another version."""
    try:
        return SessionState.from_document(unpack_internal(snapshot.data), snapshot.position.offset)
    except (ValueError, KeyError, TypeError, msgpack.UnpackException):
        log.warning("ignored an unreadable session snapshot")
        return None
