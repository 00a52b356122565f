"""The fan-out ladder: how many deliveries per second one big room sustains.

One run holds every connection (``fanout`` scenario: 1 trainer + 500 students by
default) while the trainer's chat rate steps up (``Scenario.fanout_rates``, each
for ``fanout_step`` seconds). Each step is measured over its whole seconds but
the first (which still carries the previous step's tail): deliveries per second,
the latency histogram of what arrived in those seconds, and the server's,
generator's and machine's CPU.

A step *keeps up* when at least 95% of the offered pushes arrive (offered = rate x
members); it is *sustained* when it keeps up, delivery p99 stays within the limit
(100 ms by default) and nothing fails. The *max sustainable* delivery rate is the
highest sustained step's deliveries/s, *max kept up* the highest that kept up at
any latency; ``plateau_rate`` is the first step whose deliveries/s grew by less
than 10% over the previous one although the offered rate doubled.
``per_server_core`` (deliveries per second of server CPU, the median over the
steps that kept up) divides by what the server actually used, which keeps the
figure meaningful when the machine, not the server, runs out first: on 2 cores
the generator's processes compete with the server for CPU.

``other_cpu_pct`` is what neither the server nor the generator used in the step
(Redis, the coordinator, and anything else running on the machine), leaving out
the kernel's interrupt and softirq time (loopback TCP, which grows with the
message rate); a step with more than DISTURBED_PCT of it is flagged ``disturbed``.
"""

from __future__ import annotations

import itertools
import math
import os
import statistics
from collections.abc import Mapping
from typing import Any, Protocol

from loadtests.scenarios import Scenario
from loadtests.stats import Histogram, Tally

KEEP_UP = 0.95
PLATEAU_GROWTH = 1.10
DEFAULT_P99_LIMIT_MS = 100.0
DISTURBED_PCT = 35.0  # % of one core used by other processes during a step
CORES = os.cpu_count() or 1


class SecondLike(Protocol):
    """What the analysis reads of one merged second (see runner.Second)."""

    tally: Tally
    online: int
    generator_cpu: float
    server: dict[str, float | None]


def _mean(values: list[float]) -> float | None:
    return round(statistics.fmean(values), 1) if values else None


def other_cpu(machine_pct: float | None, irq_pct: float | None, server: float | None,
              generator: float | None) -> float | None:
    """CPU (% of one core) used by neither the server nor the client processes, nor by
    the kernel's interrupt handling; machine and irq figures are % of all cores."""
    if machine_pct is None:
        return None
    busy = (machine_pct - (irq_pct or 0.0)) * CORES
    return round(max(0.0, busy - (server or 0.0) - (generator or 0.0)), 1)


def step_seconds(scenario: Scenario, step: int, shift: int = 0) -> list[int]:
    """Timeline seconds (index s covers [s-1, s)) measured for ladder step ``step`` of a
    ladder that started ``shift`` seconds after ``fanout_start``."""
    begin = scenario.fanout_start + shift + step * scenario.fanout_step
    first = math.floor(begin) + 2  # skip the step's first second
    last = math.floor(begin + scenario.fanout_step)
    return list(range(first, last + 1))


def analyse(scenario: Scenario, seconds: Mapping[int, SecondLike],
            p99_limit_ms: float = DEFAULT_P99_LIMIT_MS,
            breaker_step: int = 0, shift: int = 0) -> dict[str, Any]:
    """Per-step figures and the verdicts described in the module docstring; the ladder
    started ``shift`` seconds late and was stopped by the breaker in ``breaker_step``
    (1-based; 0: never)."""
    members = scenario.rooms * (scenario.students + 1)
    steps: list[dict[str, Any]] = []
    for index, rate in enumerate(scenario.fanout_rates):
        picked = [seconds[s] for s in step_seconds(scenario, index, shift) if s in seconds]
        latency = Histogram()
        errors = 0
        for second in picked:
            latency.merge(second.tally.latency)
            errors += sum(second.tally.errors.values())
        deliveries = _mean([float(s.tally.counts["deliveries"]) for s in picked])
        offered = rate * members  # every room's trainer publishes to its own members
        lat = latency.summary_ms()
        cpu = _mean([v for s in picked
                     if (v := s.server.get("server_cpu_pct")) is not None])
        stopped = bool(breaker_step) and index + 1 >= breaker_step
        kept_up = deliveries is not None and deliveries >= KEEP_UP * offered and not stopped
        generator = _mean([s.generator_cpu * 100 for s in picked])
        machine = _mean([v for s in picked if (v := s.server.get("machine_cpu_pct")) is not None])
        irq = _mean([v for s in picked if (v := s.server.get("machine_irq_pct")) is not None])
        other = other_cpu(machine, irq, cpu, generator)
        sustained = (kept_up and not stopped and errors == 0 and lat["p99"] is not None
                     and lat["p99"] <= p99_limit_ms)
        steps.append({
            "rate": rate,
            "offered_per_s": offered,
            "deliveries_per_s": deliveries,
            "latency_ms": {k: lat[k] for k in ("count", "p50", "p95", "p99", "max")},
            "server_cpu_pct": cpu,
            "per_server_core": (round(deliveries / (cpu / 100)) if deliveries and cpu
                                else None),
            "generator_cpu_pct": generator,
            "machine_cpu_pct": machine,
            "other_cpu_pct": other,
            "disturbed": other is not None and other > DISTURBED_PCT,
            "errors": errors,
            "stopped_by_breaker": stopped,
            "kept_up": kept_up,
            "sustained": sustained,
        })
    return {"p99_limit_ms": p99_limit_ms, "members": members,
            "started_at_s": scenario.fanout_start + shift, "steps": steps, **verdict(steps)}


