"""The server's own view of its fan-out latency, read from its Prometheus histogram.

End-to-end latency, measured by the clients, also contains the generator's own
delays (on a shared machine, most of them). The classroom server exports
``classroom_publish_to_write_seconds``: from an event's publication to the end
of the socket write that carried it to the node's members. The runner scrapes
its cumulative buckets once a second, and the report takes the difference over
the steady window, so the join burst does not count.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Mapping

from loadtests.monitor import fetch_metrics

PUBLISH_TO_WRITE = "classroom_publish_to_write_seconds"
Buckets = dict[float, float]  # upper bound in seconds (inf for +Inf) -> cumulative count


def scrape_buckets(ws_url: str, name: str = PUBLISH_TO_WRITE,
                   timeout: float = 3.0, token: str | None = None) -> Buckets | None:
    """The histogram's cumulative buckets; None when the server has no such histogram."""
    text = fetch_metrics(ws_url, timeout, token)
    return None if text is None else parse_buckets(text, name)


def parse_buckets(text: str, name: str = PUBLISH_TO_WRITE) -> Buckets | None:
    """Cumulative bucket counts of histogram ``name`` in Prometheus text format."""
    prefix = f'{name}_bucket{{le="'
    buckets: Buckets = {}
    for line in text.splitlines():
        if not line.startswith(prefix):
            continue
        bound, _, value = line[len(prefix):].partition('"} ')
        with contextlib.suppress(ValueError):
            buckets[math.inf if bound == "+Inf" else float(bound)] = float(value)
    return buckets or None


def summary_ms(before: Mapping[float, float] | None,
               after: Mapping[float, float] | None) -> dict[str, float | None] | None:
    """Count and quantiles (each the upper bound of its bucket, in ms) between two scrapes,
    and the share of writes within 25 ms; None when either scrape is missing."""
    if after is None:
        return None
    before = before or {}
    bounds = sorted(after)
    counts = [after[b] - before.get(b, 0.0) for b in bounds]
    total = counts[-1] if counts else 0.0
    result: dict[str, float | None] = {"count": total}
    for label, q in (("p50", 0.50), ("p95", 0.95), ("p99", 0.99)):
        result[label] = None
        if total > 0:
            for bound, cumulative in zip(bounds, counts, strict=True):
                if cumulative >= q * total:
                    result[label] = None if math.isinf(bound) else round(bound * 1000, 1)
                    break
    within = next((c for b, c in zip(bounds, counts, strict=True) if b == 0.025), None)
    result["within_25ms_pct"] = (round(100 * within / total, 2)
                                 if within is not None and total > 0 else None)
    return result
