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
    """Collects progress reports per session and flushes them at most once per interval."""

    def __init__(self, interval: float, flush: PushBuilder) -> None:
        self._interval = interval
        self._flush = flush
        self._pending: dict[str, dict[str, tuple[dict[str, Any], dict[str, Any]]]] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._last: dict[str, float] = {}

    def report(self, channel: str, participant: dict[str, Any], progress: dict[str, Any]) -> None:
        """Note a student's latest report; schedule the session's next push."""
        self._pending.setdefault(channel, {})[participant["pid"]] = (participant, progress)
        if channel in self._timers:
            return
        loop = asyncio.get_running_loop()
        wait = max(0.0, self._last.get(channel, 0.0) + self._interval - loop.time())
        self._timers[channel] = loop.call_later(wait, self._send, channel)

    def _send(self, channel: str) -> None:
        self._timers.pop(channel, None)
        pending = self._pending.pop(channel, {})
        self._last[channel] = asyncio.get_running_loop().time()
        if pending:
            self._flush(channel, list(pending.values()))

    def forget(self, channel: str) -> None:
        """Drop what is pending for a session (it ended, or nobody is left to tell)."""
        timer = self._timers.pop(channel, None)
        if timer is not None:
            timer.cancel()
        self._pending.pop(channel, None)
        self._last.pop(channel, None)

    def close(self) -> None:
        """Cancel every scheduled push."""
        for channel in list(self._timers):
            self.forget(channel)
