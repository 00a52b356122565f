"""The node: joins, leaves, publishes and queries, between the hub and the broker.

Every stored publication reaches this node through the broker's handler, in
offset order, and is applied to the session's live state there; so the state a
node shows is a pure function of the stream it received, and a publish on any
node updates every node's state the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from auth.identity import Identity
from auth.tenants import TenantRegistry
from classroom.backends.broker import Broker, BrokerUnavailable, Publication, StreamPosition
from classroom.backends.data.records import DAY, Records
from classroom.backends.data.store import DataUnavailable, MemoryDataStore
from classroom.domain.cohort import ProgressCoalescer
from classroom.domain.events import EventRejected, is_stored, prepare_event
from classroom.domain.participants import Participant, participant_for
from classroom.domain.views import (
    View,
    referenced_pids,
    render_event,
    render_participant,
    render_progress,
    render_state,
    view_for_role,
)
from classroom.edge.write_batching import WriteBatcher
from classroom.metrics import Metrics
from classroom.protocol.codec import Payload, encode, pack_internal, unpack_internal
from classroom.protocol.errors import CommandError
from classroom.sessions.heartbeat import PresenceKeeper
from classroom.sessions.hub import Hub, Membership, Peer
from classroom.sessions.streams import SessionStreams
from presence.store import PresenceStore, PresenceUnavailable

T = TypeVar("T")
log = logging.getLogger("classroom.sessions.node")


RENDERED_CACHE_MAX = 100_000
"""Participant renderings kept for joins (a few hundred bytes each), then started afresh."""

CONTROL_CHANNEL = "__control__"
"""Broker channel every node subscribes to, for commands about users (not sessions)."""


def channel_of(tenant: str, session: str) -> str:
    """The broker channel of a tenant's session (tenant ids never hold a colon)."""
    return f"{tenant}:{session}"


