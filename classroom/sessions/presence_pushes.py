"""Presence pushes: per person, at once, to old clients; one diff a window to the others.

A join or leave reaches every node through the broker and comes here from the
fan-out. Members that did not announce ``presence.diff`` get ``presence.join`` /
``presence.leave`` as before; the others get, at the end of the session's window
(:mod:`classroom.sessions.presence_window`), one ``presence.diff`` with every
change of the window, rendered per view like the per-person frames (students
see names, trainers students' contact data, observers pids). Where the tenant
shows students only counts (``presence_counts_only_above``) and the room is
above it, students get ``presence.count`` instead, and old student clients
nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from classroom.domain.channel import Channel
from classroom.domain.views import View, counts_only, render_participant
from classroom.metrics import Metrics
from classroom.sessions.hub import Hub
from classroom.sessions.presence import PresenceViews
from classroom.sessions.presence_window import Change, PresenceWindow

log = logging.getLogger("classroom.sessions.presence_pushes")

Frame = dict[str, Any]


@dataclass(kw_only=True, eq=False)
class PresencePushes:
    """Turns this node's view of joins and leaves into frames for the hub's members."""

    hub: Hub
    views: PresenceViews
    metrics: Metrics
    window: float
    counts_only_above: Callable[[str], int | None]
    """The threshold of a channel's tenant (``presence_counts_only_above``), or None."""
    windows: PresenceWindow = field(init=False)

    def __post_init__(self) -> None:
        self.windows = PresenceWindow(self.window, self._flush)

    def change(self, name: str, kind: str, subject: dict[str, Any]) -> None:
        """A user joined or left ``name`` (on any node): tell this node's members."""
        self.views.adjust_count(name, 1 if kind == "presence.join" else -1)
        if self.hub.count(name) > self.hub.diff_count(name):
            self._per_person(name, kind, subject)
        if self.hub.diff_count(name):
            self.windows.note(name, kind, subject)

    def _per_person(self, name: str, kind: str, subject: dict[str, Any]) -> None:
        """The frames of old clients: one per change, not to the user it is about."""
        session = Channel.parse(name).session
        hidden = counts_only("student", self.views.known_count(name), self.counts_only_above(name))

        def build(view: View, self_pid: str | None) -> Frame | None:
            if hidden and view == "student":
                return None  # an old client cannot read counts: it can ask ``presence``
            shown = render_participant(subject, view, self_pid)
            return {"type": kind, "session": session, "participant": shown}

        sent = self.hub.deliver(name, 0, build, skip_pid=subject["pid"], diffs=False)
        self.metrics.frames_out.labels(kind).inc(sent)

    async def _flush(self, name: str, changes: list[Change]) -> None:
        """One frame per member for a window's changes: a diff, or a student's count."""
        threshold = self.counts_only_above(name)
        present = 0
        if threshold is not None:
            try:
                present = await self.views.count(name)
            except Exception:  # unreachable store: judge by what this node last knew
                log.warning("presence count failed", extra={"session": name}, exc_info=True)
                present = self.views.known_count(name)
        hidden = counts_only("student", present, threshold)
        session = Channel.parse(name).session
        joined = [p for kind, p in changes if kind == "presence.join"]
        left = [p for kind, p in changes if kind == "presence.leave"]
        personal = frozenset(str(p.get("pid")) for _, p in changes)

        def build_diff(view: View, self_pid: str | None) -> Frame | None:
            if hidden and view == "student":
                return None
            shown_joined = [render_participant(p, view, None) for p in joined
                            if p.get("pid") != self_pid]
            shown_left = [render_participant(p, view, None) for p in left
                          if p.get("pid") != self_pid]
            if not shown_joined and not shown_left:
                return None  # the window held only the recipient's own coming and going
            return {"type": "presence.diff", "session": session,
                    "joined": shown_joined, "left": shown_left}

        sent = self.hub.deliver(name, 0, build_diff, personal=personal, diffs=True)
        self.metrics.frames_out.labels("presence.diff").inc(sent)
        if hidden:
            count = {"type": "presence.count", "session": session, "count": present}

            def build_count(view: View, self_pid: str | None) -> Frame | None:
                return count if view == "student" else None

            sent = self.hub.deliver(name, 0, build_count, diffs=True)
            self.metrics.frames_out.labels("presence.count").inc(sent)

    def forget(self, name: str) -> None:
        """The session ended: nothing pending of it is sent."""
        self.windows.forget(name)

    def close(self) -> None:
        """Stop every window (the node is closing)."""
        self.windows.close()
