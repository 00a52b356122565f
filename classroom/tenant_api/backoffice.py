"""What the tenant's back end can do to sessions and users, behind the server API.

Everything here is scoped to one tenant (the one whose API key was presented):
rosters, server-published events, presence and cohort progress with full data,
ending sessions, and the rights of access (export) and erasure.
"""

from __future__ import annotations

import time
from typing import Any

from auth.tenants import Tenant
from classroom.backends.broker import StreamPosition
from classroom.domain.cohort import cohort_rows, roster_participant
from classroom.domain.participants import Participant
from classroom.integrations.mail import MailSender, invitations, summaries
from classroom.protocol.codec import pack_internal, unpack_internal
from classroom.protocol.errors import CommandError
from classroom.sessions.node import Node, channel_of

SERVER = {"pid": "server", "role": "server", "display_name": "Server"}
TOMBSTONE_BY = {"pid": "erased", "role": "erased"}


class NotFound(Exception):  # noqa: N818 - reads as the HTTP answer it becomes
    """The tenant has no such session or user: answered 404, with no data."""


class Backoffice:
    """Tenant-scoped operations for the server API."""

    def __init__(
        self, node: Node, secret: bytes, idle_after: float, mail: MailSender | None = None
    ) -> None:
        self._node = node
        self._records = node.records
        self._secret = secret
        self._idle_after = idle_after
        self._mail = mail

    async def _known_session(self, tenant: Tenant, session: str) -> dict[str, Any]:
        status = await self._records.status(tenant.id, session)
        if status is None:
            raise NotFound("no such session")
        return status

    async def _known_user(self, tenant: Tenant, sub: str) -> None:
        if await self._records.profile(tenant.id, sub) is None and not (
            await self._records.user_sessions(tenant.id, sub)
        ):
            raise NotFound("no data held on that user")

    async def set_roster(
        self, tenant: Tenant, session: str, roster: dict[str, Any]
    ) -> dict[str, Any]:
        """Store a session's roster; it becomes (or stays) scheduled."""
        status = await self._records.status(tenant.id, session)
        if status is not None and status.get("status") == "ended":
            raise CommandError("forbidden", "this session has ended")
        await self._records.set_roster(tenant.id, session, roster)
        if tenant.invitations and self._mail is not None:
            await self._mail.submit(invitations(tenant.id, session, roster))
        status = await self._records.status(tenant.id, session) or {"status": "scheduled"}
        return {"session": session, "status": status["status"], "roster": roster}

    async def session(self, tenant: Tenant, session: str) -> dict[str, Any]:
        """A session's status and roster."""
        status = await self._known_session(tenant, session)
        roster = await self._records.roster(tenant.id, session)
        return {"session": session, "status": status["status"], "roster": roster}

    async def publish(self, tenant: Tenant, session: str, event: dict[str, Any],
                      client_msg_id: str | None) -> dict[str, Any]:
        """Publish an event as the server (the trainer's permissions, shown as ``server``)."""
        status = await self._known_session(tenant, session)
        if status["status"] == "ended":
            raise CommandError("forbidden", "this session has ended")
        channel = channel_of(tenant.id, session)
        await self._node.streams.sync(channel)  # validate against the stream as it is now
        if event.get("kind") == "session.end":
            position: StreamPosition | None = await self._node.end_session(channel, SERVER)
        else:
            actor = Participant(pid="server", role="trainer", sub="")
            position = await self._node.publish_record(
                channel, actor, event, client_msg_id, shown_as=SERVER
            )
        return {"session": session, "epoch": position.epoch if position else None,
                "offset": position.offset if position else None}

    async def end(self, tenant: Tenant, session: str) -> dict[str, Any]:
        """End a session: members get ``session.ended`` and are closed normally."""
        status = await self._known_session(tenant, session)
        if status["status"] != "ended":
            await self._node.end_session(channel_of(tenant.id, session), SERVER)
        return {"session": session, "status": "ended"}

    async def presence(self, tenant: Tenant, session: str) -> list[dict[str, Any]]:
        """Who is online, with the full data the back end owns."""
        await self._known_session(tenant, session)
        entries = await self._node.presence.participants(channel_of(tenant.id, session))
        return [unpack_internal(entry.info) for entry in entries]

    async def cohort(
        self, tenant: Tenant, session: str, *, must_exist: bool = True
    ) -> dict[str, Any]:
        """The cohort progress table: every rostered student, online or not."""
        if must_exist:
            await self._known_session(tenant, session)
        channel = channel_of(tenant.id, session)
        roster = await self._records.roster(tenant.id, session) or {}
        progress = await self._records.progress(tenant.id, session)
        online = {e.user for e in await self._node.presence.participants(channel)}
        await self._node.streams.sync(channel)
        state = self._node.streams.runtime(channel).state
        hands = {h.get("sub", "") for h in state.hands}

        def participant(student: dict[str, Any]) -> dict[str, Any]:
            return roster_participant(student, secret=self._secret, tenant=tenant.id,
                                      session=session, policy=tenant.display_name)

        rows = cohort_rows(
            roster_students=list(roster.get("students", [])), progress=progress,
            online=online, hands=hands, trainer_screen=state.screen,
            screens=roster.get("screens"), idle_after=self._idle_after,
            make_participant=participant,
        )
        return {"session": session, "trainer_screen": state.screen, "students": rows}

    async def send_summaries(self, tenant_id: str, session: str) -> None:
        """Mail each trainer of an ended session the attendance and progress of the cohort."""
        tenant = self._node.tenants.get(tenant_id)
        if tenant is None or self._mail is None:
            return
        roster = await self._records.roster(tenant_id, session) or {}
        addresses = {}
        for sub in roster.get("trainers", []):
            profile = await self._records.profile(tenant_id, sub)
            if profile is not None and profile.get("email"):
                addresses[sub] = profile["email"]
        if not addresses:
            return
        table = await self.cohort(tenant, session, must_exist=False)
        await self._mail.submit(summaries(tenant_id, session, roster, addresses,
                                          table["students"]))

    async def disconnect(self, tenant: Tenant, sub: str) -> None:
        """Close the user's connections on every node (4403, no reconnect)."""
        await self._known_user(tenant, sub)
        await self._node.control({"t": "disconnect", "tenant": tenant.id, "sub": sub,
                                  "reason": "disconnected by the server"})

    async def export(self, tenant: Tenant, sub: str) -> dict[str, Any]:
        """Every datum held on the user in this tenant (right of access and portability)."""
        await self._known_user(tenant, sub)
        profile = await self._records.profile(tenant.id, sub)
        sessions = sorted(await self._records.user_sessions(tenant.id, sub))
        rosters, progress, presence, events = [], [], [], []
        for session in sessions:
            channel = channel_of(tenant.id, session)
            roster = await self._records.roster(tenant.id, session) or {}
            for student in roster.get("students", []):
                if student.get("sub") == sub:
                    rosters.append({"session": session, "role": "student", **student})
            if sub in roster.get("trainers", []):
                rosters.append({"session": session, "role": "trainer", "sub": sub})
            row = (await self._records.progress(tenant.id, session)).get(sub)
            if row is not None:
                progress.append({"session": session, **row})
            for entry in await self._node.presence.participants(channel):
                if entry.user == sub:
                    presence.append({"session": session, **unpack_internal(entry.info)})
            history = await self._node.broker.history(channel)
            for pub in history.publications:
                record = unpack_internal(pub.data).get("record") or {}
                if record.get("by", {}).get("sub") == sub:
                    events.append({"session": session, "offset": pub.offset, **record})
        return {"sub": sub, "profile": profile, "sessions": sessions, "rosters": rosters,
                "progress": progress, "presence": presence, "events": events,
                "mail": await self._mail.outbox.about(tenant.id, sub) if self._mail else []}

    async def erase(self, tenant: Tenant, sub: str) -> dict[str, Any]:
        """Erase the user: progress, presence, profile gone; authored events tombstoned."""
        await self._known_user(tenant, sub)
        sessions = await self._records.user_sessions(tenant.id, sub)
        await self._node.control({"t": "erase", "tenant": tenant.id, "sub": sub,
                                  "reason": "your data was erased"})
        erased_events = 0
        for session in sessions:
            channel = channel_of(tenant.id, session)
            gone = await self._node.presence.remove_user(channel, sub)
            if gone is not None:
                await self._node.announce_leave(channel, unpack_internal(gone.info))
            erased_events += await self._tombstone(channel, sub)
        await self._records.forget_user(tenant.id, sub)
        if self._mail is not None:
            await self._mail.outbox.forget(tenant.id, sub)
        return {"sub": sub, "sessions": len(sessions), "events": erased_events}

    async def _tombstone(self, channel: str, sub: str) -> int:
        history = await self._node.broker.history(channel)
        replacements: dict[int, bytes] = {}
        for pub in history.publications:
            message = unpack_internal(pub.data)
            record = message.get("record") or {}
            if _mentions(record, sub):
                tomb = {"kind": record.get("kind", "unknown"), "erased": True,
                        "by": TOMBSTONE_BY, "at": record.get("at", time.time())}
                replacements[pub.offset] = pack_internal({"t": "event", "record": tomb})
        if replacements:
            await self._node.broker.rewrite(channel, replacements)
        return len(replacements)


def _mentions(record: dict[str, Any], sub: str) -> bool:
    """Whether a stored record was authored by, or is about, the user."""
    if record.get("by", {}).get("sub") == sub:
        return True
    return bool(record.get("participant", {}).get("sub") == sub)
