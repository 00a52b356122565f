"""Bounds on live state (classroom.domain.limits): refused before storing, held by the reducer."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from classroom.domain import limits
from classroom.domain.erasure import ANONYMOUS_PID
from classroom.domain.events import prepare_event
from classroom.domain.participants import Participant
from classroom.domain.refusals import RequestRefused
from classroom.domain.state import SessionState

NOW = 1764084000.0
TRAINER = Participant("p-t", "trainer", "sub-t", display_name="Tina")


def student(n: int) -> Participant:
    return Participant(f"p-{n}", "student", f"sub-{n}", display_name=f"S{n}")


class Session:
    """Publishes like the node: prepare against the state, then apply at the next offset."""

    def __init__(self) -> None:
        self.state = SessionState()
        self.records: list[dict[str, Any]] = []
        self.ids = 0

    def publish(self, actor: Participant, **event: Any) -> dict[str, Any]:
        record = prepare_event(event, actor, self.state, now=NOW)
        self.records.append(record)
        self.state.apply(len(self.records), record)
        return record

    def mark(self, actor: Participant, screen: str = "s1", **shape: Any) -> dict[str, Any]:
        self.ids += 1
        return self.publish(actor, kind="annotation.add", annotation_id=f"a{self.ids}",
                            screen=screen, shape=shape or {"type": "dot"})

    def refused(self, actor: Participant, screen: str = "s1", **shape: Any) -> RequestRefused:
        """The next mark is refused, and nothing changed: no offset, no annotation."""
        offset, count = self.state.offset, len(self.state.annotations)
        with pytest.raises(RequestRefused) as info:
            self.mark(actor, screen, **shape)
        assert info.value.code == "bad_request"
        assert (self.state.offset, len(self.state.annotations)) == (offset, count)
        assert len(self.records) == offset
        return info.value

    def replay(self) -> SessionState:
        fresh = SessionState()
        for offset, record in enumerate(self.records, start=1):
            fresh.apply(offset, record)
        return fresh


def padding(total: int) -> dict[str, Any]:
    """A shape of exactly ``total`` bytes of JSON."""
    base = len(orjson.dumps({"type": "path", "d": ""}))
    return {"type": "path", "d": "x" * (total - base)}


def test_the_limits_fit_a_lesson_of_thirty() -> None:
    assert limits.ANNOTATIONS_PER_PERSON_PER_SCREEN * 31 > limits.ANNOTATIONS_PER_SCREEN
    assert limits.ANNOTATIONS_PER_SCREEN < limits.ANNOTATIONS_PER_SESSION
    assert limits.ANNOTATION_BYTES_PER_SCREEN < limits.ANNOTATION_BYTES_PER_SESSION
    assert limits.SHAPE_MAX_BYTES < limits.ANNOTATION_BYTES_PER_SCREEN


def test_marks_per_person_per_screen() -> None:
    s = Session()
    alice, bob = student(1), student(2)
    for _ in range(limits.ANNOTATIONS_PER_PERSON_PER_SCREEN):
        s.mark(alice)
    refusal = s.refused(alice)
    assert refusal.message == "you already have 50 annotations on this screen; remove one first"
    s.mark(bob)  # others still may
    s.mark(alice, screen="s2")  # and so may she, elsewhere
    s.publish(alice, kind="annotation.remove", annotation_id="a1")
    s.mark(alice)  # removing one frees its place
    s.refused(alice)


def test_marks_per_screen() -> None:
    s = Session()
    per_person = limits.ANNOTATIONS_PER_PERSON_PER_SCREEN
    people = limits.ANNOTATIONS_PER_SCREEN // per_person
    for n in range(people):
        for _ in range(per_person):
            s.mark(student(n))
    assert len(s.state.annotations) == limits.ANNOTATIONS_PER_SCREEN
    refusal = s.refused(student(people))
    assert refusal.message == "this screen already has 500 annotations; remove one first"
    assert s.refused(TRAINER).message == refusal.message
    s.mark(student(people), screen="s2")


def test_marks_per_session() -> None:
    s = Session()
    per_person = limits.ANNOTATIONS_PER_PERSON_PER_SCREEN
    screens = limits.ANNOTATIONS_PER_SESSION // per_person
    for screen in range(screens):
        for _ in range(per_person):
            s.mark(TRAINER, screen=f"s{screen}")
    assert len(s.state.annotations) == limits.ANNOTATIONS_PER_SESSION
    refusal = s.refused(student(1), screen="fresh")
    assert refusal.message == "this session already has 5000 annotations; remove one first"


def test_shape_bytes_per_screen() -> None:
    s = Session()
    size = limits.SHAPE_MAX_BYTES
    fits = limits.ANNOTATION_BYTES_PER_SCREEN // size  # 64 marks of 16 KiB fill the screen
    for n in range(fits):
        s.mark(student(n // 10), **padding(size))
    refusal = s.refused(student(99), **padding(size))
    assert refusal.message == ("the annotations on this screen would pass 1048576 bytes of "
                               "JSON; remove one first")
    s.mark(student(99), **padding(size), screen="s2")


def test_shape_bytes_per_session() -> None:
    s = Session()
    size = limits.SHAPE_MAX_BYTES
    per_screen = limits.ANNOTATION_BYTES_PER_SCREEN // size
    fits = limits.ANNOTATION_BYTES_PER_SESSION // size  # 512 marks of 16 KiB
    for n in range(fits):
        s.mark(student(n % 40), screen=f"s{n // per_screen}", **padding(size))
    message = "the annotations of this session would pass 8388608 bytes of JSON; remove one first"
    assert s.refused(student(99), screen="fresh").message == message
    s.publish(TRAINER, kind="annotation.remove", annotation_id="a1")
    s.mark(student(99), screen="fresh")  # a small mark fits in the room one removal made
    assert s.refused(student(99), screen="fresh", **padding(size)).message == message


def test_points_per_stroke() -> None:
    s = Session()
    points = [[0, 0]] * limits.SHAPE_MAX_POINTS
    s.mark(TRAINER, type="scribble", points=points)  # not a kind the pages draw: generic bounds
    refusal = s.refused(TRAINER, type="scribble", points=[*points, [1, 1]])
    assert refusal.message == "shape has more than 1000 points"
    s.mark(TRAINER, type="path", points="M0 0 L1 1")  # only a list of points is counted
    with pytest.raises(RequestRefused, match="more than 1000 points"):
        prepare_event({"kind": "annotation.add", "annotation_id": "x", "screen": "s1",
                       "shape": {"points": [[0, 0]] * 1001}}, TRAINER, SessionState(), now=NOW)


def nest(depth: int) -> dict[str, Any]:
    """A shape of ``depth`` levels (itself the first), alternating objects and lists."""
    value: Any = 0
    for level in range(depth - 1):
        value = [value] if level % 2 else {"a": value}
    return {"type": "path", "d": value}


@pytest.mark.parametrize("depth", [253, 300, 2000])
def test_shape_nesting_depth(depth: int) -> None:
    """Found by tests/fuzz: a shape nested 253 deep fitted every bound, but no frame that
    carries it (event, joined, history) could be encoded as JSON (orjson stops at 255)."""
    s = Session()
    s.mark(TRAINER, **nest(limits.SHAPE_MAX_DEPTH))
    refusal = s.refused(TRAINER, **nest(limits.SHAPE_MAX_DEPTH + 1))
    assert refusal.message == "shape is nested more than 32 levels deep"
    assert s.refused(TRAINER, **nest(depth)).message == refusal.message  # not "not JSON"
    record = {"kind": "annotation.add", "annotation_id": "deep", "screen": "s1",
              "shape": nest(depth), "by": TRAINER.to_record(), "at": NOW}
    s.state.apply(len(s.records) + 1, record)  # a stored record past the bound is ignored
    assert "deep" not in s.state.annotations


def test_racing_publishes_past_a_bound_are_ignored_alike_everywhere() -> None:
    """Two nodes check against the same state; both records are stored; the state holds."""
    s = Session()
    alice = student(1)
    for _ in range(limits.ANNOTATIONS_PER_PERSON_PER_SCREEN - 1):
        s.mark(alice)
    racing = [prepare_event({"kind": "annotation.add", "annotation_id": f"race{n}",
                             "screen": "s1", "shape": {"n": n}}, alice, s.state, now=NOW)
              for n in range(2)]
    for record in racing:
        s.records.append(record)
        s.state.apply(len(s.records), record)
    assert "race0" in s.state.annotations and "race1" not in s.state.annotations
    assert s.state.offset == len(s.records)
    replayed = s.replay()
    assert replayed.snapshot() == s.state.snapshot()
    assert replayed.annotations.keys() == s.state.annotations.keys()
    s.refused(alice)
    s.publish(alice, kind="annotation.remove", annotation_id="race0")
    s.mark(alice)


def test_the_reducer_ignores_marks_it_could_never_have_accepted() -> None:
    state = SessionState()
    by = student(1).to_record()
    bad = [
        {"annotation_id": "a", "screen": "s1", "shape": {"points": [[0, 0]] * 1001}},
        {"annotation_id": "b", "screen": "s1", "shape": padding(limits.SHAPE_MAX_BYTES + 1)},
        {"annotation_id": "c", "screen": "s1", "shape": "not an object"},
        {"annotation_id": "d", "screen": None, "shape": {}},
    ]
    for offset, fields in enumerate(bad, start=1):
        state.apply(offset, {"kind": "annotation.add", "by": by, **fields})
    assert state.offset == len(bad)
    assert state.annotations == {}


def test_the_reducer_bounds_a_screen_whoever_publishes() -> None:
    state = SessionState()
    for n in range(limits.ANNOTATIONS_PER_SCREEN + 100):
        state.apply(n + 1, {"kind": "annotation.add", "annotation_id": f"a{n}",
                             "screen": "s1", "shape": {}, "by": student(n).to_record()})
    assert len(state.annotations) == limits.ANNOTATIONS_PER_SCREEN
    assert f"a{limits.ANNOTATIONS_PER_SCREEN - 1}" in state.annotations
    assert f"a{limits.ANNOTATIONS_PER_SCREEN}" not in state.annotations


def test_erasure_keeps_the_counts() -> None:
    s = Session()
    alice = student(1)
    for _ in range(limits.ANNOTATIONS_PER_PERSON_PER_SCREEN):
        s.mark(alice)
    s.state.erase_user(alice.sub)
    assert all(a["by"]["pid"] == ANONYMOUS_PID for a in s.state.annotations.values())
    s.refused(alice)
    s.publish(TRAINER, kind="annotation.remove", annotation_id="a1")
    s.mark(alice)


def test_used_poll_ids_are_bounded_and_the_oldest_may_be_reused() -> None:
    s = Session()
    remembered = limits.POLL_IDS_REMEMBERED
    for n in range(remembered + 1):
        s.publish(TRAINER, kind="poll.open", poll=f"q{n}", question="?", options=["a", "b"])
        s.publish(TRAINER, kind="poll.close", poll=f"q{n}")
    assert len(s.state.used_polls) == remembered
    assert "q0" not in s.state.used_polls and f"q{remembered}" in s.state.used_polls
    s.publish(TRAINER, kind="poll.open", poll="q0", question="again", options=["a", "b"])
    s.publish(TRAINER, kind="poll.close", poll="q0")
    with pytest.raises(RequestRefused, match="already used"):
        s.publish(TRAINER, kind="poll.open", poll=f"q{remembered}", question="?",
                  options=["a", "b"])
    assert s.replay().used_polls == s.state.used_polls
    assert len(s.state.used_polls) == remembered


def test_hands_stay_one_per_student() -> None:
    s = Session()
    alice = student(1)
    s.publish(alice, kind="hand.raise")
    with pytest.raises(RequestRefused, match="already raised"):
        s.publish(alice, kind="hand.raise")
    s.state.apply(s.state.offset + 1, {"kind": "hand.raise", "by": alice.to_record()})
    assert len(s.state.hands) == 1
