"""Leaves, a session's at a time: in a storm they wait behind the joins, then go together.

When a node restarts or the network blips, thousands of connections close at
once and every one leaves its sessions. Joins go first (``admission.py``), so
those leaves wait in line while the clients come back; one by one they then
cost a turn and a Redis round trip each, thousands of them, in the seconds
after the storm. Here the leaves of one session that are waiting when its turn
comes go together: one turn, one round trip to the presence store for all of
them (``PresenceStore.remove_many``), then what each leave says (the departure
in the attendance register, ``presence.leave``) for the users whose last
connection it was, as before. Every caller still waits until its own leave is
done, and a leave that fails fails for each of its callers.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

from classroom.backends.broker import Broker, BrokerUnavailable
from classroom.domain.participants import Participant
from classroom.sessions.admission import Admission
from classroom.sessions.attendance import Attendance
from classroom.sessions.hub import Hub, Membership
from classroom.sessions.messages import unpack_internal
from classroom.sessions.presence import announce
from classroom.sessions.streams import SessionStreams
from presence.store import PresenceStore, PresenceUnavailable

Waiting = list[tuple[Membership, "asyncio.Future[None]"]]


@dataclass(kw_only=True, eq=False)
class Leaves:
    """This node's members leaving their sessions, a session's waiting leaves at once."""

    hub: Hub
    broker: Broker
    presence: PresenceStore
    streams: SessionStreams
    attendance: Attendance
    admission: Admission
    _waiting: dict[str, Waiting] = field(default_factory=dict, init=False)
    _runs: set[asyncio.Task[None]] = field(default_factory=set, init=False)

    async def leave(self, membership: Membership) -> None:
        """Leave in turn, with whatever other leaves of the session wait by then."""
        name = membership.channel.name
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiting = self._waiting.get(name)
        if waiting is None:
            self._waiting[name] = [(membership, done)]
            run = asyncio.create_task(self._run(name))
            self._runs.add(run)
            run.add_done_callback(self._runs.discard)
        else:
            waiting.append((membership, done))
        await asyncio.shield(done)  # a caller that gives up does not undo its leave

    async def _run(self, name: str) -> None:
        """Take a turn, then leave every membership of ``name`` waiting at that moment."""
        waiting: Waiting = []
        try:
            async with self.admission.leave_turn():
                waiting = self._waiting.pop(name, [])
                await self.leave_now(name, [membership for membership, _ in waiting])
        except Exception as exc:  # noqa: BLE001 - each caller raises it for itself
            for _, done in waiting or self._waiting.pop(name, []):
                if not done.done():
                    done.set_exception(exc)
            return
        except BaseException:  # the node is stopping
            for _, done in waiting or self._waiting.pop(name, []):
                done.cancel()
            raise
        for _, done in waiting:
            if not done.done():
                done.set_result(None)

    async def leave_now(self, name: str, memberships: list[Membership]) -> None:
        """Leave at once (the caller holds a turn); announce the users whose last
        connection in the session this was."""
        if not memberships:
            return
        for membership in memberships:
            if self.hub.remove(membership):
                with contextlib.suppress(BrokerUnavailable):
                    await self.broker.unsubscribe(name)
                if self.streams.runtime(name).ended:
                    self.streams.drop(name)  # an ended session keeps no live state here
        try:
            gone = await self.presence.remove_many(
                name, [membership.peer.client_id for membership in memberships])
        except PresenceUnavailable:
            return  # the entries expire by themselves; their leaves are announced by a sweep
        for membership, entry in zip(memberships, gone, strict=True):
            if entry is None:
                continue
            await self.attendance.departed(membership.channel, entry.user)
            record = unpack_internal(entry.info)
            with contextlib.suppress(BrokerUnavailable):
                await announce(self.broker, name, "presence.leave",
                               Participant.from_record(record))

    async def close(self) -> None:
        """Finish the leaves under way (the node is stopping)."""
        if self._runs:
            await asyncio.gather(*self._runs, return_exceptions=True)
