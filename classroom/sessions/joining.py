"""Joining and leaving a session, and recovering what a client missed.

A joining member is registered in the hub first, in buffering mode; then the
stream is settled for it (subscribed, caught up: also when another member's
join is still subscribing), the state snapshot and its offset are taken
together, history after ``since`` is replayed up to that offset, and the
membership goes live with whatever was buffered after it: nothing is lost or
doubled between replay and live traffic.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from auth.identity import Identity
from classroom.backends.broker import Broker, Publication, StreamPosition
from classroom.backends.data.records import Records
from classroom.domain.lifecycle import refuse_if_ended
from classroom.domain.options import OptionDefaults
from classroom.domain.refusals import RequestRefused
from classroom.domain.views import render_participant, render_state, view_for_role
from classroom.protocol.codec import Payload, encode
from classroom.protocol.features import POLL_TALLY_COALESCED, PRESENCE_DIFF
from classroom.protocol.frames import event_frame, history_event
from classroom.sessions.access import SessionAccess
from classroom.sessions.admission import Admission
from classroom.sessions.attendance import Attendance
from classroom.sessions.backend_calls import BackendCalls
from classroom.sessions.hub import Hub, Membership, Recipient
from classroom.sessions.leaving import Leaves
from classroom.sessions.messages import pack_internal, unpack_internal
from classroom.sessions.presence import PresenceViews, announce
from classroom.sessions.streams import SessionStreams
from presence.store import PresenceStore


@dataclass
class JoinOutcome:
    """A finished join: the membership, what it missed, and the ``joined`` reply body.

    ``replay`` holds the stored publications after ``since`` up to the snapshot, in
    offset order; :func:`replay_frames` renders them for the member, lazily, so the
    caller can send them in chunks.
    """

    membership: Membership
    replay: list[Publication]
    reply: dict[str, Any]
    live_after: int


@dataclass(kw_only=True, eq=False)
class Joins:
    """Joins, leaves and history reads of this node's members."""

    access: SessionAccess
    hub: Hub
    broker: Broker
    presence: PresenceStore
    streams: SessionStreams
    records: Records
    views: PresenceViews
    call: BackendCalls
    history_limit_max: int
    attendance: Attendance
    admission: Admission
    """Turns: a join or leave runs only when the node has one free (a storm waits in line)."""
    _subscribing: dict[str, asyncio.Future[None]] = field(default_factory=dict, init=False)
    leaves: Leaves = field(init=False)
    """Leaves, a session's waiting ones together (``leaving.py``)."""

    def __post_init__(self) -> None:
        self.leaves = Leaves(hub=self.hub, broker=self.broker, presence=self.presence,
                             streams=self.streams, attendance=self.attendance,
                             admission=self.admission)

    async def join(
        self,
        peer: Recipient,
        identity: Identity,
        session: str,
        since: StreamPosition | None,
        *,
        max_replay: int | None = None,
    ) -> JoinOutcome:
        """Join ``session``: buffer live traffic, snapshot, read what was missed, go live.

        A client that missed more than ``max_replay`` events is not replayed at all:
        it gets ``recovered: false`` and the current state, as after a trimmed history.
        The join waits for a turn (``unavailable`` when the node is too busy).
        """
        async with self.admission.join_turn():
            return await self._join(peer, identity, session, since, max_replay)

    async def _join(
        self,
        peer: Recipient,
        identity: Identity,
        session: str,
        since: StreamPosition | None,
        max_replay: int | None,
    ) -> JoinOutcome:
        channel = self.access.authorise(identity, session)
        call = self.call
        revoked, status = await call(self.records.join_checks(identity, session))
        if revoked:  # erased since it connected
            raise RequestRefused("unauthorized", "token refused")
        refuse_if_ended(status)
        screens = await call(self.records.roster_screens(identity.tenant, session))
        if identity.role == "trainer":
            await call(self.records.mark_live(identity.tenant, session))
        await call(self.records.joined(identity.tenant, identity.sub, session, by=identity))
        participant = self.access.participant(identity, session)
        view = view_for_role(identity.role)
        membership = Membership(peer, channel, participant, view,
                                diffs=PRESENCE_DIFF in peer.features,
                                tallies=POLL_TALLY_COALESCED in peer.features)
        name = channel.name
        try:
            await self._follow(name, first_here=self.hub.add(membership))
            first = await call(self.presence.add(
                name, peer.client_id, identity.sub, pack_internal(participant.to_record())
            ))
            if first:
                await announce(self.broker, name, "presence.join", participant)
                await self.attendance.arrived(channel, participant)
            # The snapshot and its offset are taken together, before any further await:
            # replay covers (since, offset], the membership's buffer everything after.
            runtime = self.streams.runtime(name)
            snapshot_offset = runtime.state.offset
            epoch = runtime.epoch
            state = render_state(runtime.state.snapshot(), view, participant.pid,
                                 defaults=self.options_for(identity.tenant), now=time.time())
            replay: list[Publication] = []
            recovered = False
            missed = snapshot_offset - since.offset if since is not None else -1
            affordable = max_replay is None or missed <= max_replay
            if since is not None and since.epoch == epoch and missed >= 0 and affordable:
                history = await call(self.broker.history(name, since=since))
                recovered = history.recovered
                if recovered:
                    replay = [p for p in history.publications if p.offset <= snapshot_offset]
            participants, present = await self.views.listing(channel, view, participant.pid)
        except BaseException:
            await self._leave(membership)  # within this join's turn
            raise
        reply = {
            "type": "joined",
            "session": session,
            "epoch": epoch,
            "offset": snapshot_offset,
            "state": state,
            "screens": screens,
            "participants": participants,
            "recovered": recovered,
            "me": render_participant(participant.to_record(), view, participant.pid),
        }
        if membership.diffs:
            reply["count"] = present
        return JoinOutcome(membership, replay, reply, snapshot_offset)

    async def _follow(self, name: str, *, first_here: bool) -> None:
        """Settle the stream for this joiner: subscribed, then caught up to the broker.

        The first member on this node subscribes; every joiner, first or not, waits
        for that subscription and then for a catch-up of its own (shared with any in
        flight), so no join snapshots a runtime that is still empty or behind while
        its history arrives, and every event after the snapshot reaches it live.
        """
        if first_here:
            task = asyncio.ensure_future(self.call(self.broker.subscribe(name)))
            self._subscribing[name] = task
            task.add_done_callback(functools.partial(self._subscribed, name))
        subscribing = self._subscribing.get(name)
        if subscribing is not None:
            await asyncio.shield(subscribing)
        await self.streams.sync(name)

    def options_for(self, tenant: str) -> OptionDefaults:
        """The tenant's session options, for a session whose trainer set none."""
        return OptionDefaults.of(self.access.tenants.get(tenant))

    def _subscribed(self, name: str, task: asyncio.Future[None]) -> None:
        if self._subscribing.get(name) is task:
            del self._subscribing[name]
        if not task.cancelled():
            task.exception()  # retrieved: each waiting joiner raises it for itself

    async def leave(self, membership: Membership) -> None:
        """Leave a session, in turn (with the session's other leaves waiting by then);
        announce the user's leave after their last connection."""
        await self.leaves.leave(membership)

    async def _leave(self, membership: Membership) -> None:
        """Leave at once, within the turn the caller holds (a join that failed)."""
        await self.leaves.leave_now(membership.channel.name, [membership])

    async def history_of(
        self,
        identity: Identity,
        session: str,
        since: StreamPosition | None,
        limit: int | None,
    ) -> dict[str, Any]:
        """Stored events of ``session`` as the asking user may see them."""
        channel = self.access.authorise(identity, session)
        me = self.access.participant(identity, session)
        view = view_for_role(identity.role)
        limit = min(limit or self.history_limit_max, self.history_limit_max)
        history = await self.call(self.broker.history(channel.name, since=since, limit=limit))
        events = []
        for pub in history.publications:
            record = unpack_internal(pub.data).get("record")
            if record is None:
                continue
            event = history_event(record, view, me.pid)
            if event is not None:
                events.append({"offset": pub.offset, "event": event})
        return {
            "session": session,
            "epoch": history.position.epoch,
            "offset": history.position.offset,
            "events": events,
            "recovered": history.recovered if since is not None else True,
        }

    async def presence_of(
        self, identity: Identity, session: str
    ) -> tuple[list[dict[str, Any]], int]:
        """Who is in ``session`` as the asking user may see them, and how many are."""
        channel = self.access.authorise(identity, session)
        me = self.access.participant(identity, session)
        return await self.views.listing(channel, view_for_role(identity.role), me.pid)


def replay_frames(membership: Membership, publications: list[Publication]) -> Iterator[Payload]:
    """The member's frames for the stored events it missed, rendered one at a time."""
    encoding = membership.peer.encoding
    for pub in publications:
        record = unpack_internal(pub.data).get("record")
        if record is None:
            continue
        frame = event_frame(
            membership.session, pub.offset, pub.epoch, record, membership.view, membership.pid
        )
        if frame is not None:
            yield encode(frame, encoding)
