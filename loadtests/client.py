"""One simulated user's connection: handshake, join with ``since``, and reading every frame.

Every received frame is counted and, where the publisher stamped its send time
into a string field, timed; stored offsets are checked for gaps and repeats
across reconnects. Frames come straight from the connection's read
(``loadtests/wire.py``), in order, so ``joined`` is handled before any live frame
that follows it and live frames are never mistaken for replays.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from websockets.exceptions import InvalidHandshake

from classroom.client.wire import (
    Encoding,
    connect_fields,
    decode,
    encode_bytes,
    join_fields,
    subprotocol,
)
from loadtests.plan import User, WorkerPlan
from loadtests.stats import Tally
from loadtests.wire import WireClosedError, WireConnection, connect

Frame = dict[str, Any]
REPLY_TIMEOUT = 15.0
# The string field of each kind that carries the publisher's clock ("text@1732...").
STAMPED_FIELDS = {"chat": "text", "screen.navigate": "screen", "pointer": "screen",
                  "poll.open": "question", "annotation.add": "screen"}
_SAMPLES_PER_CODE = 3
PRESENCE_FRAMES = frozenset({"presence.join", "presence.leave", "presence.diff",
                             "presence.count"})
FIRST_STEADY = "steady 0@"  # the steady publisher's first event (behaviour.Actor._steady)
# A slow reader's receive buffer is fixed small: left to auto-tuning it can grow to
# megabytes while the client still reads, and the server would not feel the stall for
# minutes. Setting it also switches auto-tuning off for that socket.
SLOW_RECEIVE_BUFFER = 16384


def stamp(text: str) -> str:
    """Append the sender's wall clock, which every process on this machine shares."""
    return f"{text}@{time.time():.6f}"


def read_stamp(value: object) -> float | None:
    """The send time appended by :func:`stamp`, or None for a foreign string."""
    if not isinstance(value, str):
        return None
    _, sep, tail = value.rpartition("@")
    if not sep:
        return None
    try:
        return float(tail)
    except ValueError:
        return None


async def _small_window_socket(url: str) -> socket.socket:
    """A TCP socket connected to the URL's host with a small, fixed receive buffer."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "wss" else 80)
    loop = asyncio.get_running_loop()
    family, kind, proto, _, address = (
        await loop.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SLOW_RECEIVE_BUFFER)
        sock.setblocking(False)
        await loop.sock_connect(sock, address)
    except OSError:
        sock.close()
        raise
    return sock


class Recorder:
    """The worker's current interval tally, swapped out once a second, plus error samples."""

    def __init__(self) -> None:
        self.tally = Tally()
        self.previous = Tally()  # the last interval handed over
        self.samples: dict[str, list[str]] = {}

    def swap(self) -> Tally:
        """Hand over the interval so far and start a new one."""
        tally, self.tally = self.tally, Tally()
        self.previous = tally
        return tally

    def error(self, code: str, message: object = None, command: str | None = None) -> None:
        """Count an error and keep its first few distinct messages for the report."""
        self.tally.errors[code] += 1
        seen = self.samples.setdefault(code, [])
        text = f"{command or '-'}: {message}" if message is not None else (command or "-")
        if len(seen) < _SAMPLES_PER_CODE and text not in seen:
            seen.append(text[:200])

    def came_online(self, first: bool, began: float, down_since: float | None = None) -> None:
        """Count a successful connect (or reconnect) that began at ``began`` and time it;
        for a reconnect, also the downtime since ``down_since``."""
        done = time.time()
        tally = self.tally  # fetched now: the interval tally is swapped each second
        if first:
            tally.counts["connects"] += 1
            tally.connect.add(done - began)
        else:
            tally.counts["reconnects"] += 1
            tally.reconnect.add(done - began)
            if down_since is not None:
                tally.downtime.add(done - down_since)

    def latency(self, kind: str, sent: float, at: object, now: float) -> None:
        """Record publish-to-delivery time, and its two legs around the server's ``at``.

        Progress pushes are held back by the server on purpose (it coalesces them), so
        they are timed per kind but kept out of the overall figures.
        """
        tally = self.tally
        delay = now - sent
        tally.kind(kind).add(delay)
        if kind == "progress":
            return
        tally.latency.add(delay)
        if isinstance(at, (int, float)):  # the tuple form: cheaper per frame than a union
            tally.publish_leg.add(at - sent)
            tally.delivery_leg.add(now - at)


