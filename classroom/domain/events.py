"""Event kinds (protocol section 5): who may publish what, with which payload.

``prepare_event`` is the single gate between a client's ``event`` object and
the broker: it checks the publisher's role, the payload's shape and the
session's live state, and returns the internal record (full personal data in
``by``; ``classroom.domain.views`` decides what leaves the server). Nothing that
fails here is stored or sent.

It runs in two steps, so that an idempotent retry can be told apart from a
different event under the same ``client_msg_id`` without skipping any check:
``validate_event`` (role and payload, whatever the state) and ``complete_event``
(the state's rules, the bounds of ``classroom.domain.limits``, and the derived
fields). ``event_fingerprint`` identifies a validated event for the retry.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
)

from auth.identity import Role
from classroom.domain.limits import SHAPE_MAX_BYTES as SHAPE_MAX_BYTES  # re-exported
from classroom.domain.participants import Participant
from classroom.domain.refusals import RequestRefused
from classroom.domain.state import SessionState, shape_depth_refusal, shape_refusal

STORED_KINDS: frozenset[str] = frozenset({
    "screen.navigate",
    "screen.lock",
    "annotation.add",
    "annotation.remove",
    "hand.raise",
    "hand.lower",
    "chat",
    "poll.open",
    "poll.answer",
    "poll.close",
    "progress",
})
EPHEMERAL_KINDS: frozenset[str] = frozenset({"pointer", "reaction"})
ALL_KINDS: frozenset[str] = STORED_KINDS | EPHEMERAL_KINDS


def is_stored(kind: str) -> bool:
    """Whether events of ``kind`` get an offset and a place in history."""
    return kind in STORED_KINDS


# -- payload models ---------------------------------------------------------------

Screen = Annotated[StrictStr, Field(min_length=1, max_length=200)]
AnnotationId = Annotated[StrictStr, Field(min_length=1, max_length=64)]
PollId = Annotated[StrictStr, Field(min_length=1, max_length=64)]
Unit = (
    Annotated[StrictInt, Field(ge=0, le=1)]
    | Annotated[StrictFloat, Field(ge=0, le=1, allow_inf_nan=False)]
)
Score = (
    Annotated[StrictInt, Field(ge=0, le=100)]
    | Annotated[StrictFloat, Field(ge=0, le=100, allow_inf_nan=False)]
)


class _Payload(BaseModel):
    """Base of every payload: unknown fields are refused, not silently dropped."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class NavigatePayload(_Payload):
    screen: Screen


class LockPayload(_Payload):
    locked: StrictBool


class PointerPayload(_Payload):
    x: Unit
    y: Unit
    screen: Screen | None = None


class ReactionPayload(_Payload):
    emoji: Annotated[StrictStr, Field(min_length=1, max_length=16)]


class AnnotationAddPayload(_Payload):
    annotation_id: AnnotationId
    screen: Screen
    shape: dict[StrictStr, Any]


class AnnotationRemovePayload(_Payload):
    annotation_id: AnnotationId


class HandRaisePayload(_Payload):
    pass


class HandLowerPayload(_Payload):
    participant: Annotated[StrictStr, Field(min_length=1, max_length=64)] | None = None


class ChatPayload(_Payload):
    text: Annotated[StrictStr, Field(min_length=1, max_length=2000)]


class PollOpenPayload(_Payload):
    poll: PollId
    question: Annotated[StrictStr, Field(min_length=1, max_length=500)]
    options: Annotated[
        list[Annotated[StrictStr, Field(min_length=1, max_length=200)]],
        Field(min_length=2, max_length=10),
    ]


class PollAnswerPayload(_Payload):
    poll: PollId
    option: Annotated[StrictInt, Field(ge=0)]


class PollClosePayload(_Payload):
    poll: PollId


class ProgressPayload(_Payload):
    screen: Screen
    completed: StrictBool | None = None
    score: Score | None = None


# -- payload cleaning and state checks -----------------------------------------------

# A clean sees the validated payload alone (the same whatever the state); a check
# sees it with the publisher and the state. Both return fields to add to (or
# replace in) the record, or raise RequestRefused.
Clean = Callable[[dict[str, Any]], dict[str, Any]]
Check = Callable[[dict[str, Any], Participant, SessionState], dict[str, Any]]


def _bad(message: str) -> RequestRefused:
    return RequestRefused("bad_request", message)


