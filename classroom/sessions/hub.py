"""The hub: this node's connections by session, and the fan-out to them.

A publication is turned into a frame at most once per (view, self) pair and
encoded at most once per encoding, then the same object is handed to every
connection of that kind: fan-out costs O(views) encodes, not O(connections).
A member that is still joining buffers what arrives, so that the join can
send history first and the live tail after it, with nothing lost or doubled.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from classroom.domain.channel import Channel
from classroom.domain.participants import Participant
from classroom.domain.views import View
from classroom.protocol.codec import Encoding, Payload, encode

# Builds the frame one recipient kind receives, or None when that kind gets nothing.
FrameBuilder = Callable[[View, str | None], dict[str, Any] | None]


class Recipient(Protocol):
    """What the hub needs of a connection: where to put bytes, and how to encode."""

    client_id: str
    encoding: Encoding
    features: frozenset[str]
    """Optional protocol parts the client announced on ``connect``."""

    def enqueue(self, payload: Payload) -> None:
        """Queue a frame for sending; must not block (a slow peer closes itself)."""

    def session_ended(self, session: str) -> None:
        """The session ended: drop the membership, close if nothing else is joined."""


@dataclass(eq=False)
class Membership:
    """One connection's membership of one session."""

    peer: Recipient
    channel: Channel
    participant: Participant
    view: View
    diffs: bool = False
    """The connection announced ``presence.diff``: it gets coalesced presence, not per person."""
    tallies: bool = False
    """The connection announced ``poll.tally.coalesced``: one ``poll.tally`` per window."""
    live_after: int = 0
    """The offset its ``joined`` state stands at, once live: stored events up to it are in."""
    buffering: bool = True
    buffer: list[tuple[int, Payload]] = field(default_factory=list)
    pid: str = field(init=False)
    """The member's pseudonymous id in this session (a plain attribute: fan-out reads it
    for every member of every publication)."""

    def __post_init__(self) -> None:
        self.pid = self.participant.pid

    @property
    def session(self) -> str:
        """The session's id (without its tenant)."""
        return self.channel.session

    def go_live(self, after_offset: int) -> None:
        """Flush what arrived while joining, skipping stored events already covered."""
        pending, self.buffer, self.buffering = self.buffer, [], False
        self.live_after = after_offset
        for offset, payload in pending:
            if offset == 0 or offset > after_offset:
                self.peer.enqueue(payload)


class Hub:
    """Local memberships by channel; knows nothing of brokers or storage."""

    def __init__(self) -> None:
        self._channels: dict[str, dict[int, Membership]] = {}
        self._diffs: dict[str, int] = {}
        """Memberships per channel that take ``presence.diff`` (so a join costs nothing
        per member when none does, and the per-person frames are skipped when all do)."""

    def add(self, membership: Membership) -> bool:
        """Register a membership; True when it is the channel's first on this node."""
        name = membership.channel.name
        members = self._channels.setdefault(name, {})
        if id(membership) not in members and membership.diffs:
            self._diffs[name] = self._diffs.get(name, 0) + 1
        members[id(membership)] = membership
        return len(members) == 1

    def remove(self, membership: Membership) -> bool:
        """Unregister; True when the channel has no member left on this node."""
        name = membership.channel.name
        members = self._channels.get(name)
        if members is None:
            return False
        if members.pop(id(membership), None) is not None and membership.diffs:
            left = self._diffs[name] - 1
            if left:
                self._diffs[name] = left
            else:
                del self._diffs[name]
        if members:
            return False
        del self._channels[name]
        return True

    def members(self, channel: str) -> Iterator[Membership]:
        """The channel's local memberships."""
        return iter(list(self._channels.get(channel, {}).values()))

    def channels(self) -> list[str]:
        """Every channel with a local member (what to resubscribe after a reconnect)."""
        return list(self._channels)

    def client_ids(self, channel: str) -> list[str]:
        """The distinct connections with a membership of ``channel`` (for heartbeats)."""
        return list({m.peer.client_id: None for m in self._channels.get(channel, {}).values()})

    def count(self, channel: str) -> int:
        """How many local memberships the channel has."""
        return len(self._channels.get(channel, {}))

    def diff_count(self, channel: str) -> int:
        """How many local memberships of the channel take ``presence.diff``."""
        return self._diffs.get(channel, 0)

    def deliver(
        self,
        channel: str,
        offset: int,
        build: FrameBuilder,
        personal: frozenset[str] = frozenset(),
        skip_pid: str | None = None,
        diffs: bool | None = None,
        held: bool | None = None,
    ) -> int:
        """Fan a publication out to the channel's members; returns frames queued.

        ``personal`` names the pids that get their own rendering (the frame is
        about them); ``skip_pid`` is a member who must not receive it at all;
        ``diffs``, when given, picks the members whose ``diffs`` flag equals it;
        ``held``, when given, picks by whether the tally window holds the member's poll
        tallies (it takes coalesced ones and is no trainer): the others with False (an
        answer's own delivery), those with True (the held tally), less any member whose
        ``joined`` state already stands at or past ``offset``.
        """
        members = self._channels.get(channel)
        if not members:
            return 0
        frames: dict[tuple[View, str | None], dict[str, Any] | None] = {}
        payloads: dict[tuple[View, str | None, Encoding], Payload] = {}
        sent = 0
        for member in list(members.values()):
            if member.pid == skip_pid or (diffs is not None and member.diffs != diffs):
                continue
            if held is not None and (
                (member.tallies and member.view != "trainer") != held
                or (held and member.live_after >= offset)
            ):
                continue
            self_pid = member.pid if member.pid in personal else None
            frame_key = (member.view, self_pid)
            if frame_key not in frames:
                frames[frame_key] = build(member.view, self_pid)
            frame = frames[frame_key]
            if frame is None:
                continue
            encoding = member.peer.encoding
            payload_key = (member.view, self_pid, encoding)
            payload = payloads.get(payload_key)
            if payload is None:
                payload = payloads[payload_key] = encode(frame, encoding)
            if member.buffering:
                member.buffer.append((offset, payload))
            else:
                member.peer.enqueue(payload)
            sent += 1
        return sent
