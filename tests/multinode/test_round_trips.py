"""What a rejoin and a leave cost in round trips to Redis, counted by a proxy in front of it.

In a reconnect storm of 5,000 clients, the Redis client's work per command was a
third of the node's CPU (py-spy): a rejoin took 14 round trips and a leave 5.
The budgets hold them down; a change that adds one to the hot path has to raise a
budget on purpose.
"""

from __future__ import annotations

import asyncio

from tests.client import Client
from tests.multinode.conftest import Cluster, member, token
from tests.multinode.redis_proxy import RedisProxy

REJOIN_BUDGET = 9
"""Round trips of a student's rejoin with ``since`` (14 before the batching)."""
LEAVE_BUDGET = 3
"""Round trips of a student's leave, logged and announced (5 before the batching)."""


async def round_trips(proxy: RedisProxy) -> int:
    """The node's requests since the last call, once it has gone quiet (its writes
    after a reply included)."""
    count = -1
    while count != proxy.requests:
        count = proxy.requests
        await asyncio.sleep(0.3)
    proxy.requests = 0
    return count


async def test_a_rejoin_and_a_leave_stay_within_their_round_trip_budgets(
    cluster: Cluster, proxy: RedisProxy
) -> None:
    # A long presence TTL keeps heartbeats and sweeps out of the counted windows.
    [node] = await cluster.start(1, env={"REDIS_URL": proxy.url, "CLASSROOM_PRESENCE_TTL": "600"})
    trainer = await member(node, "t1", "trainer")
    student = await Client.open(node.url)
    assert (await student.connect(token("u1", "student")))["type"] == "connected"
    joined = await student.request("join", session="s1")
    since = {"epoch": joined["epoch"], "offset": joined["offset"]}
    await round_trips(proxy)

    assert (await student.request("leave", session="s1"))["type"] == "left"
    leave = await round_trips(proxy)
    await trainer.request("publish", session="s1", event={"kind": "chat", "text": "missed"})
    await round_trips(proxy)
    again = await student.request("join", session="s1", since=since)
    rejoin = await round_trips(proxy)

    assert again["type"] == "joined" and again["recovered"] is True
    missed = await student.expect(lambda f: f.get("type") == "event")
    assert missed["event"]["text"] == "missed"
    assert leave <= LEAVE_BUDGET, leave
    assert rejoin <= REJOIN_BUDGET, rejoin
    await trainer.close()
    await student.close()
