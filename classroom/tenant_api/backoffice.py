"""What the tenant's back end can do to sessions, behind the server API.

Everything here is scoped to one tenant (the one whose API key was presented):
rosters, server-published events, presence and cohort progress with full data,
ending sessions, closing a user's connections, and the tenant's dead letters (mail
and webhook deliveries given up on) with their retry. The rights of access and
erasure are in :mod:`classroom.tenant_api.privacy_rights`.
"""

from __future__ import annotations

from typing import Any

from auth.tenants import Tenant
from classroom.backends.broker import StreamPosition
from classroom.domain.channel import Channel
from classroom.domain.lifecycle import is_ended, refuse_if_ended
from classroom.domain.participants import Participant
from classroom.integrations.mail import MailSender, Message, invitations
from classroom.integrations.webhooks import Delivery, WebhookSender
from classroom.sessions.messages import unpack_internal
from classroom.sessions.node import Node

SERVER = {"pid": "server", "role": "server", "display_name": "Server"}
"""How an event the back end publishes is shown: by the server, not by a person."""


class NotFound(Exception):  # noqa: N818 - reads as the HTTP answer it becomes
    """The tenant has no such session or user: answered 404, with no data."""


async def known_session(node: Node, tenant: Tenant, session: str) -> dict[str, Any]:
    """The session's stored status; ``NotFound`` when the tenant never set it up."""
    status = await node.records.status(tenant.id, session)
    if status is None:
        raise NotFound("no such session")
    return status


async def known_user(node: Node, tenant: Tenant, sub: str) -> None:
    """``NotFound`` unless the server holds data on the user in this tenant."""
    records = node.records
    if await records.profile(tenant.id, sub) is None and not (
        await records.user_sessions(tenant.id, sub)
    ):
        raise NotFound("no data held on that user")


