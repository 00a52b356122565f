"""The rights of access (export) and erasure, for the tenant's back end.

Export gathers every datum held on a user in the tenant: profile, rosters,
progress, presence, the events they authored or that are about them (exactly
those erasure tombstones; other people in them keep only pid and role), and
mail and webhooks. Erasure closes their
connections on every node, removes their presence (announcing the leave),
replaces the stored events they authored or are about with tombstones, and
forgets their records and mail, takes them out of webhooks not yet delivered and
tells the back end (``user.erased``).
"""

from __future__ import annotations

import time
from typing import Any

from auth.tenants import Tenant
from classroom.backends.broker import Publication
from classroom.backends.data.records import DAY
from classroom.domain.channel import Channel
from classroom.domain.erasure import mentions, tombstone_record
from classroom.integrations.mail import MailSender
from classroom.integrations.webhooks import Webhooks
from classroom.sessions.messages import event_message, unpack_internal
from classroom.sessions.node import Node
from classroom.tenant_api.backoffice import known_user

PAGE_SIZE = 500
"""Publications read per call when walking a stream (``CLASSROOM_ERASE_CHUNK``)."""


class PrivacyRights:
    """Export and erasure of one tenant's users."""

    def __init__(self, node: Node, mail: MailSender | None = None,
                 webhooks: Webhooks | None = None, *, page_size: int = PAGE_SIZE) -> None:
        if page_size < 1:
            raise ValueError("page_size must be >= 1")
        self._node = node
        self._records = node.records
        self._mail = mail
        self._webhooks = webhooks
        self._page_size = page_size

    async def export(self, tenant: Tenant, sub: str) -> dict[str, Any]:
        """Every datum held on the user in this tenant (right of access and portability)."""
        await known_user(self._node, tenant, sub)
        profile = await self._records.profile(tenant.id, sub)
        sessions = sorted(await self._records.user_sessions(tenant.id, sub))
        rosters, progress, presence, events, attendance = [], [], [], [], []
        for session in sessions:
            channel = Channel(tenant.id, session)
            roster = await self._records.roster(tenant.id, session) or {}
            for student in roster.get("students", []):
                if student.get("sub") == sub:
                    rosters.append({"session": session, "role": "student", **student})
            if sub in roster.get("trainers", []):
                rosters.append({"session": session, "role": "trainer", "sub": sub})
            row = (await self._records.progress(tenant.id, session)).get(sub)
            if row is not None:
                progress.append({"session": session, **row})
            line = await self._node.attendance.line_of(tenant.id, session, sub)
            if line["intervals"]:
                attendance.append({"session": session, **line})
            for entry in await self._node.presence.participants(channel.name):
                if entry.user == sub:
                    presence.append({"session": session, **unpack_internal(entry.info)})
            for pub in await self._stream(channel):
                record = unpack_internal(pub.data).get("record") or {}
                if mentions(record, sub):  # exactly what erasure would tombstone
                    events.append({"session": session, "offset": pub.offset,
                                   **_as_theirs(record, sub)})
        return {"sub": sub, "profile": profile, "sessions": sessions, "rosters": rosters,
                "progress": progress, "presence": presence, "events": events,
                "attendance": attendance,
                "mail": await self._mail.outbox.about(tenant.id, sub) if self._mail else [],
                "webhooks": (await self._webhooks.sender.outbox.about(tenant.id, sub)
                             if self._webhooks else [])}

    async def erase(self, tenant: Tenant, sub: str) -> dict[str, Any]:
        """Erase the user: progress, presence, profile gone; authored events tombstoned."""
        await known_user(self._node, tenant, sub)
        # First, so that no token issued until now reconnects the user mid-erasure
        # (and re-creates the profile), on any node, whether or not it hears the control.
        await self._records.revoke_tokens(tenant.id, sub, time.time())
        sessions = await self._records.user_sessions(tenant.id, sub)
        await self._node.lifecycle.control({"t": "erase", "tenant": tenant.id, "sub": sub,
                                            "reason": "your data was erased"})
        erased_events = 0
        for session in sessions:
            channel = Channel(tenant.id, session)
            gone = await self._node.presence.remove_user(channel.name, sub)
            if gone is not None:
                await self._node.lifecycle.announce_leave(channel, unpack_internal(gone.info))
            erased_events += await self._tombstone(channel, sub)
            await self._keep_attendance(tenant, session, sub)
        await self._records.forget_user(tenant.id, sub)
        if self._mail is not None:
            await self._mail.outbox.forget(tenant.id, sub)
        erased = {"sub": sub, "sessions": len(sessions), "events": erased_events}
        if self._webhooks is not None:  # minimises queued webhooks, then sends user.erased
            await self._webhooks.user_erased(tenant.id, sub, erased)
        return erased

    async def _keep_attendance(self, tenant: Tenant, session: str, sub: str) -> None:
        """Under the tenant's attendance retention, keep a line no one can be read from."""
        days = tenant.attendance_retention_days
        if days is None:
            return
        line = await self._node.attendance.line_of(tenant.id, session, sub)
        if line["intervals"]:
            kept = {key: line[key] for key in ("minutes", "percent", "met")}
            await self._records.attendance.keep_pseudonymous(
                tenant.id, session, self._records.subject(tenant.id, sub), kept, days * DAY
            )

    async def _tombstone(self, channel: Channel, sub: str) -> int:
        """Tombstone the user's events, reading and rewriting the stream in bounded steps."""
        publications = await self._stream(channel)
        replacements: dict[int, bytes] = {}
        now = time.time()
        for pub in publications:
            record = unpack_internal(pub.data).get("record") or {}
            if mentions(record, sub):
                replacements[pub.offset] = event_message(tombstone_record(record, now))
        if replacements:
            await self._node.broker.rewrite(channel.name, replacements,
                                            epoch=publications[0].epoch)
        await self._node.streams.scrub_snapshot(channel.name, sub)  # the durable state, too
        return len(replacements)

    async def _stream(self, channel: Channel) -> list[Publication]:
        """The channel's retained publications of one epoch, read a page at a time.

        One page per Redis call, so a long stream never holds Redis up; a stream
        lost and replaced meanwhile (a new epoch) is read again from its start.
        """
        broker, limit = self._node.broker, self._page_size
        publications: list[Publication] = []
        while True:
            after = publications[-1].offset if publications else 0
            page = await broker.read_page(channel.name, after=after, limit=limit)
            if page and publications and page[0].epoch != publications[0].epoch:
                publications = []  # the stream was replaced: start over
                continue
            publications += page
            if len(page) < limit:
                return publications


def _as_theirs(record: dict[str, Any], sub: str) -> dict[str, Any]:
    """A stored event as the user's export shows it: others in it keep only pid and role."""
    shown = dict(record)
    for key in ("by", "participant"):
        person = shown.get(key)
        if isinstance(person, dict) and person.get("sub") != sub:
            shown[key] = {name: person[name] for name in ("pid", "role") if name in person}
    return shown
