"""A refreshed token applied to a live connection's memberships, without a reconnect.

The connection keeps its memberships and their place in each stream. A session
the new token no longer grants is left (as ``leave`` would). Where the user's
participant changed (another role, or other profile claims), the membership is
changed in place: from the next frame on, fan-out renders for the new view, the
presence entry carries the new record and the others are told with a
``presence.join`` of the same pid. A changed view also gets a fresh ``joined``
body, so the client re-renders the state as its new role may see it.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from auth.identity import Identity
from classroom.backends.broker import Broker, BrokerUnavailable
from classroom.domain.views import render_participant, render_state, view_for_role
from classroom.sessions.access import SessionAccess
from classroom.sessions.backend_calls import BackendCalls
from classroom.sessions.hub import Membership, Recipient
from classroom.sessions.joining import Joins
from classroom.sessions.messages import pack_internal
from classroom.sessions.presence import PresenceViews, announce
from classroom.sessions.streams import SessionStreams
from presence.store import PresenceStore


@dataclass
class RegrantOutcome:
    """What a refresh changed: the sessions left, and those re-sent as a new view sees them."""

    left: list[str] = field(default_factory=list)
    rejoined: list[str] = field(default_factory=list)


@dataclass(kw_only=True, eq=False)
class Regrants:
    """Applies a new identity of the same user to the memberships of one connection."""

    access: SessionAccess
    joins: Joins
    broker: Broker
    presence: PresenceStore
    streams: SessionStreams
    views: PresenceViews
    call: BackendCalls

    async def apply(
        self,
        peer: Recipient,
        memberships: dict[str, Membership],
        new: Identity,
        send: Callable[[dict[str, Any]], None],
    ) -> RegrantOutcome:
        """Leave what ``new`` no longer grants; re-render what it grants differently.

        A fresh ``joined`` body goes to ``send`` as soon as it is made, before any
        further await, so it sits in the send queue right after the events it covers.
        """
        outcome = RegrantOutcome()
        for session, membership in sorted(memberships.items()):
            if session not in new.sessions:
                del memberships[session]
                await self.joins.leave(membership)
                outcome.left.append(session)
                continue
            participant = self.access.participant(new, session)
            if participant == membership.participant:
                continue
            view_changed = view_for_role(new.role) != membership.view
            await self._change_participant(peer, membership, new)
            if view_changed:
                send(await self._joined_body(membership))
                outcome.rejoined.append(session)
        return outcome

    async def _change_participant(
        self, peer: Recipient, membership: Membership, new: Identity
    ) -> None:
        participant = self.access.participant(new, membership.session)
        membership.participant = participant
        membership.view = view_for_role(new.role)
        name = membership.channel.name
        await self.call(self.presence.add(
            name, peer.client_id, new.sub, pack_internal(participant.to_record())
        ))
        self.views.forget_renderings()  # the old record must not be shown from the cache
        with contextlib.suppress(BrokerUnavailable):
            await announce(self.broker, name, "presence.join", participant)

    async def _joined_body(self, membership: Membership) -> dict[str, Any]:
        """The session as the new view sees it, at the offset the member has been sent."""
        view, pid = membership.view, membership.pid
        participants, present = await self.views.listing(membership.channel, view, pid)
        channel = membership.channel
        records = self.joins.records
        screens = await self.call(records.roster_screens(channel.tenant, channel.session))
        # No await from here: the state and its offset match what fan-out has queued.
        runtime = self.streams.runtime(membership.channel.name)
        # The new state stands at this offset: a tally held from before must not follow it.
        membership.live_after = runtime.state.offset
        body = {
            "type": "joined",
            "session": membership.session,
            "epoch": runtime.epoch,
            "offset": runtime.state.offset,
            "state": render_state(runtime.state.snapshot(), view, pid,
                                  defaults=self.joins.options_for(channel.tenant),
                                  now=time.time()),
            "screens": screens,
            "participants": participants,
            "recovered": True,
            "me": render_participant(membership.participant.to_record(), view, pid),
        }
        if membership.diffs:
            body["count"] = present
        return body
