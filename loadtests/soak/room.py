"""One room of the soak: a session after another, each started, run and ended in full.

Each session has a new id, so each is a new stream, state and membership on
every node; its people are spread over the nodes and the two encodings, so its
events cross nodes. Most sessions end with the trainer's ``session.end``; every
``abandon_every``-th ends the way a lesson often does, by everyone leaving.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

from loadtests.client import Recorder
from loadtests.plan import User, WorkerPlan
from loadtests.soak.config import SoakConfig
from loadtests.soak.people import SoakUser, answer_poll, pointer_acts, student_acts, trainer_acts

TRAINER_POINTER_HZ = 5.0
END_WAIT_SECONDS = 5.0  # for the server to close every member after ``session.end``
CLOSE_SECONDS = 10.0  # for every connection of a session to close (each waits 3 s at most)
STOP_ATTEMPTS = 5


@dataclass
class Live:
    """What the soak has going on right now, for the samples."""

    sessions: int = 0
    people: int = 0


class Room:
    """Plays the sessions of one room, one after another."""

    def __init__(self, index: int, config: SoakConfig, plans: list[list[WorkerPlan]],
                 run_id: str, recorder: Recorder, live: Live) -> None:
        self.index = index
        self.config = config
        self.plans = plans  # [node][encoding]
        self.run_id = run_id
        self.rec = recorder
        self.live = live
        self.cycle = 0
        # Seeded pseudo-randomness shapes the load; nothing here is secret.
        self.rng = random.Random(f"{config.seed}-soak-room-{index}")  # noqa: S311

    def _people(self, session: str) -> list[SoakUser]:
        people = []
        nodes = len(self.plans)
        for seat in range(self.config.students + 1):
            user = User(room=self.index, seat=seat, session=session,
                        sub=f"soak-{self.run_id}-r{self.index}-u{seat}")
            plan = self.plans[(seat + self.index) % nodes][seat % 2]
            people.append(SoakUser(user, plan, self.rec))
        return people

    async def loop(self, until: float, start_delay: float = 0.0) -> None:
        """Play sessions until the wall-clock time ``until`` (the last one is finished)."""
        await asyncio.sleep(start_delay)
        while time.time() < until:
            await self.session()

    async def session(self) -> None:
        """One session, from the trainer's join to its end."""
        config, rng = self.config, self.rng
        cycle, self.cycle = self.cycle, self.cycle + 1
        people = self._people(f"soak-{self.run_id}-r{self.index}-c{cycle}")
        trainer, students = people[0], people[1:]
        tasks: list[asyncio.Task[None]] = []
        self.live.sessions += 1
        self.live.people += len(people)
        try:
            if not await _open(trainer):
                self.rec.tally.counts["sessions_not_started"] += 1
                return
            # Students point too, which the session allows only once the trainer says so.
            await trainer.publish({"kind": "session.options", "student_pointers": True},
                                  wait=True)
            until = time.time() + config.session_seconds
            for student in students:
                await asyncio.sleep(rng.uniform(0.0, 0.15))
                tasks.append(_spawn(_open_and_act(student, rng, tasks, until)))
            tasks.append(_spawn(trainer_acts(trainer, rng, until)))
            tasks.append(_spawn(pointer_acts(trainer, rng, TRAINER_POINTER_HZ, until)))
            await asyncio.sleep(max(0.0, until - time.time()))
            await self._stop(tasks)
            abandon = config.abandon_every and cycle % config.abandon_every == \
                config.abandon_every - 1
            if abandon:
                await _everyone_leaves(people)
                self.rec.tally.counts["sessions_abandoned"] += 1
            else:
                await _end(trainer, people)
                self.rec.tally.counts["sessions_ended"] += 1
        finally:
            await self._stop(tasks)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*(person.close() for person in people),
                                                      return_exceptions=True), CLOSE_SECONDS)
            self.live.sessions -= 1
            self.live.people -= len(people)


    async def _stop(self, tasks: list[asyncio.Task[None]]) -> None:
        """Cancel the session's activities and wait for them, boundedly: a task that
        swallowed its cancellation is cancelled again, and one that never ends is counted
        (``tasks_lingering``) and left behind rather than hanging the soak."""
        for _ in range(STOP_ATTEMPTS):
            pending = [task for task in tasks if not task.done()]
            if not pending:
                return
            for task in pending:
                task.cancel()
            await asyncio.wait(pending, timeout=1.0)
        self.rec.tally.counts["tasks_lingering"] += sum(1 for task in tasks if not task.done())


def _spawn(coroutine: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
    return asyncio.create_task(coroutine)


async def _open(user: SoakUser, attempts: int = 3) -> bool:
    for _ in range(attempts):
        if await user.open():
            return True
        await asyncio.sleep(0.5)
    return False


async def _open_and_act(student: SoakUser, rng: random.Random,
                        tasks: list[asyncio.Task[None]], until: float) -> None:
    """Join, then take part; a vote follows each poll that opens."""

    def poll_opened(poll: str) -> None:
        tasks.append(_spawn(answer_poll(student, rng, poll)))

    student.on_poll_open = poll_opened
    if await _open(student):
        await student_acts(student, rng, until)


async def _everyone_leaves(people: list[SoakUser]) -> None:
    """Abandon the session: each ``leave``s (if online), then hangs up."""
    for person in people:
        if person.online:
            with contextlib.suppress(Exception):
                await person.request("leave", session=person.user.session)
        await person.close()


async def _end(trainer: SoakUser, people: list[SoakUser]) -> None:
    """``session.end``: the server closes every member (1000), which is no error here."""
    for person in people:
        person.expect_close()
    await trainer.publish({"kind": "session.end"}, wait=True)
    online = [person.lost.wait() for person in people if person.online or person is trainer]
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.gather(*online), END_WAIT_SECONDS)
