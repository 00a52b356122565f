"""Event kinds (protocol section 5): who may publish what, with which payload.

``prepare_event`` is the single gate between a client's ``event`` object and
the broker: it checks the publisher's role, the payload's shape and the
session's live state, and returns the internal record (full personal data in
``by``; ``classroom.domain.views`` decides what leaves the server). Nothing that
fails here is stored or sent.

It runs in two steps, so that an idempotent retry can be told apart from a
different event under the same ``client_msg_id`` without skipping any check:
``validate_event`` (role and payload, whatever the state) and ``complete_event``
(the session's options, the state's rules of ``classroom.domain.checks``, the
bounds of ``classroom.domain.limits``, and the derived fields).
``event_fingerprint`` identifies a validated event for the retry. The payload
models are in ``classroom.domain.payloads``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import ValidationError

from auth.identity import Role
from classroom.domain import checks as c
from classroom.domain import payloads as p
from classroom.domain.limits import SHAPE_MAX_BYTES as SHAPE_MAX_BYTES  # re-exported
from classroom.domain.options import (
    DEFAULT_OPTIONS,
    OptionDefaults,
    effective_options,
    option_refusal,
)
from classroom.domain.participants import Participant
from classroom.domain.payloads import Score as Score  # re-exported
from classroom.domain.payloads import Screen as Screen  # re-exported
from classroom.domain.state import SessionState

STORED_KINDS: frozenset[str] = frozenset({
    "screen.navigate",
    "screen.lock",
    "annotation.add",
    "annotation.remove",
    "annotation.clear",
    "hand.raise",
    "hand.lower",
    "chat",
    "chat.remove",
    "poll.open",
    "poll.answer",
    "poll.close",
    "poll.reveal",
    "session.options",
    "timer.start",
    "timer.stop",
    "progress",
})
EPHEMERAL_KINDS: frozenset[str] = frozenset({"pointer", "reaction"})
ALL_KINDS: frozenset[str] = STORED_KINDS | EPHEMERAL_KINDS


def is_stored(kind: str) -> bool:
    """Whether events of ``kind`` get an offset and a place in history."""
    return kind in STORED_KINDS


@dataclass(frozen=True, slots=True)
class Rule:
    """What one kind needs: who may publish, the payload model, its cleaning and state check."""

    roles: frozenset[Role]
    model: type[p.Payload]
    check: c.Check = c.no_check
    clean: c.Clean = c.no_clean


TRAINER: frozenset[Role] = frozenset({"trainer"})
STUDENT: frozenset[Role] = frozenset({"student"})
BOTH: frozenset[Role] = frozenset({"trainer", "student"})

RULES: dict[str, Rule] = {
    "screen.navigate": Rule(TRAINER, p.NavigatePayload),
    "screen.lock": Rule(TRAINER, p.LockPayload),
    "pointer": Rule(BOTH, p.PointerPayload),
    "reaction": Rule(BOTH, p.ReactionPayload),
    "annotation.add": Rule(BOTH, p.AnnotationAddPayload, c.check_annotation_add,
                           c.clean_annotation_add),
    "annotation.remove": Rule(BOTH, p.AnnotationRemovePayload, c.check_annotation_remove),
    "annotation.clear": Rule(BOTH, p.AnnotationClearPayload, c.check_annotation_clear),
    "hand.raise": Rule(STUDENT, p.HandRaisePayload, c.check_hand_raise),
    "hand.lower": Rule(BOTH, p.HandLowerPayload, c.check_hand_lower),
    "chat": Rule(BOTH, p.ChatPayload, c.check_chat),
    "chat.remove": Rule(TRAINER, p.ChatRemovePayload, c.check_chat_remove),
    "poll.open": Rule(TRAINER, p.PollOpenPayload, c.check_poll_open),
    "poll.answer": Rule(STUDENT, p.PollAnswerPayload, c.check_poll_answer),
    "poll.close": Rule(TRAINER, p.PollClosePayload, c.check_poll_close),
    "poll.reveal": Rule(TRAINER, p.PollRevealPayload, c.check_poll_reveal),
    "session.options": Rule(TRAINER, p.SessionOptionsPayload, clean=c.clean_session_options),
    "timer.start": Rule(TRAINER, p.TimerStartPayload, c.check_timer_start),
    "timer.stop": Rule(TRAINER, p.TimerStopPayload, c.check_timer_stop),
    "progress": Rule(STUDENT, p.ProgressPayload),
}
assert frozenset(RULES) == ALL_KINDS

PUBLISHING_ROLES: frozenset[Role] = BOTH


def _validate(model: type[p.Payload], fields: dict[str, Any]) -> dict[str, Any]:
    """Validate a payload; the error names a known field at most, never a value."""
    try:
        parsed = model.model_validate(fields)
    except ValidationError as exc:
        raise c.bad(_describe(exc, model)) from None
    payload = parsed.model_dump(exclude_unset=True)
    for name, value in payload.items():
        if value is None:
            raise c.bad(f"event field {name!r} must not be null")
    return payload


def _describe(exc: ValidationError, model: type[p.Payload]) -> str:
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
        raise c.forbidden(f"a {actor.role} may not publish events")
    if not isinstance(raw, Mapping):
        raise c.bad("event must be an object")
    kind = raw.get("kind")
    if not isinstance(kind, str) or kind not in RULES:
        raise c.bad("unknown event kind")
    rule = RULES[kind]
    if actor.role not in rule.roles:
        raise c.forbidden(f"a {actor.role} may not publish {kind!r}")
    payload = _validate(rule.model, {key: value for key, value in raw.items() if key != "kind"})
    payload.update(rule.clean(payload))
    return {"kind": kind, **payload}


def complete_event(
    event: Mapping[str, Any], actor: Participant, state: SessionState, *, now: float,
    defaults: OptionDefaults = DEFAULT_OPTIONS,
) -> dict[str, Any]:
    """Check a ``validate_event`` result against the state; the record to publish.

    ``defaults`` are the tenant's session options, for a session whose trainer has not
    set them (``session.options``): what students may publish depends on them.
    """
    kind = event["kind"]
    if actor.role == "student":
        refusal = option_refusal(kind, effective_options(state.options, defaults))
        if refusal is not None:
            raise refusal
    payload = {key: value for key, value in event.items() if key != "kind"}
    payload.update(RULES[kind].check(payload, actor, state, now))
    return {"kind": kind, **payload, "by": actor.to_record(), "at": now}


def prepare_event(
    raw: Mapping[str, Any], actor: Participant, state: SessionState, *, now: float,
    defaults: OptionDefaults = DEFAULT_OPTIONS,
) -> dict[str, Any]:
    """Check a client's ``event`` and build the record to publish, or raise RequestRefused."""
    return complete_event(validate_event(raw, actor), actor, state, now=now, defaults=defaults)


def event_fingerprint(event: Mapping[str, Any]) -> str:
    """What identifies a ``validate_event`` result: a hash of its canonical JSON.

    Kept with an idempotency key, so that a retry under the same ``client_msg_id``
    can be told apart from another event: equal for the same kind and payload
    (whatever the order of fields), different otherwise.
    """
    canonical = orjson.dumps(event, option=orjson.OPT_SORT_KEYS)
    return hashlib.blake2b(canonical, digest_size=16).hexdigest()
