"""Privacy views (protocol section 6): what each kind of recipient may see.

Records and snapshots hold full personal data; every byte that leaves the
server about a participant passes through :func:`render_participant`. The
functions here never mutate their input, so one record can be rendered for
many views.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from auth.identity import PROFILE_FIELDS, Role

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


def render_event(
    record: Mapping[str, Any], view: View, self_pid: str | None
) -> dict[str, Any] | None:
    """The ``event`` object of an ``event`` frame for ``view``, or None if it gets none."""
    kind = record.get("kind")
    if kind == "progress":
        return None
    if kind == "poll.answer" and view != "trainer":
        return {
            "kind": "poll.tally",
            "poll": record.get("poll"),
            "counts": list(record.get("counts") or []),
            "at": record.get("at"),
        }
    event = dict(record)
    for key in ("by", "participant"):
        if key in event:
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


def render_state(
    snapshot: Mapping[str, Any], view: View, self_pid: str | None
) -> dict[str, Any]:
    """The ``state`` of a ``joined`` reply; only trainers see who answered what."""
    poll: dict[str, Any] | None = None
    raw_poll = snapshot.get("poll")
    if raw_poll is not None:
        poll = {
            "poll": raw_poll["poll"],
            "question": raw_poll["question"],
            "options": list(raw_poll["options"]),
            "counts": list(raw_poll["counts"]),
        }
        if view == "trainer":
            poll["answers"] = [
                {
                    "participant": render_participant(answer["participant"], view, self_pid),
                    "option": answer["option"],
                }
                for answer in raw_poll.get("answers", [])
            ]
    return {
        "screen": snapshot.get("screen"),
        "locked": bool(snapshot.get("locked")),
        "poll": poll,
        "hands": [render_participant(hand, view, self_pid) for hand in snapshot.get("hands", [])],
        "annotations": [
            {**annotation, "by": _render_optional(annotation.get("by"), view, self_pid)}
            for annotation in snapshot.get("annotations", [])
        ],
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
