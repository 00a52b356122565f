"""Counters and latency histograms that worker processes fill and the coordinator merges.

Latencies go into log-spaced buckets 1% wide instead of a list of samples, so
memory stays bounded however long a run lasts and per-second histograms from
several processes add up exactly; a percentile is then accurate to about 1%.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

_FLOOR = 1e-6  # seconds; anything faster lands in bucket 0
_GROWTH = 1.01
_LOG_GROWTH = math.log(_GROWTH)
PERCENTILES = (50.0, 95.0, 99.0)


@dataclass
class Histogram:
    """Latency samples (seconds) in 1%-wide logarithmic buckets, with exact count, sum, max."""

    buckets: dict[int, int] = field(default_factory=dict)
    count: int = 0
    total: float = 0.0
    max: float = 0.0
    min: float = math.inf

    def add(self, seconds: float, _log: Callable[[float], float] = math.log) -> None:
        """Record one sample; negative values (clock noise) count as zero.

        Workers call this a few times per received frame, so it avoids calls it can:
        plain comparisons instead of ``max``/``min``, ``math.log`` bound as a default.
        """
        if seconds > _FLOOR:
            index = int(_log(seconds / _FLOOR) / _LOG_GROWTH) + 1
        else:
            index = 0
            if seconds < 0.0:
                seconds = 0.0
        buckets = self.buckets
        buckets[index] = buckets.get(index, 0) + 1
        self.count += 1
        self.total += seconds
        if seconds > self.max:
            self.max = seconds
        if seconds < self.min:
            self.min = seconds

    def merge(self, other: Histogram) -> None:
        """Add another histogram's samples to this one."""
        for index, n in other.buckets.items():
            self.buckets[index] = self.buckets.get(index, 0) + n
        self.count += other.count
        self.total += other.total
        self.max = max(self.max, other.max)
        self.min = min(self.min, other.min)

    def percentile(self, q: float) -> float:
        """The q-th percentile in seconds (bucket midpoint, kept within min..max)."""
        if not self.count:
            return math.nan
        rank = max(1, math.ceil(self.count * q / 100.0))
        seen = 0
        for index in sorted(self.buckets):
            seen += self.buckets[index]
            if seen >= rank:
                value = 0.0 if index == 0 else _FLOOR * _GROWTH ** (index - 0.5)
                return min(max(value, self.min), self.max)
        return self.max

    def summary_ms(self) -> dict[str, Any]:
        """Count, mean, p50, p95, p99 and max in milliseconds (None when empty)."""
        if not self.count:
            return {"count": 0, "mean": None, "p50": None, "p95": None, "p99": None,
                    "max": None}
        result: dict[str, Any] = {"count": self.count,
                                  "mean": round(self.total / self.count * 1000, 3)}
        for q in PERCENTILES:
            result[f"p{q:g}"] = round(self.percentile(q) * 1000, 3)
        result["max"] = round(self.max * 1000, 3)
        return result


@dataclass
class Tally:
    """What happened in one interval (or a whole run): additive counters and histograms.

    ``counts`` keys are documented in loadtests/README.md (deliveries, connects,
    gaps, ...); ``errors`` is keyed by protocol error code or ``close_<code>``.
    """

    counts: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    latency: Histogram = field(default_factory=Histogram)
    by_kind: dict[str, Histogram] = field(default_factory=dict)
    publish_leg: Histogram = field(default_factory=Histogram)  # publisher clock -> event.at
    delivery_leg: Histogram = field(default_factory=Histogram)  # event.at -> receiver clock
    connect: Histogram = field(default_factory=Histogram)  # socket open -> joined (or connected)
    reconnect: Histogram = field(default_factory=Histogram)  # reconnect attempt -> joined
    downtime: Histogram = field(default_factory=Histogram)  # connection ended -> joined again
    loop_lag: Histogram = field(default_factory=Histogram)  # generator event-loop lateness

    def kind(self, name: str) -> Histogram:
        """The latency histogram of one event kind, created on first use."""
        histogram = self.by_kind.get(name)
        if histogram is None:
            histogram = self.by_kind[name] = Histogram()
        return histogram

    def merge(self, other: Tally) -> None:
        """Add another tally into this one."""
        self.counts.update(other.counts)
        self.errors.update(other.errors)
        self.latency.merge(other.latency)
        for name, histogram in other.by_kind.items():
            self.kind(name).merge(histogram)
        self.publish_leg.merge(other.publish_leg)
        self.delivery_leg.merge(other.delivery_leg)
        self.connect.merge(other.connect)
        self.reconnect.merge(other.reconnect)
        self.downtime.merge(other.downtime)
        self.loop_lag.merge(other.loop_lag)


@dataclass
class Tick:
    """A worker's report for one second of the run (or its final remainder)."""

    worker: int
    second: int  # whole seconds since the shared start; -1 for the final remainder
    tally: Tally
    online: int  # connections open and authenticated (and joined, when the run joins)
    cpu_seconds: float  # this worker's user+system CPU time so far
    samples: dict[str, list[str]] = field(default_factory=dict)  # error code -> messages
