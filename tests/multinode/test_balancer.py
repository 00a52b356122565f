"""Three nodes behind HAProxy (``deploy/haproxy.cfg``): drained and killed nodes' clients
come back through the balancer on another node and recover exactly what they missed."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from tests.client import Client
from tests.multinode.balancer import Balancer, haproxy_binary
from tests.multinode.conftest import METRICS_AUTH, Cluster, NodeProcess, token

STUDENTS = 8


@pytest.fixture
async def fronted(
    cluster: Cluster, tmp_path: Path
) -> AsyncIterator[tuple[Balancer, list[NodeProcess]]]:
    binary = haproxy_binary()
    if binary is None:
        pytest.skip("haproxy is missing and scripts/ensure-haproxy.sh could not install it "
                    "(Debian's haproxy package; needs root, apt-get and a network)")
    nodes = await cluster.start(3)
    balancer = await Balancer.start(binary, nodes, tmp_path)
    yield balancer, nodes
    balancer.stop()


class Student:
    """A client through the balancer that follows the stream and rejoins with ``since``."""

    def __init__(self, balancer: Balancer, sub: str) -> None:
        self.balancer = balancer
        self.sub = sub
        self.offsets: list[int] = []
        self.epoch = ""
        self.closes: list[int | None] = []
        self.recovered: list[bool] = []
        self.client: Client | None = None

    async def open(self) -> None:
        client = await Client.open(self.balancer.url)
        assert (await client.connect(token(self.sub, "student")))["type"] == "connected"
        since = {"epoch": self.epoch, "offset": self.offsets[-1]} if self.offsets else None
        joined = await client.request("join", session="s1",
                                      **({"since": since} if since else {}))
        assert joined["type"] == "joined", joined
        if since is not None:
            self.recovered.append(joined["recovered"])
        self.epoch = joined["epoch"]
        replayed = [f for f in client.inbox if f.get("type") == "event"]
        self.offsets += [f["offset"] for f in replayed]
        client.inbox.clear()
        if since is None:
            self.offsets.append(joined["offset"])
        self.client = client

    async def follow(self, until: asyncio.Event) -> None:
        """Read events; on a close (drain or a dead node) reconnect through the balancer."""
        while not until.is_set() or self.client is not None:
            assert self.client is not None
            try:
                frame = await self.client.read(1.0)
            except TimeoutError:
                if until.is_set():
                    return
                continue
            except ConnectionClosed:  # the connection is gone: a killed node
                self.closes.append(await self._closed_code())
                await self._reconnect()
                continue
            if frame.get("type") == "event" and "offset" in frame:
                self.offsets.append(frame["offset"])
            elif frame.get("type") == "disconnect":
                assert frame["reconnect"] is True, frame
                self.closes.append(await self._closed_code())
                await self._reconnect()

    async def _closed_code(self) -> int | None:
        assert self.client is not None
        return await self.client.closed_code(timeout=5)

    async def _reconnect(self) -> None:
        for _ in range(40):
            try:
                await self.open()
                return
            except (OSError, AssertionError, TimeoutError) as exc:  # balancer still switching
                last: Any = exc
                await asyncio.sleep(0.25)
        raise AssertionError(f"{self.sub} could not come back: {last!r}")


async def lesson(
    balancer: Balancer, nodes: list[NodeProcess]
) -> tuple[Client, list[Student], NodeProcess]:
    """A trainer and the students, all through the balancer; and a node without the trainer."""
    trainer = await Client.open(balancer.url)
    assert (await trainer.connect(token("t1", "trainer")))["type"] == "connected"
    assert (await trainer.request("join", session="s1"))["type"] == "joined"
    counts = [await open_connections(node) for node in nodes]
    assert sorted(counts) == [0, 0, 1], counts
    students = [Student(balancer, f"u{i}") for i in range(STUDENTS)]
    for student in students:
        await student.open()
    # leastconn filled the two empty nodes first: both hold students.
    return trainer, students, nodes[counts.index(0)]


async def publish_while(trainer: Client, count: int, *, pause: float) -> list[int]:
    offsets = []
    for n in range(count):
        reply = await trainer.request("publish", session="s1",
                                      event={"kind": "chat", "text": f"m{n}"})
        assert reply["type"] == "published", reply
        offsets.append(reply["offset"])
        trainer.inbox.clear()
        await asyncio.sleep(pause)
    return offsets


async def run_lesson_through(
    balancer: Balancer, trainer: Client, students: list[Student], disrupt: Any
) -> list[int]:
    done = asyncio.Event()
    readers = [asyncio.create_task(s.follow(done)) for s in students]
    publishing = asyncio.create_task(publish_while(trainer, 120, pause=0.03))
    await asyncio.sleep(0.6)
    await disrupt()
    published = await publishing
    await asyncio.sleep(1.5)  # the last events reach everyone
    done.set()
    await asyncio.gather(*readers)
    return published


def assert_everyone_has_everything(students: list[Student], published: list[int]) -> None:
    for student in students:
        first = student.offsets[0]
        assert student.offsets == list(range(first, published[-1] + 1)), (
            f"{student.sub}: gap or duplicate")
        assert all(student.recovered), student.sub


async def test_a_drained_node_hands_its_clients_to_the_others_through_the_balancer(
    fronted: tuple[Balancer, list[NodeProcess]],
) -> None:
    balancer, nodes = fronted
    trainer, students, doomed = await lesson(balancer, nodes)

    async def drain() -> None:
        # The operator's procedure (docs/scaling.md): no new connections, then SIGTERM.
        answer = await balancer.admin(f"set server nodes/node{nodes.index(doomed) + 1} "
                                      "state drain")
        assert answer.strip() == "", answer
        doomed.proc.send_signal(signal.SIGTERM)

    published = await run_lesson_through(balancer, trainer, students, drain)
    assert doomed.proc.wait(timeout=10) in (0, -signal.SIGTERM)
    moved = [s for s in students if s.closes]
    assert moved, "leastconn put no student on the drained node"
    assert all(s.closes == [1012] for s in moved), [s.closes for s in moved]
    assert_everyone_has_everything(students, published)
    await trainer.close()


async def test_a_killed_node_clients_come_back_through_the_balancer(
    fronted: tuple[Balancer, list[NodeProcess]], cluster: Cluster,
) -> None:
    balancer, nodes = fronted
    trainer, students, doomed = await lesson(balancer, nodes)

    async def kill() -> None:
        cluster.kill(doomed)

    published = await run_lesson_through(balancer, trainer, students, kill)
    moved = [s for s in students if s.closes]
    assert moved, "leastconn put no student on the killed node"
    assert_everyone_has_everything(students, published)
    await balancer.wait_until_up(2)
    assert await balancer.servers_up() == 2
    await trainer.close()


async def open_connections(node: NodeProcess) -> int:
    """The node's ``classroom_connections`` gauge, from its /metrics."""
    async with httpx.AsyncClient() as http:
        text = (await http.get(f"{node.http}/metrics", headers=METRICS_AUTH)).text
    for line in text.splitlines():
        if line.startswith("classroom_connections "):
            return int(float(line.split()[1]))
    raise AssertionError("no classroom_connections gauge")
