"""Turns what happens in the server into webhook deliveries for the tenant's back end.

The session layer and the server API call these hooks; each builds the event's body
and enqueues it, for tenants with a webhook configured only. Nothing here raises into
the caller: a session goes live, ends or is erased whether or not its webhook could
be queued (a failure is logged by class, and the event is lost as a mail would be).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from auth.tenants import Tenant, TenantRegistry
from classroom.integrations.webhooks import events
from classroom.integrations.webhooks.delivery import Delivery
from classroom.integrations.webhooks.sender import WebhookSender

log = logging.getLogger("classroom.integrations.webhooks")

ProgressTable = Callable[[Tenant, str], Awaitable[dict[str, Any]]]
"""The session's progress table, as the server API's progress route answers it."""
Attendance = Callable[[str, str], Awaitable[dict[str, Any] | None]]


@dataclass(kw_only=True, eq=False)
class Webhooks:
    """The hooks the session layer and the server API call, one per event type."""

    tenants: TenantRegistry
    sender: WebhookSender
    progress: ProgressTable
    attendance: Attendance
    """The session's attendance register, as the server API answers it."""
    clock: Callable[[], float] = field(default=time.time)

    def wanted(self, tenant_id: str) -> bool:
        """Whether the tenant receives webhooks (so a caller can skip building one)."""
        return self._wanted(tenant_id) is not None

    def _wanted(self, tenant_id: str) -> Tenant | None:
        tenant = self.tenants.get(tenant_id)
        return tenant if tenant is not None and tenant.webhook_url else None

    async def session_started(self, tenant_id: str, session: str) -> None:
        """The first trainer joined: ``session.started``, once per session on any node."""
        if self._wanted(tenant_id) is None:
            return
        at = self.clock()
        await self._submit(events.delivery(
            tenant_id, events.SESSION_STARTED, events.session_started(session, at=at), at=at,
            session=session, once=True))

    async def session_ended(self, tenant_id: str, session: str) -> None:
        """The session ended: ``session.ended`` with progress and attendance, once."""
        tenant = self._wanted(tenant_id)
        if tenant is None:
            return
        at = self.clock()
        try:
            data = events.session_ended(
                session, at=at, progress=await self.progress(tenant, session),
                attendance=await self.attendance(tenant_id, session))
        except Exception as exc:  # noqa: BLE001 - the session has ended either way
            log.warning("webhook session.ended not built (%s)", type(exc).__name__)
            return
        await self._submit(events.delivery(tenant_id, events.SESSION_ENDED, data, at=at,
                                           session=session, once=True))

    async def user_erased(self, tenant_id: str, sub: str, erased: dict[str, Any]) -> None:
        """After an erasure: minimise queued deliveries about the user, then ``user.erased``.

        Queued and dead deliveries keep their place but lose the user's rows, so that no
        delivery made after this one brings the erased data back to the back end.
        """
        try:
            await self.sender.outbox.forget(tenant_id, sub, minimise=events.minimise)
        except Exception as exc:  # noqa: BLE001 - the erasure itself is done
            log.warning("webhooks about an erased user not minimised (%s)", type(exc).__name__)
        if self._wanted(tenant_id) is None:
            return
        at = self.clock()
        data = events.user_erased(sub, at=at, sessions=int(erased.get("sessions", 0)),
                                  events=int(erased.get("events", 0)))
        await self._submit(events.delivery(tenant_id, events.USER_ERASED, data, at=at))

    async def attendance_updated(self, tenant_id: str, session: str,
                                 attendance: dict[str, Any]) -> None:
        """``attendance.updated``: the register's lines that changed (a participant left)."""
        if self._wanted(tenant_id) is None:
            return
        at = self.clock()
        data = events.attendance_updated(session, at=at, attendance=attendance)
        await self._submit(events.delivery(tenant_id, events.ATTENDANCE_UPDATED, data, at=at,
                                           session=session))

    async def _submit(self, item: Delivery) -> None:
        try:
            await self.sender.submit([item])
        except Exception as exc:  # noqa: BLE001 - never undo what caused the event
            log.warning("webhook %s not queued (%s)", item.type, type(exc).__name__)
