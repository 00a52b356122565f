"""The soak's trainers and students: every event kind, every command, every kind of churn.

A :class:`SoakUser` is the load generator's :class:`~loadtests.client.SimUser`
that also follows raised hands and knows its own pid, so a trainer can lower a
student's hand and a student its own. What each role does, and how often, is
in :func:`trainer_acts`, :func:`pointer_acts` and :func:`student_acts`; they run
until the session's time is up (``until``, wall clock) and are also cancelled then: on
Python 3.11 ``asyncio.wait_for`` may swallow a cancellation that meets its reply, and a
loop that relied on being cancelled would then run on, and hang the soak.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

from loadtests.client import Frame, Recorder, SimUser, stamp
from loadtests.plan import User, WorkerPlan

POLL_OPTIONS = ["yes", "no", "maybe"]
STROKE_POINTS = 60  # points per annotation stroke (the server allows 500 in a stroke)
REACTIONS = ("👍", "👏", "❓", "🎉")


class SoakUser(SimUser):
    """A user of one session: the generator's client, plus the hands it has seen."""

    def __init__(self, user: User, plan: WorkerPlan, recorder: Recorder) -> None:
        super().__init__(user, plan, recorder)
        self.pid: str | None = None  # this user's pid in the session, from ``joined``
        self.hand_up = False
        self.own_annotations: list[str] = []
        self.raised: dict[str, float] = {}  # pid -> when this user saw the hand go up
        self.leaving = False  # between ``leave`` and ``joined``: publish nothing

    def _on_joined(self, frame: Frame) -> None:
        super()._on_joined(frame)
        me = frame.get("me") or {}
        self.pid = me.get("pid")
        hands = (frame.get("state") or {}).get("hands") or []
        now = time.time()
        self.raised = {h["pid"]: now for h in hands if isinstance(h, dict) and "pid" in h}
        self.hand_up = self.pid in self.raised

    def _on_event(self, frame: Frame, now: float) -> None:
        super()._on_event(frame, now)
        event = frame.get("event") or {}
        kind = event.get("kind")
        if kind == "hand.raise":
            pid = (event.get("by") or {}).get("pid")
            if pid:
                self.raised[pid] = now
                self.hand_up = self.hand_up or pid == self.pid
        elif kind == "hand.lower":
            pid = str((event.get("participant") or {}).get("pid"))
            self.raised.pop(pid, None)
            if pid == self.pid:
                self.hand_up = False

    def expect_close(self) -> None:
        """The session is about to end: the server's close (1000) is no error."""
        self._closing = True

    async def publish(self, event: dict[str, Any], *, wait: bool = False,
                      client_msg_id: str | None = None) -> Frame | None:
        """Publish ``event`` into this user's session, counting the kind when it went out."""
        if self.leaving:  # a vote that comes due while leaving would be refused
            self.rec.tally.counts["skipped_leaving"] += 1
            return None
        fields: dict[str, Any] = {"session": self.user.session, "event": event}
        if client_msg_id is not None:
            fields["client_msg_id"] = client_msg_id
        if wait:
            reply = await self.request("publish", **fields)
            if reply is not None:
                self.rec.tally.counts[f"kind_{event['kind']}"] += 1
            return reply
        if await self.send("publish", **fields) is not None:
            self.rec.tally.counts[f"kind_{event['kind']}"] += 1
        return None

    async def query(self, kind: str, **fields: Any) -> None:
        """One of the commands that read: presence, history, cohort, ping."""
        if kind != "ping":
            fields["session"] = self.user.session
        if await self.request(kind, **fields) is not None:
            self.rec.tally.counts[f"command_{kind}"] += 1

    async def leave_and_rejoin(self, pause: float) -> None:
        """``leave`` the session on this connection, then ``join`` again with ``since``."""
        if not self.online:
            return
        self.leaving = True
        try:
            reply = await self.request("leave", session=self.user.session)
            if reply is None or reply.get("type") != "left":
                return
            self.online, self.live = False, False  # nothing of the session until joined again
            self.rec.tally.counts["churn_leave_rejoin"] += 1
            await asyncio.sleep(pause)
            fields: dict[str, Any] = {"session": self.user.session}
            self._sent_since = self.epoch is not None
            if self._sent_since:
                fields["since"] = {"epoch": self.epoch, "offset": self.last}
            reply = await self.request("join", **fields)
            self.online = reply is not None and reply.get("type") == "joined"
        finally:
            self.leaving = False

    async def reconnect(self, away: float) -> None:
        """Drop the connection, stay away ``away`` seconds, come back with ``since``."""
        if not self.online:
            return
        await self.close()
        self.rec.tally.counts["churn_reconnect"] += 1
        await asyncio.sleep(away)
        for _ in range(3):
            if await self.open():
                return
            await asyncio.sleep(0.5)


