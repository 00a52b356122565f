"""Durable session state across real nodes: a late node rebuilds byte-equal state, and
concurrent first joins each get a snapshot at a known offset and exactly the events after it.

Issue 12, points 8 and 9. History is kept short and snapshots frequent so the
late node must rebuild from the snapshot, not fold the stream from offset 1.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import orjson
import redis.asyncio as aioredis

from tests.client import Client
from tests.multinode.conftest import REDIS_URL, Cluster, member, token

FAST = {
    "CLASSROOM_RATE_LIMIT_PER_SECOND": "100000",
    "CLASSROOM_RATE_LIMIT_BURST": "100000",
    "CLASSROOM_FANOUT_BUDGET_SCALE": "10000",
    "CLASSROOM_SEND_QUEUE_MAX_BYTES": str(256 * 1024 * 1024),
}
SHORT = {**FAST, "CLASSROOM_HISTORY_SIZE": "300", "CLASSROOM_SNAPSHOT_EVERY": "100",
         "CLASSROOM_SESSION_IDLE": "1"}
COMMAND_IDS = itertools.count(1_000_000)


async def publish_all(client: Client, events: list[dict[str, Any]], window: int = 100) -> None:
    """Publish ``events`` in order, a window of commands in flight at a time."""
    for start in range(0, len(events), window):
        ids = []
        for event in events[start:start + window]:
            command_id = next(COMMAND_IDS)
            await client.send_frame({"type": "publish", "id": command_id, "session": "s1",
                                     "event": event})
            ids.append(command_id)
        for command_id in ids:
            reply = await client.reply_to(command_id, timeout=30)
            assert reply["type"] == "published", reply
        client.inbox.clear()


async def publish(client: Client, event: dict[str, Any]) -> None:
    reply = await client.request("publish", session="s1", event=event, timeout=10)
    assert reply["type"] == "published", reply
    client.inbox.clear()


async def lesson(trainer: Client, students: list[Client], pids: list[str], first: int,
                 blocks: int) -> None:
    """``blocks`` blocks of 100 events, each moving screen, lock, poll, hands and marks."""
    for block in range(first, first + blocks):
        screen, poll = f"screen-{block % 7}", f"q{block}"
        await publish(trainer, {"kind": "screen.navigate", "screen": screen})
        await publish(trainer, {"kind": "poll.open", "poll": poll, "question": "Which?",
                                "options": ["a", "b", "c"]})
        for n, student in enumerate(students):
            await publish(student, {"kind": "poll.answer", "poll": poll,
                                    "option": (block + n) % 3})
            await publish(student, {"kind": "annotation.add", "annotation_id": f"a{block}-{n}",
                                    "screen": screen, "shape": {"points": [[block, n]]}})
        await publish(students[block % len(students)], {"kind": "hand.raise"})
        await publish_all(trainer, [{"kind": "chat", "text": f"{block}:{n}"} for n in range(89)])
        await publish(trainer, {"kind": "screen.lock", "locked": block % 2 == 0})
        await publish(trainer, {"kind": "poll.close", "poll": poll})
        await publish(trainer, {"kind": "annotation.remove",
                                "annotation_id": f"a{block}-{block % len(students)}"})
        if block > first:  # the hand raised in the block before
            await publish(trainer, {"kind": "hand.lower",
                                    "participant": pids[(block + 1) % len(pids)]})
        else:
            await publish(trainer, {"kind": "chat", "text": "nobody to lower yet"})


async def joined_state(node: Any, sub: str, role: str) -> tuple[bytes, int, str]:
    client = await Client.open(node.url)
    try:
        assert (await client.connect(token(sub, role, name=f"Observer {sub}")))["type"] == \
            "connected"
        joined = await client.request("join", session="s1", timeout=30)
        assert joined["type"] == "joined", joined
        return orjson.dumps(joined["state"]), joined["offset"], joined["epoch"]
    finally:
        await client.close()


async def test_a_fourth_node_after_4000_events_and_a_new_epoch_shows_the_same_state(
    cluster: Cluster,
) -> None:
    cluster.env.update(SHORT)
    nodes = await cluster.start(3)
    trainer = await member(nodes[0], "t1", "trainer", name="Tessa Trainer")
    students = [await member(nodes[1], "u0", "student", name="Sam"),
                await member(nodes[2], "u1", "student", name="Sue")]
    pids = []
    for client in students:
        pids.append(next(f for f in client.received if f.get("type") == "joined")["me"]["pid"])
    # 4,000 events: 40 snapshots, and 13 times the 300 the history keeps.
    await lesson(trainer, students, pids, first=0, blocks=40)

    # Node 2 forgets the session (its member left, idle) and rebuilds it on the next join.
    await students[1].close()
    await asyncio.sleep(2.5)
    students[1] = await member(nodes[2], "u1", "student", name="Sue")

    # Storage loses the stream: the next publish starts a new epoch at offset 1.
    redis = aioredis.from_url(REDIS_URL)
    try:
        removed = await redis.delete(f"{cluster.prefix}:{{acme:s1}}:meta",
                                     f"{cluster.prefix}:{{acme:s1}}:stream")
        assert removed == 2
    finally:
        await redis.aclose()
    await lesson(trainer, students, pids, first=500, blocks=5)  # history keeps 300 of them
    await publish(trainer, {"kind": "poll.open", "poll": "last", "question": "Done?",
                            "options": ["yes", "no"]})
    await publish(students[0], {"kind": "poll.answer", "poll": "last", "option": 1})

    nodes += await cluster.start(1)
    for sub, role in (("watcher", "student"), ("t-watch", "trainer")):
        seen = [await joined_state(node, sub, role) for node in nodes]
        states = {state for state, _, _ in seen}
        assert len({(offset, epoch) for _, offset, epoch in seen}) == 1, seen
        assert seen[0][1] == 502
        assert len(states) == 1, [orjson.loads(state) for state in states]
        shown = orjson.loads(seen[0][0])
        assert shown["screen"] == "screen-0" and shown["locked"] is True  # block 504
        assert shown["poll"]["poll"] == "last" and len(shown["hands"]) == 1
    for client in [trainer, *students]:
        await client.close()


async def test_concurrent_first_joins_on_two_nodes_get_a_settled_snapshot(
    cluster: Cluster,
) -> None:
    cluster.env.update(FAST)
    source, *fresh = await cluster.start(3)
    trainer = await member(source, "t1", "trainer", name="Tessa Trainer")
    await publish_all(trainer, [{"kind": "chat", "text": str(n)} for n in range(3000)], 200)
    await publish(trainer, {"kind": "screen.navigate", "screen": "chapter-7"})
    await publish(trainer, {"kind": "screen.lock", "locked": True})
    clients = []
    for n in range(12):
        client = await Client.open(fresh[n % 2].url)
        assert (await client.connect(token(f"s{n}", "student", name=f"S{n}")))["type"] == \
            "connected"
        clients.append(client)
    joins = await asyncio.gather(*(c.request("join", session="s1", timeout=30)
                                   for c in clients))
    for joined in joins:
        assert joined["type"] == "joined", joined
        assert joined["offset"] == 3002, joined["offset"]
        assert joined["state"]["screen"] == "chapter-7" and joined["state"]["locked"] is True
    await publish(trainer, {"kind": "chat", "text": "after"})
    for client in clients:
        frames = await client.quiet(0.5)
        events = [f for f in frames if f.get("type") == "event"]
        assert [e["offset"] for e in events] == [3003], [e["offset"] for e in events][:5]
    for client in [trainer, *clients]:
        await client.close()
