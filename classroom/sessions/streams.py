"""Per-session streams on this node: the live state, kept in offset order, gaps repaired.

Every stored publication of a subscribed session passes through here before it
is fanned out. A publication that does not follow the last applied offset (the
broker connection dropped, the node subscribed late, storage lost the stream)
starts a catch-up from history; publications arriving meanwhile wait, so the
state and the members see every event once, in offset order (the way
centrifuge's recovery merges history with the live tail).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from classroom.backends.broker import Broker, Publication, StreamPosition
from classroom.domain.state import SessionState
from classroom.sessions.messages import unpack_internal

log = logging.getLogger("classroom.sessions.streams")

Deliver = Callable[[str, Publication, dict[str, Any]], None]


@dataclass
class SessionRuntime:
    """This node's view of one session stream: state, epoch and catch-up bookkeeping."""

    state: SessionState = field(default_factory=SessionState)
    epoch: str = ""
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    syncing: asyncio.Task[None] | None = None
    pending: list[Publication] = field(default_factory=list)
    applied: asyncio.Event = field(default_factory=asyncio.Event)
    ended: bool = False

    def follow(self, epoch: str) -> None:
        """Adopt a new stream epoch: offsets restart, the live state carries on."""
        if epoch != self.epoch:
            self.epoch = epoch
            self.state.offset = 0


class SessionStreams:
    """The runtimes of every session this node has served, fed by the broker."""

    def __init__(self, broker: Broker, deliver: Deliver | None = None) -> None:
        self._broker = broker
        self.deliver: Deliver = deliver or _drop
        """Where applied publications go next (the node's fan-out)."""
        self._runtimes: dict[str, SessionRuntime] = {}

    def runtime(self, channel: str) -> SessionRuntime:
        """The channel's runtime, created empty on first use."""
        runtime = self._runtimes.get(channel)
        if runtime is None:
            runtime = self._runtimes[channel] = SessionRuntime()
        return runtime

    def channels(self) -> list[str]:
        """Every channel this node keeps a runtime for."""
        return list(self._runtimes)

    def drop(self, channel: str) -> None:
        """Forget a channel's runtime (its session ended and no member is left here)."""
        self._runtimes.pop(channel, None)

    def receive(self, channel: str, pub: Publication) -> None:
        """The broker handler: ephemeral messages pass, stored ones keep offset order."""
        if pub.offset == 0:
            self.deliver(channel, pub, unpack_internal(pub.data))
            return
        runtime = self.runtime(channel)
        if runtime.syncing is not None:
            runtime.pending.append(pub)
            return
        self._take(channel, runtime, pub)

    def _take(self, channel: str, runtime: SessionRuntime, pub: Publication) -> None:
        if pub.epoch == runtime.epoch and pub.offset <= runtime.state.offset:
            return
        fresh_stream = pub.epoch != runtime.epoch and pub.offset == 1
        if fresh_stream:
            runtime.follow(pub.epoch)
        if pub.epoch != runtime.epoch or pub.offset != runtime.state.offset + 1:
            runtime.pending.append(pub)
            self._start_sync(channel, runtime)
            return
        self._apply(channel, runtime, pub)

    def _apply(self, channel: str, runtime: SessionRuntime, pub: Publication) -> None:
        message = unpack_internal(pub.data)
        record = message.get("record")
        if record is not None and not record.get("erased"):  # tombstones change no state
            runtime.state.apply(pub.offset, record)
        runtime.state.offset = pub.offset
        runtime.applied.set()
        self.deliver(channel, pub, message)

    def _start_sync(self, channel: str, runtime: SessionRuntime) -> asyncio.Task[None]:
        if runtime.syncing is None:
            runtime.syncing = asyncio.create_task(self._sync(channel, runtime))
        return runtime.syncing

    async def sync(self, channel: str) -> None:
        """Bring the channel's state up to the broker's stream (catch up from history)."""
        runtime = self.runtime(channel)
        await asyncio.shield(self._start_sync(channel, runtime))

    async def settled(self, channel: str) -> None:
        """Wait for a catch-up in progress, if any."""
        task = self.runtime(channel).syncing
        if task is not None:
            await asyncio.shield(task)

    async def _sync(self, channel: str, runtime: SessionRuntime) -> None:
        try:
            position = await self._broker.position(channel)
            runtime.follow(position.epoch)
            since = StreamPosition(runtime.state.offset, runtime.epoch)
            history = await self._broker.history(channel, since=since)
            if not history.recovered:
                log.info("stream history trimmed past this node", extra={"session": channel})
                history = await self._broker.history(channel)
            for pub in history.publications:
                if pub.epoch == runtime.epoch and pub.offset > runtime.state.offset:
                    self._apply(channel, runtime, pub)
        except Exception:  # the next publication or a reconnect starts another catch-up
            log.warning("stream catch-up failed", extra={"session": channel}, exc_info=True)
        finally:
            pending, runtime.pending = runtime.pending, []
            runtime.syncing = None
            for pub in sorted(pending, key=lambda p: p.offset):
                if runtime.syncing is not None:
                    runtime.pending.append(pub)
                else:
                    self._take(channel, runtime, pub)

    async def wait_applied(self, channel: str, position: StreamPosition, timeout: float) -> None:
        """Wait (bounded) until this node applied ``position``: a publisher reads its writes."""
        runtime = self.runtime(channel)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while runtime.epoch != position.epoch or runtime.state.offset < position.offset:
            remaining = deadline - loop.time()
            if remaining <= 0 or (runtime.epoch == position.epoch
                                  and runtime.state.offset >= position.offset):
                return
            runtime.applied.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(runtime.applied.wait(), remaining)


def _drop(channel: str, pub: Publication, message: dict[str, Any]) -> None:
    """No fan-out yet: the node sets one before the broker delivers anything."""
