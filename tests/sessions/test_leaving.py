"""Leaves waiting for a turn go a session at a time: one turn, one presence call, and
every user who left is still announced once."""

from __future__ import annotations

import asyncio

from tests.conftest import ServerFactory


async def test_leaves_waiting_behind_a_join_go_together_and_each_is_announced_once(
    start_server: ServerFactory,
) -> None:
    server = await start_server(admission_limit=1)
    node = server.app.state.classroom.node
    trainer = await server.member("t1", "trainer", name="Tessa Trainer")
    students = [await server.member(f"u{i}", "student", name=f"Student {i}")
                for i in range(12)]
    for _ in students:  # their arrivals, before the storm
        await trainer.expect("presence.join")

    release = asyncio.Event()

    async def hold_the_only_turn() -> None:
        async with node.admission.join_turn():
            await release.wait()

    holder = asyncio.create_task(hold_the_only_turn())
    await asyncio.sleep(0.01)
    await asyncio.gather(*(student.close() for student in students[2:]))  # 10 leave at once
    for _ in range(100):
        if node.admission.queued:
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.1)  # every close has reached its leave by now
    assert node.admission.queued == 1  # one turn waits for all ten, not ten turns

    release.set()
    await holder
    left = [await trainer.expect("presence.leave") for _ in range(10)]
    assert sorted(frame["participant"]["name"] for frame in left) == sorted(
        f"Student {i}" for i in range(2, 12))
    listed = await trainer.request("presence", session="s1")
    assert sorted(p["name"] for p in listed["participants"]) == [
        "Student 0", "Student 1", "Tessa Trainer"]
    # Nothing more comes: no leave was announced twice.
    assert not [f for f in await trainer.quiet() if f.get("type") == "presence.leave"]
    await asyncio.gather(trainer.close(), *(s.close() for s in students[:2]))
