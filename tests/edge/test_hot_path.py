"""The hot path's pieces: frames framed once per payload, writes batched per iteration."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from websockets.frames import Frame, Opcode

from classroom.edge.wire_frames import wire_frame
from classroom.edge.write_batching import WriteBatcher
from classroom.metrics import Metrics
from tests.client import Client, small_receive_socket
from tests.conftest import ServerFactory


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 70000])
def test_wire_frame_is_what_websockets_would_send(size: int) -> None:
    text = "é" * (size // 2) + "a" * (size % 2)
    assert wire_frame(text) == Frame(Opcode.TEXT, text.encode()).serialize(mask=False)
    data = bytes(range(256)) * (size // 256) + bytes(size % 256)
    assert wire_frame(data) == Frame(Opcode.BINARY, data).serialize(mask=False)


class Recording:
    """A connection as the batcher sees it, recording when it was flushed."""

    def __init__(self, frames: int, fail: bool = False) -> None:
        self.frames, self.fail, self.flushes = frames, fail, 0

    def flush(self) -> int:
        self.flushes += 1
        if self.fail:
            raise OSError("socket gone")
        return self.frames


def sample(metrics: Metrics, name: str) -> float:
    value = metrics.registry.get_sample_value(name)
    return 0.0 if value is None else value


async def test_marked_connections_are_written_once_after_the_iteration() -> None:
    metrics = Metrics()
    batcher = WriteBatcher(metrics.frames_written, metrics.publish_to_write)
    first, second = Recording(3), Recording(2)
    batcher.mark(first)
    batcher.published(time.time() - 0.004)
    batcher.mark(second)
    assert first.flushes == second.flushes == 0  # nothing is written inside the fan-out
    await asyncio.sleep(0)
    assert first.flushes == second.flushes == 1
    assert sample(metrics, "classroom_frames_written_total") == 5
    assert sample(metrics, "classroom_publish_to_write_seconds_count") == 1
    assert sample(metrics, "classroom_publish_to_write_seconds_sum") >= 0.004


async def test_write_now_writes_what_is_marked_at_once_and_only_once() -> None:
    """The end of a burst off the broker: written then, not again at the iteration's end."""
    metrics = Metrics()
    batcher = WriteBatcher(metrics.frames_written, metrics.publish_to_write)
    early, late = Recording(3), Recording(1)
    batcher.mark(early)
    batcher.published(time.time())
    batcher.write_now()
    assert early.flushes == 1
    assert sample(metrics, "classroom_frames_written_total") == 3
    assert sample(metrics, "classroom_publish_to_write_seconds_count") == 1
    batcher.mark(late)  # marked after the burst, in the same iteration
    assert late.flushes == 0
    await asyncio.sleep(0)
    assert (early.flushes, late.flushes) == (1, 1)
    assert sample(metrics, "classroom_frames_written_total") == 4
    batcher.write_now()  # nothing marked: nothing written
    assert (early.flushes, late.flushes) == (1, 1)


async def test_one_failing_connection_does_not_cost_the_others_their_frames() -> None:
    metrics = Metrics()
    batcher = WriteBatcher(metrics.frames_written, metrics.publish_to_write)
    broken, fine = Recording(1, fail=True), Recording(4)
    batcher.mark(broken)
    batcher.mark(fine)
    await asyncio.sleep(0)
    assert fine.flushes == 1 and sample(metrics, "classroom_frames_written_total") == 4


async def test_a_publication_with_nothing_to_write_is_not_timed() -> None:
    metrics = Metrics()
    batcher = WriteBatcher(metrics.frames_written, metrics.publish_to_write)
    batcher.published(time.time() - 10)  # every member still joining: nothing was queued
    batcher.mark(Recording(1))
    await asyncio.sleep(0)
    assert sample(metrics, "classroom_publish_to_write_seconds_count") == 0


async def test_a_reader_that_stalls_and_catches_up_gets_every_frame_in_order(
    start_server: ServerFactory,
) -> None:
    """The socket pushes back, a writer task takes over, then direct writes resume."""
    server = await start_server(send_queue_max_bytes=4 * 1024 * 1024, close_timeout=5.0,
                                rate_limit_per_second=10_000, rate_limit_burst=10_000)
    trainer = await server.member("t1", "trainer")
    sleepy = await Client.open(server.ws_url, sock=small_receive_socket(server.port), max_queue=1)
    await sleepy.connect(server.token("u2", "student"))
    assert (await sleepy.request("join", session="s1"))["type"] == "joined"
    shape = {"path": "x" * 10_000}
    for n in range(120):  # ~1.2 MB: far more than the socket buffers hold, under the bound
        reply = await trainer.request("publish", session="s1", event={
            "kind": "annotation.add", "screen": f"p{n}", "annotation_id": f"a{n}", "shape": shape})
        assert reply["type"] == "published"
        trainer.inbox.clear()
    offsets = [frame["offset"] for frame in [await sleepy.read(10) for _ in range(120)]]
    assert offsets == list(range(1, 121))
    reply = await trainer.request("publish", session="s1",
                                  event={"kind": "chat", "text": "still there?"})
    assert reply["type"] == "published"
    after = await sleepy.read(5)
    assert after["offset"] == 121 and after["event"]["text"] == "still there?"
    async with httpx.AsyncClient(base_url=server.http_url) as http:
        metrics = (await http.get("/metrics", headers=server.metrics_auth)).text
    assert "classroom_slow_disconnects_total 0.0" in metrics
    assert "classroom_publish_to_write_seconds_count 121.0" in metrics
    await sleepy.close()
    await trainer.close()

