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
"""

from __future__ import annotations

import dataclasses
import json
import os
import resource
import secrets
import statistics
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loadtests.ladder import DEFAULT_P99_LIMIT_MS, SecondLike, analyse, ladder_table, other_cpu
from loadtests.monitor import machine_cpu
from loadtests.plan import Credentials
from loadtests.report import machine
from loadtests.runner import Coordinator, Options
from loadtests.scenarios import Scenario, build_scenario
from loadtests.servers import (
    ManagedServer,
    check_redis,
    clean_environment,
    delete_prefixes,
    free_port,
)
from loadtests.stats import Histogram

TARGETS = ("ours", "reference", "ceiling")
SCENARIOS = ("classroom", "lecture500", "fanout")
DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "compare.json"
TENANT = "loadtest"
RATE_LIMIT = "5000"  # commands/s per connection on our server: far above any publisher here
BUSY_WARNING_PCT = 25.0
SETTLED_SLACK = 1.25
FIXED_RATE = 20.0  # the ladder step compared at the same offered load (in both profiles)
# With --wait-quiet, a run during which other processes (other people's tests; Redis and
# the coordinator count too, but use a few %) took more than this is measured again.
OTHER_RETRY_PCT = 35.0
RETRIES = 2


@dataclass(frozen=True)
class Profile:
    """How long each measurement runs."""

    name: str
    classroom_seconds: float
    lecture_seconds: float
    ladder_rates: tuple[float, ...]
    ladder_step: float
    ladder_wait_max: int  # seconds the ladder may wait for the join storm to drain


QUICK = Profile("quick", 8.0, 14.0, (10.0, 20.0, 40.0, 80.0, 160.0), 3.0, 6)
FULL = Profile("full", 20.0, 20.0,
               (5.0, 10.0, 20.0, 30.0, 40.0, 60.0, 80.0, 120.0, 160.0, 240.0, 320.0), 4.0, 10)


def compare_scenarios(profile: Profile) -> dict[str, Scenario]:
    """The three shapes, with everything the reference does not implement switched off."""
    common = {"progress_every": 0.0, "poll_every": 0.0, "reconnect_every": 0.0}
    fanout = build_scenario("fanout", {"fanout_rates": profile.ladder_rates,
                                       "fanout_step": profile.ladder_step,
                                       "fanout_wait_max": profile.ladder_wait_max,
                                       "duration": 3600})
    return {
        "classroom": build_scenario("classroom", {
            **common, "rooms": 10, "students": 30, "duration": profile.classroom_seconds}),
        "lecture500": build_scenario("lecture", {
            **common, "students": 500, "duration": profile.lecture_seconds}),
        "fanout": dataclasses.replace(fanout, duration=fanout.fanout_end + 1.0),
    }


@dataclass
class Bench:
    """One comparison run: its settings, identities and results."""

    redis_url: str
    processes: int
    profile: Profile
    p99_limit_ms: float = DEFAULT_P99_LIMIT_MS
    verbose: bool = False
    reports: Path | None = None
    wait_quiet: float = 0.0  # seconds to wait, at most, for a quiet machine before each run
    command: str = "python -m loadtests compare"  # as typed, for the record
    run_id: str = field(default_factory=lambda: secrets.token_hex(4))
    secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    metrics_token: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    results: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)

    @property
    def our_prefix(self) -> str:
        return f"lt-cmp-{self.run_id}-ours"

    @property
    def reference_prefix(self) -> str:
        return f"lt-cmp-{self.run_id}-ref"

    @property
    def credentials(self) -> Credentials:
        return Credentials(TENANT, self.secret)

    def environment(self) -> dict[str, str]:
        tenants = {TENANT: {"secrets": [self.secret], "api_key": secrets.token_urlsafe(24)}}
        return {**clean_environment(), "CLASSROOM_TENANTS": json.dumps(tenants),
                "CLASSROOM_SECRET": secrets.token_urlsafe(24),
                "CLASSROOM_METRICS_TOKEN": self.metrics_token,
                "CLASSROOM_LOG_LEVEL": "warning"}

    def server(self, target: str) -> tuple[ManagedServer, str, str]:
        """The (unstarted) server for ``target``, its WebSocket URL and client driver."""
        port = free_port()
        env = self.environment()
        host = ["--host", "127.0.0.1", "--port", str(port)]
        if target == "ours":
            env.update({"REDIS_URL": self.redis_url, "CLASSROOM_REDIS_PREFIX": self.our_prefix,
                        "CLASSROOM_RATE_LIMIT_PER_SECOND": RATE_LIMIT,
                        "CLASSROOM_RATE_LIMIT_BURST": RATE_LIMIT})
            argv = ["-m", "classroom.cli", "serve", *host]
            return ManagedServer(target, argv, env, port), f"ws://127.0.0.1:{port}/ws", "classroom"
        if target == "reference":
            argv = ["-m", "loadtests", "serve-reference", *host, "--redis-url", self.redis_url,
                    "--prefix", self.reference_prefix]
            return (ManagedServer(target, argv, env, port),
                    f"ws://127.0.0.1:{port}/socket.io", "socketio")
        argv = ["-m", "loadtests", "serve-ceiling", *host]
        return ManagedServer(target, argv, env, port), f"ws://127.0.0.1:{port}/", "raw"

    def await_quiet(self) -> float | None:
        """Wait up to ``wait_quiet`` seconds for the machine to be nearly idle; the load
        (% of one core) last seen. Other people's test runs share these 2 cores."""
        deadline = time.monotonic() + self.wait_quiet
        busy = background_load(0.5)
        while (busy is not None and busy > BUSY_WARNING_PCT
               and time.monotonic() < deadline):
            busy = background_load(1.0)
        return busy

    def measure(self, target: str, name: str, scenario: Scenario) -> dict[str, Any]:
        """Measure ``target`` on ``scenario``; with ``wait_quiet``, again (up to RETRIES
        times) when other processes took much CPU meanwhile, keeping the cleanest run."""
        attempts = 1 + (RETRIES if self.wait_quiet > 0 else 0)
        best: dict[str, Any] | None = None
        for attempt in range(1, attempts + 1):
            result = self.measure_once(target, name, scenario)
            result["attempt"] = attempt
            other = disturbance(result)
            if best is None or (other is not None and (disturbance(best) or 0) > other):
                best = result
            if other is None or other <= OTHER_RETRY_PCT or attempt == attempts:
                break
            print(f"[compare] {name} {target}: other processes took {other}% of a core "
                  "during the run; measuring again", file=sys.stderr, flush=True)
        assert best is not None
        self.results.setdefault(name, {})[target] = best
        return best

    def measure_once(self, target: str, name: str, scenario: Scenario) -> dict[str, Any]:
        """Start ``target``'s server, run ``scenario`` against it, stop it; the summary."""
        if target == "ceiling" and scenario.fanout_rates:
            # No joins, so no join storm to wait for: the same ladder, without the slack.
            scenario = dataclasses.replace(scenario, fanout_wait_max=0)
            scenario = dataclasses.replace(scenario, duration=scenario.fanout_end + 1.0)
        busy = self.await_quiet()
        server, url, driver = self.server(target)
        began = time.time()
        with server:
            options = Options(url=url, credentials=self.credentials,
                              processes=min(self.processes, scenario.clients),
                              server_pid=server.pid, driver=driver,
                              metrics_token=self.metrics_token,
                              progress=sys.stderr if self.verbose else None)
            coordinator = Coordinator(scenario, options)
            report = coordinator.run()
        if self.reports is not None:
            self.reports.mkdir(parents=True, exist_ok=True)
            path = self.reports / f"compare-{name}-{target}.json"
            path.write_text(json.dumps(report, indent=2) + "\n")
        result = summarise(report, coordinator.total.counts)
        result["other_cpu_pct"] = steady_other_cpu(report, coordinator.seconds)
        result["settled"] = settled(scenario, coordinator.seconds)
        if scenario.fanout_rates:
            counts = coordinator.total.counts
            result["ladder"] = analyse(scenario, coordinator.seconds, self.p99_limit_ms,
                                       int(counts["fanout_breaker_step"]),
                                       int(counts["fanout_shift"]))
        result["seconds"] = round(time.time() - began, 1)
        result["busy_before_pct"] = busy
        print(f"[compare] {name:<10} {target:<9} {one_line(result)}", file=sys.stderr,
              flush=True)
        return result


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


