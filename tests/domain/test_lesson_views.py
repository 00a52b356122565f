"""What each recipient sees of the lesson's events and state: questions, removals, hidden polls."""

from __future__ import annotations

from typing import Any

import pytest

from classroom.domain.events import is_stored, prepare_event
from classroom.domain.options import OptionDefaults
from classroom.domain.participants import Participant
from classroom.domain.state import SessionState
from classroom.domain.views import View, referenced_pids, render_event, render_state
from classroom.protocol.frames import event_frame, history_event

NOW = 1764084000.25
TRAINER = Participant("p-trainer", "trainer", "sub-trainer", name="Tina T", display_name="Tina")
SAM = Participant("p-sam", "student", "sub-sam", name="Sam S", email="sam@example.org",
                  display_name="Sam")
SUE = Participant("p-sue", "student", "sub-sue", name="Sue S", display_name="Sue")
QUESTION = "Can I ask you privately about my grade?"


def record(actor: Participant, state: SessionState | None = None, **event: Any) -> dict[str, Any]:
    state = state if state is not None else SessionState()
    made = prepare_event(event, actor, state, now=NOW)
    if is_stored(made["kind"]):
        state.apply(state.offset + 1, made)
    return made


def shown(made: dict[str, Any], view: View, pid: str | None) -> dict[str, Any] | None:
    """As the hub renders it: personal only for a recipient the record is about."""
    return render_event(made, view, pid if pid in referenced_pids(made) else None)


# -- questions to the trainers ------------------------------------------------------------------

PLACEHOLDER = {"kind": "chat", "to": "trainers", "withheld": True, "at": NOW}


@pytest.mark.parametrize(("view", "pid"), [("student", "p-sue"), ("student", None),
                                           ("observer", "p-planner"), ("observer", None)])
def test_a_question_to_the_trainers_reaches_others_as_a_placeholder(
    view: View, pid: str | None,
) -> None:
    question = record(SAM, kind="chat", text=QUESTION, to="trainers")
    assert shown(question, view, pid) == PLACEHOLDER
    assert history_event(question, view, pid or "p-someone") == PLACEHOLDER
    frame = event_frame("s1", 7, "e", question, view, pid)
    assert frame is not None and frame["offset"] == 7 and frame["event"] == PLACEHOLDER


def test_trainers_and_the_author_read_the_question_in_full() -> None:
    question = record(SAM, kind="chat", text=QUESTION, to="trainers")
    for view, pid in (("trainer", None), ("trainer", "p-trainer"), ("student", "p-sam")):
        event = shown(question, view, pid)
        assert event is not None and event["text"] == QUESTION and event["to"] == "trainers"
    assert history_event(question, "student", "p-sam")["text"] == QUESTION  # type: ignore[index]


def test_a_trainers_question_to_the_trainers_is_withheld_from_students_too() -> None:
    question = record(TRAINER, kind="chat", text="note to my co-trainer", to="trainers")
    assert shown(question, "student", "p-sam") == PLACEHOLDER
    assert shown(question, "trainer", "p-other-trainer")["text"] == (  # type: ignore[index]
        "note to my co-trainer")


def test_a_removed_message_shows_as_removed_to_everyone() -> None:
    tombstone = {"kind": "chat", "removed": True, "at": NOW}
    for view in ("trainer", "student", "observer"):
        assert render_event(tombstone, view, None) == tombstone
        assert history_event(tombstone, view, "p-sam") == tombstone


# -- hidden poll results -------------------------------------------------------------------------


def hidden_poll() -> tuple[SessionState, dict[str, Any], dict[str, Any]]:
    state = SessionState()
    record(TRAINER, state, kind="poll.open", poll="q1", question="?", options=["a", "b"],
           hide_results=True)
    answer = record(SAM, state, kind="poll.answer", poll="q1", option=1)
    return state, answer, record(TRAINER, state, kind="poll.close", poll="q1")


@pytest.mark.parametrize(("view", "pid"), [("student", "p-sam"), ("student", "p-sue"),
                                           ("observer", None)])
def test_students_and_observers_see_no_counts_while_hidden(view: View, pid: str | None) -> None:
    _, answer, close = hidden_poll()
    assert shown(answer, view, pid) == {"kind": "poll.tally", "poll": "q1", "hidden": True,
                                        "at": NOW}
    closed = shown(close, view, pid)
    assert closed is not None and "counts" not in closed and closed["hidden"] is True


def test_trainers_see_the_counts_and_that_students_do_not() -> None:
    _, answer, close = hidden_poll()
    for made in (answer, close):
        event = shown(made, "trainer", None)
        assert event is not None and event["counts"] == [0, 1] and event["hidden"] is True


def test_state_hides_the_counts_of_open_and_last_polls_until_revealed() -> None:
    state = SessionState()
    record(TRAINER, state, kind="poll.open", poll="q1", question="?", options=["a", "b"],
           hide_results=True)
    record(SAM, state, kind="poll.answer", poll="q1", option=0)
    student = render_state(state.snapshot(), "student", "p-sue", now=NOW)
    assert student["poll"] == {"poll": "q1", "question": "?", "options": ["a", "b"],
                               "hidden": True}
    trainer = render_state(state.snapshot(), "trainer", "p-trainer", now=NOW)
    assert trainer["poll"]["counts"] == [1, 0] and trainer["poll"]["hidden"] is True
    assert trainer["poll"]["answers"][0]["option"] == 0
    record(TRAINER, state, kind="poll.close", poll="q1")
    student = render_state(state.snapshot(), "observer", None, now=NOW)
    assert student["poll"] is None
    assert student["last_poll"] == {"poll": "q1", "question": "?", "options": ["a", "b"],
                                    "hidden": True}
    record(TRAINER, state, kind="poll.reveal", poll="q1")
    student = render_state(state.snapshot(), "student", "p-sue", now=NOW)
    assert student["last_poll"] == {"poll": "q1", "question": "?", "options": ["a", "b"],
                                    "counts": [1, 0]}


# -- options and timer in state -------------------------------------------------------------------


def test_state_options_are_the_trainers_choice_over_the_tenants_defaults() -> None:
    state = SessionState()
    defaults = OptionDefaults(student_marks=False, student_pointers=True)
    assert render_state(state.snapshot(), "student", None, defaults=defaults)["options"] == {
        "student_marks": False, "student_pointers": True}
    record(TRAINER, state, kind="session.options", student_marks=True)
    for view in ("trainer", "student", "observer"):
        assert render_state(state.snapshot(), view, None, defaults=defaults)["options"] == {
            "student_marks": True, "student_pointers": True}


def test_state_shows_a_running_timer_and_none_once_it_ran_out() -> None:
    state = SessionState()
    record(TRAINER, state, kind="timer.start", seconds=120)
    timer = {"seconds": 120, "ends_at": NOW + 120}
    assert render_state(state.snapshot(), "student", None, now=NOW + 119)["timer"] == timer
    assert render_state(state.snapshot(), "student", None, now=NOW + 120)["timer"] is None
    record(TRAINER, state, kind="timer.stop")
    assert render_state(state.snapshot(), "trainer", None, now=NOW)["timer"] is None
