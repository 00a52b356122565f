"""Several real ``classroom serve`` processes on loopback sharing one Redis."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from auth.tenants import Tenant
from auth.tokens import issue_token
from tests.backends.conftest import drop_prefix
from tests.client import Client
from tests.multinode.redis_proxy import RedisProxy

REDIS_URL = os.environ.get("CLASSROOM_TEST_REDIS_URL", "redis://127.0.0.1:6379/14")
METRICS_TOKEN = "multinode-metrics-token"
METRICS_AUTH = {"Authorization": f"Bearer {METRICS_TOKEN}"}
TENANTS = {"acme": {"secrets": ["multinode-secret-0123456789-abcdefgh"],
                    "api_key": "acme-multinode-key"}}
ACME = Tenant(id="acme", secrets=tuple(TENANTS["acme"]["secrets"]),  # type: ignore[arg-type]
              api_key="acme-multinode-key")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class NodeProcess:
    """One server process; ``url`` is its WebSocket endpoint."""

    port: int
    proc: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Cluster:
    """Starts nodes against one Redis URL and key prefix, and kills them on request."""

    redis_url: str
    prefix: str
    env: dict[str, str] = field(default_factory=dict)
    nodes: list[NodeProcess] = field(default_factory=list)

    async def start(self, count: int = 1, env: dict[str, str] | None = None,
                    port: int | None = None) -> list[NodeProcess]:
        """Start ``count`` nodes; ``env`` overrides the cluster's environment for these;
        ``port`` starts one node on that port (a node restarted where its clients were)."""
        started = [self._spawn(env or {}, port) for _ in range(count)]
        await asyncio.gather(*(self._wait(node) for node in started))
        self.nodes.extend(started)
        return started

    def _spawn(self, env: dict[str, str], port: int | None = None) -> NodeProcess:
        port = port or free_port()
        environment = {k: v for k, v in os.environ.items()
                       if not k.startswith(("CLASSROOM_", "REDIS_URL"))}
        environment.update({
            "REDIS_URL": self.redis_url,
            "CLASSROOM_REDIS_PREFIX": self.prefix,
            "CLASSROOM_TENANTS": json.dumps(TENANTS),
            "CLASSROOM_SECRET": "multinode-pid-secret",
            "CLASSROOM_METRICS_TOKEN": METRICS_TOKEN,
            "CLASSROOM_PRESENCE_TTL": "1.5",
            "CLASSROOM_DRAIN_TIMEOUT": "2",
            "CLASSROOM_CLOSE_TIMEOUT": "1",
            "CLASSROOM_LOG_LEVEL": "warning",
        })
        environment.update(self.env)
        environment.update(env)
        proc = subprocess.Popen(
            [sys.executable, "-m", "classroom.cli", "serve", "--host", "127.0.0.1",
             "--port", str(port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=environment,
        )
        return NodeProcess(port, proc)

    @staticmethod
    async def _wait(node: NodeProcess) -> None:
        for _ in range(300):
            if node.proc.poll() is not None:
                raise AssertionError(node.proc.communicate()[1].decode())
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", node.port)
            except OSError:
                await asyncio.sleep(0.05)
                continue
            writer.close()
            await writer.wait_closed()
            return
        raise AssertionError("node did not start")

    async def terminate(self, node: NodeProcess) -> None:
        """SIGTERM: the node sends its clients 1012 (come back) and drains."""
        node.proc.send_signal(signal.SIGTERM)
        await asyncio.to_thread(node.proc.wait, 15)

    def kill(self, node: NodeProcess) -> None:
        """``kill -9``: no drain, no goodbye."""
        node.proc.send_signal(signal.SIGKILL)
        node.proc.wait(timeout=10)

    def stop_all(self) -> None:
        for node in self.nodes:
            if node.proc.poll() is None:
                node.proc.send_signal(signal.SIGTERM)
        for node in self.nodes:
            try:
                node.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                node.proc.kill()
                node.proc.wait()
            if node.proc.stderr is not None:
                node.proc.stderr.close()


def token(sub: str, role: str, session: str = "s1", **profile: Any) -> str:
    return issue_token(ACME, sub=sub, role=role, sessions=[session], ttl=600, **profile)


async def member(node: NodeProcess, sub: str, role: str, session: str = "s1",
                 encoding: str = "json", **profile: Any) -> Client:
    client = await Client.open(node.url, encoding)
    assert (await client.connect(token(sub, role, session, **profile)))["type"] == "connected"
    joined = await client.request("join", session=session)
    assert joined["type"] == "joined", joined
    return client


@pytest.fixture
async def proxy() -> AsyncIterator[RedisProxy]:
    """A proxy in front of the test Redis: a node started on ``proxy.url`` can be cut
    off it, and its round trips counted."""
    made = RedisProxy(REDIS_URL)
    await made.start()
    yield made
    await made.stop()


TOPOLOGIES = pytest.mark.parametrize("cluster", ["redis", "sentinel", "cluster"], indirect=True)
"""Run a test's nodes on one Redis, on a Sentinel set and on a Redis Cluster."""


@pytest.fixture
async def cluster(request: pytest.FixtureRequest) -> AsyncIterator[Cluster]:
    """Nodes under a key prefix of their own, on the machine's Redis unless the test is
    parametrised with :data:`TOPOLOGIES` (then also a Sentinel set and a Redis Cluster)."""
    topology = getattr(request, "param", "redis")
    url = REDIS_URL if topology == "redis" else request.getfixturevalue(f"{topology}_set").url
    made = Cluster(url, f"test-{uuid.uuid4().hex[:12]}")
    yield made
    made.stop_all()
    await drop_prefix(url, made.prefix)


@dataclass
class RedisServer:
    """A redis-server of the test's own, on a free port, that it may stop and start."""

    port: int
    workdir: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is required (make test installs it)"
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        for _ in range(100):
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                import time

                time.sleep(0.05)
        raise AssertionError("redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.proc = None


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(free_port(), tmp_path)
    server.start()
    yield server
    server.stop()
