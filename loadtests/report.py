"""Turning merged tallies into the JSON report, and a short human summary of it.

Rates are given over the *steady* window (from the first second at which every
connection that would ever be online was online, to the stop) as well as at
their peak, so a long ramp-up does not dilute them. The field meanings are
documented in loadtests/README.md.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Mapping
from typing import Any, Protocol

from loadtests.monitor import (
    COLLECTION_SERIES,
    FULL_COLLECTION_SECONDS,
    FULL_COLLECTIONS,
    LOOP_TICKS,
    LOOP_TICKS_WITHIN_50MS,
    LOOP_TICKS_WITHIN_250MS,
    STALL_SERIES,
)
from loadtests.scenarios import Scenario
from loadtests.serverside import Buckets, summary_ms
from loadtests.stats import Histogram, Tally

REPORT_VERSION = 1


class SecondLike(Protocol):
    """What the report reads of one merged second (see runner.Second)."""

    tally: Tally
    online: int
    generator_cpu: float
    server: dict[str, float | None]
    buckets: Buckets | None


def _memory_gib() -> float | None:
    try:
        pages = os.sysconf("SC_PHYS_PAGES")
        return round(pages * os.sysconf("SC_PAGE_SIZE") / 2**30, 1)
    except (ValueError, OSError):
        return None


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    return {"cpus": os.cpu_count(), "memory_gib": _memory_gib(),
            "python": platform.python_version(), "system": platform.platform(terse=True)}


def _row(index: int, second: SecondLike) -> dict[str, Any]:
    tally = second.tally
    counts = tally.counts
    latency = tally.latency.summary_ms()
    return {
        "t": index,
        "online": second.online,
        "connects": counts["connects"] + counts["reconnects"],
        "deliveries": counts["deliveries"],
        "commands": counts["commands"],
        "errors": sum(tally.errors.values()),
        "gaps": counts["gaps"],
        "duplicates": counts["duplicates"],
        "latency_p50_ms": latency["p50"],
        "latency_p95_ms": latency["p95"],
        "latency_p99_ms": latency["p99"],
        "latency_max_ms": latency["max"],
        "generator_cpu_pct": round(second.generator_cpu * 100, 1),
        # How late the generator's own loops woke up this second: a latency spike with a
        # lag as large is the generator's, not the server's.
        "generator_lag_max_ms": tally.loop_lag.summary_ms()["max"],
        **second.server,
    }


def _steady(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows from the second after full strength to the end (the second in which the last
    clients joined still carries their join burst); all rows if it never got there."""
    if not rows:
        return rows
    peak = max(row["online"] for row in rows)
    for position, row in enumerate(rows):
        if peak and row["online"] >= peak:
            return rows[position + 1:] or rows[position:]
    return rows


def _publish_to_write(seconds: Mapping[int, SecondLike], steady: list[dict[str, Any]],
                      start: Buckets | None) -> dict[str, float | None] | None:
    """The server's publish-to-write histogram over the steady window (see serverside)."""
    if start is None or not steady:
        return None
    first, last = steady[0]["t"], steady[-1]["t"]
    before = seconds[first - 1].buckets if first - 1 in seconds else start
    return summary_ms(before, seconds[last].buckets)


def _stat(values: list[float], how: str) -> float | None:
    if not values:
        return None
    result = statistics.fmean(values) if how == "mean" else max(values)
    return round(result, 1)


def _gap_check(scenario: Scenario, driver: str = "classroom") -> str:
    """Which clients' offsets could be checked for gaps in this run, and why not."""
    if driver != "classroom":
        return f"n/a: the {driver} driver has no offsets (see out_of_order)"
    if not scenario.join:
        return "n/a: connect-only run"
    if scenario.progress_every > 0:
        return "off: progress reports use offsets no client receives live (--progress-every 0)"
    return "every client"


def _metrics_delta(metrics: tuple[Mapping[str, float] | None, Mapping[str, float] | None],
                   ) -> dict[str, float] | None:
    before, after = metrics
    if before is None or after is None:
        return None
    delta = {name: round(after[name] - before.get(name, 0.0), 1) for name in sorted(after)}
    if "classroom_connections" in after:
        delta["classroom_connections"] = after["classroom_connections"]  # a gauge: level
    return delta


