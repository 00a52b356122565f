"""Failed API keys per client address: after too many, the address waits out the window.

A fixed window per address starts at its first failure; ``limit`` failures within
``window`` seconds refuse that address (every request, with a good key too, so a
guess can no longer be told right from wrong) until the window ends. A success
does not clear the count (or a key holder could interleave guesses at another
tenant's key). State lives in this process's memory and is bounded: at most
``max_addresses`` entries, the oldest dropped first.
"""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger("classroom.tenant_api.key_throttle")

DEFAULT_MAX_ADDRESSES = 10_000


@dataclass(slots=True)
class _Window:
    started: float
    failures: int = 0


@dataclass(eq=False)
class KeyThrottle:
    """Counts refused keys per address and tells how long a throttled address must wait."""

    limit: int = 10
    window: float = 60.0
    max_addresses: int = DEFAULT_MAX_ADDRESSES
    clock: Callable[[], float] = time.monotonic
    _windows: OrderedDict[str, _Window] = field(default_factory=OrderedDict, init=False)

    def __post_init__(self) -> None:
        if self.limit < 1 or self.window <= 0 or self.max_addresses < 1:
            raise ValueError("limit and max_addresses must be >= 1, window > 0")

    def retry_after(self, address: str) -> int | None:
        """Whole seconds until ``address`` may try again, or None when it is not throttled."""
        entry = self._current(address)
        if entry is None or entry.failures < self.limit:
            return None
        return max(1, math.ceil(entry.started + self.window - self.clock()))

    def failed(self, address: str) -> None:
        """Count one refused key from ``address``."""
        entry = self._current(address)
        if entry is None:
            self._drop_expired()
            entry = _Window(self.clock())
            self._windows[address] = entry
            while len(self._windows) > self.max_addresses:
                self._windows.popitem(last=False)
        else:
            self._windows.move_to_end(address)
        entry.failures += 1
        if entry.failures == self.limit:
            # The address is personal data: the log tells that it happened, not who.
            log.warning("server API throttled an address after failed API keys",
                        extra={"count": entry.failures})

    def __len__(self) -> int:
        """Addresses remembered (expired ones included until they are touched or evicted)."""
        return len(self._windows)

    def _drop_expired(self) -> None:
        """Forget the least recently failed addresses whose window is over."""
        now = self.clock()
        while self._windows:
            oldest = next(iter(self._windows.values()))
            if now < oldest.started + self.window:
                return
            self._windows.popitem(last=False)

    def _current(self, address: str) -> _Window | None:
        entry = self._windows.get(address)
        if entry is not None and self.clock() >= entry.started + self.window:
            del self._windows[address]
            return None
        return entry
