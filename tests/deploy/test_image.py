"""The container image, built and run for real: ``/readyz``, the pages, a WebSocket session."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.deploy.podman import GATED, TENANTS, lesson, ready, sh
from tests.multinode.conftest import free_port

pytestmark = GATED
REDIS_URL = os.environ.get("CLASSROOM_TEST_REDIS_URL", "redis://127.0.0.1:6379/11")


@pytest.fixture
def container(image: str) -> Iterator[tuple[str, int]]:
    """The image run as an operator would, on the host's network and the local Redis."""
    name, port = f"classroom-test-{uuid.uuid4().hex[:8]}", free_port()
    started = sh(
        "scripts/podman.sh", "run", "--detach", "--rm", "--name", name, "--network", "host",
        "--env", f"PORT={port}", "--env", f"REDIS_URL={REDIS_URL}",
        "--env", f"CLASSROOM_REDIS_PREFIX=image-test-{name}",
        "--env", f"CLASSROOM_TENANTS={json.dumps(TENANTS)}",
        "--env", "CLASSROOM_SECRET=image-test-node-secret-0123456789", image, check=False)
    assert started.returncode == 0, started.stderr
    try:
        yield name, port
    finally:
        logs = sh("scripts/podman.sh", "logs", name, check=False)
        sh("scripts/podman.sh", "stop", "--time", "5", name, check=False)
        print(logs.stdout[-3000:], logs.stderr[-3000:])


async def test_the_image_serves_readyz_pages_and_a_websocket_session(
    container: tuple[str, int],
) -> None:
    name, port = container
    await ready(f"http://127.0.0.1:{port}")
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
        page = await http.get("/student")
        assert page.status_code == 200 and "Content-Security-Policy" in page.headers
        assert (await http.get("/static/classroom.js")).status_code == 200
        assert (await http.get("/static/client/classroom.js")).status_code == 200

    # A trainer and a student on the containerised node, through Redis.
    for client in await lesson(f"ws://127.0.0.1:{port}/ws"):
        await client.close()

    # It runs as its own user, not root, and its HEALTHCHECK passes.
    uid = sh("scripts/podman.sh", "exec", name, "id", "-u")
    assert uid.stdout.strip() not in ("", "0"), uid
    health = sh("scripts/podman.sh", "healthcheck", "run", name, check=False)
    assert health.returncode == 0, health.stdout + health.stderr
