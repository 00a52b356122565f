"""Progress pushes to trainers, coalesced per session.

However many students report, trainers get at most one ``progress`` frame per
interval, carrying the latest report of every student that changed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

PushBuilder = Callable[[str, list[tuple[dict[str, Any], dict[str, Any]]]], None]


class ProgressCoalescer:
    """Collects progress reports per session and flushes them at most once per interval.

    A session is in ``_timers`` while a push is due or its interval since the last push
    runs; when that interval ends with nothing new, the session leaves every map here.
    (A map of last push times, kept until the session ended, grew by one entry for each
    session that was left without ``session.end``: the soak test found it.)
    """

    def __init__(self, interval: float, flush: PushBuilder) -> None:
        self._interval = interval
        self._flush = flush
        self._pending: dict[str, dict[str, tuple[dict[str, Any], dict[str, Any]]]] = {}
        self._timers: dict[str, asyncio.Handle] = {}  # call_soon, then call_later

    def report(self, channel: str, participant: dict[str, Any], progress: dict[str, Any]) -> None:
        """Note a student's latest report; push at once unless a push was made within the
        interval (then at its end, with every report since)."""
        self._pending.setdefault(channel, {})[participant["pid"]] = (participant, progress)
        if channel in self._timers:
            return
        self._timers[channel] = asyncio.get_running_loop().call_soon(self._send, channel)

    def _send(self, channel: str) -> None:
        """Push what is pending and start the interval; with nothing pending, forget the
        session."""
        self._timers.pop(channel, None)
        pending = self._pending.pop(channel, None)
        if not pending:
            return
        loop = asyncio.get_running_loop()
        self._timers[channel] = loop.call_later(self._interval, self._send, channel)
        self._flush(channel, list(pending.values()))

    def forget(self, channel: str) -> None:
        """Drop what is pending for a session (it ended, or nobody is left to tell)."""
        timer = self._timers.pop(channel, None)
        if timer is not None:
            timer.cancel()
        self._pending.pop(channel, None)

    def close(self) -> None:
        """Cancel every scheduled push."""
        for channel in list(self._timers):
            self.forget(channel)
