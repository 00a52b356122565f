"""How a connection closes, and what it gives back when it has: the cold half of its life.

A close can be asked from many places (the client's commands, a session's end,
a slow reader, the registry, an expired token) and must still happen in one
order: what is queued goes out, then the close frame; the reader stops; the
sessions are left; the writer task is waited for; the references back to the
connection are dropped so it is freed without a garbage collection. Kept here,
apart from the reading and writing of frames, so that order can be read in one
place.

Like :class:`~classroom.edge.socket_writer.SocketWriter`, it is a base class of
:class:`~classroom.edge.connection.Connection` (no object of its own per
connection); the state it uses is set by ``Connection.__init__``.
"""

from __future__ import annotations

import asyncio
import logging

from classroom.edge.socket_writer import SocketWriter
from classroom.handlers.services import Services
from classroom.protocol.close_codes import CLOSE_NORMAL, CLOSE_SLOW
from classroom.sessions.hub import Membership

# The connection's logger: these records are the connection's, wherever its code sits.
log = logging.getLogger("classroom.edge.connection")


class Closing(SocketWriter):
    """Asks for a connection's close, and tears it down once it has closed."""

    client_id: str
    memberships: dict[str, Membership]
    _services: Services
    _reader: asyncio.Task[None] | None
    """The task serving the connection (``Connection.run``), cancelled to stop reading."""
    _receiving: bool
    """The reader waits for a frame: a close cancels it there, never mid-command."""
    _tasks: set[asyncio.Task[None]]
    """Sessions being left after they ended, held until done."""
    _dispatching: bool
    """A command is being handled: a close it causes waits for its reply."""
    _close_after_command: tuple[int, str] | None
    """The close to ask once the command in flight has replied."""

    @property
    def closing(self) -> bool:
        """Whether the connection is closing: nothing more will be written to it."""
        return self._close_request is not None or self._send_queue.closed

    def request_close(self, code: int, reason: str, *, urgent: bool = False) -> None:
        """Close after what is queued (or at once when ``urgent``); stop reading."""
        if self._close_request is not None:
            return
        self._close_request = (code, reason)
        if urgent:
            self._send_queue.clear()
            self._send_queue.closed = True
            if self._writer is not None:
                self._writer.cancel()
            self._writer = asyncio.create_task(self._send_close())
        else:
            self._send_queue.finish()
            if self._writer is None:
                self._writer = asyncio.create_task(self._write_pending())
        if self._receiving and self._reader is not None:
            self._reader.cancel()

    def session_ended(self, session: str) -> None:
        """The session ended: leave it, and close normally when nothing else is joined."""
        membership = self.memberships.pop(session, None)
        if membership is None:
            return
        task = asyncio.create_task(self._end(membership))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _end(self, membership: Membership) -> None:
        try:
            await self._services.node.joins.leave(membership)
        finally:
            if not self.memberships:
                if self._dispatching:  # let the command in flight (session.end) reply first
                    self._close_after_command = (CLOSE_NORMAL, "session ended")
                else:
                    self.request_close(CLOSE_NORMAL, "session ended")

    def _too_slow(self) -> None:
        self._metrics.slow_disconnects.inc()
        log.info("slow client closed", extra={"client": self.client_id})
        self.request_close(CLOSE_SLOW, "client too slow", urgent=True)

    # -- once closed ------------------------------------------------------------------

    async def _leave_all(self) -> None:
        memberships, self.memberships = list(self.memberships.values()), {}
        for membership in memberships:
            try:
                await self._services.node.joins.leave(membership)
            except Exception:
                log.exception("leave failed", extra={"pid": membership.pid})

    async def _finish_writer(self) -> None:
        if self._close_request is None:
            self._send_queue.closed = True
            if self._writer is not None:
                self._writer.cancel()
        while self._writer is not None:
            writer = self._writer
            try:
                await asyncio.wait_for(asyncio.shield(writer), self._settings.close_timeout * 2)
            except (TimeoutError, asyncio.CancelledError):
                writer.cancel()
            except Exception:
                log.exception("writer failed", extra={"client": self.client_id})
            if writer is self._writer:
                break

    def _release(self) -> None:
        """Drop what refers back to this connection, so it is freed when its task ends.

        Left in place, these cycles (the queue's overflow callback, the protocol's write
        methods) keep every closed connection alive until a full garbage collection:
        after a reconnect storm, thousands of them, freed in one pause of most of a
        second while every other member waits for its events.
        """
        self._send_queue.release()
        self._write_now = self._writable = None
