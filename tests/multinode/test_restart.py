"""Graceful shutdown under load: a node is restarted, its clients recover on another."""

from __future__ import annotations

import asyncio
import signal
import time

from tests.client import Client
from tests.multinode.conftest import TOPOLOGIES, Cluster, member, token


@TOPOLOGIES
async def test_sigterm_under_load_every_client_reconnects_and_recovers(
    cluster: Cluster,
) -> None:
    draining, steady = await cluster.start(2)
    publisher = await member(steady, "t1", "trainer", name="Tessa Trainer")
    clients = [await member(draining, f"u{i}", "student", name=f"Student {i}")
               for i in range(20)]
    published: list[int] = []
    stop = asyncio.Event()

    async def publish_forever() -> None:
        n = 0
        while not stop.is_set():
            reply = await publisher.request("publish", session="s1",
                                            event={"kind": "chat", "text": f"m{n}"})
            assert reply["type"] == "published", reply
            published.append(reply["offset"])
            publisher.inbox.clear()
            n += 1
            await asyncio.sleep(0.02)  # under the 50 commands/s rate limit however fast Redis is

    load = asyncio.create_task(publish_forever())
    await asyncio.sleep(0.5)
    started = time.monotonic()
    draining.proc.send_signal(signal.SIGTERM)

    async def follow(index: int, client: Client) -> list[int]:
        offsets: list[int] = []
        epoch = ""
        while True:
            frame = await client.read(10)
            if frame.get("type") == "event":
                offsets.append(frame["offset"])
                epoch = frame["epoch"]
            elif frame.get("type") == "disconnect":
                assert frame["code"] == 1012 and frame["reconnect"] is True
                break
        assert await client.closed_code() == 1012
        again = await Client.open(steady.url)
        await again.connect(token(f"u{index}", "student", name=f"Student {index}"))
        joined = await again.request("join", session="s1",
                                     since={"epoch": epoch, "offset": offsets[-1]})
        assert joined["recovered"] is True, joined
        offsets += [f["offset"] for f in again.inbox if f.get("type") == "event"]
        again.inbox.clear()
        await asyncio.sleep(0.3)
        stop.set()
        while True:
            try:
                frame = await again.read(1.0)
            except TimeoutError:
                break
            if frame.get("type") == "event":
                offsets.append(frame["offset"])
        await again.close()
        return offsets

    results = await asyncio.gather(*(follow(i, c) for i, c in enumerate(clients)))
    await load
    assert draining.proc.wait(timeout=10) in (0, -signal.SIGTERM)
    assert time.monotonic() - started < 2 + 5  # CLASSROOM_DRAIN_TIMEOUT is 2 s here
    for offsets in results:
        first = offsets[0]
        assert offsets == list(range(first, published[-1] + 1)), "gap or duplicate"
    await publisher.close()
