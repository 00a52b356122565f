"""Budgets for the commands whose cost grows with the room: each one reaches every member.

A pointer or a reaction is broadcast to the whole session, and so is the
presence change of a join or a leave: at the general rate limit (50 commands a
second) one student would cost 50 times the members in frames a second. These kinds get a
budget of their own per user, shared by all of that user's connections on a
node, sized for real use: a trainer's pointer moves at 10 to 30 Hz, nobody
reacts more than a few times a second, and a device joins a session once.
"""

from __future__ import annotations

from dataclasses import dataclass

from classroom.protocol.commands import Command, Join, Leave, Publish


@dataclass(frozen=True, slots=True)
class Budget:
    """A token bucket's size: ``rate`` commands a second on average, ``burst`` at once."""

    rate: float
    burst: int


FANOUT_BUDGETS: dict[str, Budget] = {
    "pointer": Budget(rate=30.0, burst=60),
    "reaction": Budget(rate=3.0, burst=10),
    "presence": Budget(rate=2.0, burst=10),
}
"""Per user and node; ``CLASSROOM_FANOUT_BUDGET_SCALE`` multiplies every one (benchmarks)."""


def budget_of(command: Command) -> str | None:
    """The budget a command draws on, or None when only the general rate limit applies."""
    if isinstance(command, Publish):
        kind = command.event.get("kind")
        return kind if kind in ("pointer", "reaction") else None
    if isinstance(command, Join | Leave):
        return "presence"
    return None


REPLAY_BUDGET = Budget(rate=2000.0, burst=20000)
"""Stored events one connection may be sent from history (join replays, ``history``).

Two full histories at once (10,000 events each by default), then 2,000 a second:
a client reconnecting after a node restart recovers at once, while a join/leave
loop asking for everything each time soon gets ``recovered: false`` (and
``history`` gets ``rate_limited``)."""
