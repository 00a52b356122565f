"""Privacy views (protocol section 6): what each kind of recipient may see.

Records and snapshots hold full personal data; every byte that leaves the
server about a participant passes through :func:`render_participant`. The
functions here never mutate their input, so one record can be rendered for
many views.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, Literal

from auth.identity import PROFILE_FIELDS, Role
from classroom.domain.options import DEFAULT_OPTIONS, OptionDefaults, effective_options

View = Literal["trainer", "student", "observer"]

PERSONAL_FIELDS: tuple[str, ...] = ("pid", "role", "sub", *PROFILE_FIELDS, "display_name")
_ALL = PERSONAL_FIELDS
_NAMED = ("pid", "role", "display_name")
_BARE = ("pid", "role")

# Fields a view sees of a participant with a given role (anyone else: _BARE).
_VISIBLE: dict[View, dict[str, tuple[str, ...]]] = {
    "trainer": {"student": _ALL, "trainer": _NAMED},
    "student": {"student": _NAMED, "trainer": _NAMED},
    "observer": {},
}


def view_for_role(role: Role) -> View:
    """The recipient category of a role: planners and content managers only observe."""
    if role == "trainer":
        return "trainer"
    if role == "student":
        return "student"
    return "observer"


def render_participant(
    record: Mapping[str, Any], view: View, self_pid: str | None
) -> dict[str, Any]:
    """A participant as ``view`` may see it; the recipient itself sees everything."""
    if self_pid is not None and record.get("pid") == self_pid:
        fields = _ALL
    else:
        fields = _VISIBLE[view].get(str(record.get("role")), _BARE)
    return {key: record[key] for key in fields if record.get(key) is not None}


def counts_only(view: View, present: int, counts_only_above: int | None) -> bool:
    """Whether ``view`` is shown only counts of a room with ``present`` users in it.

    A tenant's ``presence_counts_only_above`` hides a crowd's names from students;
    trainers need them to teach, observers never see names anyway.
    """
    return view == "student" and counts_only_above is not None and present > counts_only_above


def _render_optional(value: Any, view: View, self_pid: str | None) -> Any:
    """Render a participant-valued field, leaving anything malformed out of the output."""
    if isinstance(value, Mapping):
        return render_participant(value, view, self_pid)
    return None


def _withheld(record: Mapping[str, Any], view: View, self_pid: str | None) -> bool:
    """Whether ``view`` gets only a placeholder of a chat message for the trainers.

    Trainers read it, and so does its author (``self_pid`` is set only for the
    recipients an event is about); everyone else gets the placeholder at the same
    offset, so nobody's offsets have a gap.
    """
    if record.get("to") != "trainers" or view == "trainer":
        return False
    by = record.get("by")
    return self_pid is None or not isinstance(by, Mapping) or by.get("pid") != self_pid


def render_event(
    record: Mapping[str, Any], view: View, self_pid: str | None
) -> dict[str, Any] | None:
    """The ``event`` object of an ``event`` frame for ``view``, or None if it gets none."""
    kind = record.get("kind")
    if kind == "progress":
        return None
    if kind == "chat" and record.get("removed"):  # a trainer removed it: nothing of it is left
        return {"kind": "chat", "removed": True, "at": record.get("at")}
    if kind == "chat" and _withheld(record, view, self_pid):
        return {"kind": "chat", "to": "trainers", "withheld": True, "at": record.get("at")}
    if kind == "poll.answer" and view != "trainer":
        tally: dict[str, Any] = {"kind": "poll.tally", "poll": record.get("poll")}
        if record.get("hidden"):
            tally["hidden"] = True
        else:
            tally["counts"] = list(record.get("counts") or [])
        tally["at"] = record.get("at")
        return tally
    event = dict(record)
    if kind == "poll.close" and view != "trainer" and record.get("hidden"):
        del event["counts"]  # students vote without seeing the others' votes
    for key in ("by", "participant"):
        if key in event and not isinstance(event[key], str):  # a bare pid stays as it is
            event[key] = _render_optional(event[key], view, self_pid)
    return event


def render_progress(
    record: Mapping[str, Any], view: View, self_pid: str | None
) -> dict[str, Any] | None:
    """Body of a ``progress`` push (``participant``, ``progress``); trainers only."""
    if view != "trainer" or record.get("kind") != "progress":
        return None
    progress: dict[str, Any] = {"screen": record.get("screen")}
    for key in ("completed", "score"):
        if record.get(key) is not None:
            progress[key] = record[key]
    progress["at"] = record.get("at")
    return {
        "participant": _render_optional(record.get("by"), view, self_pid),
        "progress": progress,
    }


def _render_poll(raw: Mapping[str, Any], view: View) -> dict[str, Any]:
    """A poll's definition, with its counts unless they are hidden from ``view``."""
    poll = {"poll": raw["poll"], "question": raw["question"], "options": list(raw["options"])}
    if view == "trainer" or not raw.get("hidden"):
        poll["counts"] = list(raw["counts"])
    if raw.get("hidden"):
        poll["hidden"] = True
    return poll


def render_state(
    snapshot: Mapping[str, Any], view: View, self_pid: str | None, *,
    defaults: OptionDefaults = DEFAULT_OPTIONS, now: float | None = None,
) -> dict[str, Any]:
    """The ``state`` of a ``joined`` reply; only trainers see who answered what.

    ``defaults`` are the tenant's session options (for those the trainer has not set);
    ``now`` decides whether the lesson timer still runs (default: the clock).
    """
    poll: dict[str, Any] | None = None
    raw_poll = snapshot.get("poll")
    if raw_poll is not None:
        poll = _render_poll(raw_poll, view)
        if view == "trainer":
            poll["answers"] = [
                {
                    "participant": render_participant(answer["participant"], view, self_pid),
                    "option": answer["option"],
                }
                for answer in raw_poll.get("answers", [])
            ]
    last_poll = snapshot.get("last_poll")
    timer = snapshot.get("timer")
    now = time.time() if now is None else now
    return {
        "screen": snapshot.get("screen"),
        "locked": bool(snapshot.get("locked")),
        "poll": poll,
        "hands": [render_participant(hand, view, self_pid) for hand in snapshot.get("hands", [])],
        "annotations": [
            {**annotation, "by": _render_optional(annotation.get("by"), view, self_pid)}
            for annotation in snapshot.get("annotations", [])
        ],
        "options": effective_options(snapshot.get("options") or {}, defaults),
        "timer": ({"seconds": timer["seconds"], "ends_at": timer["ends_at"]}
                  if timer is not None and timer["ends_at"] > now else None),
        "last_poll": _render_poll(last_poll, view) if last_poll is not None else None,
    }


def referenced_pids(record: Mapping[str, Any]) -> frozenset[str]:
    """Pids a record is about (``by``, ``participant``): they get a personal rendering."""
    pids: set[str] = set()
    for key in ("by", "participant"):
        value = record.get(key)
        if isinstance(value, Mapping):
            pid = value.get("pid")
            if isinstance(pid, str):
                pids.add(pid)
    return frozenset(pids)