async def _every(period: float, rng: random.Random, act: Callable[[], Awaitable[None]],
                 until: float) -> None:
    await asyncio.sleep(rng.uniform(0, period))
    while time.time() < until:
        await act()
        await asyncio.sleep(period * rng.uniform(0.7, 1.3))


def _stroke(rng: random.Random) -> dict[str, Any]:
    x, y = rng.random(), rng.random()
    points = [[round(min(1.0, x + i * 0.003), 4), round(min(1.0, y + rng.uniform(0, 0.01)), 4)]
              for i in range(STROKE_POINTS)]
    return {"type": "stroke", "color": "red", "width": 2, "points": points}


async def pointer_acts(user: SoakUser, rng: random.Random, hz: float, until: float) -> None:
    """The trainer's pointer while presenting."""

    async def point() -> None:
        await user.publish({"kind": "pointer", "x": round(rng.random(), 3),
                            "y": round(rng.random(), 3), "screen": stamp("p")})

    await _every(1 / hz, rng, point, until)


async def trainer_acts(trainer: SoakUser, rng: random.Random, until: float) -> None:
    """Present: navigate, lock, draw, poll, chat, react, lower hands, read the room."""
    numbers = itertools.count(1)
    poll: str | None = None
    annotations: list[str] = []
    locked = False
    step = 0
    # A lesson opens with a word from the trainer, so even a short session has chat.
    while not trainer.online and time.time() < until:
        await asyncio.sleep(0.05)
    if trainer.online:
        await trainer.publish({"kind": "chat", "text": stamp("welcome")}, wait=True)
    while time.time() < until:
        await asyncio.sleep(rng.uniform(0.6, 1.0))
        if not trainer.online:
            continue
        step += 1
        n = next(numbers)
        choice = step % 10
        if choice == 0:
            await trainer.publish({"kind": "screen.navigate", "screen": stamp(f"slide-{n}")},
                                  wait=True)
        elif choice == 1:
            annotation = f"t{n}"
            reply = await trainer.publish({"kind": "annotation.add", "annotation_id": annotation,
                                           "screen": stamp("board"), "shape": _stroke(rng)},
                                          wait=True)
            if reply is not None and reply.get("type") == "published":
                annotations.append(annotation)
        elif choice == 2 and poll is None and trainer.poll is None:
            poll = f"q{n}"
            await trainer.publish({"kind": "poll.open", "poll": poll,
                                   "question": stamp(f"Question {n}"), "options": POLL_OPTIONS},
                                  wait=True)
        elif choice == 3:
            msg_id = f"c{n}"
            event = {"kind": "chat", "text": stamp(f"trainer says {n}")}
            await trainer.publish(event, wait=True, client_msg_id=msg_id)
            await trainer.publish(event, wait=True, client_msg_id=msg_id)  # a retry: deduplicated
        elif choice == 4:
            await trainer.publish({"kind": "reaction", "emoji": rng.choice(REACTIONS)})
        elif choice == 5:
            for pid, since in list(trainer.raised.items()):
                if pid != trainer.pid and time.time() - since > 1.5:
                    trainer.raised.pop(pid, None)
                    await trainer.publish({"kind": "hand.lower", "participant": pid}, wait=True)
        elif choice == 6:
            locked = not locked
            await trainer.publish({"kind": "screen.lock", "locked": locked}, wait=True)
        elif choice == 7 and len(annotations) > 2:
            await trainer.publish({"kind": "annotation.remove",
                                   "annotation_id": annotations.pop(0)}, wait=True)
        elif choice == 8 and poll is not None:
            if trainer.poll == poll:
                await trainer.publish({"kind": "poll.close", "poll": poll}, wait=True)
            poll = None
        elif choice == 9:
            query = rng.choice(("presence", "history", "cohort", "ping"))
            await trainer.query(query, **({"limit": 20} if query == "history" else {}))


