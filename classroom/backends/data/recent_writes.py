"""Writes this node made a moment ago for the same token, so a reconnect storm skips them.

Every connect stores the user's profile and every join adds the session to the
user's index (``user-sessions``), each a Redis round trip. When thousands of
clients reconnect at once with the tokens they had, both writes would store
exactly what the same token stored seconds before. A write is skipped when this
node made it for an equal identity (same tenant, user, claims and issue time)
within :data:`KEEP_FOR` seconds.

Why that is safe for erasure: an erasure revokes every token issued before it,
and both writes come after that check (``token_revoked`` at connect,
``join_checks`` at join), so a remembered identity can only be an identity whose
token is still valid, whose writes reached Redis before the erasure read them.
A token issued after the erasure is a new identity and writes again. Because
Redis replication is asynchronous, a failover may lose the newest writes: the
node forgets everything here whenever its broker connection comes back, and at
every user-level command (disconnect, erasure).

The cost: the profile's ``last_seen`` is at most :data:`KEEP_FOR` seconds old.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Hashable

KEEP_FOR = 60.0
"""Seconds a write counts as recent: a reconnect storm is over well within it."""
CAPACITY = 20_000
"""Writes remembered at most (the least recently made go first)."""


class RecentWrites:
    """A bounded record of writes made lately, by what they wrote."""

    def __init__(self, keep_for: float = KEEP_FOR, capacity: int = CAPACITY) -> None:
        self._keep_for = keep_for
        self._capacity = capacity
        self._made: collections.OrderedDict[Hashable, float] = collections.OrderedDict()

    def __len__(self) -> int:
        return len(self._made)

    def recent(self, key: Hashable) -> bool:
        """Whether the write ``key`` names was made within ``keep_for`` seconds."""
        made = self._made.get(key)
        if made is None:
            return False
        if time.monotonic() - made < self._keep_for:
            return True
        del self._made[key]
        return False

    def made(self, key: Hashable) -> None:
        """The write ``key`` names was made now."""
        if self._capacity <= 0:
            return
        self._made[key] = time.monotonic()
        self._made.move_to_end(key)
        while len(self._made) > self._capacity:
            self._made.popitem(last=False)

    def clear(self) -> None:
        """Forget every write (a user-level command, or Redis came back)."""
        self._made.clear()
