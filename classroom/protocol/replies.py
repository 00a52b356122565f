"""The reply to each command (section 5), as pydantic models for the AsyncAPI document.

A reply carries its command's ``id``; ``error`` answers any command that was
refused, and is also pushed without ``id`` when no usable id exists (section 6).
The handlers build these frames as dicts; the contract tests validate every one
they receive against these models' schemas.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from classroom.protocol.commands import CommandId, SessionId
from classroom.protocol.event_objects import DELIVERED, HISTORY_ONLY
from classroom.protocol.wire_objects import (
    CohortRow,
    Participant,
    Profile,
    ScreenView,
    StateSnapshot,
    WireObject,
)

ErrorCode = Literal["bad_request", "unauthorized", "forbidden", "rate_limited", "unavailable",
                    "internal", "not_found"]


class _Reply(WireObject):
    id: CommandId


class Connected(_Reply):
    """Reply to ``connect``: the connection's id, the user's profile and the ping advice."""

    type: Literal["connected"]
    client: str = Field(min_length=1)
    me: Profile
    ping_interval: int = Field(ge=0)
    expires_at: float = Field(description="the token's exp, Unix seconds")
    refresh_before: float = Field(ge=0, description="send refresh this long before expires_at")
    features: list[str] | None = Field(
        default=None, description="only when connect announced features: those turned on")


class Refreshed(_Reply):
    """Reply to ``refresh``: the new token's profile and expiry; sessions left or re-sent."""

    type: Literal["refreshed"]
    me: Profile
    expires_at: float
    refresh_before: float = Field(ge=0)
    left: list[SessionId]
    rejoined: list[SessionId]


class JoinedPush(WireObject):
    """``joined`` without ``id``: a refreshed token's new role sees the session anew."""

    type: Literal["joined"]
    session: SessionId
    epoch: str
    offset: int = Field(ge=0)
    state: StateSnapshot
    screens: list[ScreenView] | None = Field(
        description="the course's screens from the roster, in order; null when it names none")
    participants: list[Participant]
    recovered: bool
    me: Participant
    count: int | None = Field(
        default=None, ge=0,
        description="users present; only for a connection that announced presence.diff")


class Joined(JoinedPush):
    """Reply to ``join``: the position, the state and who is present (after any replay)."""

    id: CommandId


class Left(_Reply):
    """Reply to ``leave``."""

    type: Literal["left"]
    session: SessionId


class Published(_Reply):
    """Reply to ``publish``; ``epoch`` and ``offset`` only for a stored kind."""

    type: Literal["published"]
    session: SessionId
    epoch: str | None = None
    offset: int | None = Field(default=None, ge=1)


class PresenceReply(_Reply):
    """Reply to ``presence``: one entry per user present."""

    type: Literal["presence"]
    session: SessionId
    participants: list[Participant]
    count: int | None = Field(
        default=None, ge=0,
        description="users present; only for a connection that announced presence.diff")


HistoryEvent = (DELIVERED["screen.navigate"] | DELIVERED["screen.lock"]
                | DELIVERED["annotation.add"] | DELIVERED["annotation.remove"]
                | DELIVERED["annotation.clear"]
                | DELIVERED["hand.raise"] | DELIVERED["hand.lower"] | DELIVERED["chat"]
                | DELIVERED["chat.withheld"] | DELIVERED["chat.removed"]
                | DELIVERED["chat.remove"]
                | DELIVERED["poll.open"] | DELIVERED["poll.answer"] | DELIVERED["poll.close"]
                | DELIVERED["poll.tally"] | DELIVERED["poll.reveal"]
                | DELIVERED["session.options"] | DELIVERED["timer.start"]
                | DELIVERED["timer.stop"]
                | DELIVERED["session.ended"] | DELIVERED["erased"]
                | HISTORY_ONLY["progress"])
"""What a stored event may look like in ``history``: every stored kind, as delivered."""


class HistoryEntry(WireObject):
    """One stored event in a ``history`` reply."""

    offset: int = Field(ge=1)
    event: HistoryEvent  # type: ignore[valid-type]


class HistoryReply(_Reply):
    """Reply to ``history``: stored events in ascending offset order."""

    type: Literal["history"]
    session: SessionId
    epoch: str
    offset: int = Field(ge=0)
    events: list[HistoryEntry]
    recovered: bool


class CohortReply(_Reply):
    """Reply to ``cohort``: the progress table of the session's cohort."""

    type: Literal["cohort"]
    session: SessionId
    trainer_screen: str | None
    screens: list[ScreenView] | None = Field(
        description="the course's screens from the roster, in order; null when it names none")
    students: list[CohortRow]


class VideoReply(_Reply):
    """Reply to ``video``: OpenTok credentials for the session's video room."""

    type: Literal["video"]
    session: SessionId
    api_key: str
    session_id: str
    token: str
    role: Literal["moderator", "publisher", "subscriber"]
    expires_at: int


class Pong(_Reply):
    """Reply to ``ping``."""

    type: Literal["pong"]


class Error(WireObject):
    """A refused command (with its ``id``), or an error that belongs to no usable id."""

    type: Literal["error"]
    code: ErrorCode
    message: str
    id: CommandId | None = None


REPLIES: dict[str, type[BaseModel]] = {
    "connect": Connected, "refresh": Refreshed, "join": Joined, "leave": Left, "publish": Published,
    "presence": PresenceReply, "history": HistoryReply, "cohort": CohortReply,
    "video": VideoReply, "ping": Pong,
}
"""Each command's reply (besides ``error``), by command type."""
