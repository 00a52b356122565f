"""``python -m loadtests compare``: our server against the python-socketio reference and
the raw ``websockets`` ceiling, in one run, on this machine.

Three servers, each one process on loopback, started here and stopped here (by
pid), one at a time, a fresh process for every measurement:

- ``ours``: ``classroom serve`` with ``REDIS_URL`` (the Redis broker), a key
  prefix of this run's own and raised rate limits;
- ``reference``: ``python -m loadtests serve-reference`` (``loadtests/reference``),
  python-socketio with ``AsyncRedisManager`` on the same Redis, its own channel
  and key prefix, uvicorn with one worker;
- ``ceiling``: ``python -m loadtests serve-ceiling`` (``loadtests/ceiling.py``).

What runs (only what both servers implement: rooms, join, publish with a
sequence number, broadcast; no progress reports, polls or replays):

- ``classroom``: 10 rooms x (1 + 30), the classroom preset's trainer navigation
  and pointer, chat and student pointers (about 13 publishes/s per room);
- ``lecture500``: 1 room x (1 + 500), the lecture preset's pointer (5 Hz), chat
  (1/s) and navigation;
- ``fanout``: the ladder of ``loadtests/ladder.py`` in a 1 + 500 room, against all
  three servers.

Scenarios are interleaved (ours, reference, ours, reference, ...) so that drift
in what else the machine does hits both alike. At the end every Redis key under
the run's prefixes is deleted, and the ratio table is printed and written as
JSON (``loadtests/results/compare.json`` by default).

This module runs the whole comparison and cleans up after it; its parts are
``compare_plan.py`` (what runs), ``compare_bench.py`` (one server started,
measured and stopped), ``compare_figures.py`` (a run's figures) and
``compare_report.py`` (the ratio table and everything printed).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from loadtests.compare_bench import BUSY_WARNING_PCT, Bench
from loadtests.compare_figures import disturbance, settled, summarise
from loadtests.compare_plan import FULL, QUICK, SCENARIOS, TARGETS, Profile, compare_scenarios
from loadtests.compare_report import checks_table, ratio_rows, ratio_table, render
from loadtests.host import background_load, raise_file_limit
from loadtests.report import machine
from loadtests.servers import check_redis, delete_prefixes

# What the command line, the tests and the other benches import from here.
__all__ = [
    "DEFAULT_JSON", "FULL", "QUICK", "SCENARIOS", "TARGETS", "Bench", "Profile",
    "checks_table", "compare_scenarios", "default_processes",
    "disturbance", "ratio_rows", "ratio_table", "render", "run_compare",
    "settled", "summarise",
]

DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "compare.json"


def run_compare(bench: Bench, targets: tuple[str, ...] = TARGETS,
                scenarios: tuple[str, ...] = SCENARIOS,
                json_path: Path | None = DEFAULT_JSON) -> dict[str, Any]:
    """Measure everything asked for, clean Redis up, and return the JSON document."""
    raise_file_limit()
    if {"ours", "reference"} & set(targets):
        check_redis(bench.redis_url)
    busy = background_load()
    if busy is not None and busy > BUSY_WARNING_PCT:
        print(f"[compare] warning: the machine was already {busy:.0f}% busy (of one core) "
              "before the bench: the figures will be noisy", file=sys.stderr, flush=True)
    began = time.time()
    shapes = compare_scenarios(bench.profile)
    try:
        for name in scenarios:
            for target in targets:
                if target == "ceiling" and name != "fanout":
                    continue  # the ceiling has no rooms or offsets: the ladder only
                bench.measure(target, name, shapes[name])
    finally:
        removed = 0
        if {"ours", "reference"} & set(targets):
            removed = delete_prefixes(bench.redis_url,
                                      [bench.our_prefix, bench.reference_prefix])
    rows = ratio_rows(bench.results)
    document = {
        "command": bench.command,
        "profile": bench.profile.name,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "wall_seconds": round(time.time() - began, 1),
        "machine": machine(),
        "processes": bench.processes,
        "p99_limit_ms": bench.p99_limit_ms,
        "scenarios": {name: shapes[name].to_dict() for name in scenarios},
        "redis_keys_removed": removed,
        "busy_before_pct": busy,
        "ratios": rows,
        "runs": bench.results,
    }
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(document, indent=2) + "\n")
    return document


def default_processes() -> int:
    """Client processes: one per core, as for ``run``."""
    return os.cpu_count() or 1
