"""Where ``session.ended`` gets the attendance register: nothing yet.

Attendance is not recorded yet; the work that adds it fills in this one function
(and sends ``attendance.updated`` with :func:`..events.attendance_updated` through
:meth:`..emitter.Webhooks.attendance_updated`). Until then ``session.ended`` carries
``"attendance": null``, which the back end should read as "not recorded".
"""

from __future__ import annotations

from typing import Any


async def attendance_register(tenant: str, session: str) -> dict[str, Any] | None:
    """The session's attendance register for the back end; None: not recorded."""
    return None
