"""Poll tallies gathered over a short window for the members that asked for it.

Every answer to a poll is told to every member: trainers get ``poll.answer``
(who answered what), everyone else ``poll.tally`` (the counts). In a room of n
where most answer within seconds that is n² frames, as presence was: a lecture
of 500 makes some 40,000 tallies a second. A connection that announced
``poll.tally.coalesced`` gets one ``poll.tally`` per session per window instead:
the tally after the window's last answer, at that answer's offset, with
``coalesced_from`` naming the first answer it stands for.

Offsets stay in order: a held tally goes out before any other stored event of
its session reaches the members (:meth:`TallyWindow.flush` is called first), so
the answers a tally stands for are exactly the offsets from ``coalesced_from`` to
its own. Trainers are not held: their ``poll.answer`` frames say who answered.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from classroom.backends.broker import Publication
from classroom.domain.views import View, referenced_pids
from classroom.metrics import Metrics
from classroom.protocol.frames import event_frame
from classroom.sessions.hub import Hub


@dataclass
class _Held:
    """The latest answer of a window, and the first offset the window stands for."""

    session: str
    first: int
    pub: Publication
    record: dict[str, Any]
    timer: asyncio.TimerHandle


class TallyWindow:
    """Holds each session's latest tally for the members that take coalesced tallies."""

    def __init__(self, hub: Hub, metrics: Metrics, window: float) -> None:
        self._hub = hub
        self._metrics = metrics
        self._window = window
        self._held: dict[str, _Held] = {}

    def hold(self, channel: str, session: str, pub: Publication, record: dict[str, Any]) -> None:
        """An answer: its tally replaces the one held, sent when the window ends."""
        held = self._held.get(channel)
        if held is None:
            timer = asyncio.get_running_loop().call_later(self._window, self.flush, channel)
            self._held[channel] = _Held(session, pub.offset, pub, record, timer)
        else:
            held.pub, held.record = pub, record

    def flush(self, channel: str) -> None:
        """Send the held tally now (the window ended, or another event is about to go)."""
        held = self._held.pop(channel, None)
        if held is None:
            return
        held.timer.cancel()
        pub, record, first = held.pub, held.record, held.first

        def build(view: View, self_pid: str | None) -> dict[str, Any] | None:
            frame = event_frame(held.session, pub.offset, pub.epoch, record, view, self_pid)
            if frame is not None and first < pub.offset:
                frame["coalesced_from"] = first
            return frame

        # Trainers had every answer; a member whose ``joined`` state stands at or past this
        # offset has the tally already (the hub leaves both out).
        sent = self._hub.deliver(channel, pub.offset, build, referenced_pids(record), held=True)
        if sent:
            self._metrics.frames_out.labels("event").inc(sent)

    def forget(self, channel: str) -> None:
        """Drop a session's held tally without sending it (the session ended here)."""
        held = self._held.pop(channel, None)
        if held is not None:
            held.timer.cancel()

    def close(self) -> None:
        """Stop every window (the node is stopping)."""
        for channel in list(self._held):
            self.forget(channel)
