"""Privacy views (protocol section 6): what each recipient sees of whom, in every frame."""

from __future__ import annotations

import json
from typing import Any

import pytest

from auth.identity import Role
from classroom.domain.events import is_stored, prepare_event
from classroom.domain.participants import Participant
from classroom.domain.state import SessionState
from classroom.domain.views import (
    View,
    referenced_pids,
    render_event,
    render_participant,
    render_progress,
    render_state,
    view_for_role,
)

TRAINER = Participant(
    "p-trainer", "trainer", "sub-trainer-7001", name="Tina Trainerova",
    email="tina.trainer@example.org", phone="+31-600-000-001", username="tina.t",
    display_name="Tina",
)
TRAINER2 = Participant(
    "p-trainer2", "trainer", "sub-trainer-7002", name="Theo Tutorsen",
    email="theo.tutor@example.org", phone="+31-600-000-002", username="theo.t",
    display_name="Theo",
)
ALICE = Participant(
    "p-alice", "student", "sub-alice-8001", name="Alice Aardvark",
    email="alice.a@example.org", phone="+31-600-000-003", username="alice.a",
    display_name="Alice",
)
BOB = Participant(
    "p-bob", "student", "sub-bob-8002", name="Bob Bumblebee",
    email="bob.b@example.org", phone="+31-600-000-004", username="bob.b",
    display_name="Bob",
)
PLANNER = Participant(
    "p-planner", "planner", "sub-planner-9001", name="Pia Plannerstein",
    email="pia.p@example.org", phone="+31-600-000-005", username="pia.p",
    display_name="Pia",
)
CONTENT = Participant(
    "p-content", "content_manager", "sub-content-9002", name="Carl Contentius",
    email="carl.c@example.org", phone="+31-600-000-006", username="carl.c",
    display_name="Carl",
)
EVERYONE = (TRAINER, TRAINER2, ALICE, BOB, PLANNER, CONTENT)
ALL = {"pid", "role", "sub", "name", "email", "phone", "username", "display_name"}
NAMED = {"pid", "role", "display_name"}
BARE = {"pid", "role"}


@pytest.mark.parametrize(
    ("role", "view"),
    [("trainer", "trainer"), ("student", "student"), ("planner", "observer"),
     ("content_manager", "observer")],
)
def test_view_for_role(role: Role, view: View) -> None:
    assert view_for_role(role) == view


@pytest.mark.parametrize(
    ("view", "subject", "fields"),
    [
        ("trainer", ALICE, ALL),
        ("trainer", TRAINER2, NAMED),
        ("trainer", PLANNER, BARE),
        ("trainer", CONTENT, BARE),
        ("student", BOB, NAMED),
        ("student", TRAINER, NAMED),
        ("student", PLANNER, BARE),
        ("student", CONTENT, BARE),
        ("observer", ALICE, BARE),
        ("observer", TRAINER, BARE),
        ("observer", CONTENT, BARE),
    ],
)
def test_render_participant_table(view: View, subject: Participant, fields: set[str]) -> None:
    shown = render_participant(subject.to_record(), view, "p-someone-else")
    assert set(shown) == fields
    assert all(shown[key] == getattr(subject, key) for key in fields)
    assert render_participant(subject.to_record(), view, None) == shown


@pytest.mark.parametrize("view", ["trainer", "student", "observer"])
@pytest.mark.parametrize("subject", EVERYONE)
def test_everyone_sees_all_of_themselves(view: View, subject: Participant) -> None:
    assert render_participant(subject.to_record(), view, subject.pid) == subject.to_record()


def test_missing_fields_are_left_out_not_nulled() -> None:
    bare = Participant("p-x", "student", "sub-x")
    assert render_participant(bare.to_record(), "trainer", None) == {
        "pid": "p-x", "role": "student", "sub": "sub-x",
    }
    assert render_participant(bare.to_record(), "student", None) == {"pid": "p-x",
                                                                      "role": "student"}


