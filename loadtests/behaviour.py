"""What simulated trainers and students do during a run, and when they reconnect.

Activities keep running across reconnects (a publish while offline is just
skipped and counted), so churn never changes the offered load's shape. Each
publisher stamps its clock into a string field, which receivers turn into
end-to-end latency. Stored-event ids (polls, annotations) are numbered per
user for the whole run, since the server refuses a poll id used before.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import time
from collections.abc import Awaitable, Callable

from loadtests.client import stamp
from loadtests.drivers import UserConnection

Action = Callable[[], Awaitable[None]]
POLL_OPTIONS = ["A", "B", "C", "D"]
# The ladder stops climbing once deliveries in the publisher's process are this late
# (median of the current second): past that a server only piles up a backlog.
FANOUT_BREAKER_SECONDS = 1.0


class Clock:
    """The run's shared timeline: every process starts at the same wall-clock instant."""

    def __init__(self, start_at: float, duration: float) -> None:
        self.start_at = start_at
        self.stop_at = start_at + duration

    def at(self, offset: float) -> float:
        """Wall-clock time ``offset`` seconds into the run."""
        return self.start_at + offset

    def left(self) -> float:
        """Seconds until the run stops (negative once it has)."""
        return self.stop_at - time.time()


async def _every(period: float, rng: random.Random, action: Action) -> None:
    """Run ``action`` every ``period`` seconds, on a grid that starts at a random phase.

    The grid is kept on the clock, not re-measured from each late turn: when this
    process's loop is held up (a reconnect storm's thousands of closes and opens), every
    user whose turn fell in that stall goes at its end, and with "sleep a period after
    each turn" they would stay in step ever after, so a storm turned 100 trainers' pointer
    moves, spread over the second before it, into a few bursts after it. A turn missed
    altogether is skipped, not made up.
    """
    loop = asyncio.get_running_loop()
    due = loop.time() + rng.uniform(0, period)
    while True:
        await asyncio.sleep(max(0.0, due - loop.time()))
        await action()
        due += period
        late = loop.time() - due
        if late > 0:
            due += math.ceil(late / period) * period


async def _poisson(rate: float, rng: random.Random, action: Action) -> None:
    """Run ``action`` at random times, ``rate`` per second on average."""
    while True:
        await asyncio.sleep(rng.expovariate(rate))
        await action()


