"""The events a tenant's back end is told about, and the body each one posts.

Every body is a Standard Webhooks envelope, ``{"type", "timestamp", "data"}``. The
back end is the controller of its users' data, so ``data`` may name them (subs,
names, progress) just as the server API's answers do; nothing else receives it.

An event that several nodes may see (a session going live or ending) gets a
deterministic dedupe key and id from what it is about, so the outbox takes it once
however many nodes enqueue it, and the back end sees one ``webhook-id``.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, Final

import orjson

from classroom.integrations.webhooks.delivery import Delivery

SESSION_STARTED: Final = "session.started"
SESSION_ENDED: Final = "session.ended"
USER_ERASED: Final = "user.erased"
ATTENDANCE_UPDATED: Final = "attendance.updated"
EVENT_TYPES: Final = (SESSION_STARTED, SESSION_ENDED, USER_ERASED, ATTENDANCE_UPDATED)


def once_per(event_type: str, tenant: str, session: str) -> dict[str, str]:
    """The dedupe key and item id of an event that happens once per session."""
    key = f"{event_type}:{tenant}:{session}"
    return {"dedupe": key, "item_id": hashlib.sha256(key.encode()).hexdigest()[:32]}


def delivery(tenant: str, event_type: str, data: dict[str, Any], *, at: float,
             session: str | None = None, once: bool = False) -> Delivery:
    """A queued delivery of one event; ``once``: one per session, whoever enqueues it."""
    body = orjson.dumps({"type": event_type, "timestamp": _iso(at), "data": data}).decode()
    keys = once_per(event_type, tenant, session) if once and session is not None else {}
    return Delivery.new(now=at, tenant=tenant, type=event_type, body=body, session=session,
                        about=sorted(subs_in(data)), **keys)


def session_started(session: str, *, at: float) -> dict[str, Any]:
    """``session.started``: the first trainer joined a scheduled session."""
    return {"session": session, "started_at": _iso(at)}


def session_ended(session: str, *, at: float, progress: dict[str, Any],
                  attendance: dict[str, Any] | None) -> dict[str, Any]:
    """``session.ended``: the progress table as the API's progress route gives it, and the
    attendance register (None until attendance exists, see :mod:`.attendance`)."""
    return {"session": session, "ended_at": _iso(at), "progress": progress,
            "attendance": attendance}


def user_erased(sub: str, *, at: float, sessions: int, events: int) -> dict[str, Any]:
    """``user.erased``: what the erasure removed, so the back end can erase its side too."""
    return {"sub": sub, "erased_at": _iso(at), "sessions": sessions, "events": events}


def attendance_updated(session: str, *, at: float, attendance: dict[str, Any],
                       ) -> dict[str, Any]:
    """``attendance.updated``: ready for the attendance work to send its register."""
    return {"session": session, "updated_at": _iso(at), "attendance": attendance}


def subs_in(value: Any) -> set[str]:
    """Every user a body names (any ``sub``), so erasure finds the deliveries about them."""
    found: set[str] = set()
    if isinstance(value, dict):
        sub = value.get("sub")
        if isinstance(sub, str) and sub:
            found.add(sub)
        for inner in value.values():
            found |= subs_in(inner)
    elif isinstance(value, list):
        for inner in value:
            found |= subs_in(inner)
    return found


def without(value: Any, sub: str) -> Any:
    """``value`` with every entry about ``sub`` left out (list items) or emptied (fields)."""
    if isinstance(value, list):
        return [without(v, sub) for v in value if not _names(v, sub)]
    if isinstance(value, dict):
        return {k: (None if _names(v, sub) else without(v, sub)) for k, v in value.items()}
    return value


def minimise(queued: Delivery, sub: str) -> Delivery | None:
    """Erasure of ``sub`` from a delivery not yet made (docs/privacy.md, "Webhooks").

    ``user.erased`` about them is kept whole: it is how the back end learns of the
    erasure. Any other event keeps its place in the queue but loses the user's rows.
    """
    envelope = orjson.loads(queued.body)
    data = envelope.get("data")
    if queued.type == USER_ERASED and isinstance(data, dict) and data.get("sub") == sub:
        return queued
    envelope["data"] = without(data, sub)
    return replace(queued, body=orjson.dumps(envelope).decode())


def _names(value: Any, sub: str) -> bool:
    """Whether ``value`` is an entry about ``sub``: it, or its participant, has that sub."""
    if not isinstance(value, dict):
        return False
    person = value.get("participant")
    return value.get("sub") == sub or (isinstance(person, dict) and person.get("sub") == sub)


def _iso(at: float) -> str:
    """RFC 3339 in UTC, as Standard Webhooks' ``timestamp`` field."""
    return datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z")
