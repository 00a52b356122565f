"""The figures of one comparison run, from its report and its per-second rows.

Two servers are compared over the *settled* window under the same offered load, and a
run is judged by how much CPU other processes took meanwhile; both are arithmetic on a
finished run, kept here so they can be checked on made-up seconds without a server.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from typing import Any

from loadtests.ladder import SecondLike, other_cpu
from loadtests.scenarios import Scenario
from loadtests.stats import Histogram

SETTLED_SLACK = 1.25


def steady_other_cpu(report: dict[str, Any], seconds: Mapping[int, SecondLike]) -> float | None:
    """Mean CPU (% of one core) that other processes took over the report's steady window
    (Redis and the coordinator count too; kernel interrupt time does not)."""
    window = [row["t"] for row in report["timeline"]][-report["throughput"]["steady_seconds"]:]
    values = [other_cpu(s.server.get("machine_cpu_pct"), s.server.get("machine_irq_pct"),
                        s.server.get("server_cpu_pct"), s.generator_cpu * 100)
              for k in window if (s := seconds.get(k)) is not None]
    return _mean([v for v in values if v is not None])


def disturbance(result: dict[str, Any]) -> float | None:
    """The most CPU (% of one core) other processes took: over the run, or in the worst
    ladder step (a burst of someone else's tests can spoil one step and not the mean)."""
    values = [result["other_cpu_pct"]]
    values += [s["other_cpu_pct"] for s in result.get("ladder", {}).get("steps", [])]
    known = [v for v in values if v is not None]
    return max(known) if known else None


def settled(scenario: Scenario, seconds: Mapping[int, SecondLike]) -> dict[str, Any]:
    """The same figures over the *settled* window: from the first second after the one in
    which every client was online in which deliveries are back to what the publishes
    explain (at most SETTLED_SLACK x publishes x (room size + 1 reply): the join storm's
    presence frames have drained), to the stop. This is where two servers under the same
    offered load are compared."""
    room = scenario.students + 1
    last = max(1, round(scenario.duration))
    indexes = sorted(k for k in seconds if 1 <= k <= last)
    peak = max((seconds[k].online for k in indexes), default=0)
    full = next((k for k in indexes if peak and seconds[k].online >= peak), None)
    window: list[int] = []
    for k in indexes:
        counts = seconds[k].tally.counts
        # After the second in which everyone was online, commands are publishes only.
        if window or (full is not None and k > full and counts["deliveries"]
                      <= SETTLED_SLACK * counts["commands"] * (room + 1)):
            window.append(k)
    latency = Histogram()
    for k in window:
        latency.merge(seconds[k].tally.latency)
    lat = latency.summary_ms()
    rate = _mean([float(seconds[k].tally.counts["deliveries"]) for k in window])
    cpu = _mean([v for k in window if (v := seconds[k].server.get("server_cpu_pct"))
                 is not None])
    return {
        "from_s": window[0] if window else None, "seconds": len(window),
        "deliveries_per_s": rate,
        "offered_per_s": _mean([float(seconds[k].tally.counts["commands"] * room)
                                for k in window]),
        "latency_ms": {k: lat[k] for k in ("count", "p50", "p95", "p99", "max")},
        "server_cpu_pct": cpu,
        "per_server_core": round(rate / (cpu / 100)) if rate and cpu else None,
    }


def _mean(values: list[float]) -> float | None:
    return round(statistics.fmean(values), 1) if values else None


def summarise(report: dict[str, Any], counts: Any) -> dict[str, Any]:
    """The figures the comparison uses, from a run's report."""
    t, lat = report["throughput"], report["latency_ms"]["steady"]
    s, g, c, r = report["server"], report["generator"], report["connections"], report["recovery"]
    cpu, rate = s["cpu_pct_mean"], t["deliveries_per_s_mean"]
    return {
        "online": c["peak_online"], "target": c["target"],
        "deliveries": t["deliveries"], "deliveries_per_s": rate,
        "commands_per_s": t["commands_per_s_mean"],
        "latency_ms": {k: lat[k] for k in ("count", "p50", "p95", "p99", "max")},
        "server_cpu_pct": cpu, "server_cpu_pct_peak": s["cpu_pct_peak"],
        "per_server_core": round(rate / (cpu / 100)) if rate and cpu else None,
        "server_rss_mb": {"start": s["rss_mb_start"], "peak": s["rss_mb_peak"]},
        "errors": report["errors"]["total"], "errors_by_code": report["errors"]["by_code"],
        "gaps": r["gaps"], "duplicates": r["duplicates"], "gap_check": r["gap_check"],
        "out_of_order": int(counts["out_of_order"]),
        "connect_ms": {k: c["connect_ms"][k] for k in ("p50", "p99")},
        "generator_cpu_pct": g["cpu_pct_mean"],
        "generator_loop_lag_p99_ms": g["loop_lag_ms"]["p99"],
        "machine_cpu_pct": g["machine_cpu_pct_mean"],
        "other_cpu_pct": None,  # filled in from the seconds (see Bench.measure_once)
    }


def one_line(result: dict[str, Any]) -> str:
    """A progress line for stderr."""
    lat = result["latency_ms"]
    text = (f"{result['online']}/{result['target']} online, "
            f"{result['deliveries_per_s']} deliveries/s, p50 {lat['p50']} p99 {lat['p99']} ms, "
            f"server CPU {result['server_cpu_pct']}%, errors {result['errors']}")
    ladder = result.get("ladder")
    if ladder:
        text += (f"; max sustainable {ladder['max_sustainable_per_s']}/s "
                 f"(at {ladder['max_sustainable_rate']}/s), peak {ladder['peak_per_s']}/s")
    return text + f", other processes {result['other_cpu_pct']}% [{result['seconds']} s]"
