"""The cohort table of a session: every rostered student's progress, presence and hand.

Read by trainers over the WebSocket (``cohort``), by the back end through the
server API, and by the trainers' summary mail; each renders it for its reader.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from auth.tenants import Tenant
from classroom.backends.data.records import Records
from classroom.domain.channel import Channel
from classroom.domain.cohort import cohort_rows, roster_participant
from classroom.domain.screens import screen_ids, screen_objects
from classroom.sessions.streams import SessionStreams
from presence.store import PresenceStore


@dataclass(kw_only=True, eq=False)
class CohortTables:
    """Builds cohort tables from the records, presence and the live state."""

    records: Records
    presence: PresenceStore
    streams: SessionStreams
    secret: bytes
    idle_after: float

    async def table(self, tenant: Tenant, session: str) -> dict[str, Any]:
        """The table with full personal data; callers render it for their reader."""
        channel = Channel(tenant.id, session)
        roster = await self.records.roster(tenant.id, session) or {}
        progress = await self.records.progress(tenant.id, session)
        online = {e.user for e in await self.presence.participants(channel.name)}
        await self.streams.sync(channel.name)
        state = self.streams.runtime(channel.name).state
        hands = {h.get("sub", "") for h in state.hands}

        def participant(student: dict[str, Any]) -> dict[str, Any]:
            return roster_participant(student, secret=self.secret, tenant=tenant.id,
                                      session=session, policy=tenant.display_name)

        rows = cohort_rows(
            roster_students=list(roster.get("students", [])), progress=progress,
            online=online, hands=hands, trainer_screen=state.screen,
            screens=screen_ids(roster.get("screens")), idle_after=self.idle_after,
            make_participant=participant,
        )
        return {"session": session, "trainer_screen": state.screen,
                "screens": screen_objects(roster.get("screens")), "students": rows}
