"""One connection's limits: its command rate, its user's budgets, its strikes, its replays.

Kept together so the connection asks one object "may this go?" and the limits
of a protocol (docs/protocol.md, section 13) read in one place. The strike
counter and the replay bucket are made at first use: most connections never
strike or replay, and an idle connection should stay small.
"""

from __future__ import annotations

from classroom.config import Settings
from classroom.edge.ratelimit import StrikeCounter, TokenBucket, UserBudgets
from classroom.protocol.budgets import REPLAY_BUDGET, budget_of
from classroom.protocol.commands import Command


class ClientLimits:
    """The limits one connection is held to."""

    __slots__ = ("_bucket", "_replay", "_settings", "_strikes", "budgets")

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._bucket = TokenBucket(settings.rate_limit_per_second, settings.rate_limit_burst)
        self._strikes: StrikeCounter | None = None
        self._replay: TokenBucket | None = None
        self.budgets: UserBudgets | None = None
        """The user's budgets on this node, shared with their other connections; set at connect."""

    def allow(self) -> bool:
        """Take one command from the connection's rate limit."""
        return self._bucket.allow()

    def over_budget(self, command: Command) -> str | None:
        """The budget ``command`` would overdraw (taking from it if not), or None."""
        budget = budget_of(command)
        if budget is None or self.budgets is None or self.budgets.allow(budget):
            return None
        return budget

    def strike(self) -> bool:
        """Count a bad frame or a refused command; True when the connection must go."""
        if self._strikes is None:
            settings = self._settings
            self._strikes = StrikeCounter(settings.bad_frames_limit, settings.bad_frames_window)
        return self._strikes.strike()

    def replay_allowance(self) -> int:
        """Stored events this connection may be sent from history now."""
        if self._replay is None:
            return REPLAY_BUDGET.burst
        return int(self._replay.available())

    def spend_replay(self, count: int) -> None:
        """Count events sent from history against the allowance."""
        if self._replay is None:
            self._replay = TokenBucket(REPLAY_BUDGET.rate, REPLAY_BUDGET.burst)
        self._replay.spend(count)
