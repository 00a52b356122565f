"""Fan-out: one publication to this node's members of its session, as each may see them.

Every publication of a subscribed channel reaches :meth:`FanOut.deliver` in
offset order (through :class:`~classroom.sessions.streams.SessionStreams`, after
the live state applied it). Events are rendered once per (view, self) and
encoded once per wire format by the hub; progress reports become coalesced
pushes to trainers, and joins and leaves go to the presence pushes
(:mod:`classroom.sessions.presence_pushes`). The control channels never get
here: the node routes them to its control feed before the session streams.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from classroom.backends.broker import Publication
from classroom.domain.channel import Channel
from classroom.domain.views import View, referenced_pids, render_participant
from classroom.metrics import Metrics
from classroom.protocol.frames import event_frame
from classroom.sessions.hub import Hub
from classroom.sessions.presence_pushes import PresencePushes
from classroom.sessions.progress import ProgressCoalescer
from classroom.sessions.streams import SessionStreams
from classroom.sessions.tally_window import TallyWindow


class WriteClock(Protocol):
    """Times the fan-out to the socket write, and writes (the edge's write batcher)."""

    def published(self, at: float) -> None:
        """An event published at ``at`` (wall clock) was queued to members just now."""

    def write_now(self) -> None:
        """Write what the fan-out queued so far now, not at the end of the loop iteration."""


@dataclass(kw_only=True, eq=False)
class FanOut:
    """Turns publications into frames for the hub's members."""

    hub: Hub
    streams: SessionStreams
    metrics: Metrics
    progress_interval: float
    write_clock: WriteClock | None = None
    presence: PresencePushes | None = None
    """Where joins and leaves go (set by the node)."""
    tallies: TallyWindow | None = None
    """Where the tallies of members taking coalesced ones wait for their window (set by
    the node)."""
    coalescer: ProgressCoalescer = field(init=False)

    def __post_init__(self) -> None:
        self.coalescer = ProgressCoalescer(self.progress_interval, self._push_progress)

    def deliver(self, name: str, pub: Publication, message: dict[str, Any]) -> None:
        """Fan one publication out to the channel's local members, as each may see them."""
        started = time.perf_counter()
        kind = message.get("t")
        session = Channel.parse(name).session
        metrics = self.metrics
        if kind == "event":
            record = message["record"]
            tallies = self.tallies
            hold = False
            if tallies is not None and pub.offset:
                if record.get("kind") == "poll.answer" and not record.get("erased"):
                    hold = True
                else:
                    tallies.flush(name)  # the held tally's offset comes first
            if record.get("kind") == "progress":
                progress = {k: record[k] for k in ("screen", "completed", "score", "at")
                            if k in record}
                self.coalescer.report(name, record["by"], progress)

            def build(view: View, self_pid: str | None) -> dict[str, Any] | None:
                return event_frame(session, pub.offset, pub.epoch, record, view, self_pid)

            sent = self.hub.deliver(name, pub.offset, build, referenced_pids(record),
                                    held=False if hold else None)
            if hold and tallies is not None:
                tallies.hold(name, session, pub, record)
            metrics.frames_out.labels("event").inc(sent)
            published_at = record.get("at")
            if sent and isinstance(published_at, float) and self.write_clock is not None:
                self.write_clock.published(published_at)
            if record.get("kind") == "session.ended":
                self._session_ended(name)
        elif kind in ("presence.join", "presence.leave") and self.presence is not None:
            self.presence.change(name, kind, message["participant"])
        metrics.fanout_seconds.observe(time.perf_counter() - started)

    def _session_ended(self, name: str) -> None:
        """Close this node's members of an ended session; keep no live state for it."""
        self.coalescer.forget(name)
        if self.tallies is not None:
            self.tallies.forget(name)
        if self.presence is not None:
            self.presence.forget(name)
        for membership in self.hub.members(name):
            membership.peer.session_ended(membership.session)
        self.streams.runtime(name).ended = True

    def _push_progress(
        self, name: str, reports: list[tuple[dict[str, Any], dict[str, Any]]]
    ) -> None:
        """Send trainers one coalesced ``progress`` frame for the reports since the last."""
        session = Channel.parse(name).session

        def build(view: View, self_pid: str | None) -> dict[str, Any] | None:
            if view != "trainer":
                return None
            rows = [{"participant": render_participant(p, view, self_pid), "progress": data}
                    for p, data in reports]
            return {"type": "progress", "session": session, **rows[-1], "rows": rows}

        self.metrics.frames_out.labels("progress").inc(self.hub.deliver(name, 0, build))
