"""Limits: token buckets for commands and per-user budgets, a sliding window for strikes."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping

from classroom.protocol.budgets import Budget


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
        if self.available() >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    def available(self) -> float:
        """Tokens there are now."""
        now = self._clock()
        self._tokens = min(self._burst, self._tokens + (now - self._stamp) * self._rate)
        self._stamp = now
        return self._tokens

    def spend(self, count: int) -> None:
        """Take ``count`` tokens (the caller checked :meth:`available`)."""
        self._tokens -= count


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


class UserBudgets:
    """One user's budgets on this node, one bucket per kind, shared by their connections."""

    __slots__ = ("_buckets", "_budgets", "_scale")

    def __init__(self, budgets: Mapping[str, Budget], scale: float = 1.0) -> None:
        self._budgets = budgets
        self._scale = scale
        self._buckets: dict[str, TokenBucket] = {}

    def allow(self, kind: str) -> bool:
        """Take one command of ``kind`` from its budget, if there is room."""
        bucket = self._buckets.get(kind)
        if bucket is None:
            budget = self._budgets[kind]
            bucket = self._buckets[kind] = TokenBucket(
                budget.rate * self._scale, max(1, round(budget.burst * self._scale))
            )
        return bucket.allow()
