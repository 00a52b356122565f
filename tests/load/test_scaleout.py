"""The scale-out measurement's own logic, without servers: who connects where, the
timeline, the windows' arithmetic and the report (a real run takes minutes and a
Redis Cluster; ``loadtests/bench.sh scaleout`` does that)."""

from __future__ import annotations

import pytest

from loadtests.plan import Credentials, make_plans
from loadtests.runner import Second
from loadtests.scaleout.config import ScaleoutConfig, Timeline, shape
from loadtests.scaleout.probe import NodeReading, Reading, RedisReading, metric
from loadtests.scaleout.render import render
from loadtests.scaleout.runner import analyse
from loadtests.scenarios import build_scenario

URLS = ("ws://127.0.0.1:1/ws", "ws://127.0.0.1:2/ws", "ws://127.0.0.1:3/ws")


def test_users_are_dealt_round_robin_over_the_nodes() -> None:
    scenario = build_scenario("steady", {"students": 1499})
    plans = make_plans(scenario, URLS[0], Credentials("acme", "s" * 32), 2, urls=URLS)
    users = sorted((u for plan in plans for u in plan.users), key=lambda u: u.seat)
    per_node = {url: sum(1 for u in users if plans[0].url_for(u) == url) for url in URLS}
    assert per_node == dict.fromkeys(URLS, 500)
    assert plans[0].url_for(users[0]) == URLS[0]  # the trainer, on the first node
    alone = make_plans(scenario, URLS[0], Credentials("acme", "s" * 32), 1)[0]
    assert {alone.url_for(u) for u in alone.users} == {URLS[0]}


def test_shapes_give_each_node_the_same_share() -> None:
    config = ScaleoutConfig()
    assert shape("cluster3", config).per_node == [500, 500, 500]
    assert shape("cluster1", config).per_node == [500]
    assert shape("memory1", config).broker == "memory"
    assert shape("haproxy3", config).balancer
    rooms = ScaleoutConfig(rooms=201, members=31)
    assert shape("cluster3", rooms).per_node == [2077, 2077, 2077]
    single = shape("cluster1", rooms)
    assert (single.rooms, single.members, single.per_node) == (67, 31, [2077])


def test_the_timeline_leaves_the_ramp_and_the_first_second_of_publishing_out() -> None:
    timeline = Timeline.of(1500, ScaleoutConfig(connect_rate=150, settle=12, idle=8,
                                                measure=30))
    assert (timeline.ramp, timeline.idle_from, timeline.publish_from) == (10, 22, 30)
    assert (timeline.measure_from, timeline.measure_to, timeline.duration) == (31, 61, 62)


def test_a_bad_configuration_is_refused() -> None:
    with pytest.raises(ValueError, match="haproxy3"):
        ScaleoutConfig(nodes=4).validate()
    with pytest.raises(ValueError, match="shapes"):
        ScaleoutConfig(shapes=("cluster9",)).validate()


def test_metric_reads_an_unlabelled_sample() -> None:
    text = "# HELP x\nclassroom_connections 12.0\nclassroom_frames_written_total 3e+03\n"
    assert metric(text, "classroom_connections") == 12.0
    assert metric(text, "classroom_frames_written_total") == 3000.0
    assert metric(text, "missing") is None


def _reading(at: float, cpu: float, frames: float, redis_cpu: float, evalsha: int,
             rss: int) -> Reading:
    node = NodeReading(cpu_seconds=cpu, rss_bytes=rss, frames_written=frames,
                       connections=2.0, buckets=None)
    shard = RedisReading(cpu_seconds=redis_cpu, net_output_bytes=evalsha * 1000,
                         repl_output_bytes=evalsha * 500, commands=evalsha,
                         calls={"evalsha": evalsha, "spublish": evalsha},
                         usec={"evalsha": evalsha * 40})
    return Reading(at, [node], {7000: shard}, {}, machine_busy=at, machine_total=2 * at,
                   machine_irq=0.0)


def test_analyse_divides_the_measured_window_by_what_happened_in_it() -> None:
    config = ScaleoutConfig(members=6, nodes=3, connect_rate=6, settle=1, idle=2, measure=5)
    timeline = Timeline.of(2, config)
    one = shape("cluster1", config)
    seconds: dict[int, Second] = {}
    readings: dict[int, Reading] = {}
    for k in range(timeline.duration + 1):
        publishing = k > timeline.publish_from
        second = seconds[k] = Second(online=2)
        second.tally.counts["deliveries"] = 20 if publishing else 0
        second.tally.counts["commands"] = 10 if publishing else 0
        second.tally.latency.add(0.005)
        published = max(0, k - timeline.publish_from) * 10
        # The node spends 0.01 s of CPU a second idle, plus 10 us per delivery.
        readings[k] = _reading(float(k), 0.01 * k + published * 2 * 10e-6, published * 2.0,
                               0.001 * k + published * 100e-6, published, 1000 + 1024 * k)
    report = {"connections": {"target": 2, "peak_online": 2},
              "errors": {"total": 0, "by_code": {}, "samples": {}},
              "recovery": {"gaps": 0, "duplicates": 0, "gap_check": "every client"},
              "latency_ms": {}}
    result = analyse(one, timeline, report, seconds, readings, {7000})
    node = result["node"][0]
    assert node["deliveries_per_s"] == 20.0
    assert node["us_per_delivery"] == pytest.approx(10 + 0.01 / 20 * 1e6, rel=0.01)
    assert result["publications_per_s"] == 10.0
    shard = result["redis"]["processes"]["7000"]
    assert shard["cpu_us_per_publication_net_of_idle"] == pytest.approx(100, rel=0.01)
    assert shard["script_us_per_publication_net_of_idle"] == pytest.approx(40, rel=0.01)
    assert result["windows_clean"]
    document = {"command": "python -m loadtests scaleout", "finished_at": "now", "seconds": 1.0,
                "machine": {"cpus": 2, "memory_gib": 1.0, "python": "3.11"},
                "config": config.to_dict(), "runs": [{**result, "repeat": 1}], "broker": []}
    text = render(document)
    assert "| cluster1 | 1 | 1 x (2) (1) |" in text
