"""The objects that server frames carry, as pydantic models: participants, state, cohort rows.

They describe the wire for the AsyncAPI document (``classroom.protocol.asyncapi``);
the frames are still built as plain dicts on the hot path, and the contract tests
validate every frame they receive against these models' schemas, so the two cannot
drift apart unnoticed. Every model refuses unknown fields: a field the server starts
sending must be described here first. An optional field is left out, never ``null``
(``classroom.protocol.wire_schema`` says so in the schema).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from auth.identity import Role
from classroom.domain.events import Score, Screen
from classroom.domain.payloads import Shape

WireRole = Role | Literal["server", "erased"]
"""A participant's role: a token's role, or ``server`` / ``erased`` for the pids naming no one."""


class WireObject(BaseModel):
    """Base of every server-sent object: exactly these fields, nothing else."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Participant(WireObject):
    """A participant object, rendered for the recipient (protocol section 9)."""

    pid: str = Field(description="pseudonymous id within the session, or server / erased / "
                                 "anonymous")
    role: WireRole
    sub: str | None = None
    name: str | None = None
    email: str | None = None
    phone: str | None = None
    username: str | None = None
    display_name: str | None = None


class Profile(WireObject):
    """``connected.me``: the user's own full profile from the token; no pid."""

    tenant: str
    sub: str
    role: Role
    sessions: list[str]
    name: str | None = None
    email: str | None = None
    phone: str | None = None
    username: str | None = None
    display_name: str | None = None


class PollAnswerView(WireObject):
    """One student's latest answer to the open poll (trainers only)."""

    participant: Participant
    option: int = Field(ge=0)


class PollView(WireObject):
    """The open poll in ``state``; ``answers`` only for trainers."""

    poll: str
    question: str
    options: list[str]
    counts: list[int] | None = Field(default=None,
                                     description="left out for students while hidden")
    hidden: Literal[True] | None = Field(
        default=None, description="the poll hides its results from students (not revealed)")
    answers: list[PollAnswerView] | None = None


class LastPollView(WireObject):
    """The most recently closed poll in ``state``: its result, as the recipient may see it."""

    poll: str
    question: str
    options: list[str]
    counts: list[int] | None = Field(default=None,
                                     description="left out for students while hidden")
    hidden: Literal[True] | None = None


class OptionsView(WireObject):
    """What students may do in this session: the trainer's choice, else the tenant's default."""

    student_marks: bool
    student_pointers: bool


class TimerView(WireObject):
    """The lesson timer while it runs."""

    seconds: int = Field(ge=1)
    ends_at: float = Field(description="Unix seconds, server time")


class AnnotationView(WireObject):
    """An annotation on the current screen, in ``state``."""

    annotation_id: str
    screen: str
    shape: Shape
    by: Participant
    at: float


class StateSnapshot(WireObject):
    """``joined.state``: the session's live state, rendered for the recipient (section 8)."""

    screen: str | None
    locked: bool
    poll: PollView | None
    hands: list[Participant]
    annotations: list[AnnotationView]
    options: OptionsView
    timer: TimerView | None
    last_poll: LastPollView | None


class ScreenView(WireObject):
    """A screen of the course from the roster: its id, and the title and page when given."""

    id: str = Field(min_length=1, max_length=200)
    title: str | None = Field(default=None, min_length=1, max_length=200)
    url: str | None = Field(default=None, max_length=2000,
                            description="a page to show in a frame (on the tenant's frame_origins)")


class CohortRow(WireObject):
    """One student's row of the ``cohort`` table."""

    participant: Participant
    screen: str | None
    completed: list[str]
    completed_count: int = Field(ge=0)
    score: float | None
    last_activity: float | None
    online: bool
    behind: int | None
    idle: bool
    hand_raised: bool


class ProgressReport(WireObject):
    """A student's latest progress report, in a ``progress`` push."""

    screen: Screen
    completed: bool | None = None
    score: Score | None = None
    at: float


class ProgressRow(WireObject):
    """One reporting student in a ``progress`` push."""

    participant: Participant
    progress: ProgressReport