def background_load(seconds: float = 1.0) -> float | None:
    """How busy the machine is before we start, in % of one core."""
    first = machine_cpu()
    time.sleep(seconds)
    second = machine_cpu()
    if first is None or second is None or second[1] <= first[1]:
        return None
    share = (second[0] - first[0]) / (second[1] - first[1])
    return round(100 * share * (os.cpu_count() or 1), 1)


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


# -- the ratio table --------------------------------------------------------------------

Getter = Callable[[dict[str, Any]], float | None]


def _latency(q: str) -> Getter:
    return lambda r: r["settled"]["latency_ms"][q]


def _ladder(key: str) -> Getter:
    return lambda r: r["ladder"].get(key) if "ladder" in r else None


def _step(rate: float, what: str) -> Getter:
    """A figure of the ladder step at ``rate``: the fan-out at one fixed offered load."""
    def get(result: dict[str, Any]) -> float | None:
        steps = result.get("ladder", {}).get("steps", [])
        step = next((s for s in steps if s["rate"] == rate), None)
        if step is None:
            return None
        value = step["server_cpu_pct"] if what == "cpu" else step["latency_ms"][what]
        return float(value) if value is not None else None
    return get


def _settled(key: str) -> Getter:
    return lambda r: r["settled"][key]


ROWS: list[tuple[str, str, Getter]] = [
    ("classroom", "deliveries/s (same offered load)", _settled("deliveries_per_s")),
    ("classroom", "latency p50 ms", _latency("p50")),
    ("classroom", "latency p99 ms", _latency("p99")),
    ("classroom", "server CPU % of one core", _settled("server_cpu_pct")),
    ("lecture500", "deliveries/s (same offered load)", _settled("deliveries_per_s")),
    ("lecture500", "latency p50 ms", _latency("p50")),
    ("lecture500", "latency p99 ms", _latency("p99")),
    ("lecture500", "server CPU % of one core", _settled("server_cpu_pct")),
    ("fanout", f"at {FIXED_RATE:g} publishes/s ({FIXED_RATE * 501:,.0f} deliveries/s): "
     "latency p50 ms", _step(FIXED_RATE, "p50")),
    ("fanout", f"at {FIXED_RATE:g} publishes/s: latency p99 ms", _step(FIXED_RATE, "p99")),
    ("fanout", f"at {FIXED_RATE:g} publishes/s: server CPU %", _step(FIXED_RATE, "cpu")),
    ("fanout", "max sustainable deliveries/s (p99 <= limit)", _ladder("max_sustainable_per_s")),
    ("fanout", "publishes/s at max sustainable", _ladder("max_sustainable_rate")),
    ("fanout", "max deliveries/s kept up with (>= 95% delivered, any latency)",
     _ladder("max_kept_up_per_s")),
    ("fanout", "peak deliveries/s", _ladder("peak_per_s")),
    ("fanout", "deliveries per server CPU-second (median of the steps kept up)",
     _ladder("per_server_core")),
]


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return round(a / b, 2)


