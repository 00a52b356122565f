"""Fixtures: a real classroom server (uvicorn on a free loopback port) per test."""

from __future__ import annotations

import asyncio
import gc
import json
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from auth.tenants import Tenant
from auth.tokens import issue_token
from classroom.app import create_app
from classroom.config import Settings
from classroom.edge.server import build_server
from tests.client import Client
from tests.redis_topologies import ClusterSet, SentinelSet, binary
from tests.wire_contract import LEDGER

TENANTS = {
    "acme": {"secrets": ["acme-secret-0", "acme-secret-1"], "api_key": "acme-key",
             "display_name": "first"},
    "globex": {"secrets": ["globex-secret"], "api_key": "globex-key", "display_name": "full"},
}
METRICS_TOKEN = "test-metrics-token"
"""The bearer token of ``/metrics`` on test servers (tenants are configured, so it is needed)."""


@dataclass
class RunningServer:
    """A server under test and helpers to reach it."""

    settings: Settings
    port: int
    app: Any
    server: Any

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def metrics_auth(self) -> dict[str, str]:
        """Headers that open ``/metrics``."""
        return {"Authorization": f"Bearer {self.settings.metrics_token}"}

    def tenant(self, tenant_id: str = "acme") -> Tenant:
        tenant = self.settings.load_tenants().get(tenant_id)
        assert tenant is not None
        return tenant

    def token(self, sub: str, role: str, sessions: list[str] | None = None,
              tenant: str = "acme", ttl: float = 600, **profile: Any) -> str:
        return issue_token(self.tenant(tenant), sub=sub, role=role,
                           sessions=sessions if sessions is not None else ["s1"],
                           ttl=ttl, **profile)

    async def client(self, sub: str, role: str, sessions: list[str] | None = None,
                     encoding: str = "json", tenant: str = "acme", ttl: float = 600,
                     **profile: Any) -> Client:
        """An open, connected client."""
        client = await Client.open(self.ws_url, encoding)
        reply = await client.connect(self.token(sub, role, sessions, tenant, ttl, **profile))
        assert reply["type"] == "connected", reply
        return client

    async def member(self, sub: str, role: str, session: str = "s1", **kw: Any) -> Client:
        """A connected client that has joined ``session``."""
        client = await self.client(sub, role, [session], **kw)
        reply = await client.request("join", session=session)
        assert reply["type"] == "joined", reply
        return client


ServerFactory = Callable[..., Awaitable[RunningServer]]


@pytest.fixture
async def start_server() -> AsyncIterator[ServerFactory]:
    """Start servers with settings overrides; all are stopped after the test."""
    running: list[tuple[Any, asyncio.Task[None]]] = []

    async def start(**overrides: Any) -> RunningServer:
        values: dict[str, Any] = {"tenants_raw": json.dumps(TENANTS), "secret": "test-secret",
                                  "close_timeout": 1.0, "drain_timeout": 2.0,
                                  "metrics_token": METRICS_TOKEN,
                                  # The ramp freeze acts on the whole test process's collector
                                  # (and would thaw what pytest_collection_finish froze): only
                                  # its own tests turn it on.
                                  "gc_freeze_connects": 0}
        values.update(overrides)
        settings = Settings(**values)
        app = create_app(settings)
        server = build_server(app, settings, "127.0.0.1", 0)
        task = asyncio.create_task(server.serve())
        for _ in range(500):
            if server.started:
                break
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        running.append((server, task))
        return RunningServer(settings, port, app, server)

    yield start
    for server, _ in running:
        server.should_exit = True
    for _, task in running:
        await asyncio.wait_for(task, 15)


@pytest.fixture
async def server(start_server: ServerFactory) -> RunningServer:
    """One server with default settings."""
    return await start_server()


def _installed(*names: str) -> None:
    try:
        for name in names:
            binary(name)
    except RuntimeError as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def sentinel_set(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelSet]:
    """A primary, a replica and three sentinels, started for the first test that asks."""
    _installed("redis-server", "redis-sentinel")
    made = SentinelSet.start(tmp_path_factory.mktemp("sentinel"))
    yield made
    made.stop()


@pytest.fixture(scope="session")
def cluster_set(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterSet]:
    """A Redis Cluster of three primaries and three replicas, started for the first test."""
    _installed("redis-server", "redis-cli")
    made = ClusterSet.start(tmp_path_factory.mktemp("cluster"))
    yield made
    made.stop()


def pytest_collection_finish(session: pytest.Session) -> None:
    """Freeze what importing the tests built (modules, schemas, strategies): the collection
    after each test below then walks only what the tests made since, not all of it."""
    gc.collect()
    gc.freeze()


@pytest.fixture(autouse=True)
def _collect_what_the_test_left() -> Iterator[None]:
    """Run the collector at the end of every test, so what a test left in reference cycles
    (a Redis connection, a transport) is freed, and warned about, in that test. Otherwise
    it is freed whenever the collector next runs: in some other test, which then failed on
    the ResourceWarning, depending on how the tests were spread over the xdist workers."""
    yield
    gc.collect()


@pytest.fixture
def thread_starts(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the threads started during the test (the event loop's code must
    start none: redis-py's cluster transactions did, blocking the loop while they ran)."""
    started: list[str] = []
    original = threading.Thread.start

    def start(thread: threading.Thread) -> None:
        started.append(thread.name)
        original(thread)

    monkeypatch.setattr(threading.Thread, "start", start)
    return started


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Any:
    """Fail a test whose client sent or received a frame that breaks ``/asyncapi.json``."""
    LEDGER.take()
    result = yield
    problems = LEDGER.take()
    if problems:
        raise AssertionError("wire contract (/asyncapi.json):\n" + "\n".join(problems[:20]))
    return result


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Under pytest-xdist, hand this worker's contract tally to the controller."""
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["wire_contract"] = {"frames": LEDGER.frames, "seen": dict(LEDGER.seen)}


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """Under pytest-xdist, add a finished worker's contract tally to the summary's."""
    tally = getattr(node, "workeroutput", {}).get("wire_contract")
    if tally:
        LEDGER.frames += tally["frames"]
        LEDGER.seen.update(tally["seen"])


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """How many frames the contract checked, and of which messages of the document."""
    if LEDGER.frames:
        seen = ", ".join(f"{name} {count}" for name, count in sorted(LEDGER.seen.items()))
        terminalreporter.write_line(
            f"wire contract: {LEDGER.frames} frames checked against /asyncapi.json, "
            f"{len(LEDGER.seen)} messages seen: {seen}")
