"""Frames the server sends that carry domain data: events, history entries, errors.

Each builder renders through ``classroom.domain.views`` for one kind of
recipient, so the privacy rules apply to every frame the same way, live,
replayed or read from history.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from classroom.domain.erasure import ERASED_BY
from classroom.domain.views import View, render_event, render_progress


def error_frame(code: str, message: str, command_id: int | None) -> dict[str, object]:
    """An ``error`` frame, with the command's ``id`` when it had one."""
    frame: dict[str, object] = {"type": "error", "code": code, "message": message}
    if command_id is not None:
        frame["id"] = command_id
    return frame


def event_frame(
    session: str,
    offset: int,
    epoch: str,
    record: Mapping[str, Any],
    view: View,
    self_pid: str | None,
) -> dict[str, Any] | None:
    """The ``event`` frame one kind of recipient gets for a publication, or None.

    ``offset`` 0 is an ephemeral event: the frame then carries no position.
    """
    if record.get("erased"):
        event: dict[str, Any] | None = tombstone(record)
    elif record.get("kind") == "progress":
        return None  # trainers get coalesced ``progress`` pushes instead
    else:
        event = render_event(record, view, self_pid)
    if event is None:
        return None
    frame: dict[str, Any] = {"type": "event", "session": session}
    if offset:
        frame["epoch"] = epoch
        frame["offset"] = offset
    frame["event"] = event
    return frame


def history_event(record: Mapping[str, Any], view: View, self_pid: str) -> dict[str, Any] | None:
    """An event as the ``history`` reply shows it; progress appears to trainers only."""
    if record.get("kind") == "progress" and view != "trainer":
        return None
    if record.get("erased"):
        return tombstone(record)
    if record.get("kind") == "progress":
        body = render_progress(record, view, self_pid)
        if body is None:
            return None
        return {"kind": "progress", "by": body["participant"], **body["progress"]}
    return render_event(record, view, self_pid)


def tombstone(record: Mapping[str, Any]) -> dict[str, Any]:
    """What everyone sees of an erased user's event: its kind and time, nothing else."""
    return {"kind": record.get("kind"), "erased": True, "by": dict(ERASED_BY),
            "at": record.get("at")}
