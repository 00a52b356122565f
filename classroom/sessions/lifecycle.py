"""The end of a session, and the commands about users that every node must carry out.

Ending publishes ``session.ended`` (every node then closes its members of the
session), sets the stream's and the records' retention from the tenant's
settings and runs the session-ended hook once (the trainers' summary mail).
The control feed (:mod:`~classroom.sessions.control_feed`) carries ``disconnect``
and ``erase`` to every node, stored before the caller is answered.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from auth.tenants import TenantRegistry
from classroom.backends.broker import Broker, StreamPosition
from classroom.backends.data.records import DAY, Records
from classroom.domain.channel import Channel
from classroom.domain.participants import Participant
from classroom.sessions.backend_calls import BackendCalls
from classroom.sessions.control_feed import ControlFeed
from classroom.sessions.messages import event_message
from classroom.sessions.presence import announce

log = logging.getLogger("classroom.sessions.lifecycle")

DEFAULT_PROGRESS_RETENTION_DAYS = 365.0
DEFAULT_HISTORY_RETENTION_DAYS = 30.0
"""Retention for a session whose tenant is no longer configured."""

SessionEndedHook = Callable[[str, str], Awaitable[None]]
"""Runs once per ended session, with its tenant id and session id."""


def each_of(*hooks: SessionEndedHook) -> SessionEndedHook:
    """One hook running several in turn: a failing one does not stop those after it."""

    async def run(tenant: str, session: str) -> None:
        for hook in hooks:
            try:
                await hook(tenant, session)
            except Exception:  # the next hook (the summary mail, a webhook) still runs
                log.exception("session-ended hook failed", extra={"session": session})

    return run


@dataclass(kw_only=True, eq=False)
class Lifecycle:
    """Ends sessions and sends user commands to every node."""

    tenants: TenantRegistry
    broker: Broker
    records: Records
    call: BackendCalls
    control_feed: ControlFeed
    control_timeout: float = 5.0
    """How long :meth:`control` waits for this node to have applied the command."""
    on_session_ended: SessionEndedHook | None = None
    """Set by the app: the trainers' summary mail and the ``session.ended`` webhook."""

    async def end_session(self, channel: Channel, by: dict[str, Any]) -> StreamPosition:
        """Publish ``session.ended``; every node then closes its members of the session."""
        record = {"kind": "session.ended", "by": by, "at": time.time()}
        result = await self.call(self.broker.publish(channel.name, event_message(record)))
        tenant = self.tenants.get(channel.tenant)
        progress_days = (tenant.progress_retention_days if tenant is not None
                         else DEFAULT_PROGRESS_RETENTION_DAYS)
        history_days = (tenant.history_retention_days if tenant is not None
                        else DEFAULT_HISTORY_RETENTION_DAYS)
        await self.call(self.broker.retain(channel.name, history_days * DAY))
        first = await self.call(
            self.records.mark_ended(channel.tenant, channel.session, progress_days * DAY)
        )
        if first and self.on_session_ended is not None:
            try:
                await self.on_session_ended(channel.tenant, channel.session)
            except Exception:  # the session has ended; a failed summary must not undo that
                log.exception("session-ended hook failed", extra={"session": channel.name})
        return result.position

    async def announce_leave(self, channel: Channel, record: dict[str, Any]) -> None:
        """Tell the session a user left (erasure removed their presence)."""
        await announce(self.broker, channel.name, "presence.leave",
                       Participant.from_record(record))

    async def control(self, message: dict[str, Any]) -> None:
        """Tell every node to act on a user's connections (``disconnect``, ``erase``).

        Returns once the command is stored on the control feed, so every node
        applies it, if not at once then when its broker connection is back; and
        (bounded by ``control_timeout``) once this node applied it.
        """
        await self.call(self.control_feed.send(message, self.control_timeout))