@dataclass
class JoinOutcome:
    """A finished join: replayed frames, the ``joined`` reply body, and the membership."""

    membership: Membership
    replay: list[Payload]
    reply: dict[str, Any]
    live_after: int


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
        records: Records | None = None,
        progress_interval: float = 0.5,
        metrics: Metrics | None = None,
    ) -> None:
        self.tenants = tenants
        self.broker = broker
        self.presence = presence
        self.hub = Hub()
        self._secret = secret
        self._history_limit_max = history_limit_max
        self._publish_timeout = publish_timeout
        self.streams = SessionStreams(broker, self._fan_out)
        self.keeper = PresenceKeeper(self.hub, presence, self._announce, heartbeat_interval)
        self.metrics = metrics or Metrics()
        self.writes = WriteBatcher(self.metrics.frames_written, self.metrics.publish_to_write)
        self.records = records or Records(MemoryDataStore(), secret)
        self.coalescer = ProgressCoalescer(progress_interval, self._push_progress)
        # Set by the app: act on a user's connections on this node (disconnect, erasure).
        self.on_user_control: Callable[[dict[str, Any]], None] | None = None
        # Set by the app: runs once when a session ends (the trainers' summary mail).
        self.on_session_ended: Callable[[str, str], Awaitable[None]] | None = None
        self._background: set[asyncio.Task[None]] = set()
        # (view, packed presence record) -> (pid, rendering for others); see _participants.
        self._rendered: dict[tuple[View, bytes], tuple[Any, dict[str, Any]]] = {}

    async def start(self) -> None:
        """Connect the broker's publications to this node and start heart-beating."""
        self.broker.on_reconnect = self._reconnected
        await self.broker.start(self.streams.receive)
        await self.broker.subscribe(CONTROL_CHANNEL)
        self.keeper.start()

    async def close(self) -> None:
        """Stop heart-beating and release the broker and presence backends."""
        await self.keeper.stop()
        self.coalescer.close()
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        await self.broker.close()
        await self.presence.close()
        await self.records.store.close()

    def _reconnected(self) -> None:
        """The broker came back: catch every served session up, re-register presence."""
        for channel in self.hub.channels():
            task = asyncio.create_task(self._recover(channel))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def _recover(self, channel: str) -> None:
        # Entries may be gone with a restarted Redis: put ours back, silently,
        # since every member already saw these users join.
        for membership in self.hub.members(channel):
            record = pack_internal(membership.participant.to_record())
            with contextlib.suppress(PresenceUnavailable):
                await self.presence.add(
                    channel, membership.peer.client_id, membership.participant.sub, record
                )
        await self.streams.sync(channel)

    # -- identities -------------------------------------------------------------

    def participant(self, identity: Identity, session: str) -> Participant:
        """The identity's participant in ``session``, with the tenant's name policy."""
        tenant = self.tenants.get(identity.tenant)
        policy = tenant.display_name if tenant is not None else "first"
        return participant_for(identity, session, self._secret, policy)

    def authorise(self, identity: Identity, session: str) -> str:
        """The session's channel, if the token grants the session; else ``forbidden``."""
        if session not in identity.sessions:
            raise CommandError("forbidden", "this token does not grant that session")
        return channel_of(identity.tenant, session)

    # -- commands ---------------------------------------------------------------

    async def join(
        self, peer: Peer, identity: Identity, session: str, since: StreamPosition | None
    ) -> JoinOutcome:
        """Join ``session``: buffer live traffic, replay history, snapshot, then go live."""
        channel = self.authorise(identity, session)
        status = await self._call(self.records.status(identity.tenant, session))
        if status is not None and status.get("status") == "ended":
            raise CommandError("forbidden", "this session has ended")
        if identity.role == "trainer":
            await self._call(self.records.mark_live(identity.tenant, session))
        await self._call(self.records.joined(identity.tenant, identity.sub, session))
        participant = self.participant(identity, session)
        view = view_for_role(identity.role)
        membership = Membership(peer, channel, session, participant, view)
        runtime = self.streams.runtime(channel)
        try:
            if self.hub.add(membership):
                await self._call(self.broker.subscribe(channel))
                await self.streams.sync(channel)
            else:
                await self.streams.settled(channel)
            first = await self._call(self.presence.add(
                channel, peer.client_id, identity.sub, pack_internal(participant.to_record())
            ))
            if first:
                await self._announce(channel, "presence.join", participant)
            # The snapshot and its offset are taken together, before any further await:
            # replay covers (since, offset], the membership's buffer everything after.
            snapshot_offset = runtime.state.offset
            epoch = runtime.epoch
            state = render_state(runtime.state.snapshot(), view, participant.pid)
            replay: list[Payload] = []
            recovered = False
            if since is not None and since.epoch == epoch:
                history = await self._call(self.broker.history(channel, since=since))
                recovered = history.recovered and since.offset <= snapshot_offset
                if recovered:
                    replay = self._replay(membership, history.publications, snapshot_offset)
            participants = await self._participants(channel, view, participant.pid)
        except BaseException:
            await self._forget(membership)
            raise
        reply = {
            "type": "joined",
            "session": session,
            "epoch": epoch,
            "offset": snapshot_offset,
            "state": state,
            "participants": participants,
            "recovered": recovered,
            "me": render_participant(participant.to_record(), view, participant.pid),
        }
        return JoinOutcome(membership, replay, reply, snapshot_offset)

    def _replay(
        self, membership: Membership, publications: list[Publication], until: int
    ) -> list[Payload]:
        frames = []
        for pub in publications:
            if pub.offset > until:
                break
            record = unpack_internal(pub.data).get("record")
            if record is None:
                continue
            frame = event_frame(
                membership.session, pub, record, membership.view, membership.pid
            )
            if frame is not None:
                frames.append(encode(frame, membership.peer.encoding))
        return frames

    async def leave(self, membership: Membership) -> None:
        """Leave a session; announce the user's leave after their last connection."""
        await self._forget(membership)

    async def _forget(self, membership: Membership) -> None:
        channel = membership.channel
        if self.hub.remove(membership):
            with contextlib.suppress(BrokerUnavailable):
                await self.broker.unsubscribe(channel)
            if self.streams.runtime(channel).ended:
                self.streams.drop(channel)  # an ended session keeps no live state here
        try:
            gone = await self.presence.remove(channel, membership.peer.client_id)
        except PresenceUnavailable:
            return  # the entry expires by itself; its leave is announced by a sweep
        if gone is not None:
            record = unpack_internal(gone.info)
            with contextlib.suppress(BrokerUnavailable):
                await self._announce(channel, "presence.leave", Participant.from_record(record))

    async def publish(
        self, membership: Membership, event: dict[str, Any], client_msg_id: str | None
    ) -> StreamPosition | None:
        """Validate and publish an event; the stored position, or None if ephemeral."""
        if event.get("kind") == "session.end":
            if membership.participant.role != "trainer":
                raise CommandError("forbidden", "only a trainer may end the session")
            return await self.end_session(membership.channel, membership.participant.to_record())
        position = await self.publish_record(
            membership.channel, membership.participant, event, client_msg_id
        )
        if event.get("kind") == "progress":
            tenant, _, session = membership.channel.partition(":")
            record = {**event, "by": membership.participant.to_record(), "at": time.time()}
            await self._call(self.records.record_progress(tenant, session, record))
        return position

    async def publish_record(
        self,
        channel: str,
        actor: Participant,
        event: dict[str, Any],
        client_msg_id: str | None,
        *,
        shown_as: dict[str, Any] | None = None,
    ) -> StreamPosition | None:
        """Validate ``event`` as ``actor`` would publish it, and publish it."""
        runtime = self.streams.runtime(channel)
        key = f"{actor.pid}:{client_msg_id}" if client_msg_id else None
        async with runtime.lock:
            if key is not None:
                earlier = await self._call(self.broker.recall(channel, key))
                if earlier is not None:
                    return earlier
            try:
                record = prepare_event(event, actor, runtime.state, now=time.time())
            except EventRejected as exc:
                raise CommandError(exc.code, exc.message) from None
            if shown_as is not None:
                record["by"] = shown_as
            # Progress is kept in the cohort records, not in the session's stream: an
            # offset that only trainers could see would leave a gap in everyone's
            # stream, and a gap must always mean a lost event.
            stored = is_stored(record["kind"]) and record["kind"] != "progress"
            data = pack_internal({"t": "event", "record": record})
            result = await self._call(
                self.broker.publish(
                    channel, data, stored=stored,
                    idempotency_key=key if stored or record["kind"] == "progress" else None,
                )
            )
            if stored and self.hub.count(channel):
                # Hold the session's lock until this node applied the event, so the
                # next command validates against a state that includes it. (A node
                # with no member here is not subscribed; it catches up on next use.)
                await self.streams.wait_applied(channel, result.position, self._publish_timeout)
        return result.position if stored else None

    async def end_session(self, channel: str, by: dict[str, Any]) -> StreamPosition:
        """Publish ``session.ended``; every node then closes its members of the session."""
        record = {"kind": "session.ended", "by": by, "at": time.time()}
        data = pack_internal({"t": "event", "record": record})
        result = await self._call(self.broker.publish(channel, data))
        tenant_id, _, session = channel.partition(":")
        tenant = self.tenants.get(tenant_id)
        progress_days = tenant.progress_retention_days if tenant is not None else 365.0
        history_days = tenant.history_retention_days if tenant is not None else 30.0
        await self._call(self.broker.retain(channel, history_days * DAY))
        first = await self._call(
            self.records.mark_ended(tenant_id, session, progress_days * DAY)
        )
        if first and self.on_session_ended is not None:
            try:
                await self.on_session_ended(tenant_id, session)
            except Exception:  # the session has ended; a failed summary must not undo that
                log.exception("session-ended hook failed", extra={"session": channel})
        return result.position

    async def announce_leave(self, channel: str, record: dict[str, Any]) -> None:
        """Tell the session a user left (erasure removed their presence)."""
        await self._announce(channel, "presence.leave", Participant.from_record(record))

    async def control(self, message: dict[str, Any]) -> None:
        """Tell every node to act on a user's connections (``disconnect``, ``erase``)."""
        await self._call(self.broker.publish(CONTROL_CHANNEL, pack_internal(message),
                                             stored=False))

    async def presence_of(self, identity: Identity, session: str) -> list[dict[str, Any]]:
        """Who is in ``session``, as the asking user may see them."""
        channel = self.authorise(identity, session)
        me = self.participant(identity, session)
        return await self._participants(channel, view_for_role(identity.role), me.pid)

    async def history_of(
        self,
        identity: Identity,
        session: str,
        since: StreamPosition | None,
        limit: int | None,
    ) -> dict[str, Any]:
        """Stored events of ``session`` as the asking user may see them."""
        channel = self.authorise(identity, session)
        me = self.participant(identity, session)
        view = view_for_role(identity.role)
        limit = min(limit or self._history_limit_max, self._history_limit_max)
        history = await self._call(self.broker.history(channel, since=since, limit=limit))
        events = []
        for pub in history.publications:
            record = unpack_internal(pub.data).get("record")
            if record is None:
                continue
            event = history_event(record, view, me.pid)
            if event is not None:
                events.append({"offset": pub.offset, "event": event})
        return {
            "session": session,
            "epoch": history.position.epoch,
            "offset": history.position.offset,
            "events": events,
            "recovered": history.recovered if since is not None else True,
        }

    # -- internals ---------------------------------------------------------------

    async def _participants(self, channel: str, view: View, self_pid: str) -> list[dict[str, Any]]:
        # A join renders every participant: each (view, presence record) is unpacked and
        # rendered once, not once per join (a big room's ramp was O(n^2) renders). The
        # rendered dicts are shared between replies, and never modified.
        entries = await self._call(self.presence.participants(channel))
        rendered = self._rendered
        shown_list = []
        for entry in entries:
            key = (view, entry.info)
            cached = rendered.get(key)
            if cached is None:
                record = unpack_internal(entry.info)
                cached = (record.get("pid"), render_participant(record, view, None))
                if len(rendered) >= RENDERED_CACHE_MAX:
                    rendered.clear()
                rendered[key] = cached
            pid, shown = cached
            if pid == self_pid:  # the recipient sees all of its own record
                shown = render_participant(unpack_internal(entry.info), view, self_pid)
            shown_list.append(shown)
        return shown_list

    async def _announce(self, channel: str, kind: str, participant: Participant) -> None:
        data = pack_internal({"t": kind, "participant": participant.to_record()})
        await self.broker.publish(channel, data, stored=False)

    async def _guard(self, call: Awaitable[T], membership: Membership) -> T:
        try:
            return await self._call(call)
        except BaseException:
            self.hub.remove(membership)
            raise

    async def _call(self, call: Awaitable[T]) -> T:
        try:
            return await call
        except (BrokerUnavailable, PresenceUnavailable, DataUnavailable):
            self.metrics.backend_errors.inc()
            raise CommandError("unavailable", "the message broker is unreachable") from None

    def _on_control(self, message: dict[str, Any]) -> None:
        if message.get("t") == "erase":
            prefix = f"{message['tenant']}:"
            for channel in self.streams.channels():
                if channel.startswith(prefix):
                    self.streams.runtime(channel).state.erase_user(message["sub"])
        if self.on_user_control is not None:
            self.on_user_control(message)

    def _push_progress(
        self, channel: str, reports: list[tuple[dict[str, Any], dict[str, Any]]]
    ) -> None:
        """Send trainers one coalesced ``progress`` frame for the reports since the last."""
        session = channel.partition(":")[2]

        def build(view: View, self_pid: str | None) -> dict[str, Any] | None:
            if view != "trainer":
                return None
            rows = [{"participant": render_participant(p, view, self_pid), "progress": data}
                    for p, data in reports]
            return {"type": "progress", "session": session, **rows[-1], "rows": rows}

        self.metrics.frames_out.labels("progress").inc(self.hub.deliver(channel, 0, build))

    def _fan_out(self, channel: str, pub: Publication, message: dict[str, Any]) -> None:
        """Fan one publication out to the channel's local members, as each may see it."""
        started = time.perf_counter()
        kind = message.get("t")
        session = channel.partition(":")[2]
        if channel == CONTROL_CHANNEL:
            self._rendered.clear()  # an erasure must not leave renderings behind
            self._on_control(message)
            return
        if kind == "event":
            record = message["record"]
            if record.get("kind") == "progress":
                progress = {k: record[k] for k in ("screen", "completed", "score", "at")
                            if k in record}
                self.coalescer.report(channel, record["by"], progress)

            def build(view: View, self_pid: str | None) -> dict[str, Any] | None:
                return event_frame(session, pub, record, view, self_pid)

            sent = self.hub.deliver(channel, pub.offset, build, referenced_pids(record))
            self.metrics.frames_out.labels("event").inc(sent)
            published_at = record.get("at")
            if sent and isinstance(published_at, float):
                self.writes.published(published_at)
            if record.get("kind") == "session.ended":
                self.coalescer.forget(channel)
                for membership in self.hub.members(channel):
                    membership.peer.session_ended(membership.session)
                self.streams.runtime(channel).ended = True
        elif kind in ("presence.join", "presence.leave"):
            subject = message["participant"]

            def build_presence(view: View, self_pid: str | None) -> dict[str, Any]:
                shown = render_participant(subject, view, self_pid)
                return {"type": kind, "session": session, "participant": shown}

            sent = self.hub.deliver(channel, 0, build_presence, skip_pid=subject["pid"])
            self.metrics.frames_out.labels(kind).inc(sent)
        self.metrics.fanout_seconds.observe(time.perf_counter() - started)


