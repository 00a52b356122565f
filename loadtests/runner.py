"""The coordinator: starts the client processes, merges their per-second ticks, samples
the server, prints a live progress line, and hands everything to the report.

Workers are spawned (not forked) so that a caller with a running event loop or
threads (a test with an in-process server) passes nothing half-copied to them.
Every wait is bounded: the run ends at its duration plus a fixed grace, and
workers still alive then are terminated and reported.
"""

from __future__ import annotations

import math
import multiprocessing
import queue
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

from loadtests.monitor import Monitor, find_listener, scrape_metrics
from loadtests.plan import Credentials, make_plans
from loadtests.report import build_report
from loadtests.scenarios import Scenario
from loadtests.serverside import Buckets, scrape_buckets
from loadtests.stats import Tally, Tick
from loadtests.worker import worker_main

READY_TIMEOUT = 60.0
START_DELAY = 0.5
END_GRACE = 30.0
END_SCRAPE_LEAD = 0.2
"""Seconds before the clients stop at which the report's "after" counters are read."""


@dataclass
class Second:
    """Everything known about one second of the run, merged over the workers."""

    tally: Tally = field(default_factory=Tally)
    online: int = 0
    reported: int = 0
    generator_cpu: float = 0.0
    server: dict[str, float | None] = field(default_factory=dict)
    sampled: bool = False
    buckets: Buckets | None = None  # the server's publish-to-write histogram, at its end


@dataclass
class Options:
    """How to run, apart from the scenario itself."""

    url: str
    credentials: Credentials
    processes: int
    server_pid: int | None = None
    progress: TextIO | None = None
    driver: str = "classroom"  # the protocol the target speaks (loadtests/drivers.py)
    metrics_token: str | None = None  # bearer token for /metrics; else $CLASSROOM_METRICS_TOKEN
    # Several nodes of one deployment: users are dealt round-robin over these endpoints
    # (``url`` is then the one sampled and scraped). Empty: everyone connects to ``url``.
    urls: tuple[str, ...] = ()
    # Called with 0 just before the start, then at every whole second of the run next to
    # the server sample, so a caller can read what the coordinator does not (other nodes,
    # Redis) on the same timeline as the report's rows.
    on_second: Callable[[int], None] | None = None


