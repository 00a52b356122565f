"""Real nodes on a Sentinel set and on a Redis Cluster: one server to their clients,
through a failover, and erasure that leaves nothing on any primary or replica."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
import redis

from tests.backends.conftest import drop_prefix
from tests.client import Client
from tests.multinode.conftest import Cluster, member
from tests.redis_topologies import ClusterSet, SentinelSet

API = {"Authorization": "Bearer acme-multinode-key"}


@pytest.fixture(params=["sentinel", "cluster"])
async def nodes_on(request: pytest.FixtureRequest) -> AsyncIterator[Cluster]:
    """Server processes on a Sentinel set or a Redis Cluster, under a prefix of their own."""
    url = request.getfixturevalue(f"{request.param}_set").url
    made = Cluster(url, f"test-{uuid.uuid4().hex[:12]}")
    yield made
    made.stop_all()
    await drop_prefix(url, made.prefix)


async def events(client: Client, count: int) -> list[dict]:
    found: list[dict] = []
    while len(found) < count:
        found.append(await client.expect(
            lambda f: f.get("type") == "event" and "offset" in f, timeout=15))
    return found


async def test_nodes_share_sessions_in_order(nodes_on: Cluster) -> None:
    one, two = await nodes_on.start(2)
    sessions = [f"s{n}" for n in range(3)]  # a few slots, so several shards on a cluster
    pairs = [(await member(one, f"t{s}", "trainer", s, name="Tessa Trainer"),
              await member(two, f"u{s}", "student", s, name="Sam Student")) for s in sessions]

    async def chatter(client: Client, session: str, who: str) -> None:
        for n in range(8):
            reply = await client.request("publish", session=session,
                                         event={"kind": "chat", "text": f"{who}{n}"})
            assert reply["type"] == "published", reply

    await asyncio.gather(*(chatter(c, s, w) for (t, u), s in zip(pairs, sessions, strict=True)
                           for c, w in ((t, "t"), (u, "u"))))
    for trainer, student in pairs:
        for client in (trainer, student):
            got = await events(client, 16)
            assert [e["offset"] for e in got] == list(range(1, 17))
            assert len({e["epoch"] for e in got}) == 1
        await trainer.close()
        await student.close()


async def until_published(client: Client, text: str, timeout: float = 20) -> dict:
    """Publish until the failover is over (``unavailable`` meanwhile)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        reply = await client.request("publish", session="s1", event={"kind": "chat", "text": text})
        if reply["type"] == "published":
            return reply
        assert reply.get("code") == "unavailable", reply
        assert asyncio.get_running_loop().time() < deadline, "publishing never came back"
        await asyncio.sleep(0.2)


async def test_nodes_follow_a_sentinel_failover_without_restart(sentinel_set: SentinelSet) -> None:
    nodes = Cluster(sentinel_set.url, f"test-{uuid.uuid4().hex[:12]}")
    old = sentinel_set.primary()
    try:
        one, two = await nodes.start(2)
        trainer = await member(one, "t1", "trainer", name="Tessa Trainer")
        student = await member(two, "u1", "student", name="Sam Student")
        await until_published(trainer, "before")
        first = (await events(student, 1))[0]
        assert old.client().execute_command("WAIT", 1, 2000) == 1
        sentinel_set.kill_primary()
        await asyncio.to_thread(sentinel_set.wait_failover, old.port)
        await until_published(trainer, "after")
        later = await events(student, 1)
        assert later[-1]["event"]["text"] == "after"
        # A client that left before the failover recovers exactly from its position.
        late = await Client.open(two.url)
        await late.connect(nodes_token("u2"))
        joined = await late.request("join", session="s1",
                                    since={"offset": first["offset"], "epoch": first["epoch"]})
        assert joined["type"] == "joined" and joined["recovered"] is True, joined
        for client in (trainer, student, late):
            await client.close()
    finally:
        nodes.stop_all()
        await asyncio.to_thread(sentinel_set.restore, old)
        await drop_prefix(sentinel_set.url, nodes.prefix)


def stored(cluster: ClusterSet, prefix: str) -> list[bytes]:
    """Every key's serialized value under ``prefix``, on every primary and replica."""
    found = []
    for node in cluster.nodes:
        client = redis.Redis(port=node.port, single_connection_client=True)
        client.execute_command("READONLY")  # a replica answers for its primary's keys
        for key in client.scan_iter(match=f"{prefix}*", count=500):
            found.append(client.dump(key) or b"")
        client.close()
    return found


def nodes_token(sub: str) -> str:
    from tests.multinode.conftest import token

    return token(sub, "student", name="Late Student")


async def test_erasure_leaves_nothing_of_the_user_on_any_cluster_node(
    cluster_set: ClusterSet,
) -> None:
    nodes = Cluster(cluster_set.url, f"test-{uuid.uuid4().hex[:12]}")
    secret_name, secret_mail = "Zyxwvu Quincefield", "zyxwvu@example.nl"
    try:
        one, two = await nodes.start(2)
        trainer = await member(one, "t1", "trainer", name="Tessa Trainer")
        student = await member(two, "u1", "student", name=secret_name, email=secret_mail)
        for n in range(3):
            reply = await student.request("publish", session="s1",
                                          event={"kind": "chat", "text": f"hello {n}"})
            assert reply["type"] == "published", reply
        await events(trainer, 3)
        assert any(secret_name.encode() in dumped for dumped in stored(cluster_set, nodes.prefix))
        async with httpx.AsyncClient(base_url=one.http, timeout=10) as http:
            answer = await http.delete("/api/v1/users/u1", headers=API)
        assert answer.status_code == 200, answer.text
        await trainer.close()
        await asyncio.sleep(1.0)  # replicas follow their primaries
        for dumped in stored(cluster_set, nodes.prefix):
            assert secret_name.encode() not in dumped
            assert secret_mail.encode() not in dumped
    finally:
        nodes.stop_all()
        await drop_prefix(cluster_set.url, nodes.prefix)
