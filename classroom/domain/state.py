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
from typing import Any

from classroom.domain.erasure import anonymous_participant
from classroom.domain.limits import POLL_IDS_REMEMBERED
from classroom.domain.marks import Mark, MarkIndex
from classroom.domain.options import OPTION_NAMES
from classroom.domain.polls import ClosedPoll, OpenPoll
from classroom.domain.shapes import shape_depth_refusal as shape_depth_refusal  # re-exported
from classroom.domain.shapes import shape_refusal, shape_size

SNAPSHOT_VERSION = 1
"""Version of :meth:`SessionState.to_document`; a node ignores a snapshot of another one.
Fields added since (options, timer, the last poll, a poll's hidden results) are read
with defaults, so a snapshot written before them restores as it was."""


def _pid_of(record: Any) -> str | None:
    """The ``pid`` of a participant record, tolerating malformed input."""
    if isinstance(record, Mapping):
        pid = record.get("pid")
        if isinstance(pid, str):
            return pid
    return None


@dataclass
class SessionState:
    """Snapshot of one session (screen, lock, polls, hands, marks, options, timer) at ``offset``."""

    offset: int = 0
    screen: str | None = None
    locked: bool = False
    poll: OpenPoll | None = None
    last_poll: ClosedPoll | None = None
    hands: list[dict[str, Any]] = field(default_factory=list)
    annotations: dict[str, dict[str, Any]] = field(default_factory=dict)
    used_polls: set[str] = field(default_factory=set)
    """The last ``POLL_IDS_REMEMBERED`` poll ids opened; an older one may be reused."""
    options: dict[str, bool] = field(default_factory=dict)
    """The session options a trainer set; the tenant's defaults stand for the others."""
    timer: dict[str, Any] | None = None
    """The latest ``timer.start`` (``seconds``, ``ends_at``) unless stopped since; it may have
    run out (whether it runs depends on the clock, which the reducer never reads)."""
    # What the bounds of classroom.domain.limits count, kept with every change to
    # ``annotations`` and ``used_polls``.
    _index: MarkIndex = field(default_factory=MarkIndex, repr=False, init=False)
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
        return self._index.refusal(pid, screen, size)

    def annotation_ids(self, *, author: str | None, screen: str | None) -> list[str]:
        """The ids of the kept marks by ``author`` (a pid) on ``screen`` (None: any), in order."""
        return [annotation_id for annotation_id, annotation in self.annotations.items()
                if (author is None or annotation["by"].get("pid") == author)
                and (screen is None or annotation["screen"] == screen)]

    def running_timer(self, now: float) -> dict[str, Any] | None:
        """The timer if it still runs at ``now``."""
        timer = self.timer
        if timer is None or not timer["ends_at"] > now:
            return None
        return dict(timer)

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
        if self._index.refusal(pid, screen, size) is not None:
            return  # a racing publish filled the room first: the later one is not kept
        self.annotations[annotation_id] = {
            "annotation_id": annotation_id,
            "screen": screen,
            "shape": copy.deepcopy(shape),
            "by": dict(by) if isinstance(by, Mapping) else {},
            "at": record.get("at"),
        }
        self._index.add(annotation_id, Mark(pid, screen, size))

    def _annotation_remove(self, record: Mapping[str, Any]) -> None:
        self._forget_mark(record.get("annotation_id"))

    def _annotation_clear(self, record: Mapping[str, Any]) -> None:
        # Exactly the marks the publish checked: one added meanwhile (a racing publish
        # on another node) stays, the same way on every node.
        removed = record.get("removed")
        for annotation_id in removed if isinstance(removed, list) else []:
            self._forget_mark(annotation_id)

    def _forget_mark(self, annotation_id: Any) -> None:
        if isinstance(annotation_id, str) and annotation_id in self.annotations:
            del self.annotations[annotation_id]
            self._index.remove(annotation_id)

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
        self.poll = OpenPoll(poll_id, str(record.get("question", "")), [str(o) for o in options],
                             hide_results=record.get("hide_results") is True)

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
            self.last_poll = self.poll.closed()
            self.poll = None

    def _poll_reveal(self, record: Mapping[str, Any]) -> None:
        poll_id = record.get("poll")
        for poll in (self.poll, self.last_poll):
            if poll is not None and poll.poll == poll_id:
                poll.revealed = True
                return

    def _options(self, record: Mapping[str, Any]) -> None:
        for name in OPTION_NAMES:
            value = record.get(name)
            if isinstance(value, bool):
                self.options[name] = value

    def _timer_start(self, record: Mapping[str, Any]) -> None:
        seconds, ends_at = record.get("seconds"), record.get("ends_at")
        if isinstance(seconds, int) and isinstance(ends_at, int | float):
            self.timer = {"seconds": seconds, "ends_at": float(ends_at)}

    def _timer_stop(self, record: Mapping[str, Any]) -> None:
        self.timer = None

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
                "hidden": self.poll.hidden,
                "answers": [
                    {"participant": dict(self.poll.answerers[pid]), "option": option}
                    for pid, option in self.poll.answers.items()
                ],
            }
        last = self.last_poll
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
            "options": dict(self.options),
            "timer": dict(self.timer) if self.timer is not None else None,
            "last_poll": None if last is None else {
                "poll": last.poll, "question": last.question, "options": list(last.options),
                "counts": list(last.counts), "hidden": last.hidden,
            },
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
                     for pid, option in self.poll.answers.items()],
                    self.poll.hide_results, self.poll.revealed]
        return {
            "v": SNAPSHOT_VERSION,
            "screen": self.screen,
            "locked": self.locked,
            "poll": poll,
            "hands": [dict(hand) for hand in self.hands],
            # Each mark with the pid its bounds count it for (kept after erasure).
            "marks": [[annotation, self._index.marks[annotation_id].pid]
                      for annotation_id, annotation in self.annotations.items()],
            "polls": list(self._poll_order),
            "last_poll": self.last_poll.to_document() if self.last_poll is not None else None,
            "options": dict(self.options),
            "timer": dict(self.timer) if self.timer is not None else None,
        }

    @classmethod
    def from_document(cls, document: Mapping[str, Any], offset: int) -> SessionState:
        """The state :meth:`to_document` described, at ``offset``; raises ValueError if foreign."""
        if not isinstance(document, Mapping) or document.get("v") != SNAPSHOT_VERSION:
            raise ValueError("not a session state document of this version")
        state = cls(offset=offset, screen=document["screen"], locked=bool(document["locked"]))
        poll = document["poll"]
        if poll is not None:
            poll_id, question, options, answers, *flags = poll
            state.poll = OpenPoll(poll_id, question, list(options))
            if flags:
                state.poll.hide_results, state.poll.revealed = bool(flags[0]), bool(flags[1])
            for pid, option, who in answers:
                state.poll.answers[pid] = option
                state.poll.answerers[pid] = dict(who)
        state.hands = [dict(hand) for hand in document["hands"]]
        for annotation, pid in document["marks"]:
            annotation_id, screen = annotation["annotation_id"], annotation["screen"]
            state.annotations[annotation_id] = dict(annotation)
            state._index.add(annotation_id, Mark(pid, screen, shape_size(annotation["shape"]) or 0))
        for poll_id in document["polls"]:
            state._poll_order.append(poll_id)
            state.used_polls.add(poll_id)
        last_poll = document.get("last_poll")
        state.last_poll = ClosedPoll.from_document(last_poll) if last_poll is not None else None
        state.options = {name: bool(value) for name, value in document.get("options", {}).items()}
        timer = document.get("timer")
        state.timer = dict(timer) if timer is not None else None
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


_HANDLERS: dict[str, Callable[[SessionState, Mapping[str, Any]], None]] = {
    "screen.navigate": SessionState._navigate,
    "screen.lock": SessionState._lock,
    "annotation.add": SessionState._annotation_add,
    "annotation.remove": SessionState._annotation_remove,
    "annotation.clear": SessionState._annotation_clear,
    "hand.raise": SessionState._hand_raise,
    "hand.lower": SessionState._hand_lower,
    "poll.open": SessionState._poll_open,
    "poll.answer": SessionState._poll_answer,
    "poll.close": SessionState._poll_close,
    "poll.reveal": SessionState._poll_reveal,
    "session.options": SessionState._options,
    "timer.start": SessionState._timer_start,
    "timer.stop": SessionState._timer_stop,
}