def test_unknown_roles_get_the_bare_minimum() -> None:
    record = {"pid": "p-srv", "role": "server", "sub": "x", "email": "srv@example.org"}
    assert render_participant(record, "trainer", None) == {"pid": "p-srv", "role": "server"}


# -- events ------------------------------------------------------------------------------

NOW = 1764084000.5


def rec(kind: str, by: Participant, **payload: Any) -> dict[str, Any]:
    return {"kind": kind, **payload, "by": by.to_record(), "at": NOW}


def test_ordinary_events_are_copied_with_by_rendered() -> None:
    record = rec("chat", ALICE, text="hi")
    assert render_event(record, "student", None) == {
        "kind": "chat", "text": "hi", "by": {"pid": "p-alice", "role": "student",
                                             "display_name": "Alice"}, "at": NOW,
    }
    assert render_event(record, "observer", None)["by"] == {"pid": "p-alice", "role": "student"}
    assert render_event(record, "trainer", None)["by"] == ALICE.to_record()
    assert render_event(record, "student", "p-alice")["by"] == ALICE.to_record()
    assert record["by"] == ALICE.to_record()  # the input is left alone


def test_poll_answer_trainers_see_who_others_see_a_tally() -> None:
    record = rec("poll.answer", ALICE, poll="q1", option=1, counts=[0, 1, 0])
    assert render_event(record, "trainer", None) == {**record, "by": ALICE.to_record()}
    tally = {"kind": "poll.tally", "poll": "q1", "counts": [0, 1, 0], "at": NOW}
    assert render_event(record, "student", None) == tally
    assert render_event(record, "student", "p-alice") == tally
    assert render_event(record, "observer", None) == tally


@pytest.mark.parametrize("view", ["trainer", "student", "observer"])
def test_progress_is_never_an_event(view: View) -> None:
    assert render_event(rec("progress", ALICE, screen="s"), view, None) is None


def test_hand_lower_renders_the_participant_too() -> None:
    record = rec("hand.lower", TRAINER, participant=ALICE.to_record())
    for_bob = render_event(record, "student", None)
    assert for_bob is not None
    assert for_bob["participant"] == {"pid": "p-alice", "role": "student", "display_name": "Alice"}
    assert for_bob["by"] == {"pid": "p-trainer", "role": "trainer", "display_name": "Tina"}
    for_alice = render_event(record, "student", "p-alice")
    assert for_alice is not None
    assert for_alice["participant"] == ALICE.to_record()
    for_trainer = render_event(record, "trainer", None)
    assert for_trainer is not None
    assert for_trainer["participant"] == ALICE.to_record()
    assert for_trainer["by"] == {"pid": "p-trainer", "role": "trainer", "display_name": "Tina"}
    assert render_event(record, "trainer", "p-trainer")["by"] == TRAINER.to_record()


def test_render_progress_for_trainers_only() -> None:
    record = rec("progress", ALICE, screen="s3", completed=True, score=87.5)
    assert render_progress(record, "trainer", None) == {
        "participant": ALICE.to_record(),
        "progress": {"screen": "s3", "completed": True, "score": 87.5, "at": NOW},
    }
    minimal = render_progress(rec("progress", ALICE, screen="s1"), "trainer", None)
    assert minimal == {"participant": ALICE.to_record(), "progress": {"screen": "s1", "at": NOW}}
    assert render_progress(record, "student", None) is None
    assert render_progress(record, "student", "p-alice") is None
    assert render_progress(record, "observer", None) is None
    assert render_progress(rec("chat", ALICE, text="x"), "trainer", None) is None


def test_referenced_pids() -> None:
    assert referenced_pids(rec("chat", ALICE, text="x")) == {"p-alice"}
    lower = rec("hand.lower", TRAINER, participant=ALICE.to_record())
    assert referenced_pids(lower) == {"p-trainer", "p-alice"}
    assert referenced_pids({"kind": "x"}) == frozenset()


# -- state ---------------------------------------------------------------------------------


