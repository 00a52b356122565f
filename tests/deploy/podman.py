"""What the container tests share: the gate, podman as it runs here, and a lesson to check.

The image tests are slow (a base image from debootstrap the first time, then builds),
so they run with ``make image-test`` (``CLASSROOM_IMAGE_TEST=1``), not in every
``make test``. No image registry is reachable here: ``scripts/image-test.sh base``
makes the base and the stand-ins for Redis and HAProxy from Debian's packages (cached
under ``build/``), and the project comes in as wheels built on the host.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from auth.tenants import Tenant
from auth.tokens import issue_token
from tests.client import Client, Frame

REPO = Path(__file__).resolve().parents[2]
BASE = os.environ.get("CLASSROOM_IMAGE_BASE", "localhost/classroom-base:bookworm")
TAG = "localhost/classroom:image-test"
SECRET = "image-test-secret-0123456789-abcdefgh"
TENANTS = {"acme": {"secrets": [SECRET], "api_key": "acme-image-test-key"}}
ACME = Tenant(id="acme", secrets=(SECRET,), api_key="acme-image-test-key")

GATED = [
    pytest.mark.skipif(os.environ.get("CLASSROOM_IMAGE_TEST") != "1",
                       reason="builds and runs container images: run `make image-test`"),
    pytest.mark.timeout(900),
]


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a script of the repository (``sh scripts/...``) and keep what it printed."""
    return subprocess.run(["sh", *args], cwd=REPO, check=check, capture_output=True,
                          text=True, timeout=840)


async def ready(base_url: str) -> None:
    """Wait until ``/readyz`` answers 200: the node (or one behind the balancer) has Redis."""
    async with httpx.AsyncClient() as http:
        for _ in range(300):
            try:
                if (await http.get(f"{base_url}/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError(f"{base_url}/readyz never answered 200")


async def ask(client: Client, kind: str, **fields: Any) -> Frame:
    """A command's reply, retried while it is ``unavailable`` ("retry later", protocol.md).

    As every client does. Under podman here a node's first look-up of ``redis`` can stall
    for seconds (aardvark-dns drops queries while it reloads, containers/aardvark-dns#389),
    longer than a Redis call may take; Docker's DNS does not do this.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 45
    while (reply := await client.request(kind, **fields)).get("code") == "unavailable":
        assert loop.time() < deadline, reply
        await asyncio.sleep(0.5)
    return reply


async def lesson(ws_url: str, students: int = 1) -> list[Client]:
    """A trainer (JSON) and ``students`` (MessagePack) join s1; the trainer's chat reaches all.

    Returns the open clients (the caller closes them), so a test may look at where
    they landed before they leave.
    """
    clients: list[Client] = []
    try:
        for n in range(1 + students):
            # Each connects as soon as it is open: a socket left without `connect` is closed.
            client = await Client.open(ws_url, "json" if n == 0 else "msgpack")
            clients.append(client)
            sub, role = ("t1", "trainer") if n == 0 else (f"u{n}", "student")
            token = issue_token(ACME, sub=sub, role=role, sessions=["s1"], ttl=600)
            assert (reply := await client.connect(token))["type"] == "connected", reply
            assert (reply := await ask(client, "join", session="s1"))["type"] == "joined", reply
        reply = await ask(clients[0], "publish", session="s1", client_msg_id="m-1",
                          event={"kind": "chat", "text": "uit de container"})
        assert reply["type"] == "published", reply
        for student in clients[1:]:
            got = await student.expect(lambda f: f.get("type") == "event"
                                       and f["event"].get("kind") == "chat")
            assert got["event"]["text"] == "uit de container"
    except BaseException:
        for client in clients:
            await client.close()
        raise
    return clients
