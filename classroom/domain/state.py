"""The live state of one session: a pure reducer over its stored event records.

Every node applies the same records in the same offset order, so every node
shows the same snapshot. The reducer trusts that records passed
``classroom.domain.events.prepare_event`` but stays total: a record that no longer
fits the state (two racing publishes checked against the same snapshot) is
absorbed without raising, because one bad record must not stop the stream.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from classroom.domain.erasure import anonymous_participant


def _pid_of(record: Any) -> str | None:
    """The ``pid`` of a participant record, tolerating malformed input."""
    if isinstance(record, Mapping):
        pid = record.get("pid")
        if isinstance(pid, str):
            return pid
    return None


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
        if not isinstance(annotation_id, str) or annotation_id in self.annotations:
            return
        self.annotations[annotation_id] = {
            "annotation_id": annotation_id,
            "screen": record.get("screen"),
            "shape": copy.deepcopy(record.get("shape")),
            "by": dict(record.get("by") or {}),
            "at": record.get("at"),
        }

    def _annotation_remove(self, record: Mapping[str, Any]) -> None:
        annotation_id = record.get("annotation_id")
        if isinstance(annotation_id, str):
            self.annotations.pop(annotation_id, None)

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
        self.used_polls.add(poll_id)
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
    "hand.raise": SessionState._hand_raise,
    "hand.lower": SessionState._hand_lower,
    "poll.open": SessionState._poll_open,
    "poll.answer": SessionState._poll_answer,
    "poll.close": SessionState._poll_close,
}
