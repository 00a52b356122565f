"""The report's timeline as one PNG: connections, throughput, latency, server resources.

Drawn with matplotlib's Agg backend so it works on a machine without a display;
matplotlib is imported only when a plot is asked for, so a run without
``--plot`` does not need it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def _series(rows: Sequence[Mapping[str, Any]], name: str) -> list[float]:
    return [math.nan if row.get(name) is None else float(row[name]) for row in rows]


def write_plot(report: Mapping[str, Any], path: str | Path) -> None:
    """Draw the timeline of ``report`` into a PNG file at ``path``."""
    import matplotlib  # heavy and optional: imported only when a plot is wanted

    matplotlib.use("Agg")
    from matplotlib import pyplot

    rows = report["timeline"]
    t = _series(rows, "t")
    figure, axes = pyplot.subplots(5, 1, figsize=(10, 13), sharex=True)
    lat = report["latency_ms"]
    figure.suptitle(
        f"loadtests {report['scenario']}: {report['connections']['target']} clients, "
        f"{report['machine']['cpus']} cores; p50 {lat['p50']} / p99 {lat['p99']} ms, "
        f"errors {report['errors']['total']}",
        fontsize=11,
    )

    ax = axes[0]
    ax.plot(t, _series(rows, "online"), label="connections held", color="tab:blue")
    ax.set_ylabel("connections")
    twin = ax.twinx()
    twin.bar(t, _series(rows, "connects"), alpha=0.3, color="tab:orange",
             label="connects/s")
    twin.set_ylabel("connects/s")
    ax.legend(loc="upper left")
    twin.legend(loc="upper right")

    ax = axes[1]
    ax.plot(t, _series(rows, "deliveries"), label="deliveries/s (frames received)")
    ax.plot(t, _series(rows, "commands"), label="commands/s (frames sent)")
    ax.set_ylabel("frames/s")
    ax.legend(loc="upper left")

    ax = axes[2]
    for name, label in (("latency_p50_ms", "p50"), ("latency_p95_ms", "p95"),
                        ("latency_p99_ms", "p99"), ("latency_max_ms", "max")):
        values = _series(rows, name)
        if any(not math.isnan(v) for v in values):
            ax.plot(t, values, label=label)
    ax.set_ylabel("end-to-end latency (ms)")
    if ax.get_lines():  # a connect-only run has no latency to show
        ax.set_yscale("log")
        ax.legend(loc="upper left")

    ax = axes[3]
    ax.plot(t, _series(rows, "server_cpu_pct"), label="server CPU % (one core = 100)")
    ax.plot(t, _series(rows, "generator_cpu_pct"), label="generator CPU %")
    ax.plot(t, _series(rows, "machine_cpu_pct"), label="machine CPU % (all cores = 100)")
    ax.set_ylabel("CPU %")
    ax.legend(loc="upper left")
    twin = ax.twinx()
    rss = _series(rows, "server_rss_mb")
    twin.plot(t, rss, color="black", linestyle="--", label="server RSS MB")
    twin.set_ylabel("RSS MB")
    known = [v for v in rss if not math.isnan(v)]
    if known:
        twin.set_ylim(0, max(known) * 1.25)  # from zero: small changes must look small
    twin.legend(loc="upper right")

    ax = axes[4]
    ax.bar(t, _series(rows, "errors"), label="errors/s", color="tab:red")
    ax.plot(t, _series(rows, "gaps"), label="gaps/s", color="tab:purple")
    ax.plot(t, _series(rows, "duplicates"), label="duplicates/s", color="tab:brown")
    ax.set_ylabel("count")
    ax.set_xlabel("seconds since start")
    ax.legend(loc="upper left")

    for ax in axes:
        ax.grid(True, alpha=0.3)
    figure.tight_layout()
    figure.savefig(Path(path), dpi=90)
    pyplot.close(figure)