def verdict(steps: list[dict[str, Any]]) -> dict[str, Any]:
    """Max sustainable and peak delivery rates, and where deliveries stopped growing."""
    measured = [s for s in steps if s["deliveries_per_s"] is not None]
    sustained = [s for s in measured if s["sustained"]]
    best = max(sustained, key=lambda s: s["deliveries_per_s"], default=None)
    kept = max((s for s in measured if s["kept_up"]), key=lambda s: s["deliveries_per_s"],
               default=None)
    peak = max(measured, key=lambda s: s["deliveries_per_s"], default=None)
    efficiency = [s["per_server_core"] for s in measured
                  if s["kept_up"] and s["per_server_core"] and (s["server_cpu_pct"] or 0) >= 5]
    plateau = None
    for before, after in itertools.pairwise(measured):
        if after["deliveries_per_s"] < PLATEAU_GROWTH * before["deliveries_per_s"]:
            plateau = after["rate"]
            break
    return {
        "max_sustainable_per_s": best["deliveries_per_s"] if best else None,
        "max_sustainable_rate": best["rate"] if best else None,
        "max_sustainable_p99_ms": best["latency_ms"]["p99"] if best else None,
        "max_sustainable_server_cpu_pct": best["server_cpu_pct"] if best else None,
        "max_kept_up_per_s": kept["deliveries_per_s"] if kept else None,
        "max_kept_up_rate": kept["rate"] if kept else None,
        "max_kept_up_p99_ms": kept["latency_ms"]["p99"] if kept else None,
        "per_server_core": round(statistics.median(efficiency)) if efficiency else None,
        "peak_per_s": peak["deliveries_per_s"] if peak else None,
        "peak_rate": peak["rate"] if peak else None,
        "plateau_rate": plateau,
        "disturbed_steps": [s["rate"] for s in measured if s["disturbed"]],
    }


def ladder_table(results: Mapping[str, Mapping[str, Any]]) -> str:
    """A Markdown table: one row per step, deliveries/s and p99 per target."""
    names = list(results)
    head = "| publishes/s | offered deliveries/s | " + " | ".join(
        f"{n}: deliveries/s, p99 ms, server CPU %" for n in names) + " |"
    lines = [head, "|---|---|" + "---|" * len(names)]
    rates: list[float] = []
    for result in results.values():
        for step in result["steps"]:
            if step["rate"] not in rates:
                rates.append(step["rate"])
    for rate in rates:
        cells = []
        offered = None
        for name in names:
            step = next((s for s in results[name]["steps"] if s["rate"] == rate), None)
            if step is None or step["deliveries_per_s"] is None:
                cells.append("-")
                continue
            offered = step["offered_per_s"]
            p99 = step["latency_ms"]["p99"]
            mark = "" if step["sustained"] else " (x)"
            mark += " (disturbed)" if step["disturbed"] else ""
            cells.append(f"{step['deliveries_per_s']:.0f}, "
                         f"{'-' if p99 is None else f'{p99:.1f}'}, "
                         f"{step['server_cpu_pct']}{mark}")
        lines.append(f"| {rate:g} | {'-' if offered is None else f'{offered:.0f}'} | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines)
