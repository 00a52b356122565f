"""Request and response bodies of the server API; the OpenAPI document is built from these."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    SerializerFunctionWrapHandler,
    StrictStr,
    Tag,
    field_validator,
    model_serializer,
)

from auth.urls import page_origin
from classroom.domain.screens import duplicate_screen

Sub = Annotated[StrictStr, Field(min_length=1, max_length=256)]
Text = Annotated[StrictStr, Field(max_length=500)]
ScreenId = Annotated[StrictStr, Field(min_length=1, max_length=200)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RosterStudent(_Body):
    """A student of the cohort, with the contact data only trainers may see."""

    sub: Sub
    name: Text | None = None
    email: Text | None = None
    phone: Text | None = None
    username: Text | None = None
    registration_id: Annotated[StrictStr, Field(min_length=1, max_length=128)] | None = Field(
        default=None,
        description="The id the accreditation body knows the student by (the register has it).",
    )


class RosterScreen(_Body):
    """A screen of the course with what the web client shows of it: a title, a page."""

    id: ScreenId
    title: Annotated[StrictStr, Field(min_length=1, max_length=200)] | None = None
    url: Annotated[StrictStr, Field(max_length=2000)] | None = Field(
        default=None,
        description="The page the web client shows in a frame: https (http only on 127.0.0.1 "
                    "or localhost), on one of the tenant's frame_origins.",
    )

    @field_validator("url")
    @classmethod
    def _page(cls, value: str | None) -> str | None:
        if value is not None:
            page_origin(value)
        return value


def _screen_form(value: Any) -> str:
    """Which form a roster's screen takes, so an error names that form's rule only."""
    return "id" if isinstance(value, str) else "object"


Screen = Annotated[
    Annotated[ScreenId, Tag("id")] | Annotated[RosterScreen, Tag("object")],
    Discriminator(_screen_form),
]
"""A roster's screen: its id alone, or an object with its id, title and page."""


