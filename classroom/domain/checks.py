"""The rules of each event kind that depend on the session's state (protocol section 7).

A check sees a validated payload with its publisher, the session's state and the
time of the publish, and returns the fields the server adds to (or replaces in)
the record, or raises :class:`RequestRefused`. A clean sees the payload alone (the
same whatever the state). ``classroom.domain.events`` names which kind runs which.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from classroom.domain.limits import SHAPE_MAX_BYTES
from classroom.domain.participants import Participant
from classroom.domain.refusals import RequestRefused
from classroom.domain.shapes import kind_refusal, shape_depth_refusal, shape_refusal
from classroom.domain.state import SessionState

Clean = Callable[[dict[str, Any]], dict[str, Any]]
Check = Callable[[dict[str, Any], Participant, SessionState, float], dict[str, Any]]


def bad(message: str) -> RequestRefused:
    """``bad_request``: the event breaks a rule; nothing is stored or sent."""
    return RequestRefused("bad_request", message)


def forbidden(message: str) -> RequestRefused:
    """``forbidden``: this publisher may not do this."""
    return RequestRefused("forbidden", message)


def no_clean(payload: dict[str, Any]) -> dict[str, Any]:
    return {}


def no_check(
    payload: dict[str, Any], actor: Participant, state: SessionState, now: float
) -> dict[str, Any]:
    return {}


# -- annotations -----------------------------------------------------------------------------


def clean_annotation_add(payload: dict[str, Any]) -> dict[str, Any]:
    shape = payload["shape"]
    refusal = shape_depth_refusal(shape)  # first: deeper than JSON can encode is deep too
    if refusal is not None:
        raise bad(refusal)
    try:
        encoded = orjson.dumps(shape)
    except (orjson.JSONEncodeError, TypeError):
        raise bad("shape must be a JSON object") from None
    if len(encoded) > SHAPE_MAX_BYTES:
        raise bad(f"shape is larger than {SHAPE_MAX_BYTES} bytes of JSON")
    clean = orjson.loads(encoded)
    if clean != shape:  # NaN or infinity, which JSON cannot carry
        raise bad("shape must be a JSON object")
    refusal = shape_refusal(clean) or kind_refusal(clean)
    if refusal is not None:
        raise bad(refusal)
    return {"shape": clean}


def check_annotation_add(
    payload: dict[str, Any], actor: Participant, state: SessionState, now: float
) -> dict[str, Any]:
    if payload["annotation_id"] in state.annotations:
        raise bad("annotation_id is already in use")
    size = len(orjson.dumps(payload["shape"]))
    refusal = state.annotation_refusal(actor.pid, payload["screen"], size)
    if refusal is not None:
        raise bad(refusal)
    return {}


def check_annotation_remove(
    payload: dict[str, Any], actor: Participant, state: SessionState, now: float
) -> dict[str, Any]:
    annotation = state.annotations.get(payload["annotation_id"])
    if annotation is None:
        raise bad("no annotation with that annotation_id")
    if actor.role != "trainer" and annotation["by"].get("pid") != actor.pid:
        raise forbidden("only the author or a trainer may remove an annotation")
    return {}


def check_annotation_clear(
    payload: dict[str, Any], actor: Participant, state: SessionState, now: float
) -> dict[str, Any]:
    """Which marks go: a student's own, or (a trainer) anyone's or everyone's; ``removed``."""
    author = payload.get("participant")
    if actor.role == "student":
        if author is not None and author != actor.pid:
            raise forbidden("a student may only clear their own annotations")
        author = actor.pid
    removed = state.annotation_ids(author=author, screen=payload.get("screen"))
    if not removed:
        raise bad("no annotations to clear")
    return {"removed": removed}


# -- hands and chat --------------------------------------------------------------------------


def check_hand_raise(
    payload: dict[str, Any], actor: Participant, state: SessionState, now: float
) -> dict[str, Any]:
    if state.hand_raised(actor.pid):
        raise bad("your hand is already raised")
    return {}


def check_hand_lower(
    payload: dict[str, Any], actor: Participant, state: SessionState, now: float
) -> dict[str, Any]:
    target = payload.get("participant")
    if actor.role == "student":
        if target is not None and target != actor.pid:
            raise forbidden("a student may only lower their own hand")
        target = actor.pid
    elif target is None:
        raise bad("participant is required to lower someone's hand")
    subject = state.participant_with_raised_hand(target)
    if subject is None:
        raise bad("that hand is not raised")
    return {"participant": dict(subject)}


def check_chat(
    payload: dict[str, Any], actor: Participant, state: SessionState, now: float
) -> dict[str, Any]:
    if not payload["text"].strip():
        raise bad("text must not be blank")
    return {}


def check_chat_remove(
    payload: dict[str, Any], actor: Participant, state: SessionState, now: float
) -> dict[str, Any]:
    """What the state can tell: the offset is in the stream so far. The session layer reads
    the stream for the rest (a chat, not removed yet)."""
    if payload["message"] > state.offset:
        raise bad(NO_CHAT)
    return {}


NO_CHAT = "no chat message at that offset"


# -- polls -----------------------------------------------------------------------------------


def check_poll_open(
    payload: dict[str, Any], actor: Participant, state: SessionState, now: float
) -> dict[str, Any]:
    if state.poll is not None:
        raise bad("another poll is still open")
    if payload["poll"] in state.used_polls:
        raise bad("that poll id was already used in this session")
    return {}


def _hidden(hidden: bool) -> dict[str, Any]:
    """``hidden: true`` on a record whose counts students must not see; nothing otherwise."""
    return {"hidden": True} if hidden else {}


def check_poll_answer(
    payload: dict[str, Any], actor: Participant, state: SessionState, now: float
) -> dict[str, Any]:
    poll = state.poll
    if poll is None or poll.poll != payload["poll"]:
        raise bad("that poll is not open")
    option = payload["option"]
    if option >= len(poll.options):
        raise bad("option is out of range")
    return {"counts": poll.tally_after(actor.pid, option), **_hidden(poll.hidden)}


def check_poll_close(
    payload: dict[str, Any], actor: Participant, state: SessionState, now: float
) -> dict[str, Any]:
    if state.poll is None or state.poll.poll != payload["poll"]:
        raise bad("that poll is not open")
    return {"counts": state.poll.tally(), **_hidden(state.poll.hidden)}


def check_poll_reveal(
    payload: dict[str, Any], actor: Participant, state: SessionState, now: float
) -> dict[str, Any]:
    """The open poll, or the last one closed, whose counts students were not shown yet."""
    if state.poll is not None and state.poll.poll == payload["poll"]:
        hidden, counts = state.poll.hidden, state.poll.tally()
    elif state.last_poll is not None and state.last_poll.poll == payload["poll"]:
        hidden, counts = state.last_poll.hidden, list(state.last_poll.counts)
    else:
        raise bad("that poll is neither open nor the last one closed")
    if not hidden:
        raise bad("the results of that poll are already shown")
    return {"counts": counts}


# -- session options and the timer -----------------------------------------------------------


def clean_session_options(payload: dict[str, Any]) -> dict[str, Any]:
    if not payload:
        raise bad("session.options needs student_marks or student_pointers")
    return {}


def check_timer_start(
    payload: dict[str, Any], actor: Participant, state: SessionState, now: float
) -> dict[str, Any]:
    return {"ends_at": now + payload["seconds"]}


def check_timer_stop(
    payload: dict[str, Any], actor: Participant, state: SessionState, now: float
) -> dict[str, Any]:
    if state.running_timer(now) is None:
        raise bad("no timer is running")
    return {}
