"""Failed server-API keys are throttled per client address (issue 12, point 12)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from classroom.domain.addresses import address_key
from classroom.tenant_api.key_throttle import KeyThrottle
from classroom.tenant_api.openapi import build_openapi
from tests.conftest import RunningServer, ServerFactory

ACME = {"Authorization": "Bearer acme-key"}


@pytest.fixture
async def http(server: RunningServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.http_url) as client:
        yield client


async def test_ten_failures_answer_429_for_the_rest_of_the_window(
    http: httpx.AsyncClient,
) -> None:
    assert (await http.get("/api/v1/audit", headers=ACME)).status_code == 200
    for n in range(10):
        headers = {"Authorization": f"Bearer wrong-{n}"} if n % 2 else {}
        answer = await http.get("/api/v1/sessions/s1", headers=headers)
        assert answer.status_code == 401, n
    throttled = await http.get("/api/v1/sessions/s1", headers={"Authorization": "Bearer x"})
    assert throttled.status_code == 429
    assert throttled.json() == {
        "error": "rate_limited",
        "message": "too many failed API keys from this address; retry later"}
    assert 1 <= int(throttled.headers["retry-after"]) <= 60
    assert throttled.headers["x-content-type-options"] == "nosniff"
    # Refused with the right key too, so a guess cannot be told right from wrong.
    good = await http.get("/api/v1/audit", headers=ACME)
    assert good.status_code == 429 and "retry-after" in good.headers
    # What needs no key is not throttled.
    assert (await http.get("/openapi.json")).status_code == 200
    assert (await http.get("/healthz")).status_code == 200


async def test_the_address_may_try_again_after_the_window(start_server: ServerFactory) -> None:
    server = await start_server(api_key_failure_limit=2, api_key_failure_window=0.5)
    async with httpx.AsyncClient(base_url=server.http_url) as http:
        assert (await http.get("/api/v1/audit", headers={"Authorization": "Bearer a"})
                ).status_code == 401
        assert (await http.get("/api/v1/audit")).status_code == 401
        assert (await http.get("/api/v1/audit", headers=ACME)).status_code == 429
        await asyncio.sleep(0.6)
        assert (await http.get("/api/v1/audit", headers=ACME)).status_code == 200


async def test_successes_do_not_clear_the_count(start_server: ServerFactory) -> None:
    server = await start_server(api_key_failure_limit=3)
    async with httpx.AsyncClient(base_url=server.http_url) as http:
        for _ in range(2):
            assert (await http.get("/api/v1/audit")).status_code == 401
            assert (await http.get("/api/v1/audit", headers=ACME)).status_code == 200
        assert (await http.get("/api/v1/audit")).status_code == 401
        assert (await http.get("/api/v1/audit", headers=ACME)).status_code == 429


def test_the_openapi_document_lists_429() -> None:
    for operations in build_openapi()["paths"].values():
        for operation in operations.values():
            assert "429" in operation["responses"]


# --- the throttle itself, on a fake clock ----------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_per_address_fixed_window() -> None:
    clock = Clock()
    throttle = KeyThrottle(limit=3, window=60, clock=clock)
    for _ in range(2):
        throttle.failed("10.0.0.1")
    assert throttle.retry_after("10.0.0.1") is None
    clock.now += 10
    throttle.failed("10.0.0.1")
    assert throttle.retry_after("10.0.0.1") == 50  # the window began at the first failure
    assert throttle.retry_after("10.0.0.2") is None
    clock.now += 49.5
    assert throttle.retry_after("10.0.0.1") == 1
    clock.now += 0.5
    assert throttle.retry_after("10.0.0.1") is None
    throttle.failed("10.0.0.1")  # a new window, counting from one
    assert throttle.retry_after("10.0.0.1") is None


def test_memory_is_bounded() -> None:
    clock = Clock()
    throttle = KeyThrottle(limit=2, window=60, max_addresses=100, clock=clock)
    for n in range(1000):
        throttle.failed(f"10.0.{n // 256}.{n % 256}")
        assert len(throttle) <= 100
    # Expired windows are dropped as new addresses come.
    clock.now += 61
    throttle.failed("192.0.2.1")
    assert len(throttle) == 1


def test_an_ipv6_subscriber_counts_as_one_address() -> None:
    assert address_key("2001:db8:1:2:aaaa::1") == address_key("2001:db8:1:2:bbbb::9")
    assert address_key("2001:db8:1:2::1") == "2001:db8:1:2::/64"
    assert address_key("2001:db8:1:3::1") != address_key("2001:db8:1:2::1")
    assert address_key("::ffff:192.0.2.7") == "192.0.2.7"
    assert address_key("192.0.2.7") == "192.0.2.7"
    assert address_key(None) == "unknown"
    assert address_key("testclient") == "testclient"


def test_bad_throttle_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        KeyThrottle(limit=0)
    with pytest.raises(ValueError):
        KeyThrottle(window=0)
