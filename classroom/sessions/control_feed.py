"""The control feed: ``disconnect`` and ``erase`` reach every node, even one cut off from Redis.

A pub/sub message is lost on a node whose subscription is reconnecting, while
the server API has already answered. So a command about a user is *stored* on
the control channel's stream (an offset and an epoch, like a session's) before
the API answers, and every node applies the commands in offset order, keeping
the position of the last one it applied. When its broker connection comes back,
when an offset is skipped, and every ``poll_interval`` seconds, a node reads
what it missed from the stream's history and applies it, late but surely.

A node starts from the stream's position at start-up: it held no connection
before, so older commands do not concern it. A new epoch (Redis lost the
stream, or it expired after ``history_ttl`` without a command) holds only
commands newer than any this node applied, so all of them apply. History
trimmed past this node (it missed more than ``history_size`` commands) applies
what is left and logs a warning. In both cases commands may be lost for good,
so ``on_gap`` has the app re-check its connections against the revocation
records (an erased user's old tokens are refused at connect and join anyway).

Rolling upgrades: nodes of the previous version only listen to ephemeral
messages on :data:`LEGACY_CONTROL_CHANNEL`, so each command is also sent there,
marked ``copy`` so that nodes of this version, which hear it on the feed, skip
it; an unmarked message there comes from an older node and is applied at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from classroom.backends.broker import Broker, BrokerUnavailable, Publication, StreamPosition
from classroom.sessions.messages import pack_internal, unpack_internal

log = logging.getLogger("classroom.sessions.control_feed")

CONTROL_FEED_CHANNEL = "__control_feed__"
"""Broker channel whose stored stream carries the commands about users, in order."""

LEGACY_CONTROL_CHANNEL = "__control__"
"""The previous version's ephemeral control channel, kept for rolling upgrades."""

CONTROL_CHANNELS = frozenset({CONTROL_FEED_CHANNEL, LEGACY_CONTROL_CHANNEL})

ControlAction = Callable[[dict[str, Any]], None]
"""Acts on one command on this node (closes the user's connections, forgets their data)."""

GapHandler = Callable[[], None]
"""Told that commands may have been missed for good (trimmed, or the stream was lost)."""