def _forbidden(message: str) -> RequestRefused:
    return RequestRefused("forbidden", message)


def _no_clean(payload: dict[str, Any]) -> dict[str, Any]:
    return {}


def _no_check(payload: dict[str, Any], actor: Participant, state: SessionState) -> dict[str, Any]:
    return {}


def _clean_annotation_add(payload: dict[str, Any]) -> dict[str, Any]:
    shape = payload["shape"]
    refusal = shape_depth_refusal(shape)  # first: deeper than JSON can encode is deep too
    if refusal is not None:
        raise _bad(refusal)
    try:
        encoded = orjson.dumps(shape)
    except (orjson.JSONEncodeError, TypeError):
        raise _bad("shape must be a JSON object") from None
    if len(encoded) > SHAPE_MAX_BYTES:
        raise _bad(f"shape is larger than {SHAPE_MAX_BYTES} bytes of JSON")
    clean = orjson.loads(encoded)
    if clean != shape:  # NaN or infinity, which JSON cannot carry
        raise _bad("shape must be a JSON object")
    refusal = shape_refusal(clean)
    if refusal is not None:
        raise _bad(refusal)
    return {"shape": clean}


def _check_annotation_add(
    payload: dict[str, Any], actor: Participant, state: SessionState
) -> dict[str, Any]:
    if payload["annotation_id"] in state.annotations:
        raise _bad("annotation_id is already in use")
    size = len(orjson.dumps(payload["shape"]))
    refusal = state.annotation_refusal(actor.pid, payload["screen"], size)
    if refusal is not None:
        raise _bad(refusal)
    return {}


def _check_annotation_remove(
    payload: dict[str, Any], actor: Participant, state: SessionState
) -> dict[str, Any]:
    annotation = state.annotations.get(payload["annotation_id"])
    if annotation is None:
        raise _bad("no annotation with that annotation_id")
    if actor.role != "trainer" and annotation["by"].get("pid") != actor.pid:
        raise _forbidden("only the author or a trainer may remove an annotation")
    return {}


def _check_hand_raise(
    payload: dict[str, Any], actor: Participant, state: SessionState
) -> dict[str, Any]:
    if state.hand_raised(actor.pid):
        raise _bad("your hand is already raised")
    return {}


def _check_hand_lower(
    payload: dict[str, Any], actor: Participant, state: SessionState
) -> dict[str, Any]:
    target = payload.get("participant")
    if actor.role == "student":
        if target is not None and target != actor.pid:
            raise _forbidden("a student may only lower their own hand")
        target = actor.pid
    elif target is None:
        raise _bad("participant is required to lower someone's hand")
    subject = state.participant_with_raised_hand(target)
    if subject is None:
        raise _bad("that hand is not raised")
    return {"participant": dict(subject)}


def _check_chat(payload: dict[str, Any], actor: Participant, state: SessionState) -> dict[str, Any]:
    if not payload["text"].strip():
        raise _bad("text must not be blank")
    return {}


def _check_poll_open(
    payload: dict[str, Any], actor: Participant, state: SessionState
) -> dict[str, Any]:
    if state.poll is not None:
        raise _bad("another poll is still open")
    if payload["poll"] in state.used_polls:
        raise _bad("that poll id was already used in this session")
    return {}


def _check_poll_answer(
    payload: dict[str, Any], actor: Participant, state: SessionState
) -> dict[str, Any]:
    poll = state.poll
    if poll is None or poll.poll != payload["poll"]:
        raise _bad("that poll is not open")
    option = payload["option"]
    if option >= len(poll.options):
        raise _bad("option is out of range")
    return {"counts": poll.tally_after(actor.pid, option)}


def _check_poll_close(
    payload: dict[str, Any], actor: Participant, state: SessionState
) -> dict[str, Any]:
    if state.poll is None or state.poll.poll != payload["poll"]:
        raise _bad("that poll is not open")
    return {"counts": state.poll.tally()}


# -- the rule table -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rule:
    """What one kind needs: who may publish, the payload model, its cleaning and state check."""

    roles: frozenset[Role]
    model: type[_Payload]
    check: Check = _no_check
    clean: Clean = _no_clean


TRAINER: frozenset[Role] = frozenset({"trainer"})
STUDENT: frozenset[Role] = frozenset({"student"})
BOTH: frozenset[Role] = frozenset({"trainer", "student"})

