"""``python -m loadtests compare``'s parts against real servers, in tiny sizes.

The python-socketio reference server runs as a subprocess on the machine's Redis
(``make test`` starts it), under a key prefix and channel of its own that are
deleted afterwards; our server runs in this test's event loop (conftest); the
ceiling command starts and stops its own server. The generator runs as the real
CLI in a subprocess, as in test_loadtests.py. The table and ladder logic is
checked on made-up numbers, so a wrong verdict cannot hide behind a noisy run.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis
import socketio

from auth.tenants import Tenant
from auth.tokens import issue_token
from loadtests.compare import QUICK, compare_scenarios, ratio_rows, ratio_table, settled
from loadtests.ladder import CORES, analyse, step_seconds
from loadtests.runner import Second
from loadtests.scenarios import build_scenario
from loadtests.servers import ManagedServer, clean_environment, delete_prefixes, free_port
from tests.conftest import METRICS_TOKEN, TENANTS, ServerFactory

ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = os.environ.get("CLASSROOM_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")
REFERENCE_SECRET = "reference-test-secret-0123456789abcdefghij"
REFERENCE_TENANTS = {"acme": {"secrets": [REFERENCE_SECRET], "api_key": "reference-test-key"}}
TINY = ["--scenario", "classroom", "--rooms", "2", "--students", "3", "--duration", "3",
        "--progress-every", "0", "--poll-every", "0", "--reconnect-every", "0"]
LADDER = ["--scenario", "fanout", "--students", "4", "--fanout-rates", "10,20",
          "--fanout-step", "2", "--fanout-wait-max", "2", "--duration", "9"]


async def loadtests(tmp_path: Path, secret: str | None, *args: str,
                    timeout: float = 40) -> tuple[str, dict[str, Any]]:
    """Run ``python -m loadtests ARGS --json FILE``: its stdout and the JSON it wrote."""
    out = tmp_path / f"{uuid.uuid4().hex}.json"
    env = {**os.environ, "CLASSROOM_METRICS_TOKEN": METRICS_TOKEN}  # our /metrics needs it
    if secret is not None:
        env["LOADTEST_SECRET"] = secret  # the secret stays out of argv
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "loadtests", *args, "--json", str(out), cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout)
    assert process.returncode == 0, (stdout.decode(), stderr.decode())
    return stdout.decode(), json.loads(out.read_text())


@pytest.fixture
def reference() -> Iterator[tuple[str, str]]:
    """The reference server on a free port: its URL and Redis key prefix."""
    prefix = f"test-ref-{uuid.uuid4().hex[:12]}"
    port = free_port()
    env = {**clean_environment(), "CLASSROOM_TENANTS": json.dumps(REFERENCE_TENANTS)}
    server = ManagedServer("reference", [
        "-m", "loadtests", "serve-reference", "--host", "127.0.0.1", "--port", str(port),
        "--redis-url", REDIS_URL, "--prefix", prefix], env, port)
    with server:
        yield f"ws://127.0.0.1:{port}/socket.io", prefix
        assert server.proc is not None
        assert server.proc.poll() is None, server.output()  # still up: nothing crashed it
    delete_prefixes(REDIS_URL, [prefix])


def reference_token(sub: str, sessions: list[str], secret: str = REFERENCE_SECRET) -> str:
    tenant = Tenant(id="acme", secrets=(secret,), api_key="unused")
    return issue_token(tenant, sub=sub, role="student", sessions=sessions, ttl=60)


async def test_reference_server_semantics(reference: tuple[str, str]) -> None:
    """Token check, join, publish with a Redis sequence number, broadcast with by and at."""
    url, prefix = reference
    base = url.rsplit("/", 1)[0]
    async with aiohttp.ClientSession() as http:
        refused = socketio.AsyncClient(reconnection=False, handle_sigint=False,
                                       http_session=http)
        with pytest.raises(socketio.exceptions.ConnectionError):
            await refused.connect(base, transports=["websocket"], wait_timeout=5,
                                  auth={"token": reference_token("u1", ["s1"], "wrong-" * 8)})
        client = socketio.AsyncClient(reconnection=False, handle_sigint=False,
                                      http_session=http)
        events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        client.on("event", events.put_nowait)
        await client.connect(base, transports=["websocket"], wait_timeout=5,
                             auth={"token": reference_token("u1", ["s1"])})
        try:
            assert await client.call("join", {"session": "s2"}, timeout=5) == {
                "error": "forbidden", "message": "this token does not grant that session"}
            assert await client.call("join", {"session": "s1"}, timeout=5) == {
                "session": "s1", "seq": 0}
            ack = await client.call("publish", {"session": "s1", "event": {
                "kind": "chat", "text": "hello"}}, timeout=5)
            assert ack == {"session": "s1", "seq": 1}
            pointer = await client.call("publish", {"session": "s1", "event": {
                "kind": "pointer", "x": 0.5, "y": 0.5}}, timeout=5)
            assert pointer == {"session": "s1", "seq": None}  # ephemeral, as ours
            chat = await asyncio.wait_for(events.get(), 5)
            assert chat["seq"] == 1
            assert chat["event"]["text"] == "hello"
            assert chat["event"]["by"] == {"sub": "u1", "role": "student"}
            assert isinstance(chat["event"]["at"], float)
            assert "seq" not in await asyncio.wait_for(events.get(), 5)
            presence: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
            client.on("presence.join", lambda d: presence.put_nowait(("join", d)))
            client.on("presence.leave", lambda d: presence.put_nowait(("leave", d)))
            other = socketio.AsyncClient(reconnection=False, handle_sigint=False,
                                         http_session=http)
            await other.connect(base, transports=["websocket"], wait_timeout=5,
                                auth={"token": reference_token("u2", ["s1"])})
            assert (await other.call("join", {"session": "s1"}, timeout=5))["seq"] == 1
            await other.disconnect()
            who = {"session": "s1", "participant": {"sub": "u2", "role": "student"}}
            assert await asyncio.wait_for(presence.get(), 5) == ("join", who)
            assert await asyncio.wait_for(presence.get(), 5) == ("leave", who)
        finally:
            await client.disconnect()
    store = redis.Redis.from_url(REDIS_URL)
    try:
        assert store.get(f"{prefix}:seq:s1") == b"1"
    finally:
        store.close()


async def test_same_tiny_scenario_against_reference_and_ours(
    reference: tuple[str, str], start_server: ServerFactory, tmp_path: Path
) -> None:
    """The fan-out ladder (waiting for the join storm, then stepping up) against both, and
    a small classroom against the reference. Run side by side here to keep the test short:
    the bench itself never runs two targets at once."""
    url, _ = reference
    server = await start_server(rate_limit_per_second=1000.0, rate_limit_burst=2000)
    common = ["--tenant", "acme", "--processes", "1", "--quiet"]
    (_, ladder_theirs), (_, ladder_ours), (_, classroom_theirs) = await asyncio.gather(
        loadtests(tmp_path, REFERENCE_SECRET, "run", "--driver", "socketio", "--url", url,
                  *common, *LADDER),
        loadtests(tmp_path, TENANTS["acme"]["secrets"][0], "run", "--url", server.ws_url,
                  *common, *LADDER),
        loadtests(tmp_path, REFERENCE_SECRET, "run", "--driver", "socketio", "--url", url,
                  *common, *TINY),
    )
    for report in (ladder_theirs, ladder_ours, classroom_theirs):
        assert report["errors"]["total"] == 0, report["errors"]
        assert report["connections"]["peak_online"] == report["connections"]["target"]
        assert report["throughput"]["deliveries"] > 0
        assert report["latency_ms"]["count"] > 0
        assert report["latency_ms"]["publish_leg"]["count"] > 0  # both stamp ``at``
    for report in (ladder_theirs, ladder_ours):
        # 10/s then 20/s for 2 s each, to 5 members (the publisher included).
        assert report["throughput"]["commands"] >= 0.8 * (20 + 40)
        assert report["latency_ms"]["count"] >= 0.8 * 5 * (20 + 40)
    assert ladder_ours["recovery"]["gaps"] == ladder_ours["recovery"]["duplicates"] == 0


async def test_ceiling_reports_deliveries(tmp_path: Path) -> None:
    stdout, result = await loadtests(tmp_path, None, "ceiling", "--clients", "4", "--rates",
                                     "10,20", "--step", "2", "--processes", "1")
    assert "websockets.broadcast() to 4 clients" in stdout
    assert result["errors"] == 0
    assert result["deliveries"] > 0
    steps = result["ladder"]["steps"]
    assert [s["rate"] for s in steps] == [10, 20]
    assert steps[0]["deliveries_per_s"] == pytest.approx(40, rel=0.2)  # 10/s to 4 clients


def _second(deliveries: int, latency_ms: float, cpu: float, other: float = 0.0) -> Second:
    second = Second()
    second.tally.counts["deliveries"] = deliveries
    for _ in range(100):
        second.tally.latency.add(latency_ms / 1000)
    second.generator_cpu = 0.1  # 10% of a core
    second.server = {"server_cpu_pct": cpu, "machine_cpu_pct": (cpu + 10 + other + 8) / CORES,
                     "machine_irq_pct": 8 / CORES}  # loopback softirq: not "other"
    return second


def test_ladder_verdicts_on_made_up_seconds() -> None:
    scenario = build_scenario("fanout", {"students": 9, "fanout_rates": (10, 20, 40, 80),
                                         "fanout_step": 2, "fanout_wait_max": 2})
    # 10 members: offered 100, 200, 400, 800 deliveries/s. The ladder started 1 s late.
    made_up = {10: (100, 5, 10.0), 20: (200, 8, 20.0), 40: (400, 150, 40.0),
               80: (420, 900, 45.0, 60.0)}  # someone else's job took 60% of a core
    seconds = {}
    for step, rate in enumerate(scenario.fanout_rates):
        for index in step_seconds(scenario, step, shift=1):
            seconds[index] = _second(*made_up[rate])
    result = analyse(scenario, seconds, p99_limit_ms=100, shift=1)
    assert [s["sustained"] for s in result["steps"]] == [True, True, False, False]
    assert result["max_sustainable_per_s"] == 200
    assert result["max_sustainable_rate"] == 20
    assert result["max_kept_up_per_s"] == 400  # all delivered, but p99 150 ms
    assert result["per_server_core"] == 1000  # 100/s at 10%, 200/s at 20%, 400/s at 40%
    assert result["peak_per_s"] == 420
    assert result["plateau_rate"] == 80  # 420 is not 10% more than 400
    assert result["disturbed_steps"] == [80]
    assert result["steps"][3]["other_cpu_pct"] == pytest.approx(60, abs=0.5)


def test_settled_window_starts_once_the_join_storm_has_drained() -> None:
    scenario = build_scenario("lecture", {"students": 9, "duration": 6, "progress_every": 0,
                                          "poll_every": 0})
    # (online, deliveries, commands, latency ms): ramp, storm tail, then 10 publishes/s
    # reaching 10 members, plus their replies.
    made_up = [(5, 900, 20, 50), (10, 800, 20, 50), (10, 600, 10, 40), (10, 110, 10, 4),
               (10, 112, 10, 4), (10, 108, 10, 6)]
    seconds = {}
    for index, (online, deliveries, commands, latency) in enumerate(made_up, start=1):
        second = _second(deliveries, latency, 5.0)
        second.online = online
        second.tally.counts["commands"] = commands
        seconds[index] = second
    window = settled(scenario, seconds)
    assert window["from_s"] == 4
    assert window["seconds"] == 3
    assert window["deliveries_per_s"] == 110
    assert window["offered_per_s"] == 100
    assert window["latency_ms"]["max"] < 7  # none of the storm's latencies


def test_ratio_table_and_quick_profile() -> None:
    results = {"fanout": {
        "ours": {"ladder": {"max_sustainable_per_s": 40000.0, "max_sustainable_rate": 80.0,
                            "peak_per_s": 50000.0, "per_server_core": 55000}},
        "reference": {"ladder": {"max_sustainable_per_s": 10000.0, "max_sustainable_rate": 20.0,
                                 "peak_per_s": 12000.0, "per_server_core": 18000}},
        "ceiling": {"ladder": {"max_sustainable_per_s": 40000.0, "max_sustainable_rate": 80.0,
                               "peak_per_s": 60000.0, "per_server_core": 90000}},
    }}
    rows = ratio_rows(results)
    best = next(r for r in rows if r["measure"].startswith("max sustainable"))
    assert best["ours_per_reference"] == 4.0
    assert best["ours_per_ceiling"] == 1.0
    table = ratio_table(rows, 100)
    assert "p99 <= 100 ms" in table
    # --quick must stay well under 3 minutes of measuring: 2 x classroom, 2 x lecture,
    # 3 x ladder (the ceiling's without the wait for a join storm).
    shapes = compare_scenarios(QUICK)
    fanout = shapes["fanout"]
    measured = (2 * shapes["classroom"].duration + 2 * shapes["lecture500"].duration
                + 2 * fanout.duration + fanout.duration - fanout.fanout_wait_max)
    assert measured <= 120  # plus ~3 s per run to start servers and processes
