"""Every live connection of this node, by user: for the drain, the server API and per-user limits.

A user's connections on this node share one set of fan-out budgets, and there
are at most ``max_per_user`` of them: a client that opens sockets in a loop
cannot multiply its budgets or the node's file descriptors. A user's budgets
outlive their last connection by ``BUDGET_MEMORY`` seconds, so reconnecting does
not refill them.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Protocol

from auth.identity import Identity
from classroom.edge.ratelimit import UserBudgets
from classroom.protocol.budgets import FANOUT_BUDGETS, Budget
from classroom.protocol.close_codes import CLOSE_RESTART

BUDGET_MEMORY = 60.0
"""Seconds a user's budgets are kept after their last connection on this node closed."""


class Registered(Protocol):
    """A connection as the registry sees it."""

    identity: Identity | None

    def disconnect(self, code: int, reason: str, *, reconnect: bool) -> None:
        """Tell the client why it goes, then close."""


class ConnectionRegistry:
    """Tracks accepted connections, and files authenticated ones under their user."""

    def __init__(
        self,
        *,
        max_per_user: int = 10,
        budgets: Mapping[str, Budget] = FANOUT_BUDGETS,
        budget_scale: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._all: set[Registered] = set()
        self._by_user: dict[tuple[str, str], set[Registered]] = {}
        self._budgets: dict[tuple[str, str], UserBudgets] = {}
        # Budgets of users with no connection left, oldest release first.
        self._released: OrderedDict[tuple[str, str], float] = OrderedDict()
        self._clock = clock
        self._max_per_user = max_per_user
        self._budget_sizes = budgets
        self._budget_scale = budget_scale
        self.draining = False
        self.accepted = 0
        """Connections accepted since the node started (closed ones included)."""

    def add(self, connection: Registered) -> None:
        """Track a newly accepted connection."""
        self._all.add(connection)
        self.accepted += 1

    def index(self, connection: Registered, identity: Identity) -> UserBudgets | None:
        """File an authenticated connection under its user; the user's budgets.

        None, and nothing filed, when the user already has ``max_per_user``
        connections on this node.
        """
        key = (identity.tenant, identity.sub)
        connections = self._by_user.setdefault(key, set())
        if len(connections) >= self._max_per_user:
            if not connections:
                del self._by_user[key]
            return None
        connections.add(connection)
        self._released.pop(key, None)
        self._forget_released()
        budgets = self._budgets.get(key)
        if budgets is None:
            budgets = self._budgets[key] = UserBudgets(self._budget_sizes, self._budget_scale)
        return budgets

    def discard(self, connection: Registered) -> None:
        """Forget a closed connection."""
        self._all.discard(connection)
        identity = connection.identity
        if identity is not None:
            key = (identity.tenant, identity.sub)
            users = self._by_user.get(key)
            if users is not None:
                users.discard(connection)
                if not users:
                    del self._by_user[key]
                    self._released[key] = self._clock()
                    self._forget_released()

    def _forget_released(self) -> None:
        """Drop the budgets of users gone for longer than ``BUDGET_MEMORY``."""
        deadline = self._clock() - BUDGET_MEMORY
        released = self._released
        while released:
            key, at = next(iter(released.items()))
            if at > deadline:
                break
            del released[key]
            self._budgets.pop(key, None)

    def of_user(self, tenant: str, sub: str) -> list[Registered]:
        """A user's connections on this node."""
        return list(self._by_user.get((tenant, sub), ()))

    def authenticated(self) -> list[Registered]:
        """Every connection filed under a user."""
        return [connection for users in self._by_user.values() for connection in users]

    def __len__(self) -> int:
        return len(self._all)

    def drain(self, reason: str) -> None:
        """Tell every client to reconnect elsewhere (1012) and close them."""
        self.draining = True
        for connection in list(self._all):
            connection.disconnect(CLOSE_RESTART, reason, reconnect=True)