def session() -> tuple[SessionState, list[dict[str, Any]]]:
    """A scripted session through the real event rules: every kind, every role."""
    state = SessionState()
    records: list[dict[str, Any]] = []
    script: list[tuple[Participant, dict[str, Any]]] = [
        (TRAINER, {"kind": "screen.navigate", "screen": "s1"}),
        (TRAINER, {"kind": "screen.lock", "locked": True}),
        (ALICE, {"kind": "hand.raise"}),
        (BOB, {"kind": "hand.raise"}),
        (ALICE, {"kind": "annotation.add", "annotation_id": "a1", "screen": "s1",
                 "shape": {"type": "arrow"}}),
        (TRAINER2, {"kind": "annotation.add", "annotation_id": "a2", "screen": "s1",
                    "shape": {"type": "box"}}),
        (BOB, {"kind": "annotation.add", "annotation_id": "a3", "screen": "s1", "shape": {}}),
        (TRAINER, {"kind": "annotation.remove", "annotation_id": "a3"}),
        (ALICE, {"kind": "chat", "text": "question"}),
        (TRAINER, {"kind": "chat", "text": "answer"}),
        (TRAINER, {"kind": "session.options", "student_pointers": True}),
        (BOB, {"kind": "pointer", "x": 0.5, "y": 0.5, "screen": "s1"}),
        (ALICE, {"kind": "chat", "text": "a question for the trainer", "to": "trainers"}),
        (ALICE, {"kind": "annotation.add", "annotation_id": "a4", "screen": "s2",
                 "shape": {"type": "circle", "x": 0.5, "y": 0.5, "r": 0.1, "color": "red"}}),
        (TRAINER, {"kind": "annotation.clear", "participant": "p-alice", "screen": "s2"}),
        (TRAINER, {"kind": "timer.start", "seconds": 600}),
        (TRAINER, {"kind": "reaction", "emoji": "👏"}),
        (TRAINER, {"kind": "poll.open", "poll": "q0", "question": "?", "options": ["a", "b"],
                   "hide_results": True}),
        (BOB, {"kind": "poll.answer", "poll": "q0", "option": 0}),
        (TRAINER, {"kind": "poll.close", "poll": "q0"}),
        (TRAINER, {"kind": "poll.reveal", "poll": "q0"}),
        (TRAINER, {"kind": "poll.open", "poll": "q1", "question": "Q", "options": ["x", "y"]}),
        (ALICE, {"kind": "poll.answer", "poll": "q1", "option": 0}),
        (BOB, {"kind": "poll.answer", "poll": "q1", "option": 1}),
        (ALICE, {"kind": "poll.answer", "poll": "q1", "option": 1}),
        (ALICE, {"kind": "progress", "screen": "s1", "completed": True, "score": 75}),
        (BOB, {"kind": "progress", "screen": "s1"}),
        (TRAINER, {"kind": "hand.lower", "participant": "p-bob"}),
        (BOB, {"kind": "hand.raise"}),
        (ALICE, {"kind": "hand.lower"}),
    ]
    for now, (actor, raw) in enumerate(script):
        record = prepare_event(raw, actor, state, now=float(now))
        records.append(record)
        if is_stored(record["kind"]):
            state.apply(state.offset + 1, record)
    return state, records


def test_render_state_for_trainers_has_answers() -> None:
    state, _ = session()
    shown = render_state(state.snapshot(), "trainer", "p-trainer")
    assert (shown["screen"], shown["locked"]) == ("s1", True)
    assert shown["poll"] == {
        "poll": "q1", "question": "Q", "options": ["x", "y"], "counts": [0, 2],
        "answers": [{"participant": ALICE.to_record(), "option": 1},
                    {"participant": BOB.to_record(), "option": 1}],
    }
    assert shown["last_poll"] == {"poll": "q0", "question": "?", "options": ["a", "b"],
                                  "counts": [1, 0]}
    assert shown["options"] == {"student_marks": True, "student_pointers": True}
    assert shown["timer"] is None  # the script's clock is 1970: the timer ran out long ago
    assert shown["hands"] == [BOB.to_record()]
    assert [a["annotation_id"] for a in shown["annotations"]] == ["a1", "a2"]
    assert shown["annotations"][0]["by"] == ALICE.to_record()
    assert shown["annotations"][1]["by"] == {"pid": "p-trainer2", "role": "trainer",
                                             "display_name": "Theo"}