def _stalls(metrics: tuple[Mapping[str, float] | None, Mapping[str, float] | None],
            ) -> dict[str, Any] | None:
    """The node's own stops during the run: loop-lag ticks over 50 and 250 ms, its full
    collections (count, seconds in all) and its young and middle ones (count, seconds, how
    many over 25 ms); None for a server that does not report them."""
    before, after = metrics
    if before is None or after is None or LOOP_TICKS not in after:
        return None
    grown = {key: after.get(key, 0.0) - before.get(key, 0.0) for key in STALL_SERIES}
    ticks = grown[LOOP_TICKS]
    return {
        "loop_ticks": round(ticks),
        "loop_stalls_over_50ms": round(ticks - grown[LOOP_TICKS_WITHIN_50MS]),
        "loop_stalls_over_250ms": round(ticks - grown[LOOP_TICKS_WITHIN_250MS]),
        "full_collections": round(grown[FULL_COLLECTIONS]),
        "full_collection_seconds": round(grown[FULL_COLLECTION_SECONDS], 3),
        "collections": {
            name: {"count": round(grown[count]), "seconds": round(grown[total], 3),
                   "over_25ms": round(grown[count] - grown[within_25ms])}
            for name, (count, total, within_25ms) in COLLECTION_SERIES.items()
        },
    }


def _collections(stalls: Mapping[str, Any]) -> str:
    """The young and middle collections for the summary (reports written before they were
    counted have none): in a storm these, not the full ones, are what the loop stops for."""
    collections = stalls.get("collections")
    if not collections:
        return ""
    return "; " + ", ".join(
        f"{name} {c['count']} ({c['seconds']} s, {c['over_25ms']} over 25 ms)"
        for name, c in collections.items())


def _time_away(downtime: Mapping[str, Any] | None) -> str:
    """How long dropped clients were away, for the summary: a node that lets them back
    sooner has more members receiving while it is busiest, which its p99 counts."""
    if not downtime or not downtime.get("count") or downtime.get("p50") is None:
        return ""
    return (f"; away p50 {downtime['p50'] / 1000:.1f} s, p99 {downtime['p99'] / 1000:.1f} s, "
            f"max {downtime['max'] / 1000:.1f} s")


