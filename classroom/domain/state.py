"""The live state of one session: a pure reducer over its stored event records.

Every node applies the same records in the same offset order, so every node
shows the same snapshot. The reducer trusts that records passed
``classroom.domain.events.prepare_event`` but stays total: a record that no longer
fits the state (two racing publishes checked against the same snapshot) is
absorbed without raising, because one bad record must not stop the stream. The
bounds of ``classroom.domain.limits`` hold here too: an ``annotation.add`` that
would pass one is ignored, the same way on every node.
"""

from __future__ import annotations

import copy
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeVar

import orjson

from classroom.domain.erasure import anonymous_participant
from classroom.domain.limits import (
    ANNOTATION_BYTES_PER_SCREEN,
    ANNOTATION_BYTES_PER_SESSION,
    ANNOTATIONS_PER_PERSON_PER_SCREEN,
    ANNOTATIONS_PER_SCREEN,
    ANNOTATIONS_PER_SESSION,
    POLL_IDS_REMEMBERED,
    SHAPE_MAX_BYTES,
    SHAPE_MAX_DEPTH,
    SHAPE_MAX_POINTS,
)

_K = TypeVar("_K")

SNAPSHOT_VERSION = 1
"""Version of :meth:`SessionState.to_document`; a node ignores a snapshot of another one."""


def _pid_of(record: Any) -> str | None:
    """The ``pid`` of a participant record, tolerating malformed input."""
    if isinstance(record, Mapping):
        pid = record.get("pid")
        if isinstance(pid, str):
            return pid
    return None


def shape_size(shape: Any) -> int | None:
    """Bytes of ``shape`` as compact JSON; None when it is not a JSON object."""
    if not isinstance(shape, dict):
        return None
    try:
        return len(orjson.dumps(shape))
    except (orjson.JSONEncodeError, TypeError):
        return None