@dataclass(kw_only=True, eq=False)
class ControlFeed:
    """Sends commands about users durably and applies each on this node exactly in order."""

    broker: Broker
    act: ControlAction
    poll_interval: float = 5.0
    on_gap: GapHandler | None = None
    """Set by the app: re-check this node's connections against the revocation records."""
    position: StreamPosition = field(default_factory=lambda: StreamPosition(0, ""))
    """The last command applied here (offset 0: none yet in this epoch)."""
    _syncing: asyncio.Task[None] | None = field(default=None, init=False)
    _pending: list[Publication] = field(default_factory=list, init=False)
    _applied: asyncio.Event = field(default_factory=asyncio.Event, init=False)
    _poller: asyncio.Task[None] | None = field(default=None, init=False)

    async def start(self) -> None:
        """Start at the stream's current position, subscribe, and read what came meanwhile."""
        self.position = await self.broker.position(CONTROL_FEED_CHANNEL)
        await self.broker.subscribe(CONTROL_FEED_CHANNEL)
        await self.broker.subscribe(LEGACY_CONTROL_CHANNEL)
        await self.catch_up()  # a command stored between the position and the subscription
        if self._poller is None and self.poll_interval > 0:
            self._poller = asyncio.create_task(self._poll(), name="control-feed-poll")

    async def close(self) -> None:
        """Stop polling and any catch-up in progress."""
        tasks = [task for task in (self._poller, self._syncing) if task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._poller = self._syncing = None

    async def send(self, message: dict[str, Any], timeout: float) -> StreamPosition:
        """Store a command for every node; returns once stored and (bounded) applied here.

        Raises ``BrokerUnavailable`` when it could not be stored: then no node is
        sure to act, and the caller must not report success.
        """
        stored = await self.broker.publish(CONTROL_FEED_CHANNEL, pack_internal(message))
        with contextlib.suppress(BrokerUnavailable):  # stored already: the copy is a courtesy
            await self.broker.publish(LEGACY_CONTROL_CHANNEL,
                                      pack_internal({**message, "copy": True}), stored=False)
        await self.wait_applied(stored.position, timeout)
        return stored.position

    def receive(self, channel: str, pub: Publication) -> None:
        """The broker handler for the control channels."""
        if channel == LEGACY_CONTROL_CHANNEL:
            message = unpack_internal(pub.data)
            if not message.get("copy"):
                self._act(message)
            return
        if self._syncing is not None:
            self._pending.append(pub)
            return
        self._take(pub)

    async def catch_up(self) -> None:
        """Apply every stored command this node has not applied yet (after a reconnect)."""
        if not self.position.epoch:
            return  # not started: start() takes the position first, so nothing is missed
        if self._syncing is None:
            self._syncing = asyncio.create_task(self._sync(), name="control-feed-sync")
        await asyncio.shield(self._syncing)

    async def wait_applied(self, position: StreamPosition, timeout: float) -> None:
        """Wait (at most ``timeout``) until this node applied the command at ``position``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self._reached(position):
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            self._applied.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._applied.wait(), remaining)

    def _reached(self, position: StreamPosition) -> bool:
        return self.position.epoch == position.epoch and self.position.offset >= position.offset

    def _take(self, pub: Publication) -> None:
        """Apply the next command in order; a gap or an unknown epoch starts a catch-up."""
        here = self.position
        if pub.epoch == here.epoch and pub.offset <= here.offset:
            return  # applied already (a catch-up got there first)
        if (pub.epoch == here.epoch and pub.offset == here.offset + 1) or (
            pub.epoch != here.epoch and pub.offset == 1  # a new stream's first command
        ):
            self._apply(pub)
            return
        self._pending.append(pub)
        if self._syncing is None:
            self._syncing = asyncio.create_task(self._sync(), name="control-feed-sync")

    def _apply(self, pub: Publication) -> None:
        self.position = StreamPosition(pub.offset, pub.epoch)
        self._act(unpack_internal(pub.data))
        self._applied.set()

    def _act(self, message: dict[str, Any]) -> None:
        try:
            self.act(message)
        except Exception:  # one failed command must not stop the ones after it
            log.exception("control command failed")

    async def _sync(self) -> None:
        try:
            history = await self.broker.history(CONTROL_FEED_CHANNEL, since=self.position)
            if not history.recovered:
                if history.position.epoch == self.position.epoch:
                    log.warning("control history trimmed past this node; applying what is left")
                    after = self.position.offset
                else:  # a new stream: every command in it is newer than any applied here
                    after = 0
                history = await self.broker.history(CONTROL_FEED_CHANNEL)
                self._gap()
            else:
                after = self.position.offset
            for pub in history.publications:
                if pub.epoch == history.position.epoch and pub.offset > after:
                    self._apply(pub)
                    after = pub.offset
            if not self._reached(history.position):
                self.position = history.position  # trimmed or lost: nothing more to read
        except Exception:  # the next reconnect, gap or poll tries again
            log.warning("control catch-up failed", exc_info=True)
        finally:
            pending, self._pending = self._pending, []
            self._syncing = None
            for pub in sorted(pending, key=lambda p: p.offset):
                if self._syncing is not None:
                    self._pending.append(pub)
                else:
                    self._take(pub)

    def _gap(self) -> None:
        if self.on_gap is None:
            return
        try:
            self.on_gap()
        except Exception:
            log.exception("control gap handler failed")

    async def _poll(self) -> None:
        """Catch up now and then, for a command missed without a reconnect being noticed."""
        while True:
            await asyncio.sleep(self.poll_interval)
            with contextlib.suppress(Exception):
                await self.catch_up()