def ratio_rows(results: dict[str, dict[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """Every table row as data: values per target and the two ratios."""
    rows = []
    for scenario, label, get in ROWS:
        runs = results.get(scenario, {})
        values = {t: (get(runs[t]) if t in runs else None) for t in TARGETS}
        rows.append({"scenario": scenario, "measure": label, **values,
                     "ours_per_reference": _ratio(values["ours"], values["reference"]),
                     "ours_per_ceiling": _ratio(values["ours"], values["ceiling"])})
    return rows


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}" if abs(value) < 10 else f"{value:.0f}"
    return str(value)


def ratio_table(rows: list[dict[str, Any]], p99_limit_ms: float) -> str:
    """The Markdown ratio table."""
    lines = ["| scenario | measure | ours | reference | ceiling | ours / reference | "
             "ours / ceiling |", "|---|---|---|---|---|---|---|"]
    for row in rows:
        measure = row["measure"].replace("limit", f"{p99_limit_ms:g} ms")
        lines.append(f"| {row['scenario']} | {measure} | {_cell(row['ours'])} | "
                     f"{_cell(row['reference'])} | {_cell(row['ceiling'])} | "
                     f"{_cell(row['ours_per_reference'])} | {_cell(row['ours_per_ceiling'])} |")
    return "\n".join(lines)


def checks_table(results: dict[str, dict[str, dict[str, Any]]]) -> str:
    """Per run: who was online, errors, ordering, and what the generator cost."""
    lines = ["| run | online / target | errors | gaps / duplicates (ours) or out of order "
             "(reference) | connect ms p50 / p99 | generator CPU % | other CPU % |",
             "|---|---|---|---|---|---|---|"]
    for scenario, runs in results.items():
        for target, r in runs.items():
            codes = ", ".join(f"{k} {v}" for k, v in r["errors_by_code"].items())
            if target == "ours":
                order = (f"{r['gaps']} / {r['duplicates']}" if r["gap_check"] == "every client"
                         else "not checked")
            elif target == "reference":
                order = f"{r['out_of_order']} out of order"
            else:
                order = "-"
            lines.append(
                f"| {scenario} {target} | {r['online']} / {r['target']} | {r['errors']}"
                f"{f' ({codes})' if codes else ''} | {order} | {_cell(r['connect_ms']['p50'])}"
                f" / {_cell(r['connect_ms']['p99'])} | {_cell(r['generator_cpu_pct'])} | "
                f"{_cell(r['other_cpu_pct'])} |")
    return "\n".join(lines)


def raise_file_limit() -> None:
    """Every connection is a file descriptor on both sides; children inherit this."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


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


def render(document: dict[str, Any]) -> str:
    """Everything ``compare`` prints on stdout."""
    runs = document["runs"]
    parts = [
        f"## {document['command']} ({document['wall_seconds']} s, "
        f"{document['machine']['cpus']} cores, Python {document['machine']['python']})",
        "",
        "Ratios are ours / other: above 1 is better for deliveries, below 1 is better "
        "for latency and CPU.",
        "",
        ratio_table(document["ratios"], document["p99_limit_ms"]),
    ]
    ladders = {t: r["ladder"] for t, r in runs.get("fanout", {}).items() if "ladder" in r}
    if ladders:
        parts += ["", "Fan-out ladder, 1 + 500 members ((x): not sustained):", "",
                  ladder_table(ladders)]
    parts += ["", checks_table(runs)]
    return "\n".join(parts)


def default_processes() -> int:
    """Client processes: one per core, as for ``run``."""
    return os.cpu_count() or 1