class Actor:
    """The activities of one user, as tasks that the lifecycle starts and cancels."""

    def __init__(self, sim: UserConnection, rng: random.Random,
                 clock: Clock | None = None) -> None:
        self.sim = sim
        self.rng = rng
        self.clock = clock
        self.scenario = sim.plan.scenario
        self.session = sim.user.session
        self.tasks: set[asyncio.Task[None]] = set()
        self._n = 0

    def _next(self) -> int:
        self._n += 1
        return self._n

    def _spawn(self, coroutine: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        """Forget a finished loop; a crash is a generator bug and must show in the report."""
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.sim.rec.error("client_bug", repr(task.exception())[:160], "activity")

    async def _publish(self, event: dict[str, object]) -> None:
        await self.sim.send("publish", session=self.session, event=event)

    def start(self) -> None:
        """Start this user's loops according to its role and the scenario."""
        s, rng, user = self.scenario, self.rng, self.sim.user
        if not s.join:
            return
        if user.slow:
            self._spawn(self._stop_reading())
            return
        members = s.students + 1
        if s.chat_per_second > 0:
            self._spawn(_poisson(s.chat_per_second / members, rng, self._chat))
        if user.role == "trainer":
            if s.student_pointer_per_second > 0 and s.students:
                self._spawn(self._let_students_point())
            if s.navigate_every > 0:
                self._spawn(_every(s.navigate_every, rng, self._navigate))
            if s.trainer_pointer_hz > 0:
                self._spawn(_every(1 / s.trainer_pointer_hz, rng, self._pointer))
            if s.poll_every > 0:
                self._spawn(self._polls())
            if s.annotation_per_second > 0:
                self._spawn(self._annotations())
            if s.fanout_rates and self.clock is not None:
                self._spawn(self._fanout(self.clock))
            if s.steady_rate > 0 and self.clock is not None:
                self._spawn(self._steady(self.clock))
            return
        if s.student_pointer_per_second > 0 and s.students:
            self._spawn(_poisson(s.student_pointer_per_second / s.students, rng,
                                 self._student_pointer))
        if s.progress_every > 0:
            self._spawn(_every(s.progress_every, rng, self._progress))
        if s.poll_every > 0 and s.poll_answer_fraction > 0:
            self.sim.on_poll_open = self._poll_opened

    def stop(self) -> None:
        """Cancel every loop (the run is over)."""
        self.sim.on_poll_open = None
        for task in list(self.tasks):
            task.cancel()

    # -- everyone -------------------------------------------------------------------

    async def _chat(self) -> None:
        text = f"chat {self._next()} from seat {self.sim.user.seat} "
        await self._publish({"kind": "chat",
                             "text": stamp(text + "." * self.scenario.chat_bytes)})

    async def _pointer(self) -> None:
        await self._publish({"kind": "pointer", "x": round(self.rng.random(), 4),
                             "y": round(self.rng.random(), 4), "screen": stamp("p")})

    async def _student_pointer(self) -> None:
        """Point while the trainer lets students point (a session option, off by default)."""
        if self.sim.pointers_on:
            await self._pointer()

    # -- trainer --------------------------------------------------------------------

    async def _let_students_point(self) -> None:
        """Switch student pointers on for the session (protocol section 7, session options)."""
        await self.sim.request("publish", session=self.session,
                               event={"kind": "session.options", "student_pointers": True})

    async def _navigate(self) -> None:
        await self._publish({"kind": "screen.navigate", "screen": stamp(f"slide-{self._next()}")})

    async def _polls(self) -> None:
        """Open a poll, let students answer, close it; repeat. Close a stale one first."""
        sim, s = self.sim, self.scenario
        await asyncio.sleep(self.rng.uniform(0.5, min(2.0, s.poll_every)))
        while True:
            if sim.poll is not None and sim.online:
                await sim.request("publish", session=self.session,
                                  event={"kind": "poll.close", "poll": sim.poll})
            poll = f"q{self._next()}"
            await sim.request("publish", session=self.session, event={
                "kind": "poll.open", "poll": poll, "question": stamp(f"Question {poll}"),
                "options": POLL_OPTIONS})
            await asyncio.sleep(s.poll_open)
            if sim.poll == poll and sim.online:
                await sim.request("publish", session=self.session,
                                  event={"kind": "poll.close", "poll": poll})
            await asyncio.sleep(s.poll_every - s.poll_open)

    async def _annotations(self) -> None:
        """Add annotations of a set size and remove the previous one, so state stays small."""
        sim, s = self.sim, self.scenario
        shape = {"type": "path", "points": "x" * max(1, s.annotation_bytes - 30)}
        previous: str | None = None
        period = 1 / s.annotation_per_second
        await asyncio.sleep(self.rng.uniform(0, period))
        while True:
            annotation = f"a{self._next()}"
            reply = await sim.request("publish", session=self.session, event={
                "kind": "annotation.add", "annotation_id": annotation,
                "screen": stamp("board"), "shape": shape})
            if reply is not None and reply.get("type") == "published":
                if previous is not None:
                    await self._publish({"kind": "annotation.remove", "annotation_id": previous})
                previous = annotation
            await asyncio.sleep(period)

    async def _fanout(self, clock: Clock) -> None:
        """The ladder: chat at each of ``fanout_rates`` in turn, ``fanout_step`` seconds each,
        on a fixed schedule (a late send goes out at once, so the offered rate holds).

        It starts at the first whole second, from ``fanout_start`` on, after one in which
        this process received fewer frames than it has clients (the join storm is over),
        or after ``fanout_wait_max`` seconds; ``fanout_shift`` counts the seconds waited."""
        s, rec = self.scenario, self.sim.rec
        quiet = len(self.sim.plan.users)
        shift = 0
        while shift < s.fanout_wait_max:
            await asyncio.sleep(max(0.0, clock.at(s.fanout_start + shift) + 0.05 - time.time()))
            if rec.previous.counts["deliveries"] < quiet:
                break
            shift += 1
        rec.tally.counts["fanout_shift"] += shift
        for step, rate in enumerate(s.fanout_rates):
            begin = clock.at(s.fanout_start + shift + step * s.fanout_step)
            end = begin + s.fanout_step
            await asyncio.sleep(max(0.0, begin - time.time()))
            sent = 0
            while time.time() < end:
                latency = rec.tally.latency
                if latency.count >= 20 and latency.percentile(50) > FANOUT_BREAKER_SECONDS:
                    rec.tally.counts["fanout_breaker_step"] = step + 1
                    return
                await self._publish({"kind": "chat",
                                     "text": stamp(f"fan-out {step}.{sent}")})
                sent += 1
                await asyncio.sleep(max(0.0, begin + sent / rate - time.time()))

    async def _steady(self, clock: Clock) -> None:
        """Chat at ``steady_rate`` on a fixed schedule from ``steady_from`` on (a late send
        goes out at once, so the offered rate holds); the first is ``steady 0``, whose
        latency the receivers also record as ``first_event``. After a reconnect the
        schedule carries on where it is."""
        s = self.scenario
        begin = clock.at(s.steady_from)
        sent = max(0, int((time.time() - begin) * s.steady_rate))
        while True:
            await asyncio.sleep(max(0.0, begin + sent / s.steady_rate - time.time()))
            await self._publish({"kind": "chat", "text": stamp(f"steady {sent}")})
            sent += 1

    # -- student --------------------------------------------------------------------

    async def _progress(self) -> None:
        await self._publish({"kind": "progress", "screen": stamp(f"slide-{self._next()}"),
                             "completed": self.rng.random() < 0.5,
                             "score": round(self.rng.uniform(0, 100), 1)})

    def _poll_opened(self, poll: str) -> None:
        if self.rng.random() < self.scenario.poll_answer_fraction:
            delay = self.rng.uniform(0.2, max(0.3, self.scenario.poll_open * 0.5))
            self._spawn(self._answer(poll, delay))

    async def _answer(self, poll: str, delay: float) -> None:
        await asyncio.sleep(delay)
        if self.sim.poll == poll and self.sim.online:
            await self._publish({"kind": "poll.answer", "poll": poll,
                                 "option": self.rng.randrange(len(POLL_OPTIONS))})

    async def _stop_reading(self) -> None:
        await asyncio.sleep(self.scenario.slow_after)
        self.sim.pause()
        self.sim.rec.tally.counts["slow_paused"] += 1


async def _open_until_stop(sim: UserConnection, clock: Clock, rng: random.Random) -> bool:
    """Open, retrying with a short random back-off, until it works or the run ends."""
    while not await sim.open():
        if clock.left() < 1.0:
            return False
        await asyncio.sleep(rng.uniform(0.2, 1.0))
    return True


async def lifecycle(sim: UserConnection, clock: Clock, rng: random.Random, delay: float,
                    actor: Actor) -> None:
    """One user's whole run: connect at its ramp slot, act, reconnect on schedule or on a
    drop, and storm with everyone else. The worker cancels this at the stop time."""
    await asyncio.sleep(delay)
    if not await _open_until_stop(sim, clock, rng):
        return
    actor.start()
    s = sim.plan.scenario
    storms = [clock.at(t) for t in s.storm_times() if clock.at(t) > time.time()]
    churn = s.reconnect_every > 0
    next_reconnect = time.time() + rng.expovariate(1 / s.reconnect_every) if churn else math.inf
    while True:
        if sim.user.slow:  # a slow reader never reconnects; its close is what is measured
            return
        wake = min(next_reconnect, storms[0] if storms else math.inf, clock.stop_at)
        lost = sim.lost
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(lost.wait(), max(0.0, wake - time.time()))
        now = time.time()
        if now >= clock.stop_at:
            return
        if not lost.is_set() and now < wake:
            continue  # the timer fired a hair early
        if lost.is_set():
            await asyncio.sleep(rng.uniform(0.1, 0.5))  # dropped by the server: back off
        else:
            storm = bool(storms) and now >= storms[0]
            if storm:
                storms.pop(0)
                sim.rec.tally.counts["storm_drops"] += 1
            else:
                next_reconnect = now + rng.expovariate(1 / s.reconnect_every)
            await sim.close()
            if storm and s.storm_spread > 0:
                # Those back first publish while the others are away, so rejoining
                # with ``since`` has something to replay.
                await asyncio.sleep(rng.uniform(0, s.storm_spread))
        if not await _open_until_stop(sim, clock, rng):
            return