class SimUser:
    """A user that may connect many times; its stream position survives reconnects."""

    def __init__(self, user: User, plan: WorkerPlan, recorder: Recorder) -> None:
        self.user = user
        self.plan = plan
        self.rec = recorder
        self.token = plan.token(user)
        # Progress reports take offsets that no client receives live (students never see
        # them; trainers get coalesced pushes without offsets), so an offset jump is a
        # real gap only in a run without progress reports.
        self.complete = plan.scenario.progress_every <= 0
        self.epoch: str | None = None
        self.last = 0  # offset of the last stored frame processed
        self.poll: str | None = None  # the open poll, as far as this user has seen
        # Whether students may point in the session (off until a trainer switches it on).
        self.pointers_on = False
        self.online = False  # connected (and joined, when the run joins)
        self.live = False  # past the ``joined`` reply: frames are live, not replayed
        self.lost = asyncio.Event()  # the current connection ended, for whatever reason
        self.on_poll_open: Callable[[str], None] | None = None
        self._ws: WireConnection | None = None
        self._msgpack = plan.scenario.encoding == "msgpack"
        self._encoding: Encoding = "msgpack" if self._msgpack else "json"
        self._diffs = plan.scenario.presence == "diff"
        self._coalesced_tallies = plan.scenario.tallies == "coalesced"
        self._ids = itertools.count(1)
        self._pending: dict[int, str] = {}
        self._waiters: dict[int, asyncio.Future[Frame | None]] = {}
        self._closing = False
        self._draining = False
        self._sent_since = False
        self._ever_online = False
        self._down_since: float | None = None  # when the last online connection ended

    # -- connecting -------------------------------------------------------------------

    async def open(self) -> bool:
        """Connect and (unless the run is connect-only) join, with ``since`` after a drop."""
        began = time.time()
        try:
            url = self.plan.url_for(self.user)
            sock = await _small_window_socket(url) if self.user.slow else None
            ws = await connect(
                url, self._on_message, on_close=self._ended, sock=sock,
                subprotocols=[subprotocol(self._encoding)],
                open_timeout=REPLY_TIMEOUT,
            )
        except (OSError, InvalidHandshake, TimeoutError) as exc:
            self.rec.error("connect_failed", type(exc).__name__, "open")
            return False
        self._ws, self._closing, self.live = ws, False, False
        self.lost = asyncio.Event()
        features = (*(("presence.diff",) if self._diffs else ()),
                    *(("poll.tally.coalesced",) if self._coalesced_tallies else ()))
        reply = await self.request("connect", **connect_fields(self.token, features))
        if reply is None or reply.get("type") != "connected":
            await self.close()
            return False
        if self.plan.scenario.join:
            since = (self.epoch, self.last) if self.epoch is not None else None
            self._sent_since = since is not None
            reply = await self.request("join", **join_fields(self.user.session, since))
            if reply is None or reply.get("type") != "joined":
                await self.close()
                return False
        self.online = True
        self.rec.came_online(not self._ever_online, began, self._down_since)
        self._ever_online, self._down_since = True, None
        return True

    async def close(self) -> None:
        """Close on purpose (a reconnect, a storm or the end of the run).

        What is read from here on is still counted and checked for gaps, but not timed:
        the user has left, and at a storm's drop these frames wait for the generator's
        own work (each process closes its 2,500 connections at the same instant, a
        100-180 ms stop of its loop), which is not the server's latency.
        """
        ws = self._ws
        self._closing = True
        if self.online:
            self._down_since = time.time()
        self.online = False
        if ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(), 3.0)

    # -- sending ----------------------------------------------------------------------

    async def send(self, kind: str, **fields: Any) -> int | None:
        """Send a command without waiting for its reply; None when not connected."""
        ws = self._ws
        if ws is None or (not self.online and kind not in ("connect", "join")):
            self.rec.tally.counts["skipped_offline"] += 1
            return None
        command_id = next(self._ids)
        frame = {"type": kind, "id": command_id, **fields}
        self._pending[command_id] = kind
        try:
            if self._msgpack:
                ws.send_binary(encode_bytes(frame, "msgpack"))
            else:
                ws.send_text(encode_bytes(frame, "json"))
        except WireClosedError:
            self._pending.pop(command_id, None)
            self.rec.tally.counts["skipped_offline"] += 1
            return None
        self.rec.tally.counts["commands"] += 1
        return command_id

    async def request(self, kind: str, **fields: Any) -> Frame | None:
        """Send a command and wait for its reply; None when the connection goes first."""
        future: asyncio.Future[Frame | None] = asyncio.get_running_loop().create_future()
        command_id = await self.send(kind, **fields)
        if command_id is None:
            return None
        self._waiters[command_id] = future
        try:
            return await asyncio.wait_for(future, REPLY_TIMEOUT)
        except TimeoutError:
            self._waiters.pop(command_id, None)
            self.rec.error("reply_timeout", None, kind)
            return None

    # -- slow readers -------------------------------------------------------------------

    def pause(self) -> None:
        """Stop reading the socket: its small receive buffer fills, then TCP pushes back on
        the server, which must cut this reader off without slowing the others."""
        if self._ws is not None:
            self._ws.pause_reading()

    async def drain(self, timeout: float) -> None:
        """Read again until the server's close shows up (or ``timeout``)."""
        self._draining = True
        if self._ws is not None:
            self._ws.resume_reading()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.lost.wait(), timeout)

    # -- reading ----------------------------------------------------------------------

    def _on_message(self, data: bytes, text: bool) -> None:
        """Decode and handle one frame, called from the connection's read itself."""
        now = time.time()
        try:
            self._on_frame(decode(data, "json" if text else self._encoding), now)
        except Exception as exc:  # noqa: BLE001 - one bad frame must not stop the reading
            self.rec.error("client_bug", repr(exc)[:120], "read")

    def _ended(self, ws: WireConnection) -> None:
        """The connection ended (after its last frame): account for how, wake the waiters."""
        code = ws.close_code if ws.close_code is not None else 1006
        counts = self.rec.tally.counts
        if self._closing:
            pass
        elif self.user.slow and self._draining:
            # The server's 4008 close frame sits behind the very bytes the client did not
            # read, so a stalled reader usually sees the socket drop (1006) instead.
            counts["slow_closed"] += 1
            counts[f"slow_closed_{code}"] += 1
        else:
            self.rec.error(f"close_{code}", ws.close_reason or None, "connection")
        if self._ws is ws:
            if self.online:
                self._down_since = time.time()
            self.online = self.live = False
            counts["unanswered"] += len(self._pending)
            self._pending.clear()
            for future in self._waiters.values():
                if not future.done():
                    future.set_result(None)
            self._waiters.clear()
            self.lost.set()

    @property
    def _times_frames(self) -> bool:
        """Whether what arrives now is timed: live (not replayed), not closing (see
        :meth:`close`), and not a slow reader (whose lateness is its own)."""
        return self.live and not self._closing and not self.user.slow

    def _on_frame(self, frame: Frame, now: float) -> None:
        counts = self.rec.tally.counts
        if self._draining:
            counts["slow_drained"] += 1
            return
        counts["deliveries"] += 1
        if "id" in frame:
            counts["replies"] += 1
            self._on_reply(frame)
            return
        kind = frame.get("type")
        if kind == "event":
            self._on_event(frame, now)
        elif kind == "progress":
            self._on_progress(frame, now)
        elif kind in PRESENCE_FRAMES:
            self._on_presence(kind, frame)
        elif kind == "error":
            self.rec.error(str(frame.get("code")), frame.get("message"), "push")
        elif kind == "disconnect":
            counts[f"disconnect_{frame.get('code')}"] += 1
        counts["pushes"] += 1

    def _on_reply(self, frame: Frame) -> None:
        command_id = frame["id"]
        command = self._pending.pop(command_id, None)
        if frame.get("type") == "error":
            self.rec.error(str(frame.get("code")), frame.get("message"), command)
        elif frame.get("type") == "joined":
            self._on_joined(frame)
        waiter = self._waiters.pop(command_id, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(frame)

    def _on_joined(self, frame: Frame) -> None:
        counts = self.rec.tally.counts
        epoch, offset = frame.get("epoch"), int(frame.get("offset") or 0)
        if self._sent_since:
            counts["rejoins"] += 1
            if frame.get("recovered"):
                counts["recovered"] += 1
                if epoch == self.epoch and offset > self.last:
                    counts["gaps" if self.complete else "skipped_offsets"] += offset - self.last
            else:
                counts["not_recovered"] += 1
        self.epoch, self.last, self.live = epoch, offset, True
        state = frame.get("state") or {}
        poll = state.get("poll")
        self.poll = poll.get("poll") if isinstance(poll, dict) else None
        self.pointers_on = bool((state.get("options") or {}).get("student_pointers"))

    def _on_event(self, frame: Frame, now: float) -> None:
        if "offset" in frame:
            self._on_offset(frame)
        event = frame.get("event") or {}
        kind = event.get("kind")
        if self._times_frames:
            sent = read_stamp(event.get(STAMPED_FIELDS.get(str(kind), "")))
            if sent is not None:
                self.rec.latency(str(kind), sent, event.get("at"), now)
                if kind == "chat" and str(event.get("text")).startswith(FIRST_STEADY):
                    self.rec.tally.kind("first_event").add(now - sent)
        if kind == "poll.open":
            self.poll = event.get("poll")
            if self.live and self.on_poll_open is not None and self.poll:
                self.on_poll_open(self.poll)
        elif kind == "poll.close" and self.poll == event.get("poll"):
            self.poll = None
        elif kind == "session.options" and "student_pointers" in event:
            self.pointers_on = bool(event["student_pointers"])

    def _on_presence(self, kind: str, frame: Frame) -> None:
        """Count presence frames and the joins and leaves they tell of: their ratio is the
        presence frames per join per member (1 with per-person frames)."""
        counts = self.rec.tally.counts
        counts["presence_frames"] += 1
        counts[f"presence_{kind.partition('.')[2]}"] += 1
        if kind == "presence.diff":
            counts["presence_changes"] += len(frame.get("joined") or ()) + len(
                frame.get("left") or ())
        elif kind != "presence.count":
            counts["presence_changes"] += 1

    def _on_progress(self, frame: Frame, now: float) -> None:
        """Time each report in a trainer's progress push (one, or several coalesced)."""
        self._on_offset(frame)
        rows = frame.get("rows")
        if not isinstance(rows, list):
            rows = [frame]
        if not self._times_frames:
            return
        for row in rows:
            progress = row.get("progress") if isinstance(row, dict) else None
            if isinstance(progress, dict):
                sent = read_stamp(progress.get("screen"))
                if sent is not None:
                    self.rec.latency("progress", sent, progress.get("at"), now)

    def _on_offset(self, frame: Frame) -> None:
        """Check a stored frame's offset against the last one processed in this stream."""
        counts = self.rec.tally.counts
        epoch, offset = frame.get("epoch"), frame.get("offset")
        if not isinstance(offset, int):
            return
        if epoch != self.epoch:
            counts["epoch_changes"] += 1
            self.epoch, self.last = epoch, offset
            return
        if offset <= self.last:
            counts["duplicates"] += 1
            return
        # A coalesced poll.tally stands for the answers from ``coalesced_from`` on: those
        # offsets are told, not missing (the first may be one this client had already).
        first = frame.get("coalesced_from")
        if isinstance(first, int) and first <= offset:
            counts["coalesced"] += offset - max(first, self.last + 1)
        else:
            first = offset
        if first > self.last + 1:
            counts["gaps" if self.complete else "skipped_offsets"] += first - self.last - 1
        if not self.live:
            counts["replayed"] += 1
        self.last = offset
