"""A session's polls: the one open, and the last one closed (so a reloaded page shows its result).

A trainer may open a poll with ``hide_results``: students then vote without seeing
how the others voted, until the trainer reveals the counts (``poll.reveal``, once,
while the poll is open or as the last one closed). Trainers always see counts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class OpenPoll:
    """The poll in progress: its definition and each student's latest answer."""

    poll: str
    question: str
    options: list[str]
    answers: dict[str, int] = field(default_factory=dict)
    answerers: dict[str, dict[str, Any]] = field(default_factory=dict)
    hide_results: bool = False
    revealed: bool = False

    @property
    def hidden(self) -> bool:
        """Whether students are not shown the counts now."""
        return self.hide_results and not self.revealed

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

    def closed(self) -> ClosedPoll:
        """What is kept of this poll once it closes: its definition and final counts, no one's
        answer."""
        return ClosedPoll(self.poll, self.question, list(self.options), self.tally(),
                          self.hide_results, self.revealed)


@dataclass
class ClosedPoll:
    """The most recently closed poll: its final counts, and whether students may see them."""

    poll: str
    question: str
    options: list[str]
    counts: list[int]
    hide_results: bool = False
    revealed: bool = False

    @property
    def hidden(self) -> bool:
        """Whether students are not shown the counts now."""
        return self.hide_results and not self.revealed

    def to_document(self) -> list[Any]:
        """Plain data for the session's snapshot."""
        return [self.poll, self.question, list(self.options), list(self.counts),
                self.hide_results, self.revealed]

    @classmethod
    def from_document(cls, document: list[Any]) -> ClosedPoll:
        """Inverse of :meth:`to_document`."""
        poll, question, options, counts, hide_results, revealed = document
        return cls(poll, question, list(options), list(counts), bool(hide_results),
                   bool(revealed))
