"""Delivering pushes to the application: listeners by frame type, and a bounded queue.

An application either registers listeners or iterates every push, or both; the two
are fed from here in the same order. The queue is bounded and drops its oldest
frame when full, so a client used only through listeners does not grow without
end, and a listener's bug is logged rather than allowed to stop the reading.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from classroom.client.wire import Frame

log = logging.getLogger("classroom.client")

Listener = Callable[[Frame], None]


class PushDelivery:
    """Listeners by push type, and the last ``buffer`` pushes for whoever iterates them."""

    def __init__(self, buffer: int) -> None:
        self._listeners: dict[str, list[Listener]] = {}
        self._queue: asyncio.Queue[Frame] = asyncio.Queue(maxsize=max(1, buffer))

    def on(self, kind: str, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` with every push of ``kind``; returns "off"."""
        self._listeners.setdefault(kind, []).append(listener)

        def off() -> None:
            with contextlib.suppress(ValueError):
                self._listeners.get(kind, []).remove(listener)

        return off

    def deliver(self, frame: Frame) -> None:
        """Queue ``frame`` (the oldest goes when full) and call its type's listeners."""
        if self._queue.full():
            self._queue.get_nowait()
        self._queue.put_nowait(frame)
        for listener in list(self._listeners.get(str(frame.get("type")), ())):
            try:
                listener(frame)
            except Exception:
                # An application's bug must not stop the reading (and the protocol).
                log.exception("a %s listener failed", frame.get("type"))

    def is_empty(self) -> bool:
        """Whether every queued push has been taken."""
        return self._queue.empty()

    async def take(self) -> Frame:
        """The oldest queued push, waiting for one if there is none."""
        return await self._queue.get()
