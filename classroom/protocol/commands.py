"""Client commands (section 3), validated once at the edge with pydantic.

Unknown fields are ignored so that newer clients keep working against this
server; wrong types are refused with ``bad_request`` and a message that names
the field but never echoes its value (it might be a token).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    TypeAdapter,
    ValidationError,
)

from auth.tokens import MAX_TOKEN_CHARS
from classroom.domain.channel import SESSION_ID_PATTERN
from classroom.domain.refusals import RequestRefused
from classroom.protocol.features import MAX_FEATURE_CHARS, MAX_FEATURES

SessionId = Annotated[StrictStr, Field(pattern=SESSION_ID_PATTERN)]
CommandId = Annotated[StrictInt, Field(ge=-(2**53), le=2**53)]


class _Command(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    id: CommandId


class Position(BaseModel):
    """A place in a session's history: ``offset`` within ``epoch``."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    epoch: StrictStr
    offset: Annotated[StrictInt, Field(ge=0)]


FeatureName = Annotated[StrictStr, Field(min_length=1, max_length=MAX_FEATURE_CHARS)]


class Connect(_Command):
    type: Literal["connect"]
    token: Annotated[StrictStr, Field(min_length=1, max_length=MAX_TOKEN_CHARS)]
    features: Annotated[list[FeatureName], Field(max_length=MAX_FEATURES)] | None = Field(
        default=None, description="optional protocol parts this client understands, such as "
                                  "presence.diff; unknown names are ignored")


class Refresh(_Command):
    type: Literal["refresh"]
    token: Annotated[StrictStr, Field(min_length=1, max_length=MAX_TOKEN_CHARS)]


class Join(_Command):
    type: Literal["join"]
    session: SessionId
    since: Position | None = None


class Leave(_Command):
    type: Literal["leave"]
    session: SessionId


class Publish(_Command):
    type: Literal["publish"]
    session: SessionId
    event: dict[str, Any]
    client_msg_id: Annotated[StrictStr, Field(min_length=1, max_length=128)] | None = None


class PresenceQuery(_Command):
    type: Literal["presence"]
    session: SessionId


class History(_Command):
    type: Literal["history"]
    session: SessionId
    since: Position | None = None
    limit: Annotated[StrictInt, Field(ge=1, le=1000)] | None = None


class CohortQuery(_Command):
    type: Literal["cohort"]
    session: SessionId


class Video(_Command):
    type: Literal["video"]
    session: SessionId


class Ping(_Command):
    type: Literal["ping"]


Command = Annotated[
    Connect | Refresh | Join | Leave | Publish | PresenceQuery | History | Video | CohortQuery
    | Ping,
    Field(discriminator="type"),
]
COMMAND_TYPES: frozenset[str] = frozenset(
    get_args(model.model_fields["type"].annotation)[0]
    for model in get_args(get_args(Command)[0])
)
"""The ``type`` of every command, read off the models above."""
_ADAPTER: TypeAdapter[Command] = TypeAdapter(Command)


def command_id_of(frame: dict[str, Any]) -> int | None:
    """The frame's ``id`` if it is usable, so even a refused frame gets a matching reply."""
    value = frame.get("id")
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) <= 2**53:
        return value
    return None


def parse_command(frame: dict[str, Any]) -> Command:
    """Validate a decoded frame, or raise ``RequestRefused('bad_request', ...)``."""
    kind = frame.get("type")
    if not isinstance(kind, str) or kind not in COMMAND_TYPES:
        raise RequestRefused("bad_request", "unknown command type")
    try:
        return _ADAPTER.validate_python(frame)
    except ValidationError as exc:
        raise RequestRefused("bad_request", describe(exc)) from None


def describe(exc: ValidationError, *, skip: int = 1) -> str:
    """Summarise validation errors by field and reason, never by value.

    ``skip`` drops leading location parts (a command's own type tag by default).
    """
    parts = []
    for error in exc.errors(include_input=False, include_url=False)[:5]:
        location = ".".join(str(p) for p in error["loc"][skip:]) or "frame"
        parts.append(f"{location}: {error['msg']}")
    return "; ".join(parts)
