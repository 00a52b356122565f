"""Joins and leaves of a session gathered over a short window, then handed over once.

A lecture of 500 joining at once used to cost a ``presence.join`` per person per
member already there (n²/2 frames, and the first second of events stalled
behind them); a window turns that into one frame per member per window. The
window starts at the first change after a quiet period and ends ``window``
seconds later, so presence is at most one window late. Within a window each pid
keeps only its last change, in the order of that change.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Coroutine
from typing import Any

log = logging.getLogger("classroom.sessions.presence_window")

Change = tuple[str, dict[str, Any]]
"""``("presence.join" | "presence.leave", participant record)``."""
Flush = Callable[[str, list[Change]], Coroutine[Any, Any, None]]


class PresenceWindow:
    """Collects presence changes per channel and flushes each channel at most once a window.

    A channel is in ``_timers`` while its window runs, in ``_flushing`` while its flush
    runs (a flush may ask the presence store for a count); changes that arrive during
    a flush open the next window when it is done, so flushes of one channel never
    overlap and their frames keep their order. A channel with nothing pending leaves
    every map here (nothing is kept per session that was left without ending).
    """

    def __init__(self, window: float, flush: Flush) -> None:
        self._window = window
        self._flush = flush
        self._pending: dict[str, dict[str, Change]] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._flushing: dict[str, asyncio.Task[None]] = {}

    def note(self, channel: str, kind: str, participant: dict[str, Any]) -> None:
        """Remember a join or leave; the channel's window flushes it with the others."""
        changes = self._pending.setdefault(channel, {})
        pid = str(participant.get("pid"))
        changes.pop(pid, None)  # the last change counts, in the order it happened
        changes[pid] = (kind, participant)
        self._arm(channel)

    def _arm(self, channel: str) -> None:
        if channel in self._timers or channel in self._flushing:
            return
        loop = asyncio.get_running_loop()
        self._timers[channel] = loop.call_later(self._window, self._fire, channel)

    def _fire(self, channel: str) -> None:
        self._timers.pop(channel, None)
        changes = self._pending.pop(channel, None)
        if not changes:
            return
        task = asyncio.create_task(self._flush(channel, list(changes.values())))
        self._flushing[channel] = task
        task.add_done_callback(functools.partial(self._flushed, channel))

    def _flushed(self, channel: str, task: asyncio.Task[None]) -> None:
        if self._flushing.get(channel) is task:
            del self._flushing[channel]
        if not task.cancelled() and task.exception() is not None:
            log.warning("presence diff failed", extra={"session": channel},
                        exc_info=task.exception())
        if channel in self._pending:
            self._arm(channel)

    def forget(self, channel: str) -> None:
        """Drop what is pending for a session (it ended); a flush under way finishes."""
        timer = self._timers.pop(channel, None)
        if timer is not None:
            timer.cancel()
        self._pending.pop(channel, None)

    def waiting(self) -> int:
        """Sessions with a window open or a flush under way (the soak's census)."""
        return len(self._timers) + len(self._flushing)

    def close(self) -> None:
        """Cancel every window and flush."""
        for channel in list(self._timers):
            self.forget(channel)
        for task in list(self._flushing.values()):
            task.cancel()
