"""``disconnect`` and erasure reach every node, even one cut off from Redis as the API answers.

Three real server processes; the third reaches Redis through a proxy the test
cuts just before the server API call and restores after the 200. The third node
cannot hear the command live, so only the stored control feed, read again when
its connection is back, makes it act.
"""

from __future__ import annotations

import httpx
import pytest

from tests.client import Client
from tests.multinode.conftest import Cluster, NodeProcess, member
from tests.multinode.redis_proxy import RedisProxy

API = {"Authorization": "Bearer acme-multinode-key"}
CLOSE_FORBIDDEN = 4403  # docs/protocol.md, section 12


async def three_nodes(cluster: Cluster, proxy: RedisProxy) -> list[NodeProcess]:
    one, two = await cluster.start(2)
    (three,) = await cluster.start(1, env={"REDIS_URL": proxy.url})
    return [one, two, three]


async def still_open(client: Client) -> bool:
    """No ``disconnect`` and no close for a short while."""
    frames = await client.quiet(0.5)
    return not any(frame.get("type") == "disconnect" for frame in frames) and \
        client.ws.close_code is None


async def disconnected(client: Client, reason: str) -> None:
    """The user's connection got ``disconnect`` 4403 with ``reason``, then the close 4403."""
    frame = await client.expect(lambda f: f.get("type") == "disconnect", timeout=15)
    assert frame == {"type": "disconnect", "code": CLOSE_FORBIDDEN, "reason": reason,
                     "reconnect": False}
    assert await client.closed_code() == CLOSE_FORBIDDEN


async def hands_on(node: NodeProcess, trainer: str) -> list[dict]:
    """The raised hands in the node's live state, as a trainer joining there sees them."""
    client = await member(node, trainer, "trainer", name="Late Trainer")
    hands: list[dict] = client.received[-1]["state"]["hands"]
    await client.close()
    return hands


@pytest.mark.parametrize(("command", "reason"), [
    ("disconnect", "disconnected by the server"),
    ("erase", "your data was erased"),
])
async def test_every_node_acts_even_one_cut_off_from_redis_at_that_moment(
    cluster: Cluster, proxy: RedisProxy, command: str, reason: str,
) -> None:
    nodes = await three_nodes(cluster, proxy)
    sessions = [await member(node, "u1", "student", name="Sam Student") for node in nodes]
    raised = await sessions[0].request("publish", session="s1", event={"kind": "hand.raise"})
    assert raised["type"] == "published", raised
    for index, node in enumerate(nodes):
        assert len(await hands_on(node, f"t{index}")) == 1  # every live state holds the hand
    proxy.cut()  # node three loses every Redis connection, pub/sub included
    async with httpx.AsyncClient(base_url=nodes[0].http, timeout=10) as http:
        if command == "erase":
            answer = await http.delete("/api/v1/users/u1", headers=API)
        else:
            answer = await http.post("/api/v1/users/u1/disconnect", headers=API)
    assert answer.status_code == 200, answer.text
    await disconnected(sessions[0], reason)  # the answering node applied it before the 200
    await disconnected(sessions[1], reason)
    assert await still_open(sessions[2])  # node three could not hear it live
    proxy.restore()
    await disconnected(sessions[2], reason)  # ...and acted once back on Redis
    if command == "erase":
        for index, node in enumerate(nodes):
            assert await hands_on(node, f"t{index}") == []  # gone from every live state
