"""``python -m loadtests joincost``: the node's CPU per connect, join, leave and rejoin.

A reconnect storm is bounded by what each connection's way back costs the node:
the handshake and ``connect``, the ``join`` (with ``since``), and the old
connection's leave. The storm benchmarks show it only through latency, which on
a shared 2-core machine swings with everything else running. This measures it
directly: one node, rooms of 50 filled by clients on this process, each phase in
turn (connect all, join all, close all, connect again, join again with
``since``), the node's own CPU time (``/proc/<pid>/stat``) per client, net of
its idle rate. ``--tree`` measures another checkout the same way, for a
before/after in the same run (phases interleaved per repeat).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from auth.tenants import Tenant
from auth.tokens import issue_token
from classroom.client.connection import Connection
from classroom.protocol.features import PRESENCE_DIFF
from loadtests.servers import ROOT, ManagedServer, clean_environment, delete_prefixes, free_port

SECRET = "joincost-secret-0123456789abcdef0123456789"  # noqa: S105 - a loopback node's test tenant
TENANT = Tenant(id="acme", secrets=(SECRET,), api_key="joincost-api-key-0123456789abcdef")
PHASES = ("connect", "join", "leave", "reconnect", "rejoin")
SETTLE = 1.5
"""Seconds counted after a phase's last reply: a leave's work runs after its close."""
IN_FLIGHT = 64
"""Clients working at once (a storm's clients do not wait for each other)."""
REPLY_TIMEOUT = 60.0
"""Seconds a client waits for one reply (a storm's line may be long)."""
PHASE_TIMEOUT = 180.0
"""Seconds a phase may take before the run fails, naming it."""


@dataclass(frozen=True)
class Shape:
    """What is measured: ``rooms`` sessions of ``members`` on Redis (None: memory)."""

    rooms: int
    members: int
    redis_url: str | None
    settle: float = SETTLE
    idle_window: float = 2.0
    """Seconds of the node's idle CPU measured first (netted out of every phase)."""


def cpu_seconds(pid: int) -> float:
    """The process's user + system CPU time so far."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class _Clients:
    """Every member of every room, driven phase by phase."""

    def __init__(self, url: str, shape: Shape) -> None:
        self.url = url
        self.users = [(f"s{room}", f"u{room}-{n}", "trainer" if n == 0 else "student")
                      for room in range(shape.rooms) for n in range(shape.members)]
        self.conns: dict[tuple[str, str, str], Connection] = {}
        self.positions: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.tokens: dict[tuple[str, str, str], str] = {}
        self._slots = asyncio.Semaphore(IN_FLIGHT)

    async def connect(self, user: tuple[str, str, str]) -> None:
        async with self._slots:
            # Unbounded: pushes read only while waiting for a reply must not stop
            # the client reading its socket (the node would see a slow consumer).
            conn = await Connection.open(self.url, max_queue=None)
            # A client comes back with the token it had, as the storm's clients and the
            # web and npm clients do (a new one only once it expired).
            token = self.tokens.get(user)
            if token is None:
                token = self.tokens[user] = issue_token(
                    TENANT, sub=user[1], role=user[2], sessions=[user[0]],
                    name=f"Naam {user[1]}")
            reply = await conn.request("connect", REPLY_TIMEOUT, token=token,
                                       features=[PRESENCE_DIFF])
            if reply.get("type") != "connected":
                raise RuntimeError(f"connect refused: {reply.get('code')}")
            self.conns[user] = conn

    async def join(self, user: tuple[str, str, str]) -> None:
        async with self._slots:
            since = self.positions.get(user)
            reply = await self.conns[user].request(
                "join", REPLY_TIMEOUT, session=user[0], **({"since": since} if since else {}))
            if reply.get("type") != "joined":
                raise RuntimeError(f"join refused: {reply.get('code')}")
            self.positions[user] = {"epoch": reply["epoch"], "offset": reply["offset"]}

    async def close(self, user: tuple[str, str, str]) -> None:
        await self.conns.pop(user).close()


async def _measure(pid: int, clients: _Clients, shape: Shape) -> dict[str, float]:
    start = cpu_seconds(pid)
    await asyncio.sleep(shape.idle_window)
    idle = (cpu_seconds(pid) - start) / shape.idle_window
    steps: dict[str, Callable[[tuple[str, str, str]], Awaitable[None]]] = {
        "connect": clients.connect, "join": clients.join, "leave": clients.close,
        "reconnect": clients.connect, "rejoin": clients.join,
    }
    result: dict[str, float] = {"idle_cpu_pct": round(idle * 100, 2)}
    for phase in PHASES:
        before, began = cpu_seconds(pid), time.monotonic()
        try:
            await asyncio.wait_for(asyncio.gather(*(steps[phase](user) for user in clients.users)),
                                   PHASE_TIMEOUT)
        except TimeoutError:
            raise RuntimeError(f"the {phase} phase did not finish in {PHASE_TIMEOUT:g} s") from None
        await asyncio.sleep(shape.settle)
        used = cpu_seconds(pid) - before - idle * (time.monotonic() - began)
        result[f"{phase}_cpu_ms"] = round(used / len(clients.users) * 1000, 3)
    for conn in clients.conns.values():
        await conn.close()
    return result


def _environment(shape: Shape, prefix: str) -> dict[str, str]:
    env = clean_environment()
    env.update({
        "CLASSROOM_TENANTS": json.dumps({"acme": {"secrets": [SECRET],
                                                  "api_key": TENANT.api_key}}),
        "CLASSROOM_SECRET": "joincost-pid-secret-0123456789abcdef",
        "CLASSROOM_LOG_LEVEL": "warning",
        "CLASSROOM_RATE_LIMIT_PER_SECOND": "1000", "CLASSROOM_RATE_LIMIT_BURST": "2000",
    })
    if shape.redis_url:
        env.update({"REDIS_URL": shape.redis_url, "CLASSROOM_REDIS_PREFIX": prefix})
    return env


def measure_tree(tree: Path, shape: Shape) -> dict[str, float]:
    """One node of ``tree`` (a checkout) through every phase; CPU ms per client each."""
    prefix = f"joincost-{uuid.uuid4().hex[:8]}"
    port = free_port()
    server = ManagedServer(f"joincost-{tree.name}", [
        "-m", "classroom.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
        _environment(shape, prefix), port, cwd=tree)
    try:
        with server:
            clients = _Clients(f"ws://127.0.0.1:{port}/ws", shape)
            return asyncio.run(_measure(server.pid, clients, shape))
    finally:
        if shape.redis_url:
            delete_prefixes(shape.redis_url, [prefix])


def run_joincost(shape: Shape, trees: dict[str, Path], repeats: int) -> dict[str, Any]:
    """Each tree ``repeats`` times, interleaved; every run's figures."""
    runs = [{"tree": name, "repeat": n, **measure_tree(path, shape)}
            for n in range(1, repeats + 1) for name, path in trees.items()]
    return {"rooms": shape.rooms, "members": shape.members,
            "broker": "redis" if shape.redis_url else "memory", "runs": runs}


def render(report: dict[str, Any]) -> str:
    """A Markdown table: one row per run."""
    lines = [f"Node CPU ms per client, {report['rooms']} rooms of {report['members']} "
             f"on {report['broker']}:", "",
             "| tree | run | " + " | ".join(PHASES) + " | idle CPU % |",
             "|---|---|" + "---|" * (len(PHASES) + 1)]
    for run in report["runs"]:
        cells = " | ".join(f"{run[f'{phase}_cpu_ms']:.2f}" for phase in PHASES)
        lines.append(f"| {run['tree']} | {run['repeat']} | {cells} | {run['idle_cpu_pct']} |")
    return "\n".join(lines) + "\n"


DEFAULT_TREES = {"this": ROOT}
