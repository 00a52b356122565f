"""The lesson's rules (issue 13): shapes by kind, clearing marks, options, hidden polls, timer."""

from __future__ import annotations

from typing import Any

import pytest

from classroom.domain.events import is_stored, prepare_event
from classroom.domain.limits import ANNOTATIONS_PER_SESSION
from classroom.domain.options import OptionDefaults
from classroom.domain.participants import Participant
from classroom.domain.refusals import RequestRefused
from classroom.domain.shapes import COLORS
from classroom.domain.state import SessionState

NOW = 1764084000.25
TRAINER = Participant("p-trainer", "trainer", "sub-trainer", display_name="Tina")
STUDENT = Participant("p-sam", "student", "sub-sam", name="Sam S", display_name="Sam")
OTHER = Participant("p-sue", "student", "sub-sue", display_name="Sue")
SERVER = Participant("server", "trainer", "")


class Lesson:
    """A session's stream: events prepared as the node does, stored ones applied in order."""

    def __init__(self, defaults: OptionDefaults = OptionDefaults()) -> None:  # noqa: B008
        self.state = SessionState()
        self.defaults = defaults
        self.now = NOW

    def publish(self, actor: Participant, **event: Any) -> dict[str, Any]:
        record = prepare_event(event, actor, self.state, now=self.now, defaults=self.defaults)
        if is_stored(record["kind"]):
            self.state.apply(self.state.offset + 1, record)
        return record

    def refused(self, actor: Participant, **event: Any) -> RequestRefused:
        with pytest.raises(RequestRefused) as caught:
            self.publish(actor, **event)
        return caught.value

    def mark(self, actor: Participant, annotation_id: str, screen: str = "s1",
             **shape: Any) -> dict[str, Any]:
        return self.publish(actor, kind="annotation.add", annotation_id=annotation_id,
                            screen=screen, shape=shape or {"type": "circle", "x": 0.5,
                                                           "y": 0.5, "r": 0.1})


# -- shapes by kind ---------------------------------------------------------------------------

GOOD_SHAPES: list[dict[str, Any]] = [
    {"type": "circle", "x": 0, "y": 1, "r": 0.005},
    {"type": "circle", "x": 0.5, "y": 0.5, "r": 0.5, "color": "red"},
    {"type": "stroke", "points": [[0, 0], [1, 1]]},
    {"type": "stroke", "points": [[0.1, 0.2]] * 500, "color": "purple", "width": 12},
    {"type": "stroke", "points": [[0.1, 0.2], [0.3, 0.4]], "width": 1.5},
    {"type": "text", "x": 0.2, "y": 0.8, "text": "t" * 200, "color": "black"},
    {"type": "text", "x": 1, "y": 0, "text": " see here "},
    {"type": "arrow", "from": [0, 0], "to": [5, 5]},  # another type: generic bounds only
    {"points": "M0 0 L1 1"},  # no type at all
]


@pytest.mark.parametrize("shape", GOOD_SHAPES)
def test_known_shapes_within_their_rules_and_other_shapes_are_kept(shape: dict[str, Any]) -> None:
    lesson = Lesson()
    record = lesson.publish(STUDENT, kind="annotation.add", annotation_id="a", screen="s",
                            shape=shape)
    assert record["shape"] == shape and "a" in lesson.state.annotations


