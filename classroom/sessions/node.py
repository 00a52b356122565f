"""The node: the session layer of one server process, built from its parts and started once.

Every stored publication reaches this node through the broker's handler, in
offset order, and is applied to the session's live state there
(:mod:`classroom.sessions.streams`) before it is fanned out
(:mod:`classroom.sessions.fanout`); so the state a node shows is a pure function
of the stream it received, and a publish on any node updates every node's state
the same way. Joins (:mod:`~classroom.sessions.joining`), publishes
(:mod:`~classroom.sessions.publishing`) and the lifecycle
(:mod:`~classroom.sessions.lifecycle`) are the jobs the handlers and the server
API call. Commands about users (``disconnect``, ``erase``) come through the
control feed (:mod:`~classroom.sessions.control_feed`), routed here before the
session streams.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Callable, Coroutine
from typing import Any

from auth.tenants import TenantRegistry
from auth.verified_tokens import VerifiedTokens
from classroom.backends.broker import Broker, Publication
from classroom.backends.data.records import Records
from classroom.backends.data.store import MemoryDataStore
from classroom.domain.channel import Channel
from classroom.domain.options import OptionDefaults
from classroom.metrics import Metrics
from classroom.sessions.access import SessionAccess
from classroom.sessions.admission import Admission
from classroom.sessions.attendance import Attendance
from classroom.sessions.backend_calls import BackendCalls
from classroom.sessions.cohort import CohortTables
from classroom.sessions.control_feed import CONTROL_CHANNELS, ControlFeed
from classroom.sessions.fanout import FanOut, WriteClock
from classroom.sessions.heartbeat import PresenceKeeper
from classroom.sessions.hub import Hub
from classroom.sessions.joining import Joins
from classroom.sessions.lifecycle import Lifecycle
from classroom.sessions.messages import pack_internal
from classroom.sessions.presence import PresenceViews, announce
from classroom.sessions.presence_pushes import PresencePushes
from classroom.sessions.publishing import Publisher
from classroom.sessions.regranting import Regrants
from classroom.sessions.snapshots import Compaction
from classroom.sessions.streams import SessionStreams
from classroom.sessions.tally_window import TallyWindow
from presence.store import PresenceStore, PresenceUnavailable


class Node:
    """Owns the hub, the broker and the presence store of one server process."""

    def __init__(
        self,
        *,
        tenants: TenantRegistry,
        broker: Broker,
        presence: PresenceStore,
        secret: bytes,
        history_limit_max: int = 1000,
        publish_timeout: float = 5.0,
        heartbeat_interval: float = 10.0,
        presence_ttl: float = 30.0,
        records: Records | None = None,
        progress_interval: float = 0.5,
        presence_window: float = 0.1,
        tally_window: float = 0.2,
        idle_after: float = 120.0,
        metrics: Metrics | None = None,
        write_clock: WriteClock | None = None,
        compaction: Compaction | None = None,
        control_poll_interval: float = 5.0,
        admission_limit: int = 16,
        admission_max_wait: float = 10.0,
    ) -> None:
        self.tenants = tenants
        self.broker = broker
        self.presence = presence
        self.metrics = metrics or Metrics()
        self.records = records or Records(MemoryDataStore(), secret)
        self.hub = Hub()
        self.access = SessionAccess(tenants, secret)
        self.call = call = BackendCalls(self.metrics.backend_errors)
        """Backend calls made for a client: unreachable is ``unavailable``, and counted."""
        self.streams = SessionStreams(broker, compaction=compaction, in_use=self.hub.count)
        self.fanout = FanOut(
            hub=self.hub, streams=self.streams, metrics=self.metrics,
            progress_interval=progress_interval, write_clock=write_clock,
        )
        self.streams.deliver = self.fanout.deliver
        self.attendance = Attendance(self.records, presence, presence_ttl)
        self.keeper = PresenceKeeper(
            self.hub, presence, functools.partial(announce, broker), heartbeat_interval,
            self.attendance,
        )
        self.presence_views = PresenceViews(presence, call, self._counts_only_above)
        self.fanout.tallies = self.tallies = TallyWindow(self.hub, self.metrics, tally_window)
        self.streams.on_forget = self._forget_channel
        self.fanout.presence = self.presence_pushes = PresencePushes(
            hub=self.hub, views=self.presence_views, metrics=self.metrics,
            window=presence_window, counts_only_above=self._counts_only_above,
        )
        self.admission = Admission(admission_limit, admission_max_wait,
                                   self.metrics.admission_waiting)
        """Turns for joins and leaves, so a storm of them queues instead of stalling."""
        self.joins = Joins(
            access=self.access, hub=self.hub, broker=broker, presence=presence,
            streams=self.streams, records=self.records, views=self.presence_views, call=call,
            history_limit_max=history_limit_max, attendance=self.attendance,
            admission=self.admission,
        )
        self.regrants = Regrants(
            access=self.access, joins=self.joins, broker=broker, presence=presence,
            streams=self.streams, views=self.presence_views, call=call,
        )
        self.control = ControlFeed(broker=broker, act=self._on_control,
                                   poll_interval=control_poll_interval)
        self.lifecycle = Lifecycle(tenants=tenants, broker=broker, records=self.records,
                                   call=call, control_feed=self.control,
                                   control_timeout=publish_timeout)
        self.publisher = Publisher(
            hub=self.hub, broker=broker, streams=self.streams, records=self.records,
            lifecycle=self.lifecycle, call=call, publish_timeout=publish_timeout,
            options_for=self.options_for,
        )
        self.cohorts = CohortTables(records=self.records, presence=presence,
                                    streams=self.streams, secret=secret, idle_after=idle_after)
        self.verified_tokens = VerifiedTokens()
        """Connection tokens this node verified, so that a reconnect storm skips the HMAC."""
        self.on_user_control: Callable[[dict[str, Any]], None] | None = None
        """Set by the app: act on a user's connections on this node (disconnect, erasure)."""
        self._background: set[asyncio.Task[None]] = set()

    def _forget_channel(self, channel: str) -> None:
        """This node no longer serves ``channel``: drop what it kept for its members."""
        self.presence_views.forget_channel(channel)
        self.tallies.forget(channel)

    async def start(self) -> None:
        """Connect the broker's publications to this node and start heart-beating."""
        self.broker.on_reconnect = self._reconnected
        if self.fanout.write_clock is not None:
            # A burst of publications off Redis is written when it has been read, not
            # after whatever else the loop has ready (Broker.on_drained).
            self.broker.on_drained = self.fanout.write_clock.write_now
        await self.broker.start(self._receive)
        await self.control.start()
        self.keeper.start()
        self.streams.start()

    async def close(self) -> None:
        """Stop heart-beating and release the broker and presence backends."""
        await self.keeper.stop()
        await self.joins.leaves.close()
        self.fanout.coalescer.close()
        self.presence_pushes.close()
        self.tallies.close()
        await self.control.close()
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        await self.streams.close()
        await self.broker.close()
        await self.presence.close()
        await self.records.store.close()

    def _counts_only_above(self, channel: str) -> int | None:
        """The tenant's ``presence_counts_only_above`` for a session's channel, if any."""
        tenant = self.tenants.get(Channel.parse(channel).tenant)
        return tenant.presence_counts_only_above if tenant is not None else None

    def options_for(self, channel: Channel) -> OptionDefaults:
        """The session options of a channel's tenant, for a session whose trainer set none."""
        return OptionDefaults.of(self.tenants.get(channel.tenant))

    def _receive(self, channel: str, pub: Publication) -> None:
        """The broker handler: control commands to the control feed, the rest to the streams."""
        if channel in CONTROL_CHANNELS:
            self.control.receive(channel, pub)
        else:
            self.streams.receive(channel, pub)

    def _reconnected(self) -> None:
        """The broker came back: apply missed commands, catch every served session up,
        re-register presence, and write profiles and indexes again (a failover may have
        lost the newest writes)."""
        self.records.recent.clear()
        self._spawn(self.control.catch_up())
        for name in self.hub.channels():
            self._spawn(self._recover(name))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _recover(self, name: str) -> None:
        # Entries may be gone with a restarted Redis: put ours back, silently,
        # since every member already saw these users join.
        for membership in self.hub.members(name):
            record = pack_internal(membership.participant.to_record())
            with contextlib.suppress(PresenceUnavailable):
                await self.presence.add(
                    name, membership.peer.client_id, membership.participant.sub, record
                )
        await self.streams.sync(name)

    def _on_control(self, message: dict[str, Any]) -> None:
        """A command about a user reached this node: forget what it holds of them, then act."""
        self.presence_views.forget_renderings()  # an erasure must not leave renderings behind
        self.presence.forget_cached()
        self.records.recent.clear()
        if isinstance(message.get("tenant"), str) and isinstance(message.get("sub"), str):
            self.verified_tokens.forget(message["tenant"], message["sub"])
        if message.get("t") == "erase":
            for name in self.streams.channels():
                if Channel.parse(name).tenant == message["tenant"]:
                    self.streams.runtime(name).state.erase_user(message["sub"])
        if self.on_user_control is not None:
            self.on_user_control(message)
