"""A node just started on a Redis Cluster takes a burst of joins at once.

That is what a node restarted behind the balancer meets: its share of a class
reconnecting in the same second, on Redis connections it has not opened yet.
redis-py's cluster client routed those first commands before it had the slot map,
got ``MOVED`` back and closed every connection under the commands in flight; the
node answered ``unavailable`` and ``internal`` for tens of seconds
(``loadtests/results/scaleout-coldnode.md``).
"""

from __future__ import annotations

import asyncio

import pytest

from tests.client import Client
from tests.multinode.conftest import Cluster, NodeProcess, token

BURST = 60


async def _join(node: NodeProcess, index: int) -> tuple[Client, dict[str, object]]:
    client = await Client.open(node.url)
    role = "trainer" if index == 0 else "student"
    connected = await client.connect(token(f"u{index}", role, session=f"s{index % 6}",
                                           name=f"Member {index}"))
    if connected["type"] != "connected":
        return client, connected
    return client, await client.request("join", session=f"s{index % 6}", timeout=15)


@pytest.mark.parametrize("cluster", ["cluster"], indirect=True)
async def test_a_cold_node_on_a_cluster_lets_a_burst_of_joins_in_at_once(
    cluster: Cluster,
) -> None:
    (node,) = await cluster.start(1)
    outcomes = await asyncio.gather(*(_join(node, i) for i in range(BURST)))
    try:
        refused = [reply for _, reply in outcomes if reply["type"] != "joined"]
        assert refused == [], f"{len(refused)} of {BURST} refused: {refused[:3]}"
        # The node is sound afterwards: a message in one of the sessions reaches its members.
        trainer = outcomes[0][0]
        sent = await trainer.request("publish", session="s0",
                                     event={"kind": "chat", "text": "welkom"})
        assert sent["type"] == "published", sent
        for index in range(6, BURST, 6):
            got = await outcomes[index][0].expect(
                lambda f: f.get("type") == "event" and f["event"].get("text") == "welkom")
            assert got["offset"] == sent["offset"]
    finally:
        await asyncio.gather(*(client.close() for client, _ in outcomes))
