"""The lean stand-ins for uvicorn's per-connection queue and flow-control event."""

from __future__ import annotations

import asyncio
import sys

from classroom.edge.uvicorn_standins import FlowGate, MessageQueue


async def test_the_queue_is_fifo_and_a_getter_waits_for_an_item() -> None:
    queue: MessageQueue[str] = MessageQueue()
    waiting = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    assert not waiting.done() and queue.empty()
    queue.put_nowait("connect")
    queue.put_nowait("receive")
    assert await waiting == "connect"
    assert queue.qsize() == 1 and await queue.get() == "receive"


async def test_a_cancelled_getter_passes_its_wake_up_on() -> None:
    queue: MessageQueue[int] = MessageQueue()
    first = asyncio.create_task(queue.get())
    second = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    queue.put_nowait(1)  # wakes the first getter...
    first.cancel()  # ...which is cancelled before it runs
    assert await second == 1
    assert first.cancelled() and queue.empty()


async def test_the_gate_holds_writers_while_closed() -> None:
    gate = FlowGate()
    assert gate.is_set() and await gate.wait()
    gate.clear()
    writers = [asyncio.create_task(gate.wait()) for _ in range(2)]
    await asyncio.sleep(0)
    assert not any(w.done() for w in writers)
    gate.set()
    assert await asyncio.gather(*writers) == [True, True]


async def test_a_cancelled_writer_leaves_the_gate_clean() -> None:
    gate = FlowGate()
    gate.clear()
    writer = asyncio.create_task(gate.wait())
    await asyncio.sleep(0)
    writer.cancel()
    await asyncio.sleep(0)
    gate.set()
    assert writer.cancelled() and gate.is_set()


def test_they_are_much_smaller_than_what_they_replace() -> None:
    def size(obj: object) -> int:
        own = sys.getsizeof(obj)
        parts = getattr(obj, "__dict__", {}).values() if hasattr(obj, "__dict__") else [
            getattr(obj, name) for name in type(obj).__slots__]  # type: ignore[attr-defined]
        return own + sum(sys.getsizeof(p) for p in parts if p is not None)

    assert size(MessageQueue()) * 4 < size(asyncio.Queue())
    assert size(FlowGate()) * 4 < size(asyncio.Event())
