"""The command table: one handler per command type, and the one place their outcome is answered.

A handler returns the reply body (the command's ``id`` is added here), or None
when it has answered already (a join sends its replay before its reply). A
refusal becomes an ``error`` frame; ``unauthorized`` also closes with 4401; any
other exception is logged without its text and answered ``internal``.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from auth.identity import Identity
from auth.tokens import TokenRejected, verify_token
from classroom.backends.broker import StreamPosition
from classroom.backends.data.store import DataUnavailable
from classroom.domain.lifecycle import refuse_if_ended
from classroom.domain.participants import display_name_policy, profile_of
from classroom.domain.refusals import ErrorCode, RequestRefused
from classroom.domain.views import render_participant, view_for_role
from classroom.handlers.peer import Peer
from classroom.handlers.services import Services
from classroom.integrations.video import VideoUnavailable
from classroom.protocol.close_codes import CLOSE_UNAUTHORIZED
from classroom.protocol.commands import (
    COMMAND_TYPES,
    CohortQuery,
    Command,
    Connect,
    History,
    Join,
    Leave,
    Ping,
    Position,
    PresenceQuery,
    Publish,
    Refresh,
    Video,
)
from classroom.protocol.features import PRESENCE_DIFF, accepted_features
from classroom.protocol.frames import error_frame
from classroom.sessions.backend_calls import UNREACHABLE
from classroom.sessions.joining import replay_frames

log = logging.getLogger("classroom.handlers")

Reply = dict[str, Any] | None
Handler = Callable[[Services, Peer, Identity, Any], Awaitable[Reply]]
"""``(services, peer, the peer's identity, the command)`` to the reply body, or None."""


async def run_command(
    services: Services, peer: Peer, command: Command, command_id: int | None
) -> None:
    """Carry out one parsed command and answer it: a reply, an error frame, or a close."""
    try:
        reply = await _dispatch(services, peer, command)
    except RequestRefused as exc:
        peer.send(error_frame(exc.code, exc.message, command_id))
        if exc.code == "unauthorized":
            peer.request_close(CLOSE_UNAUTHORIZED, exc.message)
        return
    except Exception:
        log.exception("command failed", extra={"command": command.type})
        peer.send(error_frame("internal", "internal error", command_id))
        return
    if reply is not None:
        reply["id"] = command.id
        peer.send(reply)


async def _dispatch(services: Services, peer: Peer, command: Command) -> Reply:
    if isinstance(command, Connect):
        return await connect(services, peer, command)
    identity = peer.identity
    if identity is None:
        raise RequestRefused("unauthorized", "send connect first")
    return await HANDLERS[command.type](services, peer, identity, command)


async def connect(services: Services, peer: Peer, command: Connect) -> Reply:
    """Verify the token; the connection is then the token's user until it expires."""
    if peer.identity is not None:
        raise RequestRefused("bad_request", "already connected")
    node = services.node
    identity = _verified(services, command.token, "connect", refusal="unauthorized")
    with contextlib.suppress(DataUnavailable):  # an unreachable store refuses nothing here
        if await node.records.token_revoked(identity):
            log.info("connect refused", extra={"reason": "erased"})
            raise RequestRefused("unauthorized", "token refused")
        await node.records.remember(identity)
    peer.authenticated(identity)
    features = accepted_features(command.features)
    peer.features = frozenset(features)
    policy = display_name_policy(node.tenants.get(identity.tenant))
    reply: dict[str, Any] = {
        "type": "connected",
        "client": peer.client_id,
        "me": profile_of(identity, policy),
        "ping_interval": services.ping_interval,
        "expires_at": identity.expires_at,
        "refresh_before": services.refresh_before,
    }
    if command.features is not None:  # only a client that asked learns what is on
        reply["features"] = features
    return reply


async def refresh(services: Services, peer: Peer, identity: Identity, command: Refresh) -> Reply:
    """Take a new token of the same user without reconnecting; memberships and offsets stay.

    A token that does not verify, or names another tenant or user, is refused and
    the connection carries on under the old token until it expires. Sessions the new
    token no longer grants are left; a changed role re-renders the others (a fresh
    ``joined`` push, without ``id``, precedes the reply).
    """
    node = services.node
    new = _verified(services, command.token, "refresh", refusal="forbidden")
    if (new.tenant, new.sub) != (identity.tenant, identity.sub):
        raise RequestRefused("forbidden", "the token is for another user")
    if await node.call(node.records.token_revoked(new)):
        log.info("refresh refused", extra={"reason": "erased"})
        raise RequestRefused("unauthorized", "token refused")
    peer.reauthenticated(new)
    outcome = await node.regrants.apply(peer, peer.memberships, new, peer.send)
    policy = display_name_policy(node.tenants.get(new.tenant))
    return {
        "type": "refreshed",
        "me": profile_of(new, policy),
        "expires_at": new.expires_at,
        "refresh_before": services.refresh_before,
        "left": outcome.left,
        "rejoined": outcome.rejoined,
    }


def _verified(services: Services, token: str, command: str, *, refusal: ErrorCode) -> Identity:
    """The token's identity, or a ``token refused`` refusal with ``refusal`` as its code."""
    try:
        return verify_token(token, services.node.tenants, leeway=services.token_leeway,
                            cache=services.node.verified_tokens)
    except TokenRejected as exc:
        log.info(f"{command} refused", extra={"reason": exc.reason})
        raise RequestRefused(refusal, "token refused") from None


async def ping(services: Services, peer: Peer, identity: Identity, command: Ping) -> Reply:
    """Answer ``pong``: the client's keep-alive."""
    return {"type": "pong"}


async def join(services: Services, peer: Peer, identity: Identity, command: Join) -> Reply:
    """Join a session: the replay of what was missed, then ``joined``, then the live tail.

    The replay is rendered and queued frame by frame, within the send bound and the
    connection's replay allowance (a client that missed more gets ``recovered: false``).
    """
    if command.session in peer.memberships:
        raise RequestRefused("bad_request", "already joined")
    joins = services.node.joins
    outcome = await joins.join(peer, identity, command.session, _position(command.since),
                               max_replay=peer.replay_allowance())
    if peer.closing:
        await joins.leave(outcome.membership)
        return None
    peer.memberships[command.session] = outcome.membership
    reply = outcome.reply
    reply["id"] = command.id
    if outcome.replay:
        peer.spend_replay(len(outcome.replay))
        # The reply is paced with the replay: a replay that filled the send bound must
        # not make the ``joined`` that follows it look like a client too slow.
        if not await peer.send_replay(replay_frames(outcome.membership, outcome.replay),
                                      then=reply):
            return None  # too slow for its replay: closing, and every membership goes with it
    else:
        peer.send(reply)
    outcome.membership.go_live(outcome.live_after)
    return None


async def leave(services: Services, peer: Peer, identity: Identity, command: Leave) -> Reply:
    """Leave a joined session."""
    membership = peer.memberships.pop(command.session, None)
    if membership is None:
        raise RequestRefused("bad_request", "not joined to that session")
    await services.node.joins.leave(membership)
    return {"type": "left", "session": command.session}


async def publish(services: Services, peer: Peer, identity: Identity, command: Publish) -> Reply:
    """Publish an event into a joined session; stored events answer with their position."""
    membership = peer.memberships.get(command.session)
    node = services.node
    if membership is None:
        node.access.authorise(identity, command.session)  # a session not granted: forbidden
        raise RequestRefused("bad_request", "join the session before publishing")
    position = await node.publisher.publish(membership, command.event, command.client_msg_id)
    reply: dict[str, Any] = {"type": "published", "session": command.session}
    if position is not None and position.offset > 0:
        reply["epoch"] = position.epoch
        reply["offset"] = position.offset
    return reply


async def presence(
    services: Services, peer: Peer, identity: Identity, command: PresenceQuery
) -> Reply:
    """Who is in the session, as this user may see them."""
    participants, present = await services.node.joins.presence_of(identity, command.session)
    reply: dict[str, Any] = {"type": "presence", "session": command.session,
                             "participants": participants}
    if PRESENCE_DIFF in peer.features:
        reply["count"] = present
    return reply


async def history(services: Services, peer: Peer, identity: Identity, command: History) -> Reply:
    """Stored events after ``since`` (or the newest), as this user may see them."""
    asked = command.limit or services.history_limit_max
    if peer.replay_allowance() < min(asked, services.history_limit_max):
        raise RequestRefused("rate_limited", "too much history asked for; retry later")
    body = await services.node.joins.history_of(
        identity, command.session, _position(command.since), command.limit
    )
    peer.spend_replay(len(body["events"]))
    return {"type": "history", **body}


async def video(services: Services, peer: Peer, identity: Identity, command: Video) -> Reply:
    """Credentials for the session's video room, with the role's rights."""
    node, session = services.node, command.session
    channel = node.access.authorise(identity, session)
    refuse_if_ended(await node.call(node.records.status(identity.tenant, session)))
    participant = node.access.participant(identity, session)
    try:
        credentials = await services.video.credentials(
            channel.name, pid=participant.pid,
            role=identity.role, display_name=participant.display_name,
        )
    except VideoUnavailable as exc:
        raise RequestRefused("unavailable", str(exc)) from None
    return {"type": "video", "session": session, **credentials}


async def cohort(
    services: Services, peer: Peer, identity: Identity, command: CohortQuery
) -> Reply:
    """The cohort table: trainers see their students, observers pids only."""
    node, session = services.node, command.session
    node.access.authorise(identity, session)
    if identity.role == "student":
        raise RequestRefused("forbidden", "students see only their own progress")
    tenant = node.tenants.get(identity.tenant)
    if tenant is None:
        raise RequestRefused("forbidden", "unknown tenant")
    try:
        table = await node.cohorts.table(tenant, session)
    except UNREACHABLE:
        raise RequestRefused("unavailable", "storage is unreachable") from None
    view = view_for_role(identity.role)
    me = node.access.participant(identity, session).pid
    for row in table["students"]:
        row["participant"] = render_participant(row["participant"], view, me)
    return {"type": "cohort", **table}


def _position(since: Position | None) -> StreamPosition | None:
    return None if since is None else StreamPosition(offset=since.offset, epoch=since.epoch)


HANDLERS: dict[str, Handler] = {
    "refresh": refresh,
    "ping": ping,
    "join": join,
    "leave": leave,
    "publish": publish,
    "presence": presence,
    "history": history,
    "video": video,
    "cohort": cohort,
}
"""Every command but ``connect`` (which comes before an identity), by type."""

assert frozenset(HANDLERS) | {"connect"} == COMMAND_TYPES
