"""The payload of each event kind (protocol section 7), as the pydantic models that check it.

A payload refuses fields its kind does not take. The server's derived fields
(``by``, ``at``, ``counts``, ...) are added after the check, in
``classroom.domain.events``; the AsyncAPI document is generated from these same
models (``classroom.protocol.event_objects``), so a field cannot change in one
place only.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr

from classroom.domain.shapes import shape_json_schema

Screen = Annotated[StrictStr, Field(min_length=1, max_length=200)]
AnnotationId = Annotated[StrictStr, Field(min_length=1, max_length=64)]
PollId = Annotated[StrictStr, Field(min_length=1, max_length=64)]
Pid = Annotated[StrictStr, Field(min_length=1, max_length=64)]
Unit = (
    Annotated[StrictInt, Field(ge=0, le=1)]
    | Annotated[StrictFloat, Field(ge=0, le=1, allow_inf_nan=False)]
)
Score = (
    Annotated[StrictInt, Field(ge=0, le=100)]
    | Annotated[StrictFloat, Field(ge=0, le=100, allow_inf_nan=False)]
)
Shape = Annotated[dict[StrictStr, Any], Field(json_schema_extra=shape_json_schema())]
"""An annotation's shape: any JSON object within the bounds, held to its kind's rules when its
``type`` is one the pages draw (``classroom.domain.shapes``)."""
TIMER_SECONDS = (1, 14400)
"""How long a lesson timer may run: a second to four hours (the longest lesson)."""
OFFSET_MAX = 2**53
"""The largest offset a client can name exactly in JSON."""


class Payload(BaseModel):
    """Base of every payload: unknown fields are refused, not silently dropped."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class NavigatePayload(Payload):
    screen: Screen


class LockPayload(Payload):
    locked: StrictBool


class PointerPayload(Payload):
    x: Unit
    y: Unit
    screen: Screen | None = None


class ReactionPayload(Payload):
    emoji: Annotated[StrictStr, Field(min_length=1, max_length=16)]


class AnnotationAddPayload(Payload):
    annotation_id: AnnotationId
    screen: Screen
    shape: Shape


class AnnotationRemovePayload(Payload):
    annotation_id: AnnotationId


class AnnotationClearPayload(Payload):
    participant: Pid | None = None
    screen: Screen | None = None


class HandRaisePayload(Payload):
    pass


class HandLowerPayload(Payload):
    participant: Pid | None = None


class ChatPayload(Payload):
    text: Annotated[StrictStr, Field(min_length=1, max_length=2000)]
    to: Literal["trainers"] | None = None


class ChatRemovePayload(Payload):
    message: Annotated[StrictInt, Field(ge=1, le=OFFSET_MAX)]


class PollOpenPayload(Payload):
    poll: PollId
    question: Annotated[StrictStr, Field(min_length=1, max_length=500)]
    options: Annotated[
        list[Annotated[StrictStr, Field(min_length=1, max_length=200)]],
        Field(min_length=2, max_length=10),
    ]
    hide_results: StrictBool | None = None


class PollAnswerPayload(Payload):
    poll: PollId
    option: Annotated[StrictInt, Field(ge=0)]


class PollClosePayload(Payload):
    poll: PollId


class PollRevealPayload(Payload):
    poll: PollId


class SessionOptionsPayload(Payload):
    student_marks: StrictBool | None = None
    student_pointers: StrictBool | None = None


class TimerStartPayload(Payload):
    seconds: Annotated[StrictInt, Field(ge=TIMER_SECONDS[0], le=TIMER_SECONDS[1])]


class TimerStopPayload(Payload):
    pass


class ProgressPayload(Payload):
    screen: Screen
    completed: StrictBool | None = None
    score: Score | None = None