class Backoffice:
    """Tenant-scoped session operations for the server API."""

    def __init__(self, node: Node, mail: MailSender | None = None,
                 webhooks: WebhookSender | None = None) -> None:
        self._node = node
        self._records = node.records
        self._mail = mail
        self._webhooks = webhooks

    async def set_roster(
        self, tenant: Tenant, session: str, roster: dict[str, Any]
    ) -> dict[str, Any]:
        """Store a session's roster; it becomes (or stays) scheduled."""
        refuse_if_ended(await self._records.status(tenant.id, session))
        await self._records.set_roster(tenant.id, session, roster)
        if tenant.invitations and self._mail is not None:
            await self._mail.submit(invitations(tenant.id, session, roster))
        status = await self._records.status(tenant.id, session) or {"status": "scheduled"}
        return {"session": session, "status": status["status"], "roster": roster}

    async def session(self, tenant: Tenant, session: str) -> dict[str, Any]:
        """A session's status and roster."""
        status = await known_session(self._node, tenant, session)
        roster = await self._records.roster(tenant.id, session)
        return {"session": session, "status": status["status"], "roster": roster}

    async def publish(self, tenant: Tenant, session: str, event: dict[str, Any],
                      client_msg_id: str | None) -> dict[str, Any]:
        """Publish an event as the server (the trainer's permissions, shown as ``server``)."""
        refuse_if_ended(await known_session(self._node, tenant, session))
        channel = Channel(tenant.id, session)
        await self._node.streams.sync(channel.name)  # validate against the stream as it is now
        if event.get("kind") == "session.end":
            position: StreamPosition | None = await self._node.lifecycle.end_session(
                channel, SERVER
            )
        else:
            actor = Participant(pid="server", role="trainer", sub="")
            position = await self._node.publisher.publish_record(
                channel, actor, event, client_msg_id, shown_as=SERVER
            )
        return {"session": session, "epoch": position.epoch if position else None,
                "offset": position.offset if position else None}

    async def end(self, tenant: Tenant, session: str) -> dict[str, Any]:
        """End a session: members get ``session.ended`` and are closed normally."""
        if not is_ended(await known_session(self._node, tenant, session)):
            await self._node.lifecycle.end_session(Channel(tenant.id, session), SERVER)
        return {"session": session, "status": "ended"}

    async def presence(self, tenant: Tenant, session: str) -> list[dict[str, Any]]:
        """Who is online, with the full data the back end owns."""
        await known_session(self._node, tenant, session)
        entries = await self._node.presence.participants(Channel(tenant.id, session).name)
        return [unpack_internal(entry.info) for entry in entries]

    async def cohort(self, tenant: Tenant, session: str) -> dict[str, Any]:
        """The cohort progress table: every rostered student, online or not."""
        await known_session(self._node, tenant, session)
        return await self._node.cohorts.table(tenant, session)

    async def attendance(self, tenant: Tenant, session: str) -> dict[str, Any]:
        """The session's attendance register: every participant's spans and minutes."""
        await known_session(self._node, tenant, session)
        return await self._node.attendance.register(tenant.id, session)

    async def disconnect(self, tenant: Tenant, sub: str) -> None:
        """Close the user's connections on every node (4403, no reconnect)."""
        await known_user(self._node, tenant, sub)
        await self._node.lifecycle.control({"t": "disconnect", "tenant": tenant.id, "sub": sub,
                                            "reason": "disconnected by the server"})

    async def dead_letters(self, tenant: Tenant, limit: int) -> dict[str, Any]:
        """The tenant's newest ``limit`` dead letters, oldest first, and how many it has."""
        if self._mail is None:
            return {"dead_letters": [], "total": 0}
        outbox = self._mail.outbox
        found = await outbox.dead_letters(tenant.id, limit)
        return {"dead_letters": [_dead_letter(m) for m in found],
                "total": await outbox.dead_count(tenant.id)}

    async def retry_mail(self, tenant: Tenant, message_id: str) -> dict[str, Any]:
        """Put one of the tenant's dead letters back in the outbox, due now."""
        revived = None
        if self._mail is not None:
            revived = await self._mail.outbox.revive(tenant.id, message_id)
        if revived is None or self._mail is None:
            raise NotFound("no such dead letter")
        self._mail.wake()
        return {"id": revived.id, "status": "queued"}

    async def webhook_dead_letters(self, tenant: Tenant, limit: int) -> dict[str, Any]:
        """The tenant's newest ``limit`` webhook deliveries given up on, and how many."""
        if self._webhooks is None:
            return {"dead_letters": [], "total": 0}
        outbox = self._webhooks.outbox
        found = await outbox.dead_letters(tenant.id, limit)
        return {"dead_letters": [_dead_webhook(d) for d in found],
                "total": await outbox.dead_count(tenant.id)}

    async def retry_webhook(self, tenant: Tenant, delivery_id: str) -> dict[str, Any]:
        """Put one of the tenant's dead webhook deliveries back in the outbox, due now.

        It keeps its ``webhook-id``: a back end that did get it after all drops the double.
        """
        revived = None
        if self._webhooks is not None:
            revived = await self._webhooks.outbox.revive(tenant.id, delivery_id)
        if revived is None or self._webhooks is None:
            raise NotFound("no such dead letter")
        self._webhooks.wake()
        return {"id": revived.id, "webhook_id": revived.webhook_id, "status": "queued"}


def _dead_webhook(delivery: Delivery) -> dict[str, Any]:
    """What the back end sees of a dead delivery: which event and why, not the body."""
    return {"id": delivery.id, "webhook_id": delivery.webhook_id, "type": delivery.type,
            "session": delivery.session, "attempts": delivery.attempts,
            "last_error": delivery.last_error, "created_at": delivery.created_at,
            "died_at": delivery.died_at}


def _dead_letter(message: Message) -> dict[str, Any]:
    """What the back end sees of a dead letter: who and why, never the body or error text."""
    return {"id": message.id, "kind": message.kind, "session": message.session,
            "recipient": message.recipient, "to": message.to, "attempts": message.attempts,
            "last_error": message.last_error, "created_at": message.created_at,
            "died_at": message.died_at}
