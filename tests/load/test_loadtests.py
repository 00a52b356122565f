"""The load generator against a real server: the real CLI in a subprocess, tiny runs.

The generator spawns its own client processes, so it runs as ``python -m loadtests``
while the server runs in this test's event loop; they meet over loopback. The unit
tests below make sure the gap/duplicate check and the percentiles can fail at all,
so the end-to-end "zero gaps" assertions mean something.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from loadtests.client import Recorder, SimUser
from loadtests.plan import Credentials, make_plans
from loadtests.report import summary
from loadtests.scenarios import build_scenario
from loadtests.stats import Histogram
from tests.conftest import METRICS_TOKEN, TENANTS, RunningServer, ServerFactory

ROOT = Path(__file__).resolve().parents[2]
SECRET = TENANTS["acme"]["secrets"][0]


async def run_generator(server: RunningServer, tmp_path: Path, *args: str) -> dict[str, Any]:
    """Run ``python -m loadtests run`` against ``server`` and return its JSON report."""
    report = tmp_path / "report.json"
    env = {**os.environ, "LOADTEST_SECRET": SECRET,  # the secret stays out of argv
           "CLASSROOM_METRICS_TOKEN": METRICS_TOKEN}  # so the report has the server's counters
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "loadtests", "run", "--url", server.ws_url, "--tenant", "acme",
        "--processes", "1", "--quiet", "--json", str(report), *args,
        cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 40)
    assert process.returncode == 0, (stdout.decode(), stderr.decode())
    return json.loads(report.read_text())


def assert_no_errors(report: dict[str, Any]) -> None:
    assert report["errors"]["total"] == 0, report["errors"]


async def test_classroom_run_reports_deliveries_and_ordered_latency(
    start_server: ServerFactory, tmp_path: Path
) -> None:
    server = await start_server(rate_limit_per_second=1000.0, rate_limit_burst=2000)
    report = await run_generator(server, tmp_path, "--scenario", "classroom", "--rooms", "2",
                                 "--students", "3", "--duration", "3")
    assert_no_errors(report)
    assert report["connections"]["target"] == 8
    assert report["connections"]["peak_online"] == 8
    assert report["throughput"]["deliveries"] > 0
    latency = report["latency_ms"]
    assert latency["count"] > 0
    values = [latency[name] for name in ("p50", "p95", "p99", "max")]
    assert all(isinstance(v, float | int) for v in values), latency
    assert values == sorted(values), latency
    assert report["timeline"], "a per-second timeline"
    assert report["server"]["pid"] == os.getpid()  # found through the listening socket
    # /metrics needs its bearer token; the generator takes it from CLASSROOM_METRICS_TOKEN.
    assert report["server"]["metrics_delta"] is not None
    # Read at the run's last second, before the clients close: all 8 still connected.
    assert report["server"]["metrics_delta"]["classroom_connections"] == 8
    assert report["server"]["publish_to_write_ms"] is not None


async def test_storm_loses_and_repeats_nothing(
    start_server: ServerFactory, tmp_path: Path
) -> None:
    server = await start_server(rate_limit_per_second=1000.0, rate_limit_burst=2000)
    report = await run_generator(server, tmp_path, "--scenario", "storm", "--rooms", "2",
                                 "--students", "3", "--duration", "5", "--storms", "1",
                                 "--storm-spread", "0.5", "--chat-rate", "20")
    assert_no_errors(report)
    recovery = report["recovery"]
    assert recovery["gap_check"] == "every client"
    assert recovery["storm_drops"] == 8
    assert recovery["rejoins"] == recovery["recovered"] == 8
    assert recovery["replayed"] > 0, "someone must have missed events to replay"
    assert recovery["gaps"] == 0
    assert recovery["duplicates"] == 0
    # How long the dropped clients were away: within the storm's spread and the run.
    away = report["connections"]["downtime_ms"]
    assert away["count"] == 8 and 0 < away["p50"] <= away["max"] < 5000
    assert f"away p50 {away['p50'] / 1000:.1f} s" in summary(report)


async def test_joinstorm_counts_presence_frames_per_change_in_both_modes(
    start_server: ServerFactory, tmp_path: Path
) -> None:
    server = await start_server(rate_limit_per_second=1000.0, rate_limit_burst=2000,
                                presence_window=0.2)
    shape = ("--scenario", "joinstorm", "--students", "12", "--duration", "3",
             "--connect-rate", "10", "--steady-rate", "20", "--steady-from", "0.5")
    each = await run_generator(server, tmp_path, *shape, "--presence", "each")
    assert_no_errors(each)
    assert each["presence"]["by_type"]["diff"] == 0
    assert each["presence"]["frames_per_change"] == 1.0  # one frame per person per member
    diff = await run_generator(server, tmp_path, *shape)
    assert_no_errors(diff)
    presence = diff["presence"]
    assert presence["mode"] == "diff" and presence["by_type"]["join"] == 0
    assert presence["by_type"]["diff"] > 0 and presence["frames_per_change"] < 1.0
    for report in (each, diff):
        assert report["latency_ms"]["by_kind"]["first_event"]["count"] >= 1
        assert report["latency_ms"]["by_kind"]["chat"]["count"] > 20


def _student() -> SimUser:
    scenario = build_scenario("storm", {"rooms": 1, "students": 1})
    plan = make_plans(scenario, "ws://127.0.0.1:1/ws", Credentials("acme", SECRET), 1)[0]
    return SimUser(plan.users[1], plan, Recorder())


def _event(offset: int) -> dict[str, Any]:
    return {"type": "event", "session": "s", "epoch": "e1", "offset": offset,
            "event": {"kind": "chat", "text": "hi@1.0", "at": 1.0}}


def test_offset_check_counts_gaps_and_duplicates() -> None:
    sim = _student()
    sim._on_frame({"type": "joined", "id": 2, "session": "s", "epoch": "e1", "offset": 3,
                   "state": {"poll": None}, "recovered": False}, 2.0)
    for offset in (4, 6, 6, 7, 10):
        sim._on_frame(_event(offset), 2.0)
    counts = sim.rec.tally.counts
    assert counts["gaps"] == 1 + 2
    assert counts["duplicates"] == 1
    assert sim.last == 10
    assert sim.rec.tally.latency.count == 5


async def test_frames_read_while_closing_are_checked_but_not_timed() -> None:
    """At a storm's drop the generator closes thousands of connections at one instant;
    the frames it reads meanwhile wait for that work, not for the server."""
    sim = _student()
    sim._on_frame({"type": "joined", "id": 2, "session": "s", "epoch": "e1", "offset": 3,
                   "state": {"poll": None}, "recovered": False}, 2.0)
    sim._on_frame(_event(4), 2.0)
    await sim.close()  # no socket here: only what a purposeful close sets
    sim._on_frame(_event(5), 2.5)
    sim._on_frame(_event(7), 2.5)
    counts = sim.rec.tally.counts
    assert sim.rec.tally.latency.count == 1  # only the frame read before the close
    assert counts["deliveries"] == 1 + 3 and counts["gaps"] == 1 and sim.last == 7


def test_a_coalesced_tally_tells_its_answers_and_a_gap_before_them_is_still_a_gap() -> None:
    sim = _student()
    sim._on_frame({"type": "joined", "id": 2, "session": "s", "epoch": "e1", "offset": 3,
                   "state": {"poll": None}, "recovered": False}, 2.0)
    tally = {"type": "event", "session": "s", "epoch": "e1", "offset": 9,
             "event": {"kind": "poll.tally", "poll": "q1", "counts": [6, 0], "at": 1.0}}
    sim._on_frame({**tally, "coalesced_from": 4}, 2.0)  # answers 4..9: all told
    sim._on_frame({**tally, "offset": 14, "coalesced_from": 12}, 2.0)  # 10 and 11 missing
    sim._on_frame({**tally, "offset": 16, "coalesced_from": 13}, 2.0)  # 13 was told already
    counts = sim.rec.tally.counts
    assert counts["gaps"] == 2
    assert counts["duplicates"] == 0
    assert counts["coalesced"] == 5 + 2 + 1
    assert sim.last == 16


async def test_polls_with_coalesced_tallies_count_their_answers_as_told_not_as_gaps(
    start_server: ServerFactory, tmp_path: Path
) -> None:
    server = await start_server(rate_limit_per_second=1000.0, rate_limit_burst=2000,
                                tally_window=1.0)  # every poll's answers in one or two
    shape = ("--scenario", "classroom", "--rooms", "1", "--students", "8", "--duration", "6",
             "--poll-every", "2", "--poll-open", "1.5", "--poll-answers", "1",
             "--chat-rate", "0.2", "--navigate-every", "0", "--pointer-hz", "1",
             "--progress-every", "0")
    each = await run_generator(server, tmp_path, *shape, "--tallies", "each")
    coalesced = await run_generator(server, tmp_path, *shape)
    for report in (each, coalesced):
        assert_no_errors(report)
        assert report["recovery"]["gap_check"] == "every client"
        assert report["recovery"]["gaps"] == report["recovery"]["duplicates"] == 0
    assert each["recovery"]["coalesced_tallies"] == 0
    assert coalesced["recovery"]["coalesced_tallies"] > 0  # answers told, not lost


def test_histogram_percentiles_are_within_one_percent() -> None:
    histogram = Histogram()
    for ms in range(1, 1001):
        histogram.add(ms / 1000)
    assert abs(histogram.percentile(50) - 0.5) < 0.005
    assert abs(histogram.percentile(99) - 0.99) < 0.01
    assert histogram.percentile(100) == histogram.max == 1.0


def test_histogram_buckets_follow_the_documented_formula() -> None:
    """Histogram.add is tuned for speed; its buckets must stay the ones reports merge."""
    import math

    from loadtests.stats import _FLOOR, _LOG_GROWTH

    samples = [-0.5, 0.0, _FLOOR / 2, _FLOOR, _FLOOR * 1.0000001, 2e-6, 0.001, 0.0123,
               0.5, 1.0, 3.7, 120.0]
    histogram = Histogram()
    expected: dict[int, int] = {}
    for seconds in samples:
        histogram.add(seconds)
        value = max(seconds, 0.0)
        index = 0 if value <= _FLOOR else int(math.log(value / _FLOOR) / _LOG_GROWTH) + 1
        expected[index] = expected.get(index, 0) + 1
    assert histogram.buckets == expected
    assert (histogram.count, histogram.min, histogram.max) == (len(samples), 0.0, 120.0)
    assert histogram.total == sum(max(s, 0.0) for s in samples)