@pytest.mark.parametrize(("view", "me"), [("student", "p-alice"), ("observer", "p-planner")])
def test_render_state_for_others_has_counts_only(view: View, me: str) -> None:
    state, _ = session()
    shown = render_state(state.snapshot(), view, me)
    assert shown["poll"] == {"poll": "q1", "question": "Q", "options": ["x", "y"],
                             "counts": [0, 2]}
    assert shown["last_poll"] == {"poll": "q0", "question": "?", "options": ["a", "b"],
                                  "counts": [1, 0]}  # revealed
    bob = {"pid": "p-bob", "role": "student", "display_name": "Bob"}
    assert shown["hands"] == [bob if view == "student" else {"pid": "p-bob", "role": "student"}]
    assert shown["annotations"][0]["shape"] == {"type": "arrow"}


def test_render_state_without_poll() -> None:
    shown = render_state(SessionState().snapshot(), "student", None)
    assert shown == {"screen": None, "locked": False, "poll": None, "hands": [],
                     "annotations": [], "timer": None, "last_poll": None,
                     "options": {"student_marks": True, "student_pointers": False}}


def test_rendering_leaves_the_snapshot_alone() -> None:
    state, _ = session()
    snap = state.snapshot()
    before = json.dumps(snap, sort_keys=True)
    for view in ("trainer", "student", "observer"):
        render_state(snap, view, None)
    assert json.dumps(snap, sort_keys=True) == before


# -- no leaks --------------------------------------------------------------------------------


def secrets_of(*people: Participant) -> list[str]:
    """What must never reach a recipient who is not allowed to see these people."""
    values: list[str] = []
    for person in people:
        values += [str(v) for v in (person.email, person.phone, person.sub, person.name,
                                    person.username) if v]
    return values


def everything_seen(view: View, self_pid: str | None) -> str:
    """All a recipient of ``view`` could receive: events, progress, history, state."""
    state, records = session()
    out: list[Any] = [render_state(state.snapshot(), view, self_pid)]
    for record in records:
        # The hub personalises only records about the member; both ways must be safe.
        personal = self_pid if self_pid in referenced_pids(record) else None
        for pid in {personal, self_pid}:
            out.append(render_event(record, view, pid))
            out.append(render_progress(record, view, pid))
    return json.dumps(out, ensure_ascii=False)


@pytest.mark.parametrize(
    ("view", "self_pid", "visible", "hidden"),
    [
        ("student", "p-alice", [ALICE], [TRAINER, TRAINER2, BOB, PLANNER, CONTENT]),
        ("student", "p-bob", [BOB], [TRAINER, TRAINER2, ALICE, PLANNER, CONTENT]),
        ("student", None, [], list(EVERYONE)),
        ("observer", "p-planner", [], list(EVERYONE)),
        ("observer", None, [], list(EVERYONE)),
        ("trainer", "p-trainer", [TRAINER, ALICE, BOB], [TRAINER2, PLANNER, CONTENT]),
    ],
)
def test_nothing_personal_leaks_across_a_whole_session(
    view: View, self_pid: str | None, visible: list[Participant], hidden: list[Participant]
) -> None:
    seen = everything_seen(view, self_pid)
    for secret in secrets_of(*hidden):
        assert secret not in seen, f"{view} view leaks a value of another user"
    # The test would be vacuous if the visible data never made it out at all.
    for person in visible:
        assert str(person.email) in seen


def test_observers_see_no_names_at_all() -> None:
    seen = everything_seen("observer", None)
    for person in EVERYONE:
        assert str(person.display_name) not in seen


def test_students_never_see_who_answered_a_poll() -> None:
    _, records = session()
    answers = [r for r in records if r["kind"] == "poll.answer"]
    for record in answers:
        for view in ("student", "observer"):
            shown = render_event(record, view, None)
            assert shown is not None
            assert "by" not in shown
            assert "option" not in shown
