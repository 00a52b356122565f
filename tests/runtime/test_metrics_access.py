"""``/metrics`` off the public surface (issue 12, point 14): a bearer token when
``CLASSROOM_METRICS_TOKEN`` is set, open only on a demo node without it, 404 otherwise."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from loadtests.monitor import fetch_metrics, scrape_metrics
from tests.conftest import METRICS_TOKEN, ServerFactory

BEARER = {"Authorization": f"Bearer {METRICS_TOKEN}"}


async def test_a_metrics_token_is_required_when_set(start_server: ServerFactory) -> None:
    server = await start_server()  # the test servers set METRICS_TOKEN
    async with httpx.AsyncClient(base_url=server.http_url) as http:
        for headers in ({}, {"Authorization": "Bearer nope"},
                        {"Authorization": f"Basic {METRICS_TOKEN}"},
                        {"Authorization": f"Bearer {METRICS_TOKEN}x"}):
            answer = await http.get("/metrics", headers=headers)
            assert answer.status_code == 401, headers
            assert answer.headers["www-authenticate"].startswith("Bearer")
            assert "classroom_" not in answer.text
        answer = await http.get("/metrics", headers=BEARER)
        assert answer.status_code == 200
        assert "classroom_connections" in answer.text
        assert answer.headers["x-content-type-options"] == "nosniff"
        lower = await http.get("/metrics", headers={"authorization": f"bearer {METRICS_TOKEN}"})
        assert lower.status_code == 200


async def test_without_a_token_metrics_are_not_served_with_tenants(
    start_server: ServerFactory,
) -> None:
    server = await start_server(metrics_token=None)
    async with httpx.AsyncClient(base_url=server.http_url) as http:
        for headers in ({}, BEARER):
            answer = await http.get("/metrics", headers=headers)
            assert answer.status_code == 404
            assert "classroom_" not in answer.text


async def test_the_demo_node_serves_metrics_openly(start_server: ServerFactory) -> None:
    server = await start_server(tenants_raw=None, metrics_token=None)
    assert server.settings.is_demo
    async with httpx.AsyncClient(base_url=server.http_url) as http:
        answer = await http.get("/metrics")
    assert answer.status_code == 200 and "classroom_connections" in answer.text


async def test_wrong_metrics_tokens_are_throttled_like_api_keys(
    start_server: ServerFactory,
) -> None:
    server = await start_server(api_key_failure_limit=3)
    async with httpx.AsyncClient(base_url=server.http_url) as http:
        codes = [(await http.get("/metrics", headers={"Authorization": f"Bearer x{n}"}))
                 .status_code for n in range(3)]
        assert codes == [401, 401, 401]
        answer = await http.get("/metrics", headers=BEARER)
        assert answer.status_code == 429
        assert 1 <= int(answer.headers["retry-after"]) <= 60


async def test_the_load_generator_sends_the_token(
    start_server: ServerFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = await start_server()
    monkeypatch.delenv("CLASSROOM_METRICS_TOKEN", raising=False)
    assert await asyncio.to_thread(fetch_metrics, server.ws_url, 3.0) is None
    text = await asyncio.to_thread(fetch_metrics, server.ws_url, 3.0, METRICS_TOKEN)
    assert text is not None and "classroom_connections" in text
    counters = await asyncio.to_thread(scrape_metrics, server.ws_url, 3.0, METRICS_TOKEN)
    assert counters is not None and "classroom_connections" in counters
    monkeypatch.setenv("CLASSROOM_METRICS_TOKEN", METRICS_TOKEN)  # as loadtests/bench.sh does
    assert await asyncio.to_thread(fetch_metrics, server.ws_url, 3.0) is not None