def event_frame(
    session: str, pub: Publication, record: dict[str, Any], view: View, self_pid: str | None
) -> dict[str, Any] | None:
    """The frame one kind of recipient gets for an event publication, or None."""
    if record.get("erased"):
        event: dict[str, Any] | None = tombstone(record)
    elif record.get("kind") == "progress":
        return None  # trainers get coalesced ``progress`` pushes instead (classroom.domain.cohort)
    else:
        event = render_event(record, view, self_pid)
    if event is None:
        return None
    frame: dict[str, Any] = {"type": "event", "session": session}
    if pub.offset:
        frame["epoch"] = pub.epoch
        frame["offset"] = pub.offset
    frame["event"] = event
    return frame


def history_event(record: dict[str, Any], view: View, self_pid: str) -> dict[str, Any] | None:
    """An event as the ``history`` reply shows it; progress appears to trainers only."""
    if record.get("kind") == "progress" and view != "trainer":
        return None
    if record.get("erased"):
        return tombstone(record)
    if record.get("kind") == "progress":
        body = render_progress(record, view, self_pid)
        if body is None:
            return None
        return {"kind": "progress", "by": body["participant"], **body["progress"]}
    return render_event(record, view, self_pid)


def tombstone(record: dict[str, Any]) -> dict[str, Any]:
    """What everyone sees of an erased user's event: its kind and time, nothing else."""
    return {"kind": record.get("kind"), "erased": True,
            "by": {"pid": "erased", "role": "erased"}, "at": record.get("at")}
