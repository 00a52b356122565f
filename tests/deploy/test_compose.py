"""deploy/compose.yaml run as it is: three nodes behind HAProxy on one Redis.

The official redis and haproxy images cannot be pulled here, so stand-ins made from
Debian's packages (tests/deploy/standins.Containerfile) take their place through the
file's own REDIS_IMAGE and HAPROXY_IMAGE; the nodes run the image under test. The
balancer is published on a loopback port only.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.deploy.podman import GATED, REPO, TENANTS, lesson, ready, sh
from tests.multinode.conftest import free_port

pytestmark = GATED
METRICS_TOKEN = "compose-test-metrics-token-0123456789"
NODES = ("node1", "node2", "node3")


@dataclass
class Deployment:
    project: str
    port: int

    def container(self, service: str) -> str:
        return f"{self.project}_{service}_1"  # podman-compose 1.0's naming


def resource_limit(name: str) -> str:
    """This shell's soft limit called ``name`` in /proc/self/limits (podman may not raise it)."""
    with open("/proc/self/limits") as limits:
        for line in limits:
            if line.startswith(name):
                return line[len(name):].split()[0]
    raise LookupError(name)


@pytest.fixture
def deployment(image: str) -> Iterator[Deployment]:
    """``podman-compose up`` of deploy/compose.yaml; everything it made is removed after."""
    if shutil.which("podman-compose") is None:
        pytest.skip("podman-compose is not installed (scripts/image-test.sh installs Debian's)")
    up = Deployment(f"classroomtest{uuid.uuid4().hex[:8]}", free_port())
    nofile = resource_limit("Max open files")
    env = {
        **os.environ,
        "CLASSROOM_IMAGE": image,
        "REDIS_IMAGE": "localhost/classroom-standin-redis:test",
        "HAPROXY_IMAGE": "localhost/classroom-standin-haproxy:test",
        "CLASSROOM_PORT": f"127.0.0.1:{up.port}",
        "CLASSROOM_SECRET": "compose-test-node-secret-0123456789",
        "CLASSROOM_TENANTS": json.dumps(TENANTS),
        "CLASSROOM_METRICS_TOKEN": METRICS_TOKEN,
        # No higher than this shell's limits: podman here may not raise them.
        "CLASSROOM_NOFILE": nofile, "HAPROXY_NOFILE": nofile, "HAPROXY_MAXCONN": "4000",
    }

    def compose(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["podman-compose", "--podman-path", str(REPO / "scripts/podman.sh"),
             "-p", up.project, "-f", "deploy/compose.yaml", *args],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=300)

    started = compose("up", "-d")
    try:
        assert started.returncode == 0, started.stdout[-3000:] + started.stderr[-3000:]
        yield up
    finally:
        for service in ("redis", *NODES, "balancer"):
            logs = sh("scripts/podman.sh", "logs", up.container(service), check=False)
            print(f"--- {service}\n{logs.stdout[-4000:]}{logs.stderr[-4000:]}")
        compose("down", "-v")
        # podman-compose 1.0 leaves a container that was restarting, and the network.
        left = sh("scripts/podman.sh", "ps", "-aq", "--filter",
                  f"label=io.podman.compose.project={up.project}", check=False).stdout.split()
        if left:
            sh("scripts/podman.sh", "rm", "-f", "-t", "0", *left, check=False)
        sh("scripts/podman.sh", "network", "rm", "-f", f"{up.project}_default", check=False)
        sh("scripts/podman.sh", "volume", "rm", "-f", f"{up.project}_redis-data", check=False)


async def settled(deployment: Deployment) -> None:
    """Every node's HEALTHCHECK passes and the balancer has put all three in rotation.

    The balancer's view comes from its runtime API (HAPROXY_ADMIN_SOCKET, the socket the
    drain procedure uses), asked with the stand-in's Python.
    """
    ask = ("import socket; s = socket.socket(socket.AF_UNIX); s.connect("
           "'/var/lib/haproxy/admin.sock'); s.sendall(b'show stat\\n');"
           " print(b''.join(iter(lambda: s.recv(65536), b'')).decode())")
    for _ in range(120):
        health = [sh("scripts/podman.sh", "healthcheck", "run", deployment.container(node),
                     check=False).returncode for node in NODES]
        stat = sh("scripts/podman.sh", "exec", deployment.container("balancer"),
                  "python3", "-c", ask, check=False).stdout
        in_rotation = {row[1] for row in (line.split(",") for line in stat.splitlines())
                       if len(row) > 17 and row[0] == "nodes" and row[1] in NODES
                       and row[17] == "UP"}
        if health == [0, 0, 0] and in_rotation == set(NODES):
            return
        await asyncio.sleep(0.5)
    raise AssertionError(f"not settled: healthchecks {health}, in rotation {in_rotation}")


def open_connections(deployment: Deployment, node: str) -> int:
    """``classroom_connections`` of one node, read inside its container (not published)."""
    scrape = ("import urllib.request as u; print(u.urlopen(u.Request('http://127.0.0.1:8000/metrics',"
              f" headers={{'Authorization': 'Bearer {METRICS_TOKEN}'}})).read().decode())")
    metrics = sh("scripts/podman.sh", "exec", deployment.container(node), "python3", "-c", scrape)
    found = re.search(r"^classroom_connections (\S+)$", metrics.stdout, re.MULTILINE)
    assert found, metrics.stdout[-2000:]
    return int(float(found.group(1)))


async def test_compose_runs_three_nodes_behind_haproxy_sharing_one_lesson(
    deployment: Deployment,
) -> None:
    await ready(f"http://127.0.0.1:{deployment.port}")
    await settled(deployment)
    # Three connections through the balancer (leastconn): one on each node, so the chat
    # reaches the students on the other two nodes through Redis.
    clients = await lesson(f"ws://127.0.0.1:{deployment.port}/ws", students=2)
    try:
        assert [open_connections(deployment, node) for node in NODES] == [1, 1, 1]
    finally:
        for client in clients:
            await client.close()
