"""Where the client stands in each session, so a reconnect misses nothing and repeats nothing.

After a dropped link the client joins every session again with ``since``, the newest
stored ``(epoch, offset)`` it saw, and the server replays exactly what came after.
That position is kept here, frame by frame: an event moves it on (and one seen
already is dropped), a new ``joined`` snapshot or join reply resets it, and an
ended session is forgotten so it is never rejoined. The events replayed while a
join is waiting for its reply are counted for the ``client.rejoined`` notice, and
:class:`SessionRecovery` says those joins, on each new connection.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from classroom.client.connection import Connection
from classroom.client.errors import ClientError
from classroom.client.replies import PendingReplies
from classroom.client.wire import Frame, join_fields


@dataclass
class SessionPosition:
    """A session to (re)join, the newest stored position seen in it, its last reply."""

    epoch: str | None = None
    offset: int | None = None
    live: bool = False
    reply: Frame | None = None

    def since(self) -> tuple[str, int] | None:
        return None if self.epoch is None or self.offset is None else (self.epoch, self.offset)

    def accept_join(self, reply: Frame) -> None:
        """A join (or rejoin) was answered: a new epoch starts over at the reply's offset,
        the same one only moves forward; the session is live from now on."""
        if reply.get("epoch") != self.epoch:
            self.epoch, self.offset = reply.get("epoch"), reply.get("offset")
        elif (self.offset or 0) < reply.get("offset", 0):
            self.offset = reply["offset"]
        self.live, self.reply = True, reply


class SessionBook:
    """Every session the client is in, or joining, by name."""

    def __init__(self) -> None:
        self._positions: dict[str, SessionPosition] = {}
        self._replayed: dict[str, int] = {}  # session -> events replayed so far in its join

    def enter(self, session: str) -> SessionPosition:
        """The position of ``session``, a fresh one if the client is not in it yet."""
        return self._positions.setdefault(session, SessionPosition())

    def get(self, session: str) -> SessionPosition | None:
        return self._positions.get(session)

    def __getitem__(self, session: str) -> SessionPosition:
        return self._positions[session]

    def forget(self, session: str) -> None:
        """Stop rejoining ``session`` (left, ended, or no longer granted)."""
        self._positions.pop(session, None)

    def snapshot(self) -> list[tuple[str, SessionPosition]]:
        """The sessions as they are now, safe to walk while one is forgotten."""
        return list(self._positions.items())

    def position(self, session: str) -> tuple[str, int] | None:
        """The newest stored ``(epoch, offset)`` seen in ``session``."""
        entry = self._positions.get(session)
        return None if entry is None else entry.since()

    def start_replay_count(self, session: str) -> None:
        """A join of ``session`` is sent: count the events replayed until its reply."""
        self._replayed[session] = 0

    def stop_replay_count(self, session: str) -> int:
        """The join's reply came (or never will): how many events were replayed."""
        return self._replayed.pop(session, 0)

    def track(self, frame: Frame) -> bool:
        """Follow a push's effect on the positions; False when it is an event seen
        already, which the client then drops."""
        kind = frame.get("type")
        session = str(frame.get("session"))
        entry = self._positions.get(session)
        if kind == "event" and isinstance(frame.get("offset"), int) and entry is not None:
            if entry.epoch == frame.get("epoch") and (entry.offset or 0) >= frame["offset"]:
                return False  # seen already: belt and braces, the server sends each once
            entry.epoch, entry.offset = frame.get("epoch"), frame["offset"]
        if kind == "event" and session in self._replayed:
            self._replayed[session] += 1
        if kind == "event" and (frame.get("event") or {}).get("kind") == "session.ended":
            self._positions.pop(session, None)  # never rejoin an ended session
        elif kind == "joined" and entry is not None:
            # A refreshed token changed how this user sees the session: a new snapshot.
            entry.epoch, entry.offset, entry.reply = (frame.get("epoch"), frame.get("offset"),
                                                      frame)
        return True


class SessionRecovery:
    """Says ``join`` with ``since`` for the sessions of a :class:`SessionBook`, and
    tells the application what a rejoin recovered or why a session was dropped."""

    def __init__(self, book: SessionBook, replies: PendingReplies,
                 emit: Callable[[Frame], None]) -> None:
        self._book = book
        self._replies = replies
        self._emit = emit

    async def join_on(self, conn: Connection, session: str, *, rejoin: bool) -> Frame:
        """Join ``session`` on ``conn`` from the newest position seen in it; a rejoin is
        told as ``client.rejoined`` with how many events the server replayed."""
        entry = self._book[session]
        self._book.start_replay_count(session)
        try:
            reply = await self._replies.request(conn, "join",
                                                join_fields(session, entry.since()))
        finally:
            replayed = self._book.stop_replay_count(session)
        entry.accept_join(reply)
        if rejoin:
            self._emit({"type": "client.rejoined", "session": session,
                        "recovered": bool(reply.get("recovered")), "replayed": replayed,
                        "reply": reply})
        return reply

    async def rejoin_all(self, conn: Connection) -> None:
        """Join every live session again with ``since``. One that is gone (ended, no
        longer granted) is dropped and told as ``client.error``; a refusal that may pass
        (``unavailable``) raises, so the whole connection is tried again later."""
        for name, entry in self._book.snapshot():
            if not entry.live or self._book.get(name) is not entry:
                continue  # not joined yet, or left meanwhile (while another was rejoined)
            try:
                await self.join_on(conn, name, rejoin=True)
            except ClientError as exc:
                if exc.retryable:
                    raise
                self._book.forget(name)
                self._emit({"type": "client.error", "session": name, "code": exc.code,
                            "message": exc.message})
