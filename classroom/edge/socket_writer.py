"""How a connection's queued frames reach its socket: direct writes, else a writer task.

Kept apart from the connection's reading and command handling because it is the
other half of every delivered frame: the fan-out queues (``Connection.enqueue``),
and this writes. The :class:`~classroom.edge.write_batching.WriteBatcher` calls
:meth:`SocketWriter.flush` once per loop iteration, which writes straight to the
transport; only a socket that pushes back (or a server without direct writes)
gets a writer task, until it has caught up. The close frame is written last, by
the same path, so it never overtakes the frames queued before it.

It is a base class of :class:`~classroom.edge.connection.Connection`, not an
object of its own: a method found on a base class costs the same to call as one
on the class itself, and thousands of connections pay for no extra object each.
The state it uses is set by ``Connection.__init__``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from starlette.types import Send

from classroom.config import Settings
from classroom.edge.send_queue import SendQueue
from classroom.edge.server import FRAMES_EXTENSION
from classroom.metrics import Metrics
from classroom.protocol.close_codes import CLOSE_NORMAL
from classroom.protocol.codec import Payload


class SocketWriter:
    """Writes one connection's send queue to its socket, then its close frame if asked."""

    _send: Send
    _settings: Settings
    _metrics: Metrics
    _send_queue: SendQueue
    _flush_marked: bool
    """The batcher will flush this connection this iteration."""
    _batched: bool
    """The server takes a list of frames in one ASGI message (:data:`FRAMES_EXTENSION`)."""
    _write_now: Callable[[list[Payload]], None] | None
    """The protocol's direct write, when the server offers one."""
    _writable: Callable[[], bool] | None
    """Whether the socket takes more without pushing back, when the server offers it."""
    _writer: asyncio.Task[None] | None
    """The writer task: only while the socket pushes back, or while closing."""
    _close_request: tuple[int, str] | None
    """The close code and reason written after the queued frames, once a close is asked."""

    def flush(self) -> int:
        """Write what is queued now, in one write per batch (the batcher calls this).

        Hands over to a writer task when one is already busy, when the socket
        pushes back, or when the server offers no direct write; returns the
        frames written here.
        """
        self._flush_marked = False
        outbox = self._send_queue
        if self._writer is not None or not outbox:
            return 0  # a writer task is draining (or closing): it takes these too
        write_now, writable = self._write_now, self._writable
        if outbox.closed:
            outbox.clear()
            return 0
        if write_now is None or writable is None:
            self._writer = asyncio.create_task(self._write_pending())
            return 0
        written = 0
        while outbox:
            if not writable():
                self._writer = asyncio.create_task(self._write_pending())
                break
            frames = outbox.take()
            try:
                write_now(frames)
            except (OSError, RuntimeError):  # the client is gone; the reader will notice
                outbox.clear()
                outbox.closed = True
                break
            written += len(frames)
        return written

    async def _write_pending(self) -> None:
        """Write until the outbox is empty, waiting on the socket; then close if asked.

        Runs only while needed: the connection is back on direct writes once it
        has caught up.
        """
        send, outbox, batched = self._send, self._send_queue, self._batched
        try:
            while frames := outbox.take():
                if batched:
                    await send({"type": FRAMES_EXTENSION, "frames": frames})
                else:
                    for payload in frames:
                        if isinstance(payload, str):
                            await send({"type": "websocket.send", "text": payload})
                        else:
                            await send({"type": "websocket.send", "bytes": payload})
                self._metrics.frames_written.inc(len(frames))
        except (OSError, RuntimeError):
            outbox.clear()
            outbox.closed = True
            return
        if not outbox.finishing:
            if self._writer is asyncio.current_task():
                self._writer = None  # caught up: the batcher writes directly again
            return
        await self._send_close()

    async def _send_close(self) -> None:
        code, reason = self._close_request or (CLOSE_NORMAL, "")
        with contextlib.suppress(OSError, RuntimeError, TimeoutError):
            await asyncio.wait_for(
                self._send({"type": "websocket.close", "code": code, "reason": reason}),
                self._settings.close_timeout,
            )
