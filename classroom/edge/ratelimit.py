"""Per-connection limits: a token bucket for commands, a sliding window for bad frames."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable


class TokenBucket:
    """Allows ``rate`` commands a second on average, ``burst`` at once."""

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._tokens = float(burst)
        self._clock = clock
        self._stamp = clock()

    def allow(self) -> bool:
        """Take one token if there is one."""
        now = self._clock()
        self._tokens = min(self._burst, self._tokens + (now - self._stamp) * self._rate)
        self._stamp = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False


class StrikeCounter:
    """Counts bad frames within a sliding window; too many and the client goes."""

    def __init__(
        self, limit: int, window: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._limit = limit
        self._window = window
        self._clock = clock
        self._strikes: deque[float] = deque()

    def strike(self) -> bool:
        """Record a bad frame; True when the limit is reached."""
        now = self._clock()
        self._strikes.append(now)
        while self._strikes and self._strikes[0] <= now - self._window:
            self._strikes.popleft()
        return len(self._strikes) >= self._limit
