"""Publishing events into a session: validate against the live state, then one broker publish.

Each session's publishes are serialised by its runtime's lock, and a stored
event is applied on this node before the lock is released, so the next command
validates against a state that includes it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from classroom.backends.broker import Broker, StreamPosition
from classroom.backends.data.records import Records
from classroom.domain.channel import Channel
from classroom.domain.events import (
    complete_event,
    event_fingerprint,
    is_stored,
    validate_event,
)
from classroom.domain.options import DEFAULT_OPTIONS, OptionDefaults
from classroom.domain.participants import Participant
from classroom.domain.refusals import RequestRefused
from classroom.sessions.backend_calls import BackendCalls
from classroom.sessions.chat_removal import removable_chat, remove_chat
from classroom.sessions.hub import Hub, Membership
from classroom.sessions.lifecycle import Lifecycle
from classroom.sessions.messages import event_message
from classroom.sessions.streams import SessionStreams


@dataclass(kw_only=True, eq=False)
class Publisher:
    """Publishes members' and the server's events."""

    hub: Hub
    broker: Broker
    streams: SessionStreams
    records: Records
    lifecycle: Lifecycle
    call: BackendCalls
    publish_timeout: float
    options_for: Callable[[Channel], OptionDefaults] = lambda channel: DEFAULT_OPTIONS
    """The tenant's session options of a channel (what students may publish by default)."""

    async def publish(
        self, membership: Membership, event: dict[str, Any], client_msg_id: str | None
    ) -> StreamPosition | None:
        """Validate and publish a member's event; the stored position, or None if ephemeral."""
        if event.get("kind") == "session.end":
            if membership.participant.role != "trainer":
                raise RequestRefused("forbidden", "only a trainer may end the session")
            return await self.lifecycle.end_session(
                membership.channel, membership.participant.to_record()
            )
        position, record = await self._publish(
            membership.channel, membership.participant, event, client_msg_id, shown_as=None
        )
        if record["kind"] == "progress":
            # Only the validated record reaches the cohort records, also on a retry.
            channel = membership.channel
            await self.call(self.records.record_progress(channel.tenant, channel.session, record))
        return position

    async def publish_record(
        self,
        channel: Channel,
        actor: Participant,
        event: dict[str, Any],
        client_msg_id: str | None,
        *,
        shown_as: dict[str, Any] | None = None,
    ) -> StreamPosition | None:
        """Validate ``event`` as ``actor`` would publish it, and publish it."""
        position, _ = await self._publish(channel, actor, event, client_msg_id, shown_as=shown_as)
        return position

    async def _publish(
        self,
        channel: Channel,
        actor: Participant,
        event: dict[str, Any],
        client_msg_id: str | None,
        *,
        shown_as: dict[str, Any] | None,
    ) -> tuple[StreamPosition | None, dict[str, Any]]:
        """Validate, answer a retry, or publish; the position and the validated record.

        The role and the payload are checked before anything else, a retry included.
        With ``client_msg_id``, a stored kind or ``progress`` is then looked up: the
        same event again answers the first publish's position (its state checks are
        not run again, as the state may have moved on since); another event under a
        used id is refused. Ephemeral kinds are never deduplicated.

        ``chat.remove`` reads the message from the stream before it is published and
        rewrites it to a tombstone after (:mod:`classroom.sessions.chat_removal`); a
        retry rewrites it again, in case the first attempt failed in between.
        """
        name = channel.name
        runtime = self.streams.runtime(name)
        valid = validate_event(event, actor)
        kind = valid["kind"]
        # Progress is kept in the cohort records, not in the session's stream: an
        # offset that only trainers could see would leave a gap in everyone's
        # stream, and a gap must always mean a lost event.
        stored = is_stored(kind) and kind != "progress"
        remembered = stored or kind == "progress"
        key = f"{actor.pid}:{client_msg_id}" if client_msg_id and remembered else None
        fingerprint = event_fingerprint(valid) if key is not None else None
        async with runtime.lock:
            if key is not None:
                earlier = await self.call(self.broker.recall(name, key))
                if earlier is not None:
                    _same_event(earlier.fingerprint, fingerprint)
                    if kind == "chat.remove":
                        await self._remove_again(name, runtime.epoch, valid["message"])
                    retry = {**valid, "by": shown_as or actor.to_record(), "at": time.time()}
                    return (earlier.position if stored else None), retry
            record = complete_event(valid, actor, runtime.state, now=time.time(),
                                    defaults=self.options_for(channel))
            tombstone = None
            if kind == "chat.remove":
                tombstone = await self.call(
                    removable_chat(self.broker, name, runtime.epoch, record["message"]))
            if shown_as is not None:
                record["by"] = shown_as
            result = await self.call(
                self.broker.publish(
                    name, event_message(record), stored=stored,
                    idempotency_key=key, fingerprint=fingerprint,
                )
            )
            if result.duplicate:  # a publish on another node won the race for the key
                _same_event(result.fingerprint, fingerprint)
            if tombstone is not None:
                await self.call(remove_chat(self.broker, name, result.position.epoch,
                                            record["message"], tombstone))
            if stored and self.hub.count(name):
                # Hold the session's lock until this node applied the event, so the
                # next command validates against a state that includes it. (A node
                # with no member here is not subscribed; it catches up on next use.)
                await self.streams.wait_applied(name, result.position, self.publish_timeout)
        return (result.position if stored else None), record


    async def _remove_again(self, name: str, epoch: str, offset: int) -> None:
        """Finish a removal whose retry this is: rewrite the message unless it is gone."""
        try:
            tombstone = await self.call(removable_chat(self.broker, name, epoch, offset))
        except RequestRefused as refused:
            if refused.code == "bad_request":
                return  # removed already (or never there): nothing left to do
            raise
        await self.call(remove_chat(self.broker, name, epoch, offset, tombstone))


def _same_event(remembered: str | None, fingerprint: str | None) -> None:
    """Refuse a retry that is another event than the one first published under its id.

    A key remembered without a fingerprint (written by an older node) cannot be
    compared; the retry is then answered as before.
    """
    if remembered is not None and remembered != fingerprint:
        raise RequestRefused("bad_request", "client_msg_id was already used for another event")
