"""Per-session streams on this node: the live state, kept in offset order, rebuilt exactly.

Every stored publication of a subscribed session passes through here before it
is fanned out. A publication that does not follow the last applied offset (the
broker connection dropped, the node subscribed late, storage lost the stream)
starts a catch-up; publications arriving meanwhile wait, so the state and the
members see every event once, in offset order (the way centrifuge's recovery
merges history with the live tail).

The state in memory is a cache of one durable truth: the session's snapshot
(:mod:`classroom.sessions.snapshots`, stored beside the stream) plus the history
after it. A catch-up that history can serve from this node's offset applies it;
otherwise (a session this node does not know, another epoch, history trimmed
past this node) the state is rebuilt from the snapshot and the history after
its offset, so every node computes the same state. Each epoch starts from the
empty state. Nodes write the snapshot as they go (every ``Compaction.every``
events, after ``Compaction.max_age`` seconds, when the session ends, before
forgetting it), and forget sessions idle for ``Compaction.idle`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from classroom.backends.broker import Broker, Publication, StreamPosition
from classroom.backends.snapshots.base import Snapshot, SnapshotStore
from classroom.backends.snapshots.factory import snapshots_for
from classroom.domain.state import SessionState
from classroom.sessions.messages import unpack_internal
from classroom.sessions.snapshots import Compaction, restored_state, state_snapshot

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
    saved: int = 0
    """The newest offset of this epoch known to be in the stored snapshot."""
    unsaved_since: float | None = None
    """When the oldest applied event not yet in a snapshot was applied (monotonic)."""
    saving: asyncio.Task[None] | None = None
    touched: float = field(default_factory=time.monotonic)

    def follow(self, epoch: str) -> None:
        """Adopt a new stream epoch: every epoch starts from the empty state, on every node."""
        if epoch != self.epoch:
            self.epoch = epoch
            self.state = SessionState()
            self.saved = 0
            self.unsaved_since = None


class SessionStreams:
    """The runtimes of the sessions this node serves, fed by the broker."""

    def __init__(
        self,
        broker: Broker,
        deliver: Deliver | None = None,
        *,
        snapshots: SnapshotStore | None = None,
        compaction: Compaction | None = None,
        in_use: Callable[[str], int] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._broker = broker
        self._snapshots = snapshots if snapshots is not None else snapshots_for(broker)
        self.compaction = compaction or Compaction()
        self.deliver: Deliver = deliver or _drop
        """Where applied publications go next (the node's fan-out)."""
        self.in_use: Callable[[str], int] = in_use or _unused
        """How many members of a channel this node has (set by the node: the hub's count)."""
        self._clock = clock
        self._runtimes: dict[str, SessionRuntime] = {}
        self._sweeper: asyncio.Task[None] | None = None
        self.on_forget: Callable[[str], None] = _unused_forget
        """Called with a channel whose runtime this node forgot (so caches go with it)."""

    def runtime(self, channel: str) -> SessionRuntime:
        """The channel's runtime, created empty on first use (a sync rebuilds it)."""
        runtime = self._runtimes.get(channel)
        if runtime is None:
            runtime = self._runtimes[channel] = SessionRuntime(touched=self._clock())
        else:
            runtime.touched = self._clock()
        return runtime

    def peek(self, channel: str) -> SessionRuntime | None:
        """The channel's runtime if this node holds one, without counting it as a use
        (an observer such as the census must not keep a session from being forgotten)."""
        return self._runtimes.get(channel)

    def ended(self, channel: str) -> bool:
        """Whether this node applied the channel's ``session.ended`` (without touching it)."""
        runtime = self.peek(channel)
        return runtime is not None and runtime.ended

    def channels(self) -> list[str]:
        """Every channel this node keeps a runtime for."""
        return list(self._runtimes)

    def drop(self, channel: str) -> None:
        """Forget a channel's runtime (its session ended and no member is left here)."""
        runtime = self._runtimes.get(channel)
        if runtime is not None and runtime.state.offset > runtime.saved:
            self._compact(channel, runtime)  # the final state stays durable
        if self._runtimes.pop(channel, None) is not None:
            self.on_forget(channel)

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
        if pub.epoch != runtime.epoch and pub.offset == 1:
            runtime.follow(pub.epoch)  # a new stream: its first event applies to the empty state
        if pub.epoch != runtime.epoch or pub.offset != runtime.state.offset + 1:
            runtime.pending.append(pub)
            self._start_sync(channel, runtime)
            return
        self._apply(channel, runtime, pub)

    def _apply(
        self, channel: str, runtime: SessionRuntime, pub: Publication, *, deliver: bool = True
    ) -> None:
        message = unpack_internal(pub.data)
        record = message.get("record")
        if record is not None and not record.get("erased"):  # tombstones change no state
            runtime.state.apply(pub.offset, record)
        runtime.state.offset = pub.offset
        runtime.applied.set()
        if runtime.unsaved_since is None:
            runtime.unsaved_since = self._clock()
        ended = record is not None and record.get("kind") == "session.ended"
        if ended or runtime.state.offset - runtime.saved >= self.compaction.every:
            self._compact(channel, runtime)
        if deliver:
            self.deliver(channel, pub, message)

    def _start_sync(self, channel: str, runtime: SessionRuntime) -> asyncio.Task[None]:
        if runtime.syncing is None:
            runtime.syncing = asyncio.create_task(self._sync(channel, runtime))
        return runtime.syncing

    async def sync(self, channel: str) -> None:
        """Bring the channel's state up to the broker's stream (catch up or rebuild)."""
        runtime = self.runtime(channel)
        await asyncio.shield(self._start_sync(channel, runtime))

    async def settled(self, channel: str) -> None:
        """Wait for a catch-up in progress, if any."""
        task = self.runtime(channel).syncing
        if task is not None:
            await asyncio.shield(task)

    async def _sync(self, channel: str, runtime: SessionRuntime) -> None:
        try:
            if runtime.epoch:
                # One round trip for a runtime that follows the stream (every join but a
                # session's first here): the read tells the epoch too, and a changed one
                # comes back not recovered and is rebuilt below.
                since = StreamPosition(runtime.state.offset, runtime.epoch)
                history = await self._broker.history(channel, since=since)
                if history.recovered and history.position.epoch == runtime.epoch:
                    for pub in history.publications:
                        if pub.offset > runtime.state.offset:
                            self._apply(channel, runtime, pub)
                    return
                epoch = history.position.epoch
            else:  # nothing followed yet: learn the epoch without reading history
                epoch = (await self._broker.position(channel)).epoch
            await self._rebuild(channel, runtime, epoch)
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

    async def _rebuild(self, channel: str, runtime: SessionRuntime, epoch: str) -> None:
        """Replace the state by the stored snapshot plus the history after its offset.

        History trimmed past the snapshot (storage lost it, or compaction could not
        keep up) is never applied as if complete: the state is then unknown, and
        the node starts from the empty state at the newest offset, and says so.
        """
        snapshot = await self._snapshots.load(channel)
        state: SessionState | None = None
        if snapshot is not None and snapshot.position.epoch == epoch:
            state = restored_state(snapshot)
        state = state or SessionState()
        base = state.offset
        history = await self._broker.history(channel, since=StreamPosition(base, epoch))
        publications = history.publications
        if not history.recovered or history.position.epoch != epoch:
            log.warning("stream history trimmed past the snapshot; state starts empty",
                        extra={"session": channel})
            # Not written as a snapshot either: ``saved`` marks it as already durable.
            base = history.position.offset
            state, publications = SessionState(offset=base), []
        # From here on no await: the state is swapped whole, then caught up in order.
        old_epoch, old_offset = runtime.epoch, runtime.state.offset
        runtime.epoch = history.position.epoch
        runtime.state = state
        runtime.saved = base
        runtime.unsaved_since = None
        for pub in publications:
            if pub.offset > runtime.state.offset:
                seen = runtime.epoch == old_epoch and pub.offset <= old_offset
                self._apply(channel, runtime, pub, deliver=not seen)
        runtime.applied.set()

    def _compact(self, channel: str, runtime: SessionRuntime) -> None:
        """Write the runtime's state as the session's snapshot, in the background."""
        if runtime.saving is not None or runtime.state.offset <= runtime.saved:
            return
        snapshot = state_snapshot(runtime.state, runtime.epoch)
        runtime.saving = asyncio.create_task(self._save(channel, runtime, snapshot))

    async def _save(self, channel: str, runtime: SessionRuntime, snapshot: Snapshot) -> None:
        try:
            await self._snapshots.save(channel, snapshot)
            # Stored, or a snapshot at least as new was there already.
            if snapshot.position.epoch == runtime.epoch:
                runtime.saved = max(runtime.saved, snapshot.position.offset)
                if runtime.saved >= runtime.state.offset:
                    runtime.unsaved_since = None
        except Exception:  # the next event, sweep or eviction tries again
            log.warning("session snapshot not saved", extra={"session": channel}, exc_info=True)
            return
        finally:
            runtime.saving = None
        if runtime.state.offset - runtime.saved >= self.compaction.every:
            self._compact(channel, runtime)  # events went on while writing: keep up

    async def scrub_snapshot(self, channel: str, sub: str) -> bool:
        """Erase a user from the stored snapshot too (right to erasure); whether it changed.

        Rewritten in place at its own offset, like the tombstones in the history:
        the nodes erase the user from memory on the control message, and a node
        that rebuilds later must not bring them back from the snapshot.
        """
        snapshot = await self._snapshots.load(channel)
        state = restored_state(snapshot) if snapshot is not None else None
        if snapshot is None or state is None:
            return False
        state.erase_user(sub)
        scrubbed = state_snapshot(state, snapshot.position.epoch)
        if scrubbed.data == snapshot.data:
            return False
        return await self._snapshots.save(channel, scrubbed, replace=True)

    def start(self) -> None:
        """Start the sweep that compacts old changes and forgets idle sessions."""
        if self._sweeper is None:
            self._sweeper = asyncio.create_task(self._sweep_forever(), name="session-sweeper")

    async def close(self) -> None:
        """Stop the sweep and write what is not yet in a snapshot (best effort, bounded)."""
        sweeper, self._sweeper = self._sweeper, None
        if sweeper is not None:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
        for channel, runtime in list(self._runtimes.items()):
            self._compact(channel, runtime)
        saves = [r.saving for r in self._runtimes.values() if r.saving is not None]
        if saves:
            await asyncio.wait(saves, timeout=2.0)

    async def _sweep_forever(self) -> None:
        interval = min(self.compaction.idle, self.compaction.max_age) / 2
        while True:
            await asyncio.sleep(interval)
            self.sweep()

    def sweep(self) -> None:
        """Compact changes older than ``max_age``; forget sessions idle here for ``idle``."""
        now = self._clock()
        for channel, runtime in list(self._runtimes.items()):
            unsaved = runtime.state.offset > runtime.saved
            if (unsaved and runtime.unsaved_since is not None
                    and now - runtime.unsaved_since >= self.compaction.max_age):
                self._compact(channel, runtime)
            busy = (runtime.lock.locked() or runtime.syncing is not None
                    or runtime.saving is not None or runtime.pending)
            if busy or self.in_use(channel) or now - runtime.touched < self.compaction.idle:
                continue
            if unsaved:
                self._compact(channel, runtime)  # forgotten at a later sweep, once durable
                continue
            del self._runtimes[channel]
            self.on_forget(channel)

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


def _unused_forget(channel: str) -> None:
    """Nothing to forget until the node says what."""


def _unused(channel: str) -> int:
    """No hub yet: no channel has members here."""
    return 0