def shape_depth_refusal(shape: Any) -> str | None:
    """Why ``shape`` nests too deep (``SHAPE_MAX_DEPTH``, the shape itself at level 1), or None.

    Walks without recursion and stops at the first container past the bound.
    """
    stack: list[tuple[Any, int]] = [(shape, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > SHAPE_MAX_DEPTH:
            return f"shape is nested more than {SHAPE_MAX_DEPTH} levels deep"
        children = value.values() if isinstance(value, dict) else value
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return None


def shape_refusal(shape: Any) -> str | None:
    """Why a shape may not be kept (not JSON, too deep, too large, too many points), or None."""
    if isinstance(shape, dict):
        refusal = shape_depth_refusal(shape)
        if refusal is not None:
            return refusal
    size = shape_size(shape)
    if size is None:
        return "shape must be a JSON object"
    if size > SHAPE_MAX_BYTES:
        return f"shape is larger than {SHAPE_MAX_BYTES} bytes of JSON"
    points = shape.get("points")
    if isinstance(points, list) and len(points) > SHAPE_MAX_POINTS:
        return f"shape has more than {SHAPE_MAX_POINTS} points"
    return None


class _Mark(NamedTuple):
    """What the bounds count of one kept annotation: its author, screen and JSON size."""

    pid: str
    screen: str
    size: int


@dataclass
class OpenPoll:
    """The poll in progress: its definition and each student's latest answer."""

    poll: str
    question: str
    options: list[str]
    answers: dict[str, int] = field(default_factory=dict)
    answerers: dict[str, dict[str, Any]] = field(default_factory=dict)

    def tally(self) -> list[int]:
        """Votes per option, counting each student's latest answer once."""
        counts = [0] * len(self.options)
        for option in self.answers.values():
            if 0 <= option < len(counts):
                counts[option] += 1
        return counts

    def tally_after(self, pid: str, option: int) -> list[int]:
        """The tally as it would be once ``pid`` answered ``option`` (no mutation)."""
        counts = self.tally()
        previous = self.answers.get(pid)
        if previous is not None and 0 <= previous < len(counts):
            counts[previous] -= 1
        counts[option] += 1
        return counts


@dataclass
class SessionState:
    """Snapshot of one session (screen, lock, poll, hands, annotations) at ``offset``."""

    offset: int = 0
    screen: str | None = None
    locked: bool = False
    poll: OpenPoll | None = None
    hands: list[dict[str, Any]] = field(default_factory=list)
    annotations: dict[str, dict[str, Any]] = field(default_factory=dict)
    used_polls: set[str] = field(default_factory=set)
    """The last ``POLL_IDS_REMEMBERED`` poll ids opened; an older one may be reused."""
    # What the bounds of classroom.domain.limits count, kept with every change to
    # ``annotations`` and ``used_polls``. A mark is counted for the author it was
    # added by, also after erasure anonymised it.
    _marks: dict[str, _Mark] = field(default_factory=dict, repr=False, init=False)
    _marks_by_person: dict[tuple[str, str], int] = field(
        default_factory=dict, repr=False, init=False
    )
    _marks_by_screen: dict[str, int] = field(default_factory=dict, repr=False, init=False)
    _bytes_by_screen: dict[str, int] = field(default_factory=dict, repr=False, init=False)
    _bytes: int = field(default=0, repr=False, init=False)
    _poll_order: deque[str] = field(default_factory=deque, repr=False, init=False)

    # -- queries used by classroom.domain.events -----------------------------------------

    def hand_raised(self, pid: str) -> bool:
        """Whether ``pid`` has a hand up."""
        return self.participant_with_raised_hand(pid) is not None

    def participant_with_raised_hand(self, pid: str) -> dict[str, Any] | None:
        """The stored participant record of ``pid`` if their hand is up."""
        for hand in self.hands:
            if hand.get("pid") == pid:
                return hand
        return None

    def annotation_refusal(self, pid: str, screen: str, size: int) -> str | None:
        """Why ``pid`` may not add a mark of ``size`` bytes on ``screen`` now; None if they may."""
        if self._marks_by_person.get((pid, screen), 0) >= ANNOTATIONS_PER_PERSON_PER_SCREEN:
            return (f"you already have {ANNOTATIONS_PER_PERSON_PER_SCREEN} annotations "
                    "on this screen; remove one first")
        if self._marks_by_screen.get(screen, 0) >= ANNOTATIONS_PER_SCREEN:
            return (f"this screen already has {ANNOTATIONS_PER_SCREEN} annotations; "
                    "remove one first")
        if len(self._marks) >= ANNOTATIONS_PER_SESSION:
            return (f"this session already has {ANNOTATIONS_PER_SESSION} annotations; "
                    "remove one first")
        if self._bytes_by_screen.get(screen, 0) + size > ANNOTATION_BYTES_PER_SCREEN:
            return (f"the annotations on this screen would pass {ANNOTATION_BYTES_PER_SCREEN} "
                    "bytes of JSON; remove one first")
        if self._bytes + size > ANNOTATION_BYTES_PER_SESSION:
            return (f"the annotations of this session would pass {ANNOTATION_BYTES_PER_SESSION} "
                    "bytes of JSON; remove one first")
        return None

    # -- the reducer -------------------------------------------------------------

    def apply(self, offset: int, record: Mapping[str, Any]) -> None:
        """Fold one stored record in; offsets at or below ``self.offset`` are replays."""
        if offset <= self.offset:
            return
        self.offset = offset
        handler = _HANDLERS.get(str(record.get("kind")))
        if handler is not None:
            handler(self, record)

    def _navigate(self, record: Mapping[str, Any]) -> None:
        screen = record.get("screen")
        if isinstance(screen, str):
            self.screen = screen

    def _lock(self, record: Mapping[str, Any]) -> None:
        self.locked = bool(record.get("locked"))

    def _annotation_add(self, record: Mapping[str, Any]) -> None:
        annotation_id = record.get("annotation_id")
        screen = record.get("screen")
        shape = record.get("shape")
        by = record.get("by")
        pid = _pid_of(by) or ""
        if not isinstance(annotation_id, str) or annotation_id in self.annotations:
            return
        size = shape_size(shape)
        if not isinstance(screen, str) or size is None or shape_refusal(shape) is not None:
            return
        if self.annotation_refusal(pid, screen, size) is not None:
            return  # a racing publish filled the room first: the later one is not kept
        self.annotations[annotation_id] = {
            "annotation_id": annotation_id,
            "screen": screen,
            "shape": copy.deepcopy(shape),
            "by": dict(by) if isinstance(by, Mapping) else {},
            "at": record.get("at"),
        }
        self._marks[annotation_id] = _Mark(pid, screen, size)
        _bump(self._marks_by_person, (pid, screen), 1)
        _bump(self._marks_by_screen, screen, 1)
        _bump(self._bytes_by_screen, screen, size)
        self._bytes += size

    def _annotation_remove(self, record: Mapping[str, Any]) -> None:
        annotation_id = record.get("annotation_id")
        if not isinstance(annotation_id, str) or annotation_id not in self.annotations:
            return
        del self.annotations[annotation_id]
        mark = self._marks.pop(annotation_id)
        _bump(self._marks_by_person, (mark.pid, mark.screen), -1)
        _bump(self._marks_by_screen, mark.screen, -1)
        _bump(self._bytes_by_screen, mark.screen, -mark.size)
        self._bytes -= mark.size

    def _hand_raise(self, record: Mapping[str, Any]) -> None:
        by = record.get("by")
        pid = _pid_of(by)
        if pid is not None and isinstance(by, Mapping) and not self.hand_raised(pid):
            self.hands.append(dict(by))

    def _hand_lower(self, record: Mapping[str, Any]) -> None:
        pid = _pid_of(record.get("participant", record.get("by")))
        self.hands = [hand for hand in self.hands if hand.get("pid") != pid]

    def _poll_open(self, record: Mapping[str, Any]) -> None:
        poll_id = record.get("poll")
        options = record.get("options")
        if not isinstance(poll_id, str) or not isinstance(options, list):
            return
        if poll_id not in self.used_polls:
            self.used_polls.add(poll_id)
            self._poll_order.append(poll_id)
            while len(self._poll_order) > POLL_IDS_REMEMBERED:
                self.used_polls.discard(self._poll_order.popleft())
        # A later open wins over one still open: clients follow the events the same way.
        self.poll = OpenPoll(poll_id, str(record.get("question", "")), [str(o) for o in options])

    def _poll_answer(self, record: Mapping[str, Any]) -> None:
        poll = self.poll
        by = record.get("by")
        pid = _pid_of(by)
        option = record.get("option")
        if poll is None or record.get("poll") != poll.poll or pid is None:
            return
        if isinstance(option, bool) or not isinstance(option, int):
            return
        if isinstance(by, Mapping) and 0 <= option < len(poll.options):
            poll.answers[pid] = option
            poll.answerers[pid] = dict(by)

    def _poll_close(self, record: Mapping[str, Any]) -> None:
        if self.poll is not None and record.get("poll") == self.poll.poll:
            self.poll = None

    # -- output ------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Raw snapshot for ``joined`` (shapes shared, so read-only); views make it public."""
        poll: dict[str, Any] | None = None
        if self.poll is not None:
            poll = {
                "poll": self.poll.poll,
                "question": self.poll.question,
                "options": list(self.poll.options),
                "counts": self.poll.tally(),
                "answers": [
                    {"participant": dict(self.poll.answerers[pid]), "option": option}
                    for pid, option in self.poll.answers.items()
                ],
            }
        return {
            "screen": self.screen,
            "locked": self.locked,
            "poll": poll,
            "hands": [dict(hand) for hand in self.hands],
            "annotations": [
                {**annotation, "by": dict(annotation["by"])}
                for annotation in self.annotations.values()
                if annotation["screen"] == self.screen
            ],
        }

    def to_document(self) -> dict[str, Any]:
        """Everything the reducer needs to go on, as plain data in one fixed order.

        The durable snapshot of a session (:mod:`classroom.sessions.snapshots`) is this
        document packed; :meth:`from_document` restores it exactly, dict and list
        orders included, so a node that rebuilds from it renders byte-equal frames to
        a node that applied every event. ``offset`` is not part of it: the snapshot
        keeps its own offset and epoch beside it.
        """
        poll: list[Any] | None = None
        if self.poll is not None:
            poll = [self.poll.poll, self.poll.question, list(self.poll.options),
                    [[pid, option, self.poll.answerers[pid]]
                     for pid, option in self.poll.answers.items()]]
        return {
            "v": SNAPSHOT_VERSION,
            "screen": self.screen,
            "locked": self.locked,
            "poll": poll,
            "hands": [dict(hand) for hand in self.hands],
            # Each mark with the pid its bounds count it for (kept after erasure).
            "marks": [[annotation, self._marks[annotation_id].pid]
                      for annotation_id, annotation in self.annotations.items()],
            "polls": list(self._poll_order),
        }

    @classmethod
    def from_document(cls, document: Mapping[str, Any], offset: int) -> SessionState:
        """The state :meth:`to_document` described, at ``offset``; raises ValueError if foreign."""
        if not isinstance(document, Mapping) or document.get("v") != SNAPSHOT_VERSION:
            raise ValueError("not a session state document of this version")
        state = cls(offset=offset, screen=document["screen"], locked=bool(document["locked"]))
        poll = document["poll"]
        if poll is not None:
            poll_id, question, options, answers = poll
            state.poll = OpenPoll(poll_id, question, list(options))
            for pid, option, who in answers:
                state.poll.answers[pid] = option
                state.poll.answerers[pid] = dict(who)
        state.hands = [dict(hand) for hand in document["hands"]]
        for annotation, pid in document["marks"]:
            annotation_id, screen = annotation["annotation_id"], annotation["screen"]
            size = shape_size(annotation["shape"]) or 0
            state.annotations[annotation_id] = dict(annotation)
            state._marks[annotation_id] = _Mark(pid, screen, size)
            _bump(state._marks_by_person, (pid, screen), 1)
            _bump(state._marks_by_screen, screen, 1)
            _bump(state._bytes_by_screen, screen, size)
            state._bytes += size
        for poll_id in document["polls"]:
            state._poll_order.append(poll_id)
            state.used_polls.add(poll_id)
        return state

    def erase_user(self, sub: str) -> None:
        """Forget a user (right to erasure): hands and answers go, annotations lose their author."""
        self.hands = [hand for hand in self.hands if hand.get("sub") != sub]
        if self.poll is not None:
            for pid, who in list(self.poll.answerers.items()):
                if who.get("sub") == sub:
                    del self.poll.answerers[pid]
                    self.poll.answers.pop(pid, None)
        for annotation in self.annotations.values():
            if annotation["by"].get("sub") == sub:
                annotation["by"] = anonymous_participant(annotation["by"])


def _bump(counts: dict[_K, int], key: _K, delta: int) -> None:
    """Add ``delta`` to a count, forgetting it at zero so the index stays as small as the state."""
    value = counts.get(key, 0) + delta
    if value:
        counts[key] = value
    else:
        counts.pop(key, None)


_HANDLERS: dict[str, Callable[[SessionState, Mapping[str, Any]], None]] = {
    "screen.navigate": SessionState._navigate,
    "screen.lock": SessionState._lock,
    "annotation.add": SessionState._annotation_add,
    "annotation.remove": SessionState._annotation_remove,
    "hand.raise": SessionState._hand_raise,
    "hand.lower": SessionState._hand_lower,
    "poll.open": SessionState._poll_open,
    "poll.answer": SessionState._poll_answer,
    "poll.close": SessionState._poll_close,
}
