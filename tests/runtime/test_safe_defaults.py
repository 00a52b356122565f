"""Safe by default (issue 12, points 12 and 14): what a node refuses to start with, the
warning on a short API key, and the security headers on answers that are data."""

from __future__ import annotations

import json
import signal
from typing import Any

import httpx
import pytest

from classroom.app import create_app
from classroom.config import Settings, UnsafeDeploymentError
from classroom.edge.http_headers import DATA_SECURITY_HEADERS
from tests.conftest import ServerFactory
from tests.runtime.test_cli import free_port, spawn, wait_listening

# Nothing listens here: the refusal must come before any connection is tried.
UNREACHABLE_REDIS = "redis://127.0.0.1:9/0"
TENANTS_JSON = json.dumps({"acme": {"secrets": ["s3cr3t-0123456789-0123456789-0123"],
                                    "api_key": "acme-api-key-0123456789-0123456789"}})
ACME = {"Authorization": "Bearer acme-key"}


# --- point 12: REDIS_URL needs CLASSROOM_SECRET and CLASSROOM_TENANTS ------------------


@pytest.mark.parametrize(("env", "missing"), [
    ({"CLASSROOM_TENANTS": TENANTS_JSON}, ["CLASSROOM_SECRET"]),
    ({"CLASSROOM_SECRET": "pid-secret"}, ["CLASSROOM_TENANTS"]),
    ({}, ["CLASSROOM_SECRET", "CLASSROOM_TENANTS"]),
    ({"CLASSROOM_SECRET": "  ", "CLASSROOM_TENANTS": TENANTS_JSON}, ["CLASSROOM_SECRET"]),
])
def test_serve_refuses_redis_without_secret_or_tenants(
    env: dict[str, str], missing: list[str]
) -> None:
    proc = spawn(free_port(), REDIS_URL=UNREACHABLE_REDIS, **env)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 2, stderr
    assert stderr.startswith("classroom: configuration error: REDIS_URL is set but")
    for name in missing:
        assert name in stderr.splitlines()[0]
    assert "demo" not in stdout  # no banner, no printed keys
    assert "pid-secret" not in stderr and "acme-api-key" not in stderr


def test_apps_built_in_process_meet_the_same_rule() -> None:
    with pytest.raises(UnsafeDeploymentError, match="CLASSROOM_SECRET"):
        create_app(Settings(redis_url=UNREACHABLE_REDIS, tenants_raw=TENANTS_JSON))
    with pytest.raises(UnsafeDeploymentError, match="CLASSROOM_TENANTS"):
        create_app(Settings(redis_url=UNREACHABLE_REDIS, secret="pid-secret"))
    assert issubclass(UnsafeDeploymentError, ValueError)
    # Settings alone may still be built (and the memory backend needs neither).
    assert Settings(redis_url=UNREACHABLE_REDIS).redis_url == UNREACHABLE_REDIS
    Settings().check_deployment()
    Settings(redis_url=UNREACHABLE_REDIS, secret="s", tenants_raw=TENANTS_JSON).check_deployment()


async def test_serve_warns_about_a_short_api_key_without_showing_it(tmp_path: Any) -> None:
    config = tmp_path / "tenants.json"
    config.write_text(json.dumps({"acme": {"secrets": ["s3cr3t-0123456789-0123456789-0123"],
                                           "api_key": "short-acme-key"}}))
    port = free_port()
    proc = spawn(port, CLASSROOM_TENANTS=str(config))
    try:
        await wait_listening(port, proc)
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=15)
        warnings = [json.loads(line) for line in stderr.splitlines()
                    if "API key is shorter" in line]
        assert len(warnings) == 1, stderr
        assert warnings[0]["level"] == "warning" and warnings[0]["tenant"] == "acme"
        assert "short-acme-key" not in stdout + stderr
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


# --- point 14: security headers on /api and /openapi.json, HSTS behind TLS ------------


def assert_data_headers(answer: httpx.Response) -> None:
    for name, value in DATA_SECURITY_HEADERS.items():
        assert answer.headers.get(name) == value, (answer.url, name, answer.headers)


async def test_api_and_openapi_answers_carry_security_headers(
    start_server: ServerFactory,
) -> None:
    server = await start_server()
    async with httpx.AsyncClient(base_url=server.http_url) as http:
        answers = [
            await http.get("/openapi.json"),
            await http.put("/api/v1/sessions/s1", json={"trainers": ["t1"]}, headers=ACME),
            await http.get("/api/v1/sessions/s1", headers=ACME),
            await http.get("/api/v1/sessions/s1"),  # 401
            await http.get("/api/v1/sessions/nope", headers=ACME),  # 404
            await http.get("/healthz"),
        ]
        assert [a.status_code for a in answers] == [200, 200, 200, 401, 404, 200]
        for answer in answers:
            assert_data_headers(answer)
            assert "strict-transport-security" not in answer.headers
        assert answers[0].headers["content-security-policy"] == (
            "default-src 'none'; frame-ancestors 'none'")


async def test_hsts_on_every_answer_when_behind_tls(start_server: ServerFactory) -> None:
    server = await start_server(hsts_seconds=31536000)
    async with httpx.AsyncClient(base_url=server.http_url) as http:
        for path in ("/openapi.json", "/api/v1/audit", "/healthz", "/student", "/nowhere"):
            answer = await http.get(path)
            assert answer.headers["strict-transport-security"] == "max-age=31536000", path
        page = await http.get("/student")
    if page.status_code == 200:  # served when static/ is next to the package
        # The page keeps its own policy (scripts from this origin), not the data one.
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert page.headers["cache-control"] == "no-cache"


def test_settings_for_the_safe_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings()
    assert (settings.metrics_token, settings.hsts_seconds) == (None, 0)
    assert (settings.api_key_failure_limit, settings.api_key_failure_window) == (10, 60.0)
    monkeypatch.setenv("CLASSROOM_METRICS_TOKEN", "m" * 40)
    monkeypatch.setenv("CLASSROOM_HSTS_SECONDS", "600")
    monkeypatch.setenv("CLASSROOM_API_KEY_FAILURE_LIMIT", "3")
    monkeypatch.setenv("CLASSROOM_API_KEY_FAILURE_WINDOW", "5")
    settings = Settings()
    assert settings.metrics_token == "m" * 40 and "m" * 40 not in repr(settings)
    assert (settings.hsts_seconds, settings.api_key_failure_limit) == (600, 3)
    assert settings.api_key_failure_window == 5.0
    monkeypatch.setenv("CLASSROOM_METRICS_TOKEN", "   ")
    assert Settings().metrics_token is None
    monkeypatch.setenv("CLASSROOM_HSTS_SECONDS", "-1")
    with pytest.raises(ValueError, match=r"(?i)hsts"):
        Settings()
