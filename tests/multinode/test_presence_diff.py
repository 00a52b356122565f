"""presence.diff across nodes: every node coalesces the joins and leaves of every node."""

from __future__ import annotations

import asyncio
import json

from tests.client import Client
from tests.multinode.conftest import TENANTS, TOPOLOGIES, Cluster, member, token

WINDOW = "0.4"


async def diff_member(url: str, sub: str, role: str, **profile: str) -> Client:
    client = await Client.open(url)
    reply = await client.request("connect", token=token(sub, role, **profile),
                                 features=["presence.diff"])
    assert reply["features"] == ["presence.diff"], reply
    assert (await client.request("join", session="s1"))["type"] == "joined"
    return client


@TOPOLOGIES
async def test_joins_and_leaves_on_one_node_reach_the_other_as_one_diff(
    cluster: Cluster,
) -> None:
    one, two = await cluster.start(2, env={"CLASSROOM_PRESENCE_WINDOW": WINDOW})
    trainer = await diff_member(one.url, "t1", "trainer", name="Tessa Trainer")
    old = await member(one, "u0", "student", name="Old Client")  # per-person frames
    await asyncio.gather(trainer.quiet(1.0), old.quiet(1.0))
    joiners = []
    for n in range(1, 4):
        client = await Client.open(two.url)
        await client.connect(token(f"u{n}", "student", name=f"Stu{n} Dent",
                                   email=f"u{n}@example.nl"))
        joiners.append(client)
    replies = await asyncio.gather(*(c.request("join", session="s1") for c in joiners))
    assert all(r["type"] == "joined" for r in replies)
    frames = await trainer.quiet(1.5)
    diffs = [f for f in frames if f["type"] == "presence.diff"]
    assert [f for f in frames if f["type"] == "presence.join"] == []
    assert len(diffs) == 1, diffs
    assert sorted(p["email"] for p in diffs[0]["joined"]) == [
        "u1@example.nl", "u2@example.nl", "u3@example.nl"]
    old_joins = [f for f in await old.quiet(0.2) if f["type"] == "presence.join"]
    assert len(old_joins) == 3 and all("email" not in f["participant"] for f in old_joins)
    for client in joiners:
        await client.close()
    diff = await trainer.expect("presence.diff", timeout=5)
    left = list(diff["left"])
    while len(left) < 3:  # the closes may straddle a window on a busy machine
        left += (await trainer.expect("presence.diff", timeout=5))["left"]
    assert sorted(p["name"] for p in left) == ["Stu1 Dent", "Stu2 Dent", "Stu3 Dent"]
    await trainer.close()
    await old.close()


async def test_counts_only_holds_on_every_node(cluster: Cluster) -> None:
    tenants = json.loads(json.dumps(TENANTS))
    tenants["acme"]["presence_counts_only_above"] = 2
    one, two = await cluster.start(2, env={"CLASSROOM_PRESENCE_WINDOW": WINDOW,
                                           "CLASSROOM_TENANTS": json.dumps(tenants)})
    student = await diff_member(one.url, "u0", "student", name="Ann One")
    trainer = await diff_member(one.url, "t1", "trainer", name="Tessa Trainer")
    await asyncio.gather(student.quiet(1.0), trainer.quiet(1.0))
    crowd = [await diff_member(two.url, f"u{n}", "student", name=f"Crowd{n} X")
             for n in range(1, 3)]
    counts = [f for f in await student.quiet(1.5) if f["type"].startswith("presence.")]
    assert counts and all(f["type"] == "presence.count" for f in counts), counts
    assert counts[-1]["count"] == 4
    names = [p["name"] for f in await trainer.quiet(0.2) if f["type"] == "presence.diff"
             for p in f["joined"]]
    assert sorted(names) == ["Crowd1 X", "Crowd2 X"]
    for client in (student, trainer, *crowd):
        await client.close()
