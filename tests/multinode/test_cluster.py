"""Many nodes through Redis: real processes on loopback behaving as one server."""

from __future__ import annotations

import asyncio

import httpx

from tests.client import Client
from tests.multinode.conftest import METRICS_AUTH, TOPOLOGIES, Cluster, RedisServer, member, token


async def collect_events(client: Client, count: int, timeout: float = 15) -> list[dict]:
    events: list[dict] = []
    while len(events) < count:
        frame = await client.expect(lambda f: f.get("type") == "event" and "offset" in f,
                                    timeout=timeout)
        events.append(frame)
    return events


@TOPOLOGIES
async def test_concurrent_publishers_on_three_nodes_everyone_gets_all_in_order(
    cluster: Cluster,
) -> None:
    nodes = await cluster.start(3)
    trainer = await member(nodes[0], "t1", "trainer", name="Tessa Trainer")
    students = [await member(nodes[i % 3], f"u{i}", "student", name=f"Student {i}",
                             encoding="msgpack" if i % 2 else "json") for i in range(5)]
    members = [trainer, *students]
    per_member = 15

    async def chatter(client: Client, who: int) -> None:
        for n in range(per_member):
            reply = await client.request("publish", session="s1",
                                         event={"kind": "chat", "text": f"{who}:{n}"})
            assert reply["type"] == "published", reply

    await asyncio.gather(*(chatter(c, i) for i, c in enumerate(members)))
    total = per_member * len(members)
    for client in members:
        events = await collect_events(client, total)
        assert [e["offset"] for e in events] == list(range(1, total + 1))
        assert len({e["epoch"] for e in events}) == 1
        texts = [e["event"]["text"] for e in events]
        assert sorted(texts) == sorted(f"{w}:{n}" for w in range(len(members))
                                       for n in range(per_member))
    for client in members:
        await client.close()


@TOPOLOGIES
async def test_state_and_presence_are_shared_across_nodes(cluster: Cluster) -> None:
    one, two = await cluster.start(2)
    trainer = await member(one, "t1", "trainer", name="Tessa Trainer")
    await trainer.request("publish", session="s1",
                          event={"kind": "screen.navigate", "screen": "chapter-2"})
    await trainer.request("publish", session="s1", event={"kind": "screen.lock", "locked": True})
    student = await Client.open(two.url)
    await student.connect(token("u1", "student", name="Sam Student", email="sam@example.nl"))
    joined = await student.request("join", session="s1")
    assert joined["state"]["screen"] == "chapter-2" and joined["state"]["locked"] is True
    assert joined["offset"] == 2
    assert sorted(p["role"] for p in joined["participants"]) == ["student", "trainer"]
    seen = await trainer.expect("presence.join")
    assert seen["participant"]["email"] == "sam@example.nl"
    second_device = await member(two, "u1", "student", name="Sam Student")
    assert [f for f in await trainer.quiet(0.5) if f.get("type") == "presence.join"] == []
    await second_device.close()
    await student.close()
    left = await trainer.expect("presence.leave", timeout=5)
    assert left["participant"]["pid"] == seen["participant"]["pid"]
    await trainer.close()


@TOPOLOGIES
async def test_idempotent_publish_across_nodes(cluster: Cluster) -> None:
    one, two = await cluster.start(2)
    a = await member(one, "u1", "student", name="Sam")
    b = await member(two, "u1", "student", name="Sam")
    first = await a.request("publish", session="s1", event={"kind": "chat", "text": "hi"},
                            client_msg_id="retry-1")
    again = await b.request("publish", session="s1", event={"kind": "chat", "text": "hi"},
                            client_msg_id="retry-1")
    assert first["offset"] == again["offset"] == 1
    history = await b.request("history", session="s1")
    assert len(history["events"]) == 1
    await a.close()
    await b.close()