RULES: dict[str, Rule] = {
    "screen.navigate": Rule(TRAINER, NavigatePayload),
    "screen.lock": Rule(TRAINER, LockPayload),
    "pointer": Rule(BOTH, PointerPayload),
    "reaction": Rule(BOTH, ReactionPayload),
    "annotation.add": Rule(
        BOTH, AnnotationAddPayload, _check_annotation_add, _clean_annotation_add
    ),
    "annotation.remove": Rule(BOTH, AnnotationRemovePayload, _check_annotation_remove),
    "hand.raise": Rule(STUDENT, HandRaisePayload, _check_hand_raise),
    "hand.lower": Rule(BOTH, HandLowerPayload, _check_hand_lower),
    "chat": Rule(BOTH, ChatPayload, _check_chat),
    "poll.open": Rule(TRAINER, PollOpenPayload, _check_poll_open),
    "poll.answer": Rule(STUDENT, PollAnswerPayload, _check_poll_answer),
    "poll.close": Rule(TRAINER, PollClosePayload, _check_poll_close),
    "progress": Rule(STUDENT, ProgressPayload),
}
assert frozenset(RULES) == ALL_KINDS

PUBLISHING_ROLES: frozenset[Role] = BOTH


def _validate(model: type[_Payload], fields: dict[str, Any]) -> dict[str, Any]:
    """Validate a payload; the error names a known field at most, never a value."""
    try:
        parsed = model.model_validate(fields)
    except ValidationError as exc:
        raise _bad(_describe(exc, model)) from None
    payload = parsed.model_dump(exclude_unset=True)
    for name, value in payload.items():
        if value is None:
            raise _bad(f"event field {name!r} must not be null")
    return payload


def _describe(exc: ValidationError, model: type[_Payload]) -> str:
    """A short, value-free description of the first validation error."""
    error = exc.errors(include_url=False, include_input=False)[0]
    loc = error["loc"]
    name = loc[0] if loc else None
    if error["type"] == "extra_forbidden" or name not in model.model_fields:
        return "event has a field this kind does not take"
    if error["type"] == "missing":
        return f"event field {name!r} is missing"
    return f"event field {name!r} has the wrong type or is out of bounds"


def validate_event(raw: Mapping[str, Any], actor: Participant) -> dict[str, Any]:
    """Check the publisher's role and the payload, whatever the state; the event, cleaned.

    The result is ``{"kind": ..., **payload}``, without ``by`` and ``at``.
    """
    if actor.role not in PUBLISHING_ROLES:
        raise _forbidden(f"a {actor.role} may not publish events")
    if not isinstance(raw, Mapping):
        raise _bad("event must be an object")
    kind = raw.get("kind")
    if not isinstance(kind, str) or kind not in RULES:
        raise _bad("unknown event kind")
    rule = RULES[kind]
    if actor.role not in rule.roles:
        raise _forbidden(f"a {actor.role} may not publish {kind!r}")
    payload = _validate(rule.model, {key: value for key, value in raw.items() if key != "kind"})
    payload.update(rule.clean(payload))
    return {"kind": kind, **payload}


def complete_event(
    event: Mapping[str, Any], actor: Participant, state: SessionState, *, now: float
) -> dict[str, Any]:
    """Check a ``validate_event`` result against the state; the record to publish."""
    kind = event["kind"]
    payload = {key: value for key, value in event.items() if key != "kind"}
    payload.update(RULES[kind].check(payload, actor, state))
    return {"kind": kind, **payload, "by": actor.to_record(), "at": now}


def prepare_event(
    raw: Mapping[str, Any], actor: Participant, state: SessionState, *, now: float
) -> dict[str, Any]:
    """Check a client's ``event`` and build the record to publish, or raise RequestRefused."""
    return complete_event(validate_event(raw, actor), actor, state, now=now)


def event_fingerprint(event: Mapping[str, Any]) -> str:
    """What identifies a ``validate_event`` result: a hash of its canonical JSON.

    Kept with an idempotency key, so that a retry under the same ``client_msg_id``
    can be told apart from another event: equal for the same kind and payload
    (whatever the order of fields), different otherwise.
    """
    canonical = orjson.dumps(event, option=orjson.OPT_SORT_KEYS)
    return hashlib.blake2b(canonical, digest_size=16).hexdigest()
