"""Event objects as pydantic models, per kind: as a client publishes them and as members get them.

They are derived from the payload models ``classroom.domain.events.RULES`` validates
every published event with, so a payload field cannot change in one place only:

- ``PUBLISHABLE``: the ``event`` of a ``publish`` command, one model per kind
  (``kind`` plus that kind's payload), and ``session.end``;
- ``DELIVERED``: the ``event`` of an ``event`` push (and of a ``history`` entry), one
  model per kind as members receive it: the payload plus ``by`` and ``at`` and the
  derived fields (section 7), and the kinds no client publishes (``poll.tally``,
  ``session.ended``, an erased user's tombstone, an old stream's ``progress`` record), and
  the two stand-ins of a ``chat`` message (``chat.withheld``: a question to the trainers
  as everyone else gets it; ``chat.removed``: a message a trainer removed).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from classroom.domain.events import RULES, Score, Screen
from classroom.protocol.wire_objects import Participant, WireObject


def model_name(kind: str) -> str:
    """``poll.answer`` -> ``PollAnswer``: the stem of a kind's model names."""
    return "".join(part.capitalize() for part in kind.replace("_", ".").split("."))


def _literal(kind: str) -> Any:
    """``Literal[kind]`` for a kind known only at run time."""
    return Literal[kind]


def _publishable(kind: str) -> type[BaseModel]:
    payload = RULES[kind].model
    return create_model(
        f"Publish{model_name(kind)}", __base__=payload,
        __doc__=f"A published ``{kind}`` event: its kind and payload, nothing else.",
        kind=(_literal(kind), ...),
    )


class PublishSessionEnd(BaseModel):
    """``session.end``: ends the session (trainers only); other fields are ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    kind: Literal["session.end"]


PUBLISHABLE: dict[str, type[BaseModel]] = {
    **{kind: _publishable(kind) for kind in sorted(RULES)},
    "session.end": PublishSessionEnd,
}
"""The ``event`` of a ``publish`` command, by kind."""

_HIDDEN = (Literal[True] | None, Field(
    default=None, description="students are not shown the counts (the poll hides its results)"))
_DERIVED: dict[str, dict[str, Any]] = {
    # Fields the server adds to (or replaces in) a kind's payload; see section 7.
    "hand.lower": {"participant": (Participant, ...)},
    "annotation.clear": {"removed": (list[str], Field(description="the marks it removed"))},
    "poll.answer": {"counts": (list[int], ...), "hidden": _HIDDEN},
    "poll.close": {"counts": (list[int] | None, Field(
        default=None, description="the final tally; left out for students while hidden")),
                   "hidden": _HIDDEN},
    "poll.reveal": {"counts": (list[int], ...)},
    "timer.start": {"ends_at": (float, Field(description="at + seconds"))},
}


def _delivered(kind: str) -> type[BaseModel]:
    payload = RULES[kind].model
    return create_model(
        f"{model_name(kind)}Event", __base__=payload,
        __doc__=f"A ``{kind}`` event as members receive it: payload, ``by``, ``at``.",
        kind=(_literal(kind), ...), by=(Participant, ...), at=(float, ...),
        **_DERIVED.get(kind, {}),
    )


class PollTallyEvent(WireObject):
    """What everyone but trainers gets for a ``poll.answer``: counts (or ``hidden``), never who
    answered."""

    kind: Literal["poll.tally"]
    poll: str
    counts: list[int] | None = Field(default=None, description="left out while hidden")
    hidden: Literal[True] | None = Field(
        default=None, description="the poll hides its results from students")
    at: float


class WithheldChatEvent(WireObject):
    """A chat message to the trainers, as everyone but the trainers and its author gets it."""

    kind: Literal["chat"]
    to: Literal["trainers"]
    withheld: Literal[True]
    at: float


class RemovedChatEvent(WireObject):
    """A chat message a trainer removed, in history and replays: nothing of it is left."""

    kind: Literal["chat"]
    removed: Literal[True]
    at: float


class SessionEndedEvent(WireObject):
    """The end of the session, by a trainer or by the server."""

    kind: Literal["session.ended"]
    by: Participant
    at: float


class ErasedEvent(WireObject):
    """An erased user's event in history: its kind and time only (``by`` names no one)."""

    kind: str
    erased: Literal[True]
    by: Participant
    at: float


class ProgressRecordEvent(WireObject):
    """A ``progress`` record of a stream written by an older server (trainers' history only)."""

    kind: Literal["progress"]
    by: Participant
    screen: Screen
    completed: bool | None = None
    score: Score | None = None
    at: float


DELIVERED: dict[str, type[BaseModel]] = {
    **{kind: _delivered(kind) for kind in sorted(RULES) if kind != "progress"},
    "poll.tally": PollTallyEvent,
    "chat.withheld": WithheldChatEvent,
    "chat.removed": RemovedChatEvent,
    "session.ended": SessionEndedEvent,
    "erased": ErasedEvent,
}
"""The ``event`` of an ``event`` push, by kind (``erased``: any kind's tombstone)."""

HISTORY_ONLY: dict[str, type[BaseModel]] = {"progress": ProgressRecordEvent}
"""Event objects only a ``history`` reply (or a replay) may hold."""

