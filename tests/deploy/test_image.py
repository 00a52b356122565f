"""The container image, built and run for real: ``/readyz``, the pages, a WebSocket session.

Slow (a base image from debootstrap the first time, then the build), so it runs with
``make image-test`` (``CLASSROOM_IMAGE_TEST=1``), not in every ``make test``. No image
registry is reachable here: the base is made from Debian's packages
(``scripts/image-test.sh base``, cached under ``build/``) and the project comes in as
wheels built on the host.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from auth.tenants import Tenant
from auth.tokens import issue_token
from tests.client import Client
from tests.multinode.conftest import free_port

REPO = Path(__file__).resolve().parents[2]
TAG = "localhost/classroom:image-test"
BASE = os.environ.get("CLASSROOM_IMAGE_BASE", "localhost/classroom-base:bookworm")
REDIS_URL = os.environ.get("CLASSROOM_TEST_REDIS_URL", "redis://127.0.0.1:6379/11")
SECRET = "image-test-secret-0123456789-abcdefgh"
TENANTS = {"acme": {"secrets": [SECRET], "api_key": "acme-image-test-key"}}
ACME = Tenant(id="acme", secrets=(SECRET,), api_key="acme-image-test-key")

pytestmark = [
    pytest.mark.skipif(os.environ.get("CLASSROOM_IMAGE_TEST") != "1",
                       reason="builds a container image: run `make image-test`"),
    pytest.mark.timeout(900),
]


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["sh", *args], cwd=REPO, check=check, capture_output=True,
                          text=True, timeout=840)


@pytest.fixture(scope="module")
def image() -> str:
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed (scripts/image-test.sh installs Debian's)")
    base = sh("scripts/image-test.sh", "base", check=False)
    assert base.returncode == 0, f"no base image {BASE}: {base.stderr[-2000:]}"
    probe = sh("scripts/podman.sh", "run", "--rm", "--network", "host", BASE, "true", check=False)
    if probe.returncode != 0:
        pytest.skip(f"podman cannot run containers here: {probe.stderr.strip()[-300:]}")
    built = sh("deploy/build-image.sh", "--tag", TAG, "--build-arg", f"BASE={BASE}", check=False)
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    return TAG


@pytest.fixture
def container(image: str) -> Iterator[tuple[str, int]]:
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


async def ready(port: int) -> None:
    async with httpx.AsyncClient() as http:
        for _ in range(300):
            try:
                if (await http.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError("the container never answered /readyz with 200")


async def test_the_image_serves_readyz_pages_and_a_websocket_session(
    container: tuple[str, int],
) -> None:
    name, port = container
    await ready(port)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
        page = await http.get("/student")
        assert page.status_code == 200 and "Content-Security-Policy" in page.headers
        client_js = await http.get("/static/classroom.js")
        assert client_js.status_code == 200
        assert (await http.get("/static/client/classroom.js")).status_code == 200

    # A trainer and a student on the containerised node, through Redis.
    tessa, sam = await Client.open(f"ws://127.0.0.1:{port}/ws"), await Client.open(
        f"ws://127.0.0.1:{port}/ws", "msgpack")
    try:
        for client, sub, role in ((tessa, "t1", "trainer"), (sam, "u1", "student")):
            token = issue_token(ACME, sub=sub, role=role, sessions=["s1"], ttl=600)
            assert (await client.connect(token))["type"] == "connected"
            assert (await client.request("join", session="s1"))["type"] == "joined"
        reply = await tessa.request("publish", session="s1",
                                    event={"kind": "chat", "text": "uit de container"})
        assert reply["type"] == "published"
        got = await sam.expect(lambda f: f.get("type") == "event"
                               and f["event"].get("kind") == "chat")
        assert got["event"]["text"] == "uit de container"
    finally:
        await tessa.close()
        await sam.close()

    # It runs as its own user, not root, and its HEALTHCHECK passes.
    uid = sh("scripts/podman.sh", "exec", name, "id", "-u")
    assert uid.stdout.strip() not in ("", "0"), uid
    health = sh("scripts/podman.sh", "healthcheck", "run", name, check=False)
    assert health.returncode == 0, health.stdout + health.stderr