async def test_killed_node_users_leave_once_and_its_clients_recover_elsewhere(
    cluster: Cluster,
) -> None:
    healthy, doomed, spare = await cluster.start(3)
    trainer = await member(healthy, "t1", "trainer", name="Tessa Trainer")
    watcher = await member(spare, "u9", "student", name="Walt Watcher")
    victims = [await member(doomed, f"u{i}", "student", name=f"Victim {i}") for i in range(3)]
    for client in (trainer, watcher):
        await client.quiet(0.3)
    await trainer.request("publish", session="s1", event={"kind": "chat", "text": "before"})
    last = (await victims[0].expect("event"))
    cluster.kill(doomed)
    for n in range(5):
        await trainer.request("publish", session="s1", event={"kind": "chat", "text": f"m{n}"})
    for client in (trainer, watcher):
        leaves: list[dict] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 8
        while loop.time() < deadline:
            try:
                frame = await client.expect("presence.leave", timeout=deadline - loop.time())
            except TimeoutError:
                break
            leaves.append(frame)
            if len(leaves) == 3:
                await asyncio.sleep(2.0)  # a second sweep must not announce them again
                leaves.extend(f for f in await client.quiet(0.2)
                              if f.get("type") == "presence.leave")
                break
        assert len(leaves) == 3, leaves
        assert len({f["participant"]["pid"] for f in leaves}) == 3
    back = await Client.open(healthy.url)
    await back.connect(token("u0", "student", name="Victim 0"))
    joined = await back.request("join", session="s1",
                                since={"epoch": last["epoch"], "offset": last["offset"]})
    assert joined["recovered"] is True
    replayed = [f["event"]["text"] for f in back.inbox if f.get("type") == "event"]
    assert replayed == [f"m{n}" for n in range(5)]
    for client in (trainer, watcher, back):
        await client.close()


async def test_redis_restart_nodes_recover_by_themselves(
    cluster: Cluster, own_redis: RedisServer
) -> None:
    cluster.redis_url = own_redis.url
    one, two = await cluster.start(2)
    trainer = await member(one, "t1", "trainer", name="Tessa Trainer")
    student = await member(two, "u1", "student", name="Sam Student")
    await trainer.request("publish", session="s1", event={"kind": "chat", "text": "before"})
    before = await student.expect("event")
    own_redis.stop()
    reply = await trainer.request("publish", session="s1", event={"kind": "chat", "text": "x"})
    assert reply["type"] == "error" and reply["code"] == "unavailable"
    async with httpx.AsyncClient() as http:
        assert (await http.get(f"{one.http}/readyz")).status_code == 503
        assert (await http.get(f"{one.http}/healthz")).status_code == 200
        metrics = (await http.get(f"{one.http}/metrics", headers=METRICS_AUTH)).text
        assert "classroom_backend_errors_total 1.0" in metrics
        own_redis.start()
        for _ in range(100):
            if (await http.get(f"{one.http}/readyz")).status_code == 200:
                break
            await asyncio.sleep(0.1)
        assert (await http.get(f"{one.http}/readyz")).status_code == 200
    for _ in range(50):
        reply = await trainer.request("publish", session="s1",
                                      event={"kind": "chat", "text": "after"})
        if reply["type"] == "published":
            break
        await asyncio.sleep(0.1)
    assert reply["type"] == "published"
    after = await student.expect(lambda f: f.get("event", {}).get("text") == "after", 10)
    assert after["epoch"] != before["epoch"]  # the restarted Redis lost the stream
    again = await Client.open(two.url)
    await again.connect(token("u1", "student", name="Sam Student"))
    joined = await again.request("join", session="s1",
                                 since={"epoch": before["epoch"], "offset": before["offset"]})
    assert joined["recovered"] is False
    for client in (trainer, student, again):
        await client.close()


async def test_one_redis_subscription_per_session_per_node(cluster: Cluster) -> None:
    import redis.asyncio as aioredis

    one, two = await cluster.start(2)
    name = f"{cluster.prefix}:{{acme:s1}}:pub"
    inspector = aioredis.from_url(cluster.redis_url)

    async def subscribers() -> int:
        counts = dict(await inspector.pubsub_numsub(name))
        return int(counts.get(name.encode(), 0))

    async def settle(expected: int) -> int:
        for _ in range(50):
            if await subscribers() == expected:
                break
            await asyncio.sleep(0.05)
        return await subscribers()

    try:
        members = [await member(one, f"u{i}", "student", name=f"S {i}") for i in range(4)]
        assert await settle(1) == 1  # four members on one node share one subscription
        far = await member(two, "u9", "student", name="Far Away")
        assert await settle(2) == 2
        for client in members:
            await client.request("leave", session="s1")
        assert await settle(1) == 1  # the last local member left node one
        await far.close()
        assert await settle(0) == 0
        for client in members:
            await client.close()
    finally:
        await inspector.aclose()