@pytest.mark.parametrize(("shape", "message"), [
    ({"type": "circle", "x": 0.5, "y": 0.5}, "a circle shape needs x and y in 0..1, r in "
                                             "0.005..0.5 (field 'r')"),
    ({"type": "circle", "x": 1.5, "y": 0.5, "r": 0.1}, "(field 'x')"),
    ({"type": "circle", "x": 0.5, "y": -0.1, "r": 0.1}, "(field 'y')"),
    ({"type": "circle", "x": 0.5, "y": 0.5, "r": 0.004}, "(field 'r')"),
    ({"type": "circle", "x": 0.5, "y": 0.5, "r": 0.51}, "(field 'r')"),
    ({"type": "circle", "x": True, "y": 0.5, "r": 0.1}, "(field 'x')"),
    ({"type": "circle", "x": "0.5", "y": 0.5, "r": 0.1}, "(field 'x')"),
    ({"type": "circle", "x": 0.5, "y": 0.5, "r": 0.1, "fill": True},
     "a circle shape takes only type, x, y, r, color"),
    ({"type": "circle", "x": 0.5, "y": 0.5, "r": 0.1, "color": "#c00"},
     "shape color must be one of " + ", ".join(COLORS)),
    ({"type": "stroke", "points": [[0, 0]]}, "a stroke shape needs points: 2 to 500"),
    ({"type": "stroke", "points": [[0, 0]] * 501}, "(field 'points')"),
    ({"type": "stroke", "points": [[0, 0], [1, 1.01]]}, "(field 'points')"),
    ({"type": "stroke", "points": [[0, 0], [1]]}, "(field 'points')"),
    ({"type": "stroke", "points": [[0, 0], [1, 1, 1]]}, "(field 'points')"),
    ({"type": "stroke", "points": [[0, 0], {"x": 1, "y": 1}]}, "(field 'points')"),
    ({"type": "stroke", "points": "M0 0 L1 1"}, "(field 'points')"),
    ({"type": "stroke", "points": [[0, 0], [1, 1]], "width": 0.5}, "(field 'width')"),
    ({"type": "stroke", "points": [[0, 0], [1, 1]], "width": 13}, "(field 'width')"),
    ({"type": "stroke", "points": [[0, 0], [1, 1]], "color": "pink"}, "shape color must be"),
    ({"type": "text", "x": 0.5, "y": 0.5}, "a text shape needs x and y in 0..1, text of 1 to "
                                           "200 characters, not blank (field 'text')"),
    ({"type": "text", "x": 0.5, "y": 0.5, "text": ""}, "(field 'text')"),
    ({"type": "text", "x": 0.5, "y": 0.5, "text": " \t\n"}, "(field 'text')"),
    ({"type": "text", "x": 0.5, "y": 0.5, "text": "t" * 201}, "(field 'text')"),
    ({"type": "text", "x": 0.5, "y": 0.5, "text": "hi", "size": 3}, "a text shape takes only"),
])
def test_a_known_shape_that_breaks_its_rules_is_refused_clearly(
    shape: dict[str, Any], message: str,
) -> None:
    lesson = Lesson()
    for actor in (STUDENT, TRAINER):
        refusal = lesson.refused(actor, kind="annotation.add", annotation_id="a", screen="s",
                                 shape=shape)
        assert refusal.code == "bad_request" and message in refusal.message
    assert lesson.state.offset == 0


def test_a_shape_refusal_never_repeats_a_value() -> None:
    refusal = Lesson().refused(STUDENT, kind="annotation.add", annotation_id="a", screen="s",
                               shape={"type": "text", "x": 0.5, "y": 0.5,
                                      "text": "secret@example.org " * 20})
    assert "secret" not in refusal.message


def test_the_generic_bounds_come_before_the_kinds_rules() -> None:
    refusal = Lesson().refused(STUDENT, kind="annotation.add", annotation_id="a", screen="s",
                               shape={"type": "stroke", "points": [[0, 0]] * 1001})
    assert refusal.message == "shape has more than 1000 points"


# -- annotation.clear -----------------------------------------------------------------------


def marked_lesson() -> Lesson:
    lesson = Lesson()
    lesson.mark(STUDENT, "sam-1", "s1")
    lesson.mark(OTHER, "sue-1", "s1")
    lesson.mark(STUDENT, "sam-2", "s2")
    lesson.mark(TRAINER, "tina-1", "s1")
    return lesson


def test_a_student_clears_their_own_marks_only() -> None:
    lesson = marked_lesson()
    record = lesson.publish(STUDENT, kind="annotation.clear")
    assert record["removed"] == ["sam-1", "sam-2"] and "participant" not in record
    assert sorted(lesson.state.annotations) == ["sue-1", "tina-1"]
    assert lesson.refused(STUDENT, kind="annotation.clear").message == "no annotations to clear"


def test_a_student_naming_someone_else_is_forbidden() -> None:
    lesson = marked_lesson()
    refusal = lesson.refused(STUDENT, kind="annotation.clear", participant=OTHER.pid)
    assert refusal.code == "forbidden"
    assert refusal.message == "a student may only clear their own annotations"
    same = lesson.publish(STUDENT, kind="annotation.clear", participant=STUDENT.pid, screen="s2")
    assert same["removed"] == ["sam-2"]


@pytest.mark.parametrize(("event", "removed", "kept"), [
    ({}, ["sam-1", "sue-1", "sam-2", "tina-1"], []),
    ({"screen": "s1"}, ["sam-1", "sue-1", "tina-1"], ["sam-2"]),
    ({"participant": "p-sam"}, ["sam-1", "sam-2"], ["sue-1", "tina-1"]),
    ({"participant": "p-sam", "screen": "s1"}, ["sam-1"], ["sue-1", "sam-2", "tina-1"]),
])
def test_a_trainer_clears_anyones_or_everyones_marks(
    event: dict[str, Any], removed: list[str], kept: list[str],
) -> None:
    for actor in (TRAINER, SERVER):
        lesson = marked_lesson()
        assert lesson.publish(actor, kind="annotation.clear", **event)["removed"] == removed
        assert list(lesson.state.annotations) == kept


