"""A finished scaleout run's figures: which seconds count, what the clients saw, and
the totals over the nodes, Redis, the balancer and the machine.

Pure arithmetic on the coordinator's seconds and the probe's readings, so the tests
can check the windows and the sums on made-up numbers without starting anything.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from loadtests.runner import Second
from loadtests.scaleout.config import Shape, Timeline
from loadtests.scaleout.figures import (
    growth,
    node_figures,
    process_figures,
    redis_figures,
    rounded,
)
from loadtests.scaleout.probe import Reading
from loadtests.stats import Histogram

MIN_IDLE = 3  # seconds: the shortest idle window the analysis accepts
QUIET_PCT = 25.0  # % of one core other processes may use for the machine to count as quiet


def _other_cpu(k: int, readings: Mapping[int, Reading], second: Second) -> float | None:
    """CPU (% of one core) that processes outside the run took in second ``k``: the
    machine's busy time less interrupts, the nodes, Redis, the balancer and the clients."""
    a, b = readings.get(k - 1), readings.get(k)
    if a is None or b is None or b.at <= a.at:
        return None
    busy, irq = growth(b.machine_busy, a.machine_busy), growth(b.machine_irq, a.machine_irq)
    if busy is None:
        return None
    ours = second.generator_cpu + (irq or 0.0)
    for before, after in zip(a.nodes, b.nodes, strict=True):
        if before is not None and after is not None:
            ours += after.cpu_seconds - before.cpu_seconds
    for port, after_redis in b.redis.items():
        before_redis = a.redis.get(port)
        if before_redis is not None and after_redis is not None:
            ours += after_redis.cpu_seconds - before_redis.cpu_seconds
    for name, after_other in b.others.items():
        before_other = a.others.get(name)
        if before_other is not None and after_other is not None:
            ours += after_other.cpu_seconds - before_other.cpu_seconds
    return max(0.0, 100 * (busy - ours) / (b.at - a.at))


def analyse(shape_: Shape, timeline: Timeline, report: Mapping[str, Any],
            seconds: Mapping[int, Second], readings: Mapping[int, Reading],
            primaries: set[int]) -> dict[str, Any]:
    """The run's figures: clients, each node, each Redis process, and the machine.

    The idle window starts after the last second in which anyone was still joining (a
    ramp slowed by a busy machine runs late), keeping at least MIN_IDLE seconds; joins
    left in either window are reported (``windows_clean``)."""
    target = report["connections"]["target"]

    def joining(k: int) -> bool:
        counts = seconds[k].tally.counts if k in seconds else None
        return counts is not None and (seconds[k].online < target
                                       or bool(counts["connects"] + counts["reconnects"]))

    last_join = max((k for k in range(timeline.idle_from + 1, timeline.publish_from + 1)
                     if joining(k)), default=None)
    if last_join is not None:
        timeline = dataclasses.replace(
            timeline, idle_from=min(last_join, timeline.publish_from - MIN_IDLE))
    rows = range(timeline.measure_from + 1, timeline.measure_to + 1)
    present = [seconds[k] for k in rows if k in seconds]
    window_errors = sum(sum(seconds[k].tally.errors.values()) for k in rows if k in seconds)
    latency, quiet = Histogram(), Histogram()
    quiet_seconds = 0
    deliveries = publications = 0
    generator = 0.0
    for k in rows:
        if k not in seconds:
            continue
        other = _other_cpu(k, readings, seconds[k])
        if other is not None and other < QUIET_PCT:
            quiet.merge(seconds[k].tally.latency)
            quiet_seconds += 1
    for second in present:
        latency.merge(second.tally.latency)
        deliveries += second.tally.counts["deliveries"]
        publications += second.tally.counts["commands"]
        generator += second.generator_cpu
    wall = len(present) or 1
    late = [k for k in range(timeline.idle_from + 1, timeline.measure_to + 1) if joining(k)]
    nodes = [node_figures(n, connections, readings, timeline)
             for n, connections in enumerate(shape_.per_node)]
    first, last = readings[timeline.measure_from], readings[timeline.measure_to]
    span = last.at - first.at
    result: dict[str, Any] = {
        "shape": shape_.name, "nodes": shape_.nodes, "members": shape_.members,
        "rooms": shape_.rooms,
        "broker": shape_.broker, "timeline": timeline.to_dict(),
        "online": report["connections"]["peak_online"], "target": report["connections"]["target"],
        "errors": report["errors"]["total"], "error_codes": report["errors"]["by_code"],
        "error_samples": report["errors"]["samples"], "errors_in_window": window_errors,
        "gaps": report["recovery"]["gaps"], "duplicates": report["recovery"]["duplicates"],
        "gap_check": report["recovery"]["gap_check"],
        "windows_clean": not late, "seconds_with_joins_in_windows": late,
        "publications": publications,
        "publications_per_s": round(publications / wall, 2),
        "deliveries_per_s": round(deliveries / wall, 1),
        "deliveries_per_publication": round(deliveries / publications, 1) if publications else None,
        "latency_ms": latency.summary_ms(),
        "latency_ms_all_events": report["latency_ms"],
        # Only the seconds of the window in which other processes took < QUIET_PCT of a core.
        "latency_ms_quiet_seconds": {**quiet.summary_ms(), "seconds": quiet_seconds},
        "node": nodes,
        "generator_cpu_pct": round(100 * generator / wall, 1),
    }
    cpu_nodes = sum(n.get("cpu_pct", 0.0) for n in nodes)
    frames = [n.get("deliveries_per_s") or 0.0 for n in nodes]
    result["server_cpu_pct_total"] = round(cpu_nodes, 1)
    result["server_us_per_delivery_all_nodes"] = (
        round(cpu_nodes * 1e4 / sum(frames), 2) if sum(frames) else None)
    others_cpu = 0.0
    if shape_.balancer:
        result["balancer"] = process_figures(
            "haproxy", readings, timeline, sum(frames),
            sum(n["connections"] for n in nodes))
        others_cpu = result["balancer"].get("cpu_pct", 0.0)
    redis_cpu = 0.0
    if shape_.broker == "cluster":
        result["redis"] = redis_figures(readings, timeline, primaries, publications,
                                        shape_.clients)
        redis_cpu = sum(p.get("cpu_pct", 0.0) for p in result["redis"]["processes"].values())
    busy = growth(last.machine_busy, first.machine_busy)
    irq = growth(last.machine_irq, first.machine_irq)
    if busy is not None and span > 0:
        busy_pct = 100 * busy / span
        result["machine"] = {
            "busy_pct_of_one_core": round(busy_pct, 1),
            "irq_pct_of_one_core": rounded(100 * irq / span if irq is not None else None),
            "redis_pct_of_one_core": round(redis_cpu, 1),
            "other_pct_of_one_core": round(max(0.0, busy_pct - 100 * (irq or 0.0) / span
                                                - cpu_nodes - redis_cpu - others_cpu
                                                - result["generator_cpu_pct"]), 1),
        }
    return result
