"""The hot path's pieces: frames framed once per payload, the writer's batches."""

from __future__ import annotations

import asyncio

import pytest
from websockets.frames import Frame, Opcode

from classroom.codec import wire_frame
from classroom.outbox import Outbox


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 70000])
def test_wire_frame_is_what_websockets_would_send(size: int) -> None:
    text = "é" * (size // 2) + "a" * (size % 2)
    assert wire_frame(text) == Frame(Opcode.TEXT, text.encode()).serialize(mask=False)
    data = bytes(range(256)) * (size // 256) + bytes(size % 256)
    assert wire_frame(data) == Frame(Opcode.BINARY, data).serialize(mask=False)


async def test_take_returns_what_is_queued_up_to_the_batch_size() -> None:
    outbox = Outbox(1000, lambda: None)
    for text in ("aaaa", "bbbb", "cccc"):
        outbox.put(text)
    assert await outbox.take(8) == ["aaaa", "bbbb"]
    assert outbox.queued_bytes == 4
    assert await outbox.take(2) == ["cccc"]  # at least one frame, however big
    outbox.finish()
    assert await outbox.take() is None


async def test_take_waits_for_a_frame() -> None:
    outbox = Outbox(1000, lambda: None)
    waiting = asyncio.create_task(outbox.take())
    await asyncio.sleep(0)
    assert not waiting.done()
    outbox.put("x")
    assert await waiting == ["x"]