@pytest.mark.parametrize("event", [{"screen": "elsewhere"}, {"participant": "p-nobody"}])
def test_clearing_nothing_is_refused_and_stores_nothing(event: dict[str, Any]) -> None:
    lesson = marked_lesson()
    offset = lesson.state.offset
    refusal = lesson.refused(TRAINER, kind="annotation.clear", **event)
    assert (refusal.code, refusal.message) == ("bad_request", "no annotations to clear")
    assert lesson.state.offset == offset


def test_the_state_drops_exactly_the_marks_the_clear_named() -> None:
    lesson = marked_lesson()
    record = prepare_event({"kind": "annotation.clear"}, STUDENT, lesson.state, now=NOW)
    lesson.mark(STUDENT, "sam-3")  # a racing publish, checked against the same state
    lesson.state.apply(lesson.state.offset + 1, record)
    assert sorted(lesson.state.annotations) == ["sam-3", "sue-1", "tina-1"]
    lesson.mark(STUDENT, "sam-1")  # a cleared id is free again, and counted once
    assert lesson.state.annotation_refusal("p-sam", "s1", 10) is None


def test_clearing_frees_the_room_the_bounds_counted() -> None:
    lesson = Lesson()
    for n in range(ANNOTATIONS_PER_SESSION // 50):
        for m in range(50):
            lesson.mark(Participant(f"p-{n}", "student", f"u{n}"), f"a{n}-{m}", f"s{n}")
    assert "this session already has" in lesson.refused(TRAINER, kind="annotation.add",
                                                        annotation_id="x", screen="s",
                                                        shape={}).message
    lesson.publish(TRAINER, kind="annotation.clear", screen="s0")
    lesson.mark(TRAINER, "x")


# -- session options --------------------------------------------------------------------------


def test_student_pointers_are_off_until_the_trainer_switches_them_on() -> None:
    lesson = Lesson()
    pointer = {"kind": "pointer", "x": 0.5, "y": 0.5}
    refusal = lesson.refused(STUDENT, **pointer)
    assert (refusal.code, refusal.message) == ("forbidden",
                                               "student pointers are off in this session")
    assert lesson.publish(TRAINER, **pointer)["kind"] == "pointer"  # trainers always point
    record = lesson.publish(TRAINER, kind="session.options", student_pointers=True)
    assert record == {"kind": "session.options", "student_pointers": True,
                      "by": TRAINER.to_record(), "at": NOW}
    assert lesson.publish(STUDENT, **pointer)["x"] == 0.5
    lesson.publish(TRAINER, kind="session.options", student_pointers=False)
    assert lesson.refused(STUDENT, **pointer).code == "forbidden"


def test_with_student_marks_off_a_student_keeps_removing_and_clearing_their_own() -> None:
    lesson = Lesson()
    lesson.mark(STUDENT, "a1")
    lesson.mark(STUDENT, "a2")
    lesson.publish(TRAINER, kind="session.options", student_marks=False)
    refusal = lesson.refused(STUDENT, kind="annotation.add", annotation_id="a3", screen="s1",
                             shape={})
    assert (refusal.code, refusal.message) == ("forbidden",
                                               "the trainer has switched student marks off")
    lesson.publish(STUDENT, kind="annotation.remove", annotation_id="a1")
    assert lesson.publish(STUDENT, kind="annotation.clear")["removed"] == ["a2"]
    lesson.mark(TRAINER, "t1")  # trainers always mark
    lesson.publish(TRAINER, kind="session.options", student_marks=True)
    lesson.mark(STUDENT, "a3")


def test_an_option_event_changes_only_what_it_names() -> None:
    lesson = Lesson()
    lesson.publish(TRAINER, kind="session.options", student_marks=False, student_pointers=True)
    lesson.publish(TRAINER, kind="session.options", student_pointers=False)
    assert lesson.state.options == {"student_marks": False, "student_pointers": False}


def test_an_empty_options_event_is_refused() -> None:
    refusal = Lesson().refused(TRAINER, kind="session.options")
    assert refusal.message == "session.options needs student_marks or student_pointers"


def test_the_tenants_defaults_hold_until_the_trainer_decides() -> None:
    lesson = Lesson(OptionDefaults(student_marks=False, student_pointers=True))
    assert lesson.publish(STUDENT, kind="pointer", x=0, y=0)["kind"] == "pointer"
    assert lesson.refused(STUDENT, kind="annotation.add", annotation_id="a", screen="s",
                          shape={}).code == "forbidden"
    lesson.publish(TRAINER, kind="session.options", student_marks=True)
    lesson.mark(STUDENT, "a")


# -- polls with hidden results ----------------------------------------------------------------


def hidden_poll(lesson: Lesson, poll: str = "q1") -> None:
    lesson.publish(TRAINER, kind="poll.open", poll=poll, question="Which?",
                   options=["a", "b", "c"], hide_results=True)


def test_a_hidden_polls_records_say_so_until_revealed() -> None:
    lesson = Lesson()
    hidden_poll(lesson)
    answer = lesson.publish(STUDENT, kind="poll.answer", poll="q1", option=1)
    assert answer["counts"] == [0, 1, 0] and answer["hidden"] is True
    reveal = lesson.publish(TRAINER, kind="poll.reveal", poll="q1")
    assert reveal["counts"] == [0, 1, 0]
    later = lesson.publish(OTHER, kind="poll.answer", poll="q1", option=2)
    assert "hidden" not in later
    closed = lesson.publish(TRAINER, kind="poll.close", poll="q1")
    assert closed["counts"] == [0, 1, 1] and "hidden" not in closed


def test_a_poll_without_hidden_results_never_says_hidden() -> None:
    lesson = Lesson()
    lesson.publish(TRAINER, kind="poll.open", poll="q1", question="?", options=["a", "b"])
    assert "hidden" not in lesson.publish(STUDENT, kind="poll.answer", poll="q1", option=0)
    refusal = lesson.refused(TRAINER, kind="poll.reveal", poll="q1")
    assert refusal.message == "the results of that poll are already shown"
    assert "hidden" not in lesson.publish(TRAINER, kind="poll.close", poll="q1")


def test_the_last_closed_poll_is_kept_and_may_be_revealed_once() -> None:
    lesson = Lesson()
    hidden_poll(lesson)
    lesson.publish(STUDENT, kind="poll.answer", poll="q1", option=0)
    closed = lesson.publish(TRAINER, kind="poll.close", poll="q1")
    assert closed["hidden"] is True and closed["counts"] == [1, 0, 0]
    last = lesson.state.last_poll
    assert last is not None and (last.poll, last.counts, last.hidden) == ("q1", [1, 0, 0], True)
    lesson.publish(TRAINER, kind="poll.open", poll="q2", question="Next?", options=["x", "y"])
    assert lesson.publish(TRAINER, kind="poll.reveal", poll="q1")["counts"] == [1, 0, 0]
    assert not lesson.state.last_poll.hidden  # type: ignore[union-attr]
    assert lesson.refused(TRAINER, kind="poll.reveal", poll="q1").message == (
        "the results of that poll are already shown")


def test_only_the_open_or_the_last_closed_poll_may_be_revealed() -> None:
    lesson = Lesson()
    hidden_poll(lesson, "q1")
    lesson.publish(TRAINER, kind="poll.close", poll="q1")
    hidden_poll(lesson, "q2")
    lesson.publish(TRAINER, kind="poll.close", poll="q2")
    for poll in ("q1", "never"):
        refusal = lesson.refused(TRAINER, kind="poll.reveal", poll=poll)
        assert refusal.message == "that poll is neither open nor the last one closed"
    assert lesson.refused(STUDENT, kind="poll.reveal", poll="q2").code == "forbidden"


# -- the lesson timer -------------------------------------------------------------------------


def test_a_timer_runs_until_its_end_or_a_stop() -> None:
    lesson = Lesson()
    started = lesson.publish(TRAINER, kind="timer.start", seconds=300)
    assert started["ends_at"] == NOW + 300 == started["at"] + 300
    assert lesson.state.running_timer(NOW + 299) == {"seconds": 300, "ends_at": NOW + 300}
    assert lesson.state.running_timer(NOW + 300) is None
    lesson.now = NOW + 10
    again = lesson.publish(TRAINER, kind="timer.start", seconds=60)  # replaces the running one
    assert lesson.state.timer == {"seconds": 60, "ends_at": again["ends_at"]}
    lesson.publish(TRAINER, kind="timer.stop")
    assert lesson.state.timer is None
    assert lesson.refused(TRAINER, kind="timer.stop").message == "no timer is running"


def test_stopping_a_timer_that_ran_out_is_refused() -> None:
    lesson = Lesson()
    lesson.publish(TRAINER, kind="timer.start", seconds=5)
    lesson.now = NOW + 5
    refusal = lesson.refused(TRAINER, kind="timer.stop")
    assert (refusal.code, refusal.message) == ("bad_request", "no timer is running")


# -- chat.remove (what the state can tell) -----------------------------------------------------


def test_a_removal_beyond_the_newest_offset_is_refused() -> None:
    lesson = Lesson()
    lesson.publish(STUDENT, kind="chat", text="hi")
    assert lesson.publish(TRAINER, kind="chat.remove", message=1)["message"] == 1
    refusal = lesson.refused(TRAINER, kind="chat.remove", message=3)
    assert refusal.message == "no chat message at that offset"
    assert lesson.refused(STUDENT, kind="chat.remove", message=1).code == "forbidden"