class ScreenView(BaseModel):
    """A screen of the course, as clients get it (the roster's form normalised); a title or
    page the roster does not give is left out, as on the WebSocket."""

    model_config = ConfigDict(extra="forbid")
    id: str
    title: str | None = None
    url: str | None = None

    @model_serializer(mode="wrap")
    def _without_absent(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        dumped: dict[str, Any] = handler(self)
        return {key: value for key, value in dumped.items() if value is not None}


class Roster(_Body):
    """Who a session is for: its trainers and its cohort (``PUT /sessions/{sid}``)."""

    title: Text | None = None
    course: Text | None = None
    trainers: list[Sub] = Field(default_factory=list, max_length=100)
    students: list[RosterStudent] = Field(default_factory=list, max_length=5000)
    screens: list[Screen] | None = Field(
        default=None, max_length=2000,
        description="Screens in course order (ids, or objects with a title and a page); lets "
                    "progress say how far behind a student is, and the web client show them.",
    )
    min_attendance_percent: Annotated[float, Field(ge=0, le=100)] | None = Field(
        default=None, strict=True,
        description="Share of the lesson a participant must attend to meet the threshold.",
    )

    @field_validator("screens")
    @classmethod
    def _unique_screens(cls, value: list[Any] | None) -> list[Any] | None:
        index = duplicate_screen(value or [])
        if index is not None:
            raise ValueError(f"screen {index} has the id of an earlier screen; ids are unique")
        return value


class SessionInfo(BaseModel):
    """A session's roster and lifecycle state."""

    session: str
    status: str = Field(description="scheduled, live or ended")
    roster: Roster | None = None


class ServerEvent(_Body):
    """An event the back end publishes into a session as the server."""

    event: dict[str, Any]
    client_msg_id: Annotated[StrictStr, Field(min_length=1, max_length=128)] | None = None


class Published(BaseModel):
    """Where a published event landed (no offset for ephemeral kinds)."""

    session: str
    epoch: str | None = None
    offset: int | None = None


class ParticipantRecord(BaseModel):
    """A participant with the full data the back end owns."""

    model_config = ConfigDict(extra="allow")
    pid: str
    role: str


class PresenceList(BaseModel):
    """Who is online in a session."""

    session: str
    participants: list[ParticipantRecord]


class ProgressRow(BaseModel):
    """One rostered (or reporting) student's progress in a session."""

    participant: ParticipantRecord
    screen: str | None = None
    completed: list[str] = Field(default_factory=list)
    completed_count: int = 0
    score: float | None = None
    last_activity: float | None = None
    online: bool = False
    behind: int | None = Field(default=None, description="screens behind the trainer")
    idle: bool = False
    hand_raised: bool = False


class CohortProgress(BaseModel):
    """The whole cohort table of a session."""

    session: str
    trainer_screen: str | None = None
    screens: list[ScreenView] | None = Field(
        default=None, description="the roster's screens as objects; null when it names none")
    students: list[ProgressRow]


class Ended(BaseModel):
    """A session that was ended."""

    session: str
    status: str


class Disconnected(BaseModel):
    """The user's connections, on every node, are being closed with 4403."""

    sub: str
    disconnected: bool


class Erased(BaseModel):
    """What an erasure removed: sessions touched and events turned into tombstones."""

    sub: str
    sessions: int
    events: int


class AuditEntry(BaseModel):
    """One audited access: never personal data, the subject only as a keyed hash."""

    at: float
    action: str
    route: str
    subject: str | None = None
    session: str | None = None
    status: int


class AuditLog(BaseModel):
    """The newest audited accesses of the tenant, oldest first."""

    entries: list[AuditEntry]


class AttendanceSpan(BaseModel):
    """One span present: from the first connection's join to the last one's leave."""

    model_config = ConfigDict(populate_by_name=True)
    start: float = Field(alias="from", description="Unix seconds")
    end: float = Field(alias="to", description="Unix seconds")


class AttendanceLine(BaseModel):
    """One participant's attendance: spans, minutes within the lesson, threshold met."""

    sub: str
    role: str | None = None
    registration_id: str | None = None
    present: bool = False
    intervals: list[AttendanceSpan] = Field(default_factory=list)
    minutes: float = 0.0
    percent: float | None = Field(default=None, description="of the lesson's duration so far")
    met: bool | None = Field(default=None, description="None without a threshold")


class KeptAttendance(BaseModel):
    """An erased participant's minimal line, kept under the tenant's attendance retention."""

    subject: str = Field(description="a keyed hash of the user, not reversible")
    minutes: float
    percent: float | None = None
    met: bool | None = None


class AttendanceRegister(BaseModel):
    """Who attended a session, and how long (for PE accreditation)."""

    session: str
    status: str | None = None
    started_at: float | None = None
    ended_at: float | None = None
    duration_minutes: float = 0.0
    min_attendance_percent: float | None = None
    participants: list[AttendanceLine]
    erased: list[KeptAttendance] = Field(default_factory=list)


class Export(BaseModel):
    """Every datum the server holds on one user of the tenant."""

    model_config = ConfigDict(extra="allow")
    sub: str
    profile: dict[str, Any] | None = None
    sessions: list[str] = Field(default_factory=list)
    rosters: list[dict[str, Any]] = Field(default_factory=list)
    progress: list[dict[str, Any]] = Field(default_factory=list)
    presence: list[dict[str, Any]] = Field(default_factory=list)
    events: list[dict[str, Any]] = Field(default_factory=list)
    mail: list[dict[str, Any]] = Field(default_factory=list)
    attendance: list[dict[str, Any]] = Field(default_factory=list)
    webhooks: list[dict[str, Any]] = Field(
        default_factory=list,
        description="webhook deliveries about the user: type and fate, not the body",
    )


class DeadLetter(BaseModel):
    """An e-mail given up on after ``CLASSROOM_MAIL_MAX_ATTEMPTS`` failed attempts."""

    id: str
    kind: str = Field(description="invitation or summary")
    session: str | None = None
    recipient: str = Field(description="the sub of the person the mail is addressed to")
    to: str = Field(description="the address it was to be delivered to")
    attempts: int
    last_error: str | None = Field(
        default=None, description="the class name of the last failure, never its text"
    )
    created_at: float
    died_at: float


class DeadLetters(BaseModel):
    """The tenant's newest dead letters, oldest first, and how many it holds in all."""

    dead_letters: list[DeadLetter]
    total: int


class MailRetried(BaseModel):
    """A dead letter put back in the outbox: due now, with a fresh count of attempts."""

    id: str
    status: str = Field(description="queued")


class WebhookDeadLetter(BaseModel):
    """A webhook delivery given up on after ``CLASSROOM_WEBHOOK_MAX_ATTEMPTS`` attempts."""

    id: str
    webhook_id: str = Field(description="the webhook-id header it was (and will be) sent with")
    type: str = Field(description="session.started, session.ended, user.erased or "
                                  "attendance.updated")
    session: str | None = None
    attempts: int
    last_error: str | None = Field(
        default=None,
        description="HTTP and the status the back end answered, or the class name of the "
                    "failure (for example ReadTimeout), never its text",
    )
    created_at: float
    died_at: float


class WebhookDeadLetters(BaseModel):
    """The tenant's newest dead webhook deliveries, oldest first, and how many in all."""

    dead_letters: list[WebhookDeadLetter]
    total: int


class WebhookRetried(BaseModel):
    """A dead delivery put back in the outbox: due now, fresh count, same ``webhook-id``."""

    id: str
    webhook_id: str
    status: str = Field(description="queued")


class Problem(BaseModel):
    """An error answer."""

    error: str
    message: str
