"""How long a failed delivery waits before the next attempt."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

MAX_ATTEMPTS = 36
"""Failed attempts before an item is dead: with the default :class:`Backoff`, about a day.

The waits after failures 1 to 35 add up to 1 + 2 + ... + 2048 s (4,095 s) plus 23 hours
(the one-hour cap), 86,895 s or 24.1 h; jitter shortens each by up to 20 % (19.3 h).
"""


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delays between attempts: ``base`` doubling per attempt, capped, minus up to ``jitter``.

    Jitter spreads retries of many items (and nodes) so a recovering receiver is not
    hit by all of them at once.
    """

    base: float = 1.0
    factor: float = 2.0
    cap: float = 3600.0
    jitter: float = 0.2

    def delay(self, attempts: int, rng: Callable[[], float] = random.random) -> float:
        """Seconds to wait after the ``attempts``-th failed attempt (1 for the first)."""
        raw = min(self.cap, self.base * self.factor ** max(0, attempts - 1))
        return raw * (1.0 - self.jitter * rng())
