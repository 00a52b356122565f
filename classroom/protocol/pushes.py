"""Frames the server sends unasked (section 6), as pydantic models for the AsyncAPI document.

``event`` is described once per event kind (``EVENT_PUSHES``), so the document lists
what each kind looks like on arrival. Pushes carry no ``id``. The session layer and
the edge build these frames as dicts; the contract tests validate every one they
receive against these models' schemas.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, create_model

from classroom.protocol.commands import SessionId
from classroom.protocol.event_objects import DELIVERED, model_name
from classroom.protocol.wire_objects import Participant, ProgressReport, ProgressRow, WireObject


class EventPush(WireObject):
    """A published event as this recipient may see it; no position for an ephemeral kind."""

    type: Literal["event"]
    session: SessionId
    epoch: str | None = None
    offset: int | None = Field(default=None, ge=1)


def _event_push(kind: str, event: type[BaseModel]) -> type[BaseModel]:
    extra: dict[str, Any] = {}
    if kind == "poll.tally":
        extra["coalesced_from"] = (int | None, Field(
            default=None, ge=1,
            description="only to a connection that announced poll.tally.coalesced, when "
                        "this tally stands for several answers: the offset of the first; "
                        "every offset from it to this one is an answer it sums up"))
    return create_model(
        f"{model_name(kind)}Push", __base__=EventPush,
        __doc__=f"An ``event`` push of a ``{kind}`` event.", event=(event, ...), **extra,
    )


EVENT_PUSHES: dict[str, type[BaseModel]] = {
    kind: _event_push(kind, model) for kind, model in DELIVERED.items()
}
"""The ``event`` push, by the kind of event it carries (``erased``: a tombstone)."""


class PresenceJoin(WireObject):
    """A user's first connection joined the session (not sent to that user)."""

    type: Literal["presence.join"]
    session: SessionId
    participant: Participant


class PresenceLeave(WireObject):
    """A user's last connection left the session (not sent to that user)."""

    type: Literal["presence.leave"]
    session: SessionId
    participant: Participant


class PresenceDiff(WireObject):
    """The joins and leaves of one window, to members that announced ``presence.diff``."""

    type: Literal["presence.diff"]
    session: SessionId
    joined: list[Participant] = Field(description="first connections in the window, in order")
    left: list[Participant] = Field(description="last connections gone in the window, in order")


class PresenceCount(WireObject):
    """How many are present: a student's ``presence.diff`` in a room above the tenant's
    ``presence_counts_only_above``."""

    type: Literal["presence.count"]
    session: SessionId
    count: int = Field(ge=0)


class ProgressPush(WireObject):
    """Students' progress reports since the last push (trainers only, coalesced)."""

    type: Literal["progress"]
    session: SessionId
    participant: Participant
    progress: ProgressReport
    rows: list[ProgressRow] = Field(min_length=1)


class Disconnect(WireObject):
    """The server is about to close the connection: why, and whether to come back."""

    type: Literal["disconnect"]
    code: int
    reason: str
    reconnect: bool