async def answer_poll(student: SoakUser, rng: random.Random, poll: str) -> None:
    """Vote a moment after a poll opens (a student may change their vote: only the last
    one counts)."""
    await asyncio.sleep(rng.uniform(0.2, 1.0))
    if student.poll == poll and student.online:
        await student.publish({"kind": "poll.answer", "poll": poll,
                               "option": rng.randrange(len(POLL_OPTIONS))})


async def student_acts(student: SoakUser, rng: random.Random, until: float) -> None:
    """Take part: chat, point, react, raise and lower a hand, draw, report progress, and
    now and then leave and rejoin, reconnect with ``since``, or drop out for a while."""
    numbers = itertools.count(1)
    actions = ("chat", "chat", "pointer", "reaction", "hand", "hand", "draw", "draw",
               "progress", "progress", "query", "churn")
    while time.time() < until:
        await asyncio.sleep(rng.uniform(0.8, 2.2))
        if not student.online:
            continue
        n = next(numbers)
        action = rng.choice(actions)
        if action == "chat":
            await student.publish({"kind": "chat", "text": stamp(f"student says {n}")})
        elif action == "pointer":
            for _ in range(5):
                await student.publish({"kind": "pointer", "x": round(rng.random(), 3),
                                       "y": round(rng.random(), 3)})
                await asyncio.sleep(0.05)
        elif action == "reaction":
            await student.publish({"kind": "reaction", "emoji": rng.choice(REACTIONS)})
        elif action == "hand":
            await _hand(student, rng)
        elif action == "draw":
            await _draw(student, rng, n)
        elif action == "progress":
            await student.publish({"kind": "progress", "screen": stamp(f"slide-{n}"),
                                   "completed": rng.random() < 0.5,
                                   "score": round(rng.uniform(0, 100), 1)},
                                  wait=True, client_msg_id=f"p{n}")
        elif action == "query":
            await student.query(("presence", "history", "ping")[n % 3])
        else:
            await _churn(student, rng)


async def _hand(student: SoakUser, rng: random.Random) -> None:
    if not student.hand_up:
        reply = await student.publish({"kind": "hand.raise"}, wait=True)
        student.hand_up = reply is not None and reply.get("type") == "published"
        if student.hand_up and rng.random() < 0.3:  # changed their mind before the trainer
            await asyncio.sleep(0.3)
            if student.hand_up:
                reply = await student.publish({"kind": "hand.lower"}, wait=True)
                if reply is not None and reply.get("type") == "published":
                    student.hand_up = False


async def _draw(student: SoakUser, rng: random.Random, n: int) -> None:
    own = student.own_annotations
    if len(own) >= 3 or (own and rng.random() < 0.4):
        await student.publish({"kind": "annotation.remove", "annotation_id": own.pop(0)},
                              wait=True)
        return
    annotation = f"s{student.user.seat}-{n}"
    reply = await student.publish({"kind": "annotation.add", "annotation_id": annotation,
                                   "screen": "board", "shape": _stroke(rng)}, wait=True)
    if reply is not None and reply.get("type") == "published":
        own.append(annotation)


async def _churn(student: SoakUser, rng: random.Random) -> None:
    roll = rng.random()
    if roll < 0.4:
        await student.leave_and_rejoin(rng.uniform(0.2, 1.0))
    elif roll < 0.8:
        await student.reconnect(rng.uniform(0.2, 1.5))
    else:
        await student.reconnect(rng.uniform(3.0, 6.0))  # dropped out for a while
