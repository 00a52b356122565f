"""The soak's knobs, in one frozen value that the report records whole."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

BROKERS = ("redis", "memory")
BUDGET_MEMORY_SECONDS = 60.0
"""A node keeps a user's fan-out budgets this long after their last connection
(classroom/edge/registry.py); a settle shorter than that leaves them in the counts."""


@dataclass(frozen=True)
class SoakConfig:
    """Every parameter of one soak run."""

    duration: float = 600.0  # seconds of session loops after the warm-up
    rooms: int = 6  # rooms running side by side, each one session after another
    students: int = 8  # per session, plus one trainer
    session_seconds: float = 30.0  # how long each session runs before it ends
    nodes: int = 2  # server processes (Redis only; the memory broker serves one)
    broker: str = "redis"
    redis_url: str = "redis://127.0.0.1:6379/0"
    abandon_every: int = 4  # every n-th session of a room ends by everyone leaving (0: never)
    sample_every: float = 15.0  # seconds between samples of every node
    settle: float = 65.0  # seconds after the last session ended before the final sample
    warmup_cycles: int = 1  # sessions per room before the baseline is taken
    rss_tolerance_mb: float = 16.0  # allowed RSS growth, baseline to the end ...
    rss_tolerance_pct: float = 10.0  # ... or this share of the baseline, whichever is larger
    objects_tolerance_pct: float = 5.0  # allowed growth of gc objects and allocated blocks
    seed: int = 1

    def validate(self) -> None:
        """Refuse values the soak cannot honour, before any server starts."""
        problems: list[str] = []
        if self.broker not in BROKERS:
            problems.append(f"--broker must be one of {', '.join(BROKERS)}")
        if self.nodes < 1 or (self.broker == "memory" and self.nodes != 1):
            problems.append("--nodes must be >= 1, and 1 with the memory broker")
        if self.rooms < 1 or self.students < 1:
            problems.append("--rooms and --students must be >= 1")
        if not 0 < self.duration <= 24 * 3600:
            problems.append("--duration must be within (0, 86400] seconds")
        if self.session_seconds < 2:
            problems.append("--session-seconds must be >= 2")
        if self.abandon_every < 0 or self.warmup_cycles < 1:
            problems.append("--abandon-every must be >= 0 and --warmup-cycles >= 1")
        if self.sample_every <= 0 or self.settle < 0:
            problems.append("--sample-every must be > 0 and --settle >= 0")
        if problems:
            raise ValueError("; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        """The configuration as plain data, for the report."""
        return dataclasses.asdict(self)