def build_report(*, scenario: Scenario, url: str, processes: int, server_pid: int | None,
                 pid_source: str, seconds: Mapping[int, SecondLike], total: Tally,
                 samples: Mapping[int, Mapping[str, list[str]]],
                 metrics: tuple[Mapping[str, float] | None, Mapping[str, float] | None],
                 failures: list[str], wall_seconds: float,
                 rss_start: int | None, driver: str = "classroom",
                 buckets_start: Buckets | None = None) -> dict[str, Any]:
    """The whole report as plain JSON-ready data."""
    last = max(1, round(scenario.duration))
    rows = [_row(k, seconds[k]) for k in sorted(seconds) if 1 <= k <= last]
    steady = _steady(rows)
    steady_latency = Histogram()
    for row in steady:
        steady_latency.merge(seconds[row["t"]].tally.latency)
    counts = total.counts

    def column(name: str, among: list[dict[str, Any]]) -> list[float]:
        return [row[name] for row in among if row.get(name) is not None]

    merged_samples: dict[str, list[str]] = {}
    for worker_samples in samples.values():
        for code, messages in worker_samples.items():
            bucket = merged_samples.setdefault(code, [])
            bucket.extend(m for m in messages if m not in bucket and len(bucket) < 5)
    rss = column("server_rss_mb", rows)
    return {
        "report_version": REPORT_VERSION,
        "scenario": scenario.name,
        "url": url,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "wall_seconds": round(wall_seconds, 2),
        "machine": machine(),
        "config": {**scenario.to_dict(), "processes": processes, "driver": driver},
        "connections": {
            "target": scenario.clients,
            "peak_online": max(column("online", rows), default=0),
            "connects": counts["connects"],
            "reconnects": counts["reconnects"],
            "connects_per_s_peak": max(column("connects", rows), default=0),
            "connect_ms": total.connect.summary_ms(),
            "reconnect_ms": total.reconnect.summary_ms(),
            "downtime_ms": total.downtime.summary_ms(),
        },
        "throughput": {
            "deliveries": counts["deliveries"],
            "pushes": counts["pushes"],
            "replies": counts["replies"],
            "commands": counts["commands"],
            "steady_seconds": len(steady),
            "deliveries_per_s_mean": _stat(column("deliveries", steady), "mean"),
            "deliveries_per_s_peak": _stat(column("deliveries", rows), "max"),
            "commands_per_s_mean": _stat(column("commands", steady), "mean"),
        },
        "latency_ms": {
            **total.latency.summary_ms(),
            "steady": steady_latency.summary_ms(),
            "by_kind": {k: h.summary_ms() for k, h in sorted(total.by_kind.items())},
            "publish_leg": total.publish_leg.summary_ms(),
            "delivery_leg": total.delivery_leg.summary_ms(),
        },
        "errors": {
            "total": sum(total.errors.values()) + len(failures),
            "by_code": dict(sorted(total.errors.items())),
            "samples": merged_samples,
            "run_failures": failures,
        },
        "recovery": {
            "gap_check": _gap_check(scenario, driver),
            "rejoins": counts["rejoins"],
            "recovered": counts["recovered"],
            "not_recovered": counts["not_recovered"],
            "replayed": counts["replayed"],
            "gaps": counts["gaps"],
            "duplicates": counts["duplicates"],
            "out_of_order": counts["out_of_order"],  # socketio driver: a lower seq after a higher
            "skipped_offsets": counts["skipped_offsets"],
            # Answers told by a coalesced poll.tally rather than a tally of their own.
            "coalesced_tallies": counts["coalesced"],
            "epoch_changes": counts["epoch_changes"],
            "storm_drops": counts["storm_drops"],
            "unanswered": counts["unanswered"],
            "skipped_offline": counts["skipped_offline"],
        },
        "presence": {
            "mode": scenario.presence,
            "frames": counts["presence_frames"],
            "by_type": {k: counts[f"presence_{k}"] for k in ("join", "leave", "diff", "count")},
            "changes_told": counts["presence_changes"],
            "frames_per_change": (round(counts["presence_frames"] / counts["presence_changes"], 4)
                                  if counts["presence_changes"] else None),
        },
        "slow": {
            "clients": scenario.slow_clients,
            "paused": counts["slow_paused"],
            "closed_by_server": counts["slow_closed"],
            "close_codes": {name.rsplit("_", 1)[1]: n for name, n in sorted(counts.items())
                            if name.startswith("slow_closed_")},
            "still_open": counts["slow_still_open"],
            "frames_drained_after_stop": counts["slow_drained"],
        },
        "server": {
            "pid": server_pid,
            "pid_source": pid_source,
            "rss_mb_start": round(rss_start / 2**20, 1) if rss_start else None,
            "rss_mb_peak": max(rss) if rss else None,
            "rss_mb_end": rss[-1] if rss else None,
            "cpu_pct_mean": _stat(column("server_cpu_pct", steady), "mean"),
            "cpu_pct_peak": _stat(column("server_cpu_pct", rows), "max"),
            "metrics_delta": _metrics_delta(metrics),
            "stalls": _stalls(metrics),
            "publish_to_write_ms": _publish_to_write(seconds, steady, buckets_start),
        },
        "generator": {
            "processes": processes,
            "cpu_pct_mean": _stat(column("generator_cpu_pct", steady), "mean"),
            "cpu_pct_peak": _stat(column("generator_cpu_pct", rows), "max"),
            "loop_lag_ms": total.loop_lag.summary_ms(),
            "machine_cpu_pct_mean": _stat(column("machine_cpu_pct", steady), "mean"),
        },
        "timeline": rows,
    }