class Coordinator:
    """Runs one load test from start to report."""

    def __init__(self, scenario: Scenario, options: Options) -> None:
        self.scenario = scenario
        self.options = options
        self.seconds: dict[int, Second] = {}
        self.total = Tally()
        self.samples: dict[int, dict[str, list[str]]] = {}
        self.failures: list[str] = []
        self._cpu: dict[int, float] = {}
        self._printed = 0
        self._buckets_start: Buckets | None = None
        self._metrics_at_end: dict[str, float] | None = None
        """The server's counters just before the clients stop (the report's "after")."""

    def run(self) -> dict[str, Any]:
        """Run the scenario and return the report (see loadtests/README.md)."""
        scenario, options = self.scenario, self.options
        pid, pid_source = options.server_pid, "--server-pid"
        if pid is None:
            pid, pid_source = find_listener(options.url), "listening socket"
        plans = make_plans(scenario, options.url, options.credentials, options.processes,
                           options.driver, options.urls)
        context = multiprocessing.get_context("spawn")
        inbox = context.Queue()
        go = context.Event()
        start = context.Value("d", 0.0)
        workers = [
            context.Process(target=worker_main, args=(plan, inbox, go, start),
                            name=f"loadtests-worker-{plan.worker}", daemon=True)
            for plan in plans
        ]
        for process in workers:
            process.start()
        try:
            self._await_ready(inbox, len(workers))
            monitor = Monitor(pid)
            metrics_before = scrape_metrics(options.url, token=options.metrics_token)
            self._buckets_start = scrape_buckets(options.url, token=options.metrics_token)
            if options.on_second is not None:
                options.on_second(0)
            start_at = time.time() + START_DELAY
            start.value = start_at
            go.set()
            self._collect(inbox, len(workers), start_at, monitor)
            wall = time.time() - start_at
        except KeyboardInterrupt:
            for process in workers:
                process.terminate()
            raise
        finally:
            for process in workers:
                process.join(timeout=5)
                if process.is_alive():
                    process.terminate()
                    self.failures.append(f"{process.name} did not stop and was terminated")
        self._line_end()
        return build_report(
            scenario=scenario, url=options.url, processes=len(workers),
            server_pid=pid, pid_source=pid_source if pid else "not found",
            seconds=self.seconds, total=self.total, samples=self.samples,
            metrics=(metrics_before, self._metrics_at_end
                     or scrape_metrics(options.url, token=options.metrics_token)),
            failures=self.failures, wall_seconds=wall, rss_start=monitor.rss_start,
            driver=options.driver, buckets_start=self._buckets_start,
        )

    def _await_ready(self, inbox: Any, count: int) -> None:
        ready: set[int] = set()
        deadline = time.time() + READY_TIMEOUT
        while len(ready) < count:
            try:
                kind, worker, _ = inbox.get(timeout=max(0.1, deadline - time.time()))
            except queue.Empty:
                raise RuntimeError("client processes did not start in time") from None
            if kind == "ready":
                ready.add(worker)

    def _collect(self, inbox: Any, count: int, start_at: float, monitor: Monitor) -> None:
        """Read ticks until every worker is done, sampling the server once a second."""
        finished: set[int] = set()
        last_second = math.ceil(self.scenario.duration)
        deadline = start_at + self.scenario.duration + END_GRACE
        next_sample, last_sample = start_at + 1.0, start_at
        # The server's counters are read just before the clients stop: what 5,000
        # connections closing at once cost the node is not the run's.
        scrape_at = start_at + max(0.0, self.scenario.duration - END_SCRAPE_LEAD)
        while len(finished) < count and time.time() < deadline:
            now = time.time()
            if self._metrics_at_end is None and now >= scrape_at:
                self._metrics_at_end = scrape_metrics(self.options.url,
                                                      token=self.options.metrics_token) or {}
            if now >= next_sample:
                second = round(next_sample - start_at)
                if second <= last_second:
                    merged = self._second(second)
                    merged.server, merged.sampled = monitor.sample(now - last_sample), True
                    if self.options.on_second is not None:
                        self.options.on_second(second)
                    if self._buckets_start is not None:  # only servers that export it
                        merged.buckets = scrape_buckets(self.options.url,
                                                        token=self.options.metrics_token)
                    self._progress(second, merged, count)
                last_sample, next_sample = now, next_sample + 1.0
            try:
                wake = min(next_sample, scrape_at) if self._metrics_at_end is None else next_sample
                kind, worker, payload = inbox.get(timeout=min(0.25, max(0.01, wake - now)))
            except queue.Empty:
                continue
            if kind == "tick":
                self._absorb(payload, count)
            elif kind == "done":
                finished.add(worker)
            elif kind == "failed":
                finished.add(worker)
                self.failures.append(f"worker {worker} failed: {payload}")
        if len(finished) < count:
            self.failures.append(f"{count - len(finished)} worker(s) missed the end of the run")

    def _second(self, index: int) -> Second:
        second = self.seconds.get(index)
        if second is None:
            second = self.seconds[index] = Second()
        return second

    def _absorb(self, tick: Tick, count: int) -> None:
        self.total.merge(tick.tally)
        self.samples[tick.worker] = tick.samples
        used = tick.cpu_seconds - self._cpu.get(tick.worker, tick.cpu_seconds)
        self._cpu[tick.worker] = tick.cpu_seconds
        if tick.second < 0:
            return
        second = self._second(tick.second)
        second.tally.merge(tick.tally)
        second.online += tick.online
        second.reported += 1
        second.generator_cpu += used
        self._progress(tick.second, second, count)

    def _progress(self, index: int, second: Second, workers: int) -> None:
        """One line per second on stderr (rewritten in place on a terminal), once every
        worker has reported that second and the server has been sampled."""
        stream = self.options.progress
        if stream is None or not second.sampled or second.reported < workers:
            return
        if index <= self._printed:
            return
        tally = second.tally
        counts = tally.counts
        latency = tally.latency
        p50 = f"{latency.percentile(50) * 1000:.1f}" if latency.count else "-"
        p99 = f"{latency.percentile(99) * 1000:.1f}" if latency.count else "-"
        server = second.server
        rss = server.get("server_rss_mb")
        cpu = server.get("server_cpu_pct")
        errors = sum(self.total.errors.values())
        line = (
            f"[{self.scenario.name} {index:>3}/{self.scenario.duration:g}s] "
            f"online {second.online}/{self.scenario.clients} "
            f"conn/s {counts['connects'] + counts['reconnects']} "
            f"deliv/s {counts['deliveries']} p50 {p50} p99 {p99} ms "
            f"errors {errors} gaps {self.total.counts['gaps']} "
            f"server {rss if rss is not None else '-'} MB "
            f"{cpu if cpu is not None else '-'}% cpu "
            f"gen {second.generator_cpu * 100:.0f}% cpu"
        )
        if stream.isatty():
            stream.write("\r\x1b[2K" + line)
        else:
            stream.write(line + "\n")
        stream.flush()
        self._printed = index

    def _line_end(self) -> None:
        stream = self.options.progress
        if stream is not None and stream.isatty() and self._printed:
            stream.write("\n")
            stream.flush()


def run(scenario: Scenario, options: Options) -> dict[str, Any]:
    """Run one load test and return its report."""
    return Coordinator(scenario, options).run()


def default_progress() -> TextIO:
    """Where the live line goes."""
    return sys.stderr
