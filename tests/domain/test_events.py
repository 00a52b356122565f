"""Event rules (protocol section 5): permissions, payload bounds and state checks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from auth.identity import ROLES, Role
from classroom.domain.events import (
    EPHEMERAL_KINDS,
    SHAPE_MAX_BYTES,
    STORED_KINDS,
    is_stored,
    prepare_event,
)
from classroom.domain.participants import Participant
from classroom.domain.refusals import RequestRefused
from classroom.domain.state import SessionState

NOW = 1764084000.25

TRAINER = Participant(
    "p-trainer", "trainer", "sub-trainer", name="Tina Trainer", email="tina@example.org",
    display_name="Tina",
)
TRAINER2 = Participant("p-trainer2", "trainer", "sub-trainer2", display_name="Tom")
STUDENT = Participant(
    "p-student", "student", "sub-student", name="Sam Student", email="sam@example.org",
    phone="+31 6 1234 5678", username="sam", display_name="Sam",
)
STUDENT2 = Participant("p-student2", "student", "sub-student2", display_name="Sue")
PLANNER = Participant("p-planner", "planner", "sub-planner", name="Pia Planner")
CONTENT = Participant("p-content", "content_manager", "sub-content", name="Carl Content")
BY_ROLE: dict[Role, Participant] = {
    "trainer": TRAINER,
    "student": STUDENT,
    "planner": PLANNER,
    "content_manager": CONTENT,
}


def apply(state: SessionState, raw: dict[str, Any], actor: Participant) -> dict[str, Any]:
    """Prepare an event and, if stored, fold it into the state as the broker would."""
    record = prepare_event(raw, actor, state, now=NOW)
    if is_stored(record["kind"]):
        state.apply(state.offset + 1, record)
    return record


def with_poll(options: int = 3, poll: str = "q1") -> SessionState:
    state = SessionState()
    apply(
        state,
        {"kind": "poll.open", "poll": poll, "question": "Which?",
         "options": [f"o{i}" for i in range(options)]},
        TRAINER,
    )
    return state


def with_hand(who: Participant = STUDENT) -> SessionState:
    state = SessionState()
    apply(state, {"kind": "hand.raise"}, who)
    return state


def with_annotation(author: Participant, annotation_id: str = "a1") -> SessionState:
    state = SessionState()
    apply(state, {"kind": "annotation.add", "annotation_id": annotation_id, "screen": "s1",
                  "shape": {"type": "line"}}, author)
    return state


def with_options(**options: bool) -> SessionState:
    """A session whose trainer set these options (``student_pointers=True`` lets students point)."""
    state = SessionState()
    apply(state, {"kind": "session.options", **options}, TRAINER)
    return state


def with_chat(author: Participant = STUDENT) -> SessionState:
    state = SessionState()
    apply(state, {"kind": "chat", "text": "hello"}, author)
    return state


def with_closed_poll(hide_results: bool = True) -> SessionState:
    state = SessionState()
    apply(state, {"kind": "poll.open", "poll": "q1", "question": "Which?", "options": ["a", "b"],
                  "hide_results": hide_results}, TRAINER)
    apply(state, {"kind": "poll.close", "poll": "q1"}, TRAINER)
    return state


def with_timer(seconds: int = 60) -> SessionState:
    state = SessionState()
    apply(state, {"kind": "timer.start", "seconds": seconds}, TRAINER)
    return state


def reject(raw: Any, actor: Participant, state: SessionState | None = None) -> RequestRefused:
    with pytest.raises(RequestRefused) as info:
        prepare_event(raw, actor, state or SessionState(), now=NOW)
    return info.value


# -- the permission table -------------------------------------------------------------

# A valid event of each kind, with the state it needs, for a given publisher.
Scenario = Callable[[Participant], tuple[dict[str, Any], SessionState]]
SCENARIOS: dict[str, Scenario] = {
    "screen.navigate": lambda a: ({"kind": "screen.navigate", "screen": "intro-3"}, SessionState()),
    "screen.lock": lambda a: ({"kind": "screen.lock", "locked": True}, SessionState()),
    "pointer": lambda a: ({"kind": "pointer", "x": 0.5, "y": 0.25},
                          with_options(student_pointers=True)),
    "reaction": lambda a: ({"kind": "reaction", "emoji": "👍"}, SessionState()),
    "annotation.add": lambda a: (
        {"kind": "annotation.add", "annotation_id": "a9", "screen": "s1", "shape": {}},
        SessionState(),
    ),
    "annotation.remove": lambda a: (
        {"kind": "annotation.remove", "annotation_id": "a1"},
        with_annotation(a if a.role in ("trainer", "student") else STUDENT),
    ),
    "annotation.clear": lambda a: (
        {"kind": "annotation.clear"},
        with_annotation(a if a.role in ("trainer", "student") else STUDENT),
    ),
    "hand.raise": lambda a: ({"kind": "hand.raise"}, SessionState()),
    "hand.lower": lambda a: (
        ({"kind": "hand.lower", "participant": STUDENT.pid}, with_hand(STUDENT))
        if a.role == "trainer"
        else ({"kind": "hand.lower"}, with_hand(STUDENT))
    ),
    "chat": lambda a: ({"kind": "chat", "text": "hello"}, SessionState()),
    "chat.remove": lambda a: ({"kind": "chat.remove", "message": 1}, with_chat()),
    "poll.reveal": lambda a: ({"kind": "poll.reveal", "poll": "q1"}, with_closed_poll()),
    "session.options": lambda a: ({"kind": "session.options", "student_marks": False},
                                  SessionState()),
    "timer.start": lambda a: ({"kind": "timer.start", "seconds": 300}, SessionState()),
    "timer.stop": lambda a: ({"kind": "timer.stop"}, with_timer()),
    "poll.open": lambda a: (
        {"kind": "poll.open", "poll": "q1", "question": "?", "options": ["a", "b"]},
        SessionState(),
    ),
    "poll.answer": lambda a: ({"kind": "poll.answer", "poll": "q1", "option": 0}, with_poll()),
    "poll.close": lambda a: ({"kind": "poll.close", "poll": "q1"}, with_poll()),
    "progress": lambda a: ({"kind": "progress", "screen": "s1"}, SessionState()),
}

ALLOWED: dict[str, set[str]] = {
    "screen.navigate": {"trainer"},
    "screen.lock": {"trainer"},
    "pointer": {"trainer", "student"},
    "reaction": {"trainer", "student"},
    "annotation.add": {"trainer", "student"},
    "annotation.remove": {"trainer", "student"},
    "annotation.clear": {"trainer", "student"},
    "hand.raise": {"student"},
    "hand.lower": {"trainer", "student"},
    "chat": {"trainer", "student"},
    "chat.remove": {"trainer"},
    "poll.open": {"trainer"},
    "poll.answer": {"student"},
    "poll.close": {"trainer"},
    "poll.reveal": {"trainer"},
    "session.options": {"trainer"},
    "timer.start": {"trainer"},
    "timer.stop": {"trainer"},
    "progress": {"student"},
}


def test_kind_sets_cover_the_protocol() -> None:
    assert set(SCENARIOS) == STORED_KINDS | EPHEMERAL_KINDS
    assert not STORED_KINDS & EPHEMERAL_KINDS
    assert {"pointer", "reaction"} == EPHEMERAL_KINDS
    assert all(is_stored(kind) for kind in STORED_KINDS)
    assert not any(is_stored(kind) for kind in EPHEMERAL_KINDS)
    assert not is_stored("nonsense")


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("kind", sorted(SCENARIOS))
def test_permission_table(kind: str, role: Role) -> None:
    actor = BY_ROLE[role]
    raw, state = SCENARIOS[kind](actor)
    if role in ALLOWED[kind]:
        record = prepare_event(raw, actor, state, now=NOW)
        assert record["kind"] == kind
        assert record["by"] == actor.to_record()
        assert record["at"] == NOW
    else:
        assert reject(raw, actor, state).code == "forbidden"


@pytest.mark.parametrize("actor", [PLANNER, CONTENT])
@pytest.mark.parametrize("raw", [{"kind": "nope"}, {}, {"kind": 3}, {"kind": "chat"}])
def test_observers_are_forbidden_whatever_they_send(actor: Participant, raw: Any) -> None:
    assert reject(raw, actor).code == "forbidden"


@pytest.mark.parametrize("raw", [{}, {"kind": "nope"}, {"kind": 3}, {"kind": None},
                                 {"kind": "CHAT", "text": "x"}, {"kind": ["chat"]}])
@pytest.mark.parametrize("actor", [TRAINER, STUDENT])
def test_unknown_or_missing_kind_is_bad_request(actor: Participant, raw: Any) -> None:
    assert reject(raw, actor).code == "bad_request"


@pytest.mark.parametrize("raw", [[], "chat", None, 3])
def test_event_that_is_not_an_object_is_bad_request(raw: Any) -> None:
    assert reject(raw, STUDENT).code == "bad_request"


@pytest.mark.parametrize("kind", sorted(SCENARIOS))
@pytest.mark.parametrize("extra", ["extra", "by", "at", "counts"])
def test_unknown_fields_are_bad_request(kind: str, extra: str) -> None:
    actor = TRAINER if "trainer" in ALLOWED[kind] else STUDENT
    raw, state = SCENARIOS[kind](actor)
    assert reject({**raw, extra: {"pid": "spoof"}}, actor, state).code == "bad_request"


# -- payload bounds ---------------------------------------------------------------------

S200, S201 = "s" * 200, "s" * 201

BOUNDS: list[tuple[str, str, Any, bool]] = [
    # (kind, field, value, accepted)
    ("screen.navigate", "screen", "a", True),
    ("screen.navigate", "screen", S200, True),
    ("screen.navigate", "screen", "", False),
    ("screen.navigate", "screen", S201, False),
    ("screen.navigate", "screen", 5, False),
    ("screen.navigate", "screen", None, False),
    ("screen.lock", "locked", False, True),
    ("screen.lock", "locked", True, True),
    ("screen.lock", "locked", 1, False),
    ("screen.lock", "locked", "true", False),
    ("screen.lock", "locked", None, False),
    ("pointer", "x", 0, True),
    ("pointer", "x", 1, True),
    ("pointer", "x", 0.0, True),
    ("pointer", "x", 1.0, True),
    ("pointer", "y", 0, True),
    ("pointer", "y", 1.0, True),
    ("pointer", "x", -0.0001, False),
    ("pointer", "x", 1.0001, False),
    ("pointer", "y", -1, False),
    ("pointer", "y", 2, False),
    ("pointer", "x", True, False),
    ("pointer", "y", False, False),
    ("pointer", "x", "0.5", False),
    ("pointer", "x", float("nan"), False),
    ("pointer", "y", float("inf"), False),
    ("pointer", "x", None, False),
    ("pointer", "screen", "s", True),
    ("pointer", "screen", S200, True),
    ("pointer", "screen", "", False),
    ("pointer", "screen", S201, False),
    ("pointer", "screen", 1, False),
    ("pointer", "screen", None, False),
    ("reaction", "emoji", "x", True),
    ("reaction", "emoji", "e" * 16, True),
    ("reaction", "emoji", "", False),
    ("reaction", "emoji", "e" * 17, False),
    ("reaction", "emoji", 3, False),
    ("annotation.add", "annotation_id", "a", True),
    ("annotation.add", "annotation_id", "a" * 64, True),
    ("annotation.add", "annotation_id", "", False),
    ("annotation.add", "annotation_id", "a" * 65, False),
    ("annotation.add", "annotation_id", 7, False),
    ("annotation.add", "screen", S200, True),
    ("annotation.add", "screen", "", False),
    ("annotation.add", "screen", S201, False),
    ("annotation.add", "shape", {}, True),
    ("annotation.add", "shape", {"points": [[0.1, 0.2], [0.3, 0.4]], "ok": None}, True),
    ("annotation.add", "shape", {"d": "x" * (SHAPE_MAX_BYTES - 8)}, True),
    ("annotation.add", "shape", {"d": "x" * (SHAPE_MAX_BYTES - 7)}, False),
    ("annotation.add", "shape", [], False),
    ("annotation.add", "shape", "circle", False),
    ("annotation.add", "shape", None, False),
    ("annotation.add", "shape", {"r": float("nan")}, False),
    ("annotation.add", "shape", {"r": [float("inf")]}, False),
    ("annotation.add", "shape", {"r": 2**70}, False),
    ("annotation.add", "shape", {"r": b"bytes"}, False),
    ("annotation.remove", "annotation_id", "", False),
    ("annotation.remove", "annotation_id", "a" * 65, False),
    ("annotation.remove", "annotation_id", 1, False),
    ("chat", "text", "a", True),
    ("chat", "text", "a" * 2000, True),
    ("chat", "text", "é" * 2000, True),
    ("chat", "text", " a ", True),
    ("chat", "text", "", False),
    ("chat", "text", "a" * 2001, False),
    ("chat", "text", "   ", False),
    ("chat", "text", "\n\t \u3000", False),
    ("chat", "text", 42, False),
    ("chat", "text", ["hi"], False),
    ("chat", "to", "trainers", True),
    ("chat", "to", "students", False),
    ("chat", "to", "Trainers", False),
    ("chat", "to", ["trainers"], False),
    ("chat", "to", None, False),
    ("chat.remove", "message", 1, True),
    ("chat.remove", "message", 0, False),
    ("chat.remove", "message", -1, False),
    ("chat.remove", "message", 2**53 + 1, False),
    ("chat.remove", "message", 1.0, False),
    ("chat.remove", "message", "1", False),
    ("chat.remove", "message", True, False),
    ("annotation.clear", "participant", "p-trainer", True),
    ("annotation.clear", "participant", "", False),
    ("annotation.clear", "participant", "p" * 65, False),
    ("annotation.clear", "participant", 3, False),
    ("annotation.clear", "screen", "s1", True),
    ("annotation.clear", "screen", "", False),
    ("annotation.clear", "screen", S201, False),
    ("annotation.clear", "screen", None, False),
    ("poll.open", "hide_results", True, True),
    ("poll.open", "hide_results", False, True),
    ("poll.open", "hide_results", 1, False),
    ("poll.open", "hide_results", "yes", False),
    ("poll.open", "hide_results", None, False),
    ("poll.reveal", "poll", "", False),
    ("poll.reveal", "poll", "p" * 65, False),
    ("session.options", "student_marks", True, True),
    ("session.options", "student_marks", 0, False),
    ("session.options", "student_pointers", True, True),
    ("session.options", "student_pointers", "on", False),
    ("session.options", "student_pointers", None, False),
    ("timer.start", "seconds", 1, True),
    ("timer.start", "seconds", 14400, True),
    ("timer.start", "seconds", 0, False),
    ("timer.start", "seconds", 14401, False),
    ("timer.start", "seconds", 60.0, False),
    ("timer.start", "seconds", "60", False),
    ("timer.start", "seconds", True, False),
    ("poll.open", "poll", "p", True),
    ("poll.open", "poll", "p" * 64, True),
    ("poll.open", "poll", "", False),
    ("poll.open", "poll", "p" * 65, False),
    ("poll.open", "poll", 1, False),
    ("poll.open", "question", "q", True),
    ("poll.open", "question", "q" * 500, True),
    ("poll.open", "question", "", False),
    ("poll.open", "question", "q" * 501, False),
    ("poll.open", "options", ["a", "b"], True),
    ("poll.open", "options", [str(i) for i in range(10)], True),
    ("poll.open", "options", ["a"], False),
    ("poll.open", "options", [], False),
    ("poll.open", "options", [str(i) for i in range(11)], False),
    ("poll.open", "options", ["a", "o" * 200], True),
    ("poll.open", "options", ["a", "o" * 201], False),
    ("poll.open", "options", ["a", ""], False),
    ("poll.open", "options", ["a", 2], False),
    ("poll.open", "options", "ab", False),
    ("poll.open", "options", {"a": 1, "b": 2}, False),
    ("poll.answer", "option", 0, True),
    ("poll.answer", "option", 2, True),
    ("poll.answer", "option", 3, False),
    ("poll.answer", "option", -1, False),
    ("poll.answer", "option", True, False),
    ("poll.answer", "option", 1.0, False),
    ("poll.answer", "option", "0", False),
    ("poll.answer", "option", None, False),
    ("poll.answer", "poll", "q2", False),
    ("poll.answer", "poll", 1, False),
    ("poll.close", "poll", "q2", False),
    ("poll.close", "poll", None, False),
    ("progress", "screen", S200, True),
    ("progress", "screen", "", False),
    ("progress", "screen", S201, False),
    ("progress", "completed", True, True),
    ("progress", "completed", False, True),
    ("progress", "completed", 1, False),
    ("progress", "completed", "yes", False),
    ("progress", "completed", None, False),
    ("progress", "score", 0, True),
    ("progress", "score", 100, True),
    ("progress", "score", 0.0, True),
    ("progress", "score", 100.0, True),
    ("progress", "score", 57.5, True),
    ("progress", "score", -0.001, False),
    ("progress", "score", 100.001, False),
    ("progress", "score", -1, False),
    ("progress", "score", 101, False),
    ("progress", "score", True, False),
    ("progress", "score", "50", False),
    ("progress", "score", float("nan"), False),
    ("progress", "score", None, False),
]


@pytest.mark.parametrize(("kind", "field", "value", "accepted"), BOUNDS)
def test_payload_bounds(kind: str, field: str, value: Any, accepted: bool) -> None:
    actor = TRAINER if "trainer" in ALLOWED[kind] else STUDENT
    raw, state = SCENARIOS[kind](actor)
    raw = {**raw, field: value}
    if accepted:
        record = prepare_event(raw, actor, state, now=NOW)
        assert record[field] == value
    else:
        error = reject(raw, actor, state)
        assert error.code == "bad_request"
        assert error.message


@pytest.mark.parametrize(
    ("kind", "field"),
    [("screen.navigate", "screen"), ("screen.lock", "locked"), ("pointer", "x"),
     ("pointer", "y"), ("reaction", "emoji"), ("annotation.add", "annotation_id"),
     ("annotation.add", "screen"), ("annotation.add", "shape"),
     ("annotation.remove", "annotation_id"), ("chat", "text"), ("poll.open", "poll"),
     ("poll.open", "question"), ("poll.open", "options"), ("poll.answer", "poll"),
     ("poll.answer", "option"), ("poll.close", "poll"), ("progress", "screen"),
     ("chat.remove", "message"), ("poll.reveal", "poll"), ("timer.start", "seconds")],
)
def test_missing_required_field_is_bad_request(kind: str, field: str) -> None:
    actor = TRAINER if "trainer" in ALLOWED[kind] else STUDENT
    raw, state = SCENARIOS[kind](actor)
    del raw[field]
    error = reject(raw, actor, state)
    assert error.code == "bad_request"
    assert field in error.message


# -- records ------------------------------------------------------------------------------


def test_record_has_payload_kind_by_and_at_only() -> None:
    record = prepare_event({"kind": "screen.navigate", "screen": "intro-3"}, TRAINER,
                           SessionState(), now=NOW)
    assert record == {"kind": "screen.navigate", "screen": "intro-3",
                      "by": TRAINER.to_record(), "at": NOW}


def test_optional_fields_are_left_out_when_absent() -> None:
    pointer = prepare_event({"kind": "pointer", "x": 0, "y": 1}, STUDENT,
                            with_options(student_pointers=True), now=NOW)
    assert "screen" not in pointer
    progress = prepare_event({"kind": "progress", "screen": "s"}, STUDENT, SessionState(), now=NOW)
    assert set(progress) == {"kind", "screen", "by", "at"}
    full = prepare_event({"kind": "progress", "screen": "s", "completed": True, "score": 80},
                         STUDENT, SessionState(), now=NOW)
    assert (full["completed"], full["score"]) == (True, 80)


def test_record_does_not_share_the_clients_shape() -> None:
    shape = {"points": [[0, 0]]}
    record = prepare_event({"kind": "annotation.add", "annotation_id": "a", "screen": "s",
                            "shape": shape}, STUDENT, SessionState(), now=NOW)
    shape["points"].append([1, 1])
    assert record["shape"] == {"points": [[0, 0]]}


# -- state checks ---------------------------------------------------------------------------


def test_duplicate_annotation_id_is_bad_request() -> None:
    state = with_annotation(STUDENT, "a1")
    raw = {"kind": "annotation.add", "annotation_id": "a1", "screen": "s2", "shape": {}}
    assert reject(raw, TRAINER, state).code == "bad_request"


def test_annotation_id_can_be_reused_after_removal() -> None:
    state = with_annotation(STUDENT, "a1")
    apply(state, {"kind": "annotation.remove", "annotation_id": "a1"}, STUDENT)
    apply(state, {"kind": "annotation.add", "annotation_id": "a1", "screen": "s", "shape": {}},
          STUDENT2)
    assert state.annotations["a1"]["by"]["pid"] == STUDENT2.pid


@pytest.mark.parametrize(
    ("author", "remover", "outcome"),
    [(STUDENT, STUDENT, None), (STUDENT, TRAINER, None), (TRAINER, TRAINER2, None),
     (STUDENT, STUDENT2, "forbidden"), (TRAINER, STUDENT, "forbidden"),
     (STUDENT, PLANNER, "forbidden")],
)
def test_annotation_remove_by_author_or_trainer(
    author: Participant, remover: Participant, outcome: str | None
) -> None:
    state = with_annotation(author, "a1")
    raw = {"kind": "annotation.remove", "annotation_id": "a1"}
    if outcome is None:
        assert prepare_event(raw, remover, state, now=NOW)["annotation_id"] == "a1"
    else:
        assert reject(raw, remover, state).code == outcome


@pytest.mark.parametrize("actor", [TRAINER, STUDENT])
def test_annotation_remove_of_unknown_id_is_bad_request(actor: Participant) -> None:
    state = with_annotation(STUDENT, "a1")
    assert reject({"kind": "annotation.remove", "annotation_id": "zz"}, actor, state).code == (
        "bad_request"
    )


def test_hand_raise_twice_is_bad_request() -> None:
    state = with_hand(STUDENT)
    assert reject({"kind": "hand.raise"}, STUDENT, state).code == "bad_request"
    apply(state, {"kind": "hand.raise"}, STUDENT2)  # someone else's hand is fine
    assert [h["pid"] for h in state.hands] == [STUDENT.pid, STUDENT2.pid]


def test_student_lowers_own_hand_and_record_names_them() -> None:
    state = with_hand(STUDENT)
    record = prepare_event({"kind": "hand.lower"}, STUDENT, state, now=NOW)
    assert record["participant"] == STUDENT.to_record()
    same = prepare_event({"kind": "hand.lower", "participant": STUDENT.pid}, STUDENT, state,
                         now=NOW)
    assert same["participant"] == STUDENT.to_record()


def test_student_cannot_lower_another_hand() -> None:
    state = with_hand(STUDENT2)
    raw = {"kind": "hand.lower", "participant": STUDENT2.pid}
    assert reject(raw, STUDENT, state).code == "forbidden"


def test_student_lowering_a_hand_that_is_not_raised_is_bad_request() -> None:
    assert reject({"kind": "hand.lower"}, STUDENT, with_hand(STUDENT2)).code == "bad_request"


def test_trainer_lowers_a_raised_hand_and_record_carries_its_owner() -> None:
    state = with_hand(STUDENT)
    record = prepare_event({"kind": "hand.lower", "participant": STUDENT.pid}, TRAINER, state,
                           now=NOW)
    assert record["participant"] == STUDENT.to_record()
    assert record["by"] == TRAINER.to_record()


@pytest.mark.parametrize(
    "raw",
    [{"kind": "hand.lower"}, {"kind": "hand.lower", "participant": "p-nobody"},
     {"kind": "hand.lower", "participant": 3}, {"kind": "hand.lower", "participant": ""},
     {"kind": "hand.lower", "participant": None}],
)
def test_trainer_lower_needs_a_raised_hand(raw: dict[str, Any]) -> None:
    assert reject(raw, TRAINER, with_hand(STUDENT)).code == "bad_request"


def test_student_hand_lower_with_wrong_type_is_bad_request() -> None:
    raw = {"kind": "hand.lower", "participant": 3}
    assert reject(raw, STUDENT, with_hand(STUDENT)).code == "bad_request"


def test_poll_open_while_another_is_open_is_bad_request() -> None:
    raw = {"kind": "poll.open", "poll": "q2", "question": "?", "options": ["a", "b"]}
    assert reject(raw, TRAINER, with_poll()).code == "bad_request"


def test_poll_id_cannot_be_reused_in_a_session() -> None:
    state = with_poll(poll="q1")
    apply(state, {"kind": "poll.close", "poll": "q1"}, TRAINER)
    raw = {"kind": "poll.open", "poll": "q1", "question": "?", "options": ["a", "b"]}
    assert reject(raw, TRAINER, state).code == "bad_request"
    assert apply(state, {**raw, "poll": "q2"}, TRAINER)["poll"] == "q2"


@pytest.mark.parametrize("kind", ["poll.answer", "poll.close"])
def test_poll_commands_without_an_open_poll_are_bad_request(kind: str) -> None:
    actor = TRAINER if kind == "poll.close" else STUDENT
    raw = {"kind": kind, "poll": "q1"} | ({"option": 0} if kind == "poll.answer" else {})
    assert reject(raw, actor).code == "bad_request"
    state = with_poll(poll="q1")
    apply(state, {"kind": "poll.close", "poll": "q1"}, TRAINER)
    assert reject(raw, actor, state).code == "bad_request"


def test_poll_answer_counts_follow_changed_answers() -> None:
    state = with_poll(options=3)
    first = apply(state, {"kind": "poll.answer", "poll": "q1", "option": 0}, STUDENT)
    assert first["counts"] == [1, 0, 0]
    second = apply(state, {"kind": "poll.answer", "poll": "q1", "option": 2}, STUDENT2)
    assert second["counts"] == [1, 0, 1]
    changed = apply(state, {"kind": "poll.answer", "poll": "q1", "option": 2}, STUDENT)
    assert changed["counts"] == [0, 0, 2]
    again = apply(state, {"kind": "poll.answer", "poll": "q1", "option": 2}, STUDENT)
    assert again["counts"] == [0, 0, 2]
    closed = apply(state, {"kind": "poll.close", "poll": "q1"}, TRAINER)
    assert closed["counts"] == [0, 0, 2]
    assert closed["by"] == TRAINER.to_record()


def test_poll_answer_does_not_change_state_before_it_is_applied() -> None:
    state = with_poll()
    prepare_event({"kind": "poll.answer", "poll": "q1", "option": 1}, STUDENT, state, now=NOW)
    assert tally(state) == [0, 0, 0]


# -- messages -----------------------------------------------------------------------------------

SECRET = "leak.me@example.org"


@pytest.mark.parametrize(
    ("raw", "actor"),
    [
        ({"kind": "chat", "text": SECRET * 200}, STUDENT),
        ({"kind": "chat", "text": 1, SECRET: 1}, STUDENT),
        ({"kind": SECRET}, STUDENT),
        ({"kind": "screen.navigate", "screen": SECRET}, STUDENT),
        ({"kind": "progress", "screen": "s", "score": SECRET}, STUDENT),
        ({"kind": "hand.lower", "participant": SECRET}, TRAINER),
        ({"kind": "poll.open", "poll": "q", "question": "?", "options": [SECRET]}, TRAINER),
        ({"kind": "annotation.add", "annotation_id": "a", "screen": "s",
          "shape": {"x": SECRET * 1000}}, TRAINER),
    ],
)
def test_messages_never_echo_client_values(raw: dict[str, Any], actor: Participant) -> None:
    error = reject(raw, actor)
    assert SECRET not in error.message
    assert SECRET not in str(error)


def test_messages_never_carry_the_publishers_personal_data() -> None:
    messages = [
        reject({"kind": "poll.open", "poll": "q", "question": "?", "options": ["a", "b"]},
               STUDENT).message,
        reject({"kind": "chat", "text": "hi"}, PLANNER).message,
        reject({"kind": "hand.raise"}, STUDENT, with_hand(STUDENT)).message,
    ]
    for message in messages:
        for value in (STUDENT.email, STUDENT.name, STUDENT.sub, STUDENT.phone, PLANNER.name,
                      PLANNER.sub):
            assert str(value) not in message


def tally(state: SessionState) -> list[int]:
    """Counts of the open poll as a client sees them; empty when none is open."""
    return state.poll.tally() if state.poll is not None else []
