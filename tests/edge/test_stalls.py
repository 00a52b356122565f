"""A node reports its own stops on ``/metrics``: the event loop's lag and the collector's pauses.

An operator (and every load test's report) must be able to tell a node that
stopped from a slow network or a slow client; these read it off a real server.
"""

from __future__ import annotations

import asyncio
import gc
import re
import time

import httpx

from loadtests.monitor import scrape_metrics
from loadtests.report import _collections, _stalls
from tests.conftest import METRICS_TOKEN, ServerFactory

BEARER = {"Authorization": f"Bearer {METRICS_TOKEN}"}


def series(text: str, name: str, **labels: str) -> float:
    """The value of one series in Prometheus text, 0 when it is absent."""
    for line in text.splitlines():
        if not line.startswith(name):
            continue
        head, _, value = line.rpartition(" ")
        found = dict(re.findall(r'(\w+)="([^"]*)"', head))
        if head.split("{", 1)[0] == name and found == labels:
            return float(value)
    return 0.0


async def _metrics(url: str) -> str:
    async with httpx.AsyncClient(base_url=url) as http:
        answer = await http.get("/metrics", headers=BEARER)
    assert answer.status_code == 200
    return answer.text


async def test_a_stopped_loop_shows_as_lag(start_server: ServerFactory) -> None:
    server = await start_server()
    await asyncio.sleep(0.25)  # the probe has ticked on time a few times
    before = await _metrics(server.http_url)
    calm = series(before, "classroom_event_loop_lag_seconds_count")
    assert calm >= 1
    assert series(before, "classroom_event_loop_lag_seconds_bucket", le="0.1") == calm

    time.sleep(0.4)  # what a long full collection or a blocking call does to the node
    await asyncio.sleep(0.25)
    after = await _metrics(server.http_url)
    total = series(after, "classroom_event_loop_lag_seconds_count")
    under_quarter_second = series(after, "classroom_event_loop_lag_seconds_bucket", le="0.25")
    assert total - under_quarter_second == 1, after  # the one stop, seen once
    assert series(after, "classroom_event_loop_lag_seconds_sum") >= 0.25


async def test_each_collection_is_timed_by_generation(start_server: ServerFactory) -> None:
    server = await start_server()
    before = series(await _metrics(server.http_url),
                    "classroom_gc_pause_seconds_count", generation="2")
    gc.collect()
    gc.collect(0)
    text = await _metrics(server.http_url)
    assert series(text, "classroom_gc_pause_seconds_count", generation="2") == before + 1
    assert series(text, "classroom_gc_pause_seconds_count", generation="0") >= 1
    assert series(text, "classroom_gc_pause_seconds_sum", generation="2") > 0


async def test_a_stopped_node_no_longer_hears_of_collections(
    start_server: ServerFactory,
) -> None:
    callbacks = len(gc.callbacks)
    first = await start_server()
    second = await start_server()
    assert len(gc.callbacks) == callbacks + 2  # one each: several apps share a process
    second.server.should_exit = True
    for _ in range(500):
        if len(gc.callbacks) == callbacks + 1:
            break
        await asyncio.sleep(0.01)
    assert len(gc.callbacks) == callbacks + 1
    gc.collect()
    text = await _metrics(first.http_url)
    assert series(text, "classroom_gc_pause_seconds_count", generation="2") >= 1


async def test_a_load_test_report_tells_the_nodes_stops(start_server: ServerFactory) -> None:
    """The generator reads the same series before and after a run, and its report says how
    often the node itself stopped (so a tail is not blamed on the network or the clients)."""
    server = await start_server()
    await asyncio.sleep(0.2)
    before = await asyncio.to_thread(scrape_metrics, server.ws_url, 3.0, METRICS_TOKEN)
    time.sleep(0.4)  # seen 0.3-0.4 s late
    await asyncio.sleep(0.15)
    time.sleep(0.2)  # seen 0.1-0.2 s late: the timer was due within one tick
    await asyncio.sleep(0.15)
    after = await asyncio.to_thread(scrape_metrics, server.ws_url, 3.0, METRICS_TOKEN)
    stalls = _stalls((before, after))
    assert stalls is not None
    assert stalls["loop_stalls_over_50ms"] == 2
    assert stalls["loop_stalls_over_250ms"] == 1
    assert stalls["full_collections"] == 0
    assert stalls["loop_ticks"] >= 3
    gc.collect()
    gc.collect(1)
    gc.collect(1)
    collected = await asyncio.to_thread(scrape_metrics, server.ws_url, 3.0, METRICS_TOKEN)
    stalls = _stalls((after, collected))
    assert stalls is not None and stalls["full_collections"] == 1
    assert stalls["full_collection_seconds"] > 0
    # The middle generation's collections are counted apart (a storm's stops are those).
    middle = stalls["collections"]["middle"]
    assert middle["count"] >= 2 and middle["over_25ms"] == 0
    assert "young" in stalls["collections"]
    assert f"middle {middle['count']} (" in _collections(stalls)
    assert _collections({"loop_ticks": 3}) == ""  # a report from before they were counted
    assert _stalls((before, None)) is None
