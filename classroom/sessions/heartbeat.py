"""Presence heartbeats: keep this node's entries alive, and sweep out dead nodes' ones.

A node that is killed stops touching its connections' presence entries; they
expire after ``presence_ttl``. Every node sweeps the sessions it serves, and
the store hands each expired user to exactly one sweeper, so every member sees
one ``presence.leave`` per user however many nodes are left.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from classroom.domain.channel import Channel
from classroom.domain.participants import Participant
from classroom.sessions.attendance import Attendance
from classroom.sessions.hub import Hub
from classroom.sessions.messages import unpack_internal
from presence.store import PresenceStore

log = logging.getLogger("classroom.sessions.heartbeat")

Announce = Callable[[str, str, Participant], Awaitable[None]]


class PresenceKeeper:
    """Runs the heartbeat loop of one node."""

    def __init__(
        self, hub: Hub, presence: PresenceStore, announce: Announce, interval: float,
        attendance: Attendance | None = None,
    ) -> None:
        self._hub = hub
        self._attendance = attendance
        self._presence = presence
        self._announce = announce
        self._interval = interval
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Begin beating in the background."""
        if self._task is None:
            self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """Stop beating (this node's entries then expire unless removed first)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            for channel in self._hub.channels():
                try:
                    await self.beat(channel)
                except Exception:  # a store outage must not end the loop
                    log.warning("presence heartbeat failed", extra={"session": channel},
                                exc_info=True)

    async def beat(self, channel: str) -> None:
        """Touch this node's connections in ``channel``, then announce expired users."""
        await self._presence.touch(channel, self._hub.client_ids(channel))
        session = Channel.parse(channel)
        if self._attendance is not None:
            subs = {member.participant.sub for member in self._hub.members(channel)}
            await self._attendance.seen(session, sorted(subs))
        for entry in await self._presence.sweep(channel):
            participant = Participant.from_record(unpack_internal(entry.info))
            if self._attendance is not None:
                await self._attendance.expired(session, entry.user)
            await self._announce(channel, "presence.leave", participant)
