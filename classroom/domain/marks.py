"""What the bounds on annotations count: each kept mark's author, screen and size, indexed.

``classroom.domain.state`` keeps the marks themselves; this index answers, in
constant time, whether one more mark would pass a bound of
``classroom.domain.limits`` (per person and screen, per screen, per session, in
bytes per screen and per session). A mark is counted for the author it was added
by, also after an erasure anonymised it, so erasing someone frees nothing that
the bounds had counted and every node counts the same.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple, TypeVar

from classroom.domain.limits import (
    ANNOTATION_BYTES_PER_SCREEN,
    ANNOTATION_BYTES_PER_SESSION,
    ANNOTATIONS_PER_PERSON_PER_SCREEN,
    ANNOTATIONS_PER_SCREEN,
    ANNOTATIONS_PER_SESSION,
)

_K = TypeVar("_K")


class Mark(NamedTuple):
    """What the bounds count of one kept annotation: its author, screen and JSON size."""

    pid: str
    screen: str
    size: int


@dataclass
class MarkIndex:
    """The counts behind the bounds, kept with every mark added and removed."""

    marks: dict[str, Mark] = field(default_factory=dict)
    _by_person: dict[tuple[str, str], int] = field(default_factory=dict)
    _by_screen: dict[str, int] = field(default_factory=dict)
    _bytes_by_screen: dict[str, int] = field(default_factory=dict)
    _bytes: int = 0

    def refusal(self, pid: str, screen: str, size: int) -> str | None:
        """Why ``pid`` may not add a mark of ``size`` bytes on ``screen`` now; None if they may."""
        if self._by_person.get((pid, screen), 0) >= ANNOTATIONS_PER_PERSON_PER_SCREEN:
            return (f"you already have {ANNOTATIONS_PER_PERSON_PER_SCREEN} annotations "
                    "on this screen; remove one first")
        if self._by_screen.get(screen, 0) >= ANNOTATIONS_PER_SCREEN:
            return (f"this screen already has {ANNOTATIONS_PER_SCREEN} annotations; "
                    "remove one first")
        if len(self.marks) >= ANNOTATIONS_PER_SESSION:
            return (f"this session already has {ANNOTATIONS_PER_SESSION} annotations; "
                    "remove one first")
        if self._bytes_by_screen.get(screen, 0) + size > ANNOTATION_BYTES_PER_SCREEN:
            return (f"the annotations on this screen would pass {ANNOTATION_BYTES_PER_SCREEN} "
                    "bytes of JSON; remove one first")
        if self._bytes + size > ANNOTATION_BYTES_PER_SESSION:
            return (f"the annotations of this session would pass {ANNOTATION_BYTES_PER_SESSION} "
                    "bytes of JSON; remove one first")
        return None

    def add(self, annotation_id: str, mark: Mark) -> None:
        """Count a kept mark."""
        self.marks[annotation_id] = mark
        _bump(self._by_person, (mark.pid, mark.screen), 1)
        _bump(self._by_screen, mark.screen, 1)
        _bump(self._bytes_by_screen, mark.screen, mark.size)
        self._bytes += mark.size

    def remove(self, annotation_id: str) -> None:
        """Stop counting a mark that is gone."""
        mark = self.marks.pop(annotation_id)
        _bump(self._by_person, (mark.pid, mark.screen), -1)
        _bump(self._by_screen, mark.screen, -1)
        _bump(self._bytes_by_screen, mark.screen, -mark.size)
        self._bytes -= mark.size


def _bump(counts: dict[_K, int], key: _K, delta: int) -> None:
    """Add ``delta`` to a count, forgetting it at zero so the index stays as small as the state."""
    value = counts.get(key, 0) + delta
    if value:
        counts[key] = value
    else:
        counts.pop(key, None)
