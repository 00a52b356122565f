"""Members first: new WebSocket upgrades wait while the node's core is nearly full.

A node has one core for everything. When thousands of clients connect or
reconnect at once (a node restarted, a lecture starting, a network blip), each
costs that core about a millisecond or two for its handshake, its token and its
join. Let in as fast as they arrive, they keep the core full for seconds, and
every member already in waits behind them: events that took 2-5 ms take
30-150 ms, and every member who is back sooner is one more member who waits.

The gate keeps some of the core for the members. A probe due every
:data:`TICK_SECONDS` reads the process's CPU time; while its share of the last
moments (smoothed over about :data:`SMOOTHING_SECONDS`) stays under
``busy_share`` an upgrade goes through at once, as before. Above it, the upgrade
(its request is already read and checked; the handshake, the token and the join
are what cost) waits in line with its socket paused, and the probe lets the line
through in arrival order: a few per tick while the core has room, and at least
``min_rate`` a second however busy it is, so that nobody waits forever. Clients
see a slower handshake, never an error; a client that gave up meanwhile is
skipped.

Plain HTTP (the server API, ``/readyz``, ``/metrics``) never waits here: a
balancer's health check must not be told the node is down because it is busy.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client import Counter, Gauge, Histogram

log = logging.getLogger("classroom.edge.upgrade_gate")

TICK_SECONDS = 0.01
"""How often the probe is due while upgrades are arriving or waiting."""
SMOOTHING_SECONDS = 0.1
"""About how far back the CPU share looks: long enough to average a loop's bursts, short
enough to let the line through as soon as the core has room."""
RELEASED_PER_TICK = 4
"""Upgrades let through per tick while the core has room (400 a second at most)."""
IDLE_AFTER = 1.0
"""Seconds without an upgrade after which the probe stops (an idle node does not tick)."""


@dataclass(slots=True)
class _Waiting:
    upgrade: Callable[[], None]
    gone: Callable[[], bool]
    since: float


class UpgradeGate:
    """Lets WebSocket upgrades through at once while the core has room, else in line."""

    def __init__(self, busy_share: float, min_rate: float, *, held: Counter | None = None,
                 waited: Histogram | None = None, waiting: Gauge | None = None,
                 cpu_clock: Callable[[], float] = time.process_time) -> None:
        self._busy_share = busy_share
        self._min_interval = 1.0 / min_rate
        self._held = held
        self._waited = waited
        self._cpu_clock = cpu_clock
        if waiting is not None:
            waiting.set_function(lambda: len(self._line))
        self._line: collections.deque[_Waiting] = collections.deque()
        self._share = 0.0
        self._last_upgrade = 0.0
        self._last_release = 0.0
        self._probe: asyncio.Task[None] | None = None

    @property
    def enabled(self) -> bool:
        """Whether upgrades may wait at all (a ``busy_share`` of 0 turns the gate off)."""
        return self._busy_share > 0

    @property
    def share(self) -> float:
        """The process's smoothed share of a core, as the probe last measured it."""
        return self._share

    def __len__(self) -> int:
        return len(self._line)

    def admit(self, upgrade: Callable[[], None], gone: Callable[[], bool],
              pause: Callable[[], None]) -> bool:
        """Run ``upgrade`` now, or ``pause`` the socket and run it in turn; True if now.

        ``gone`` tells whether the client closed meanwhile (its turn is then skipped).
        """
        now = time.monotonic()
        self._last_upgrade = now
        if not self.enabled:
            upgrade()
            return True
        self._ensure_probe()
        if not self._line and self._share < self._busy_share:
            upgrade()
            return True
        pause()
        if not self._line:
            self._last_release = now  # the least rate counts from the line's start
        self._line.append(_Waiting(upgrade, gone, now))
        if self._held is not None:
            self._held.inc()
        return False

    def stop(self) -> None:
        """Stop the probe (the node is stopping): whoever still waits is closed with the
        server's other HTTP connections, and reconnects elsewhere."""
        probe, self._probe = self._probe, None
        if probe is not None:
            probe.cancel()

    def _ensure_probe(self) -> None:
        if self._probe is None or self._probe.done():
            self._probe = asyncio.get_running_loop().create_task(self._run_probe())

    async def _run_probe(self) -> None:
        clock, cpu_clock = time.monotonic, self._cpu_clock
        last, last_cpu = clock(), cpu_clock()
        while True:
            await asyncio.sleep(TICK_SECONDS)
            now, cpu = clock(), cpu_clock()
            elapsed = now - last
            if elapsed > 0:
                weight = min(1.0, elapsed / SMOOTHING_SECONDS)
                self._share += weight * ((cpu - last_cpu) / elapsed - self._share)
            last, last_cpu = now, cpu
            self._tick(now)
            if not self._line and now - self._last_upgrade > IDLE_AFTER:
                self._probe = None
                self._share = 0.0
                return

    def _tick(self, now: float) -> None:
        """Let the line through: a few while the core has room, one per ``1/min_rate`` s else."""
        if not self._line:
            return
        if self._share < self._busy_share:
            for _ in range(RELEASED_PER_TICK):
                if not self._line:
                    break
                self._release(now)
        elif now - self._last_release >= self._min_interval:
            self._release(now)

    def _release(self, now: float) -> None:
        """Run the first waiting upgrade whose client is still there."""
        while self._line:
            waiting = self._line.popleft()
            if waiting.gone():
                continue
            self._last_release = now
            if self._waited is not None:
                self._waited.observe(now - waiting.since)
            try:
                waiting.upgrade()
            except Exception as exc:  # noqa: BLE001 - one client's failure is not the line's
                log.error("a held upgrade failed (%s)", type(exc).__name__)
            return