def summary(report: Mapping[str, Any]) -> str:
    """A few lines for the terminal after the run."""
    c, t, lat = report["connections"], report["throughput"], report["latency_ms"]
    e, r, s, g = report["errors"], report["recovery"], report["server"], report["generator"]
    lines = [
        f"scenario {report['scenario']}: {c['peak_online']}/{c['target']} online at peak, "
        f"{c['connects']} connects, {c['reconnects']} reconnects",
        f"deliveries {t['deliveries']} ({t['deliveries_per_s_mean']}/s steady, "
        f"{t['deliveries_per_s_peak']}/s peak), commands {t['commands']}",
        f"latency ms: p50 {lat['p50']} p95 {lat['p95']} p99 {lat['p99']} max {lat['max']} "
        f"({lat['count']} samples); steady window p50 {lat['steady']['p50']} "
        f"p99 {lat['steady']['p99']}",
        f"errors {e['total']} {e['by_code'] or ''}".rstrip(),
        f"recovery: rejoins {r['rejoins']} recovered {r['recovered']} gaps {r['gaps']} "
        f"duplicates {r['duplicates']} ({r['gap_check']}){_time_away(c['downtime_ms'])}",
        f"server pid {s['pid']}: rss {s['rss_mb_start']} -> peak {s['rss_mb_peak']} MB, "
        f"cpu mean {s['cpu_pct_mean']}% peak {s['cpu_pct_peak']}%; "
        f"generator cpu mean {g['cpu_pct_mean']}% over {g['processes']} processes",
    ]
    stalls = s.get("stalls")
    if stalls:
        lines.append(
            f"server stops: {stalls['loop_stalls_over_50ms']} over 50 ms "
            f"({stalls['loop_stalls_over_250ms']} over 250 ms) in {stalls['loop_ticks']} "
            f"ticks; {stalls['full_collections']} full collections, "
            f"{stalls['full_collection_seconds']} s in all{_collections(stalls)}")
    if report["slow"]["clients"]:
        slow = report["slow"]
        lines.append(f"slow readers: {slow['clients']}, closed by the server: "
                     f"{slow['closed_by_server']} {slow['close_codes']}, "
                     f"still open: {slow['still_open']}")
    return "\n".join(lines)


def _pair(a: object, b: object) -> str:
    return f"{a if a is not None else '-'} / {b if b is not None else '-'}"


def markdown_table(reports: Mapping[str, Mapping[str, Any]]) -> str:
    """One row per report (keyed by run name): the figures loadtests/README.md tabulates."""
    lines = [
        "| run | clients online / target | deliveries/s steady (peak) | latency ms p50 / p95 / "
        "p99 / max, steady | errors | gaps / duplicates | server CPU % mean / peak | "
        "server RSS MB start -> peak | generator CPU % mean | connect ms p50 / p99 |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in reports.items():
        c, t, lat = r["connections"], r["throughput"], r["latency_ms"]["steady"]
        s, rec = r["server"], r["recovery"]
        latency = "-" if lat["p50"] is None else (
            f"{lat['p50']:.1f} / {lat['p95']:.1f} / {lat['p99']:.1f} / {lat['max']:.1f}")
        gaps = _pair(rec["gaps"], rec["duplicates"]) if rec["gap_check"] == "every client" \
            else "not checked"
        connect = c["connect_ms"]
        connect_p = [None if v is None else round(v, 1) for v in (connect["p50"], connect["p99"])]
        codes = ", ".join(f"{k} {v}" for k, v in r["errors"]["by_code"].items())
        lines.append(
            f"| {name} | {c['peak_online']} / {c['target']} | "
            f"{t['deliveries_per_s_mean']} ({t['deliveries_per_s_peak']}) | {latency} | "
            f"{r['errors']['total']}{f' ({codes})' if codes else ''} | {gaps} | "
            f"{_pair(s['cpu_pct_mean'], s['cpu_pct_peak'])} | "
            f"{s['rss_mb_start']} -> {s['rss_mb_peak']} | {r['generator']['cpu_pct_mean']} | "
            f"{_pair(*connect_p)} |"
        )
    return "\n".join(lines)
