"""The session state reducer: a pure function of the stored records, in offset order."""

from __future__ import annotations

from typing import Any

import pytest

from classroom.domain.erasure import ANONYMOUS_PID
from classroom.domain.events import is_stored, prepare_event
from classroom.domain.participants import Participant
from classroom.domain.state import SessionState


def tally(state: SessionState) -> list[int]:
    """Counts of the open poll as a client sees them; empty when none is open."""
    return state.poll.tally() if state.poll is not None else []

TRAINER = Participant("p-t", "trainer", "sub-t", name="Tina Trainer", display_name="Tina")
ALICE = Participant("p-a", "student", "sub-a", name="Alice A", email="a@example.org",
                    display_name="Alice")
BOB = Participant("p-b", "student", "sub-b", name="Bob B", display_name="Bob")
CARA = Participant("p-c", "student", "sub-c", name="Cara C", display_name="Cara")


class Stream:
    """A session's stored stream: prepares events like the node and applies them in order."""

    def __init__(self) -> None:
        self.state = SessionState()
        self.records: list[dict[str, Any]] = []
        self.clock = 1000.0

    def publish(self, actor: Participant, **event: Any) -> dict[str, Any]:
        self.clock += 1
        record = prepare_event(event, actor, self.state, now=self.clock)
        if is_stored(record["kind"]):
            self.records.append(record)
            self.state.apply(len(self.records), record)
        return record

    def replay(self) -> SessionState:
        fresh = SessionState()
        for offset, record in enumerate(self.records, start=1):
            fresh.apply(offset, record)
        return fresh


def test_initial_state() -> None:
    state = SessionState()
    assert state.offset == 0
    assert state.snapshot() == {
        "screen": None, "locked": False, "poll": None, "hands": [], "annotations": [],
        "options": {}, "timer": None, "last_poll": None,
    }
    assert tally(state) == []
    assert not state.hand_raised("p-a")


def test_navigate_and_lock() -> None:
    s = Stream()
    s.publish(TRAINER, kind="screen.navigate", screen="intro-1")
    s.publish(TRAINER, kind="screen.navigate", screen="intro-2")
    s.publish(TRAINER, kind="screen.lock", locked=True)
    snap = s.state.snapshot()
    assert (snap["screen"], snap["locked"], s.state.offset) == ("intro-2", True, 3)
    s.publish(TRAINER, kind="screen.lock", locked=False)
    assert s.state.locked is False


def test_annotations_are_shown_for_the_current_screen_only() -> None:
    s = Stream()
    s.publish(TRAINER, kind="screen.navigate", screen="s1")
    s.publish(ALICE, kind="annotation.add", annotation_id="a1", screen="s1", shape={"k": 1})
    s.publish(TRAINER, kind="annotation.add", annotation_id="a2", screen="s2", shape={"k": 2})
    s.publish(BOB, kind="annotation.add", annotation_id="a3", screen="s1", shape={"k": 3})
    snap = s.state.snapshot()
    assert [a["annotation_id"] for a in snap["annotations"]] == ["a1", "a3"]
    first = snap["annotations"][0]
    assert first == {"annotation_id": "a1", "screen": "s1", "shape": {"k": 1},
                     "by": ALICE.to_record(), "at": 1002.0}
    s.publish(TRAINER, kind="screen.navigate", screen="s2")
    assert [a["annotation_id"] for a in s.state.snapshot()["annotations"]] == ["a2"]
    s.publish(TRAINER, kind="screen.navigate", screen="s1")
    s.publish(ALICE, kind="annotation.remove", annotation_id="a1")
    assert [a["annotation_id"] for a in s.state.snapshot()["annotations"]] == ["a3"]
    assert set(s.state.annotations) == {"a2", "a3"}


def test_hands_keep_raise_order() -> None:
    s = Stream()
    for who in (ALICE, BOB, CARA):
        s.publish(who, kind="hand.raise")
    assert [h["pid"] for h in s.state.snapshot()["hands"]] == ["p-a", "p-b", "p-c"]
    s.publish(BOB, kind="hand.lower")
    assert [h["pid"] for h in s.state.hands] == ["p-a", "p-c"]
    s.publish(BOB, kind="hand.raise")
    assert [h["pid"] for h in s.state.hands] == ["p-a", "p-c", "p-b"]
    s.publish(TRAINER, kind="hand.lower", participant="p-a")
    assert [h["pid"] for h in s.state.hands] == ["p-c", "p-b"]
    assert s.state.hands[0] == CARA.to_record()
    assert s.state.participant_with_raised_hand("p-b") == BOB.to_record()
    assert s.state.participant_with_raised_hand("p-a") is None


def test_poll_lifecycle_with_changed_answers() -> None:
    s = Stream()
    s.publish(TRAINER, kind="poll.open", poll="q1", question="Best?", options=["x", "y", "z"])
    snap = s.state.snapshot()["poll"]
    assert snap == {"poll": "q1", "question": "Best?", "options": ["x", "y", "z"],
                    "counts": [0, 0, 0], "hidden": False, "answers": []}
    s.publish(ALICE, kind="poll.answer", poll="q1", option=0)
    s.publish(BOB, kind="poll.answer", poll="q1", option=1)
    s.publish(ALICE, kind="poll.answer", poll="q1", option=1)
    assert tally(s.state) == [0, 2, 0]
    answers = s.state.snapshot()["poll"]["answers"]
    assert answers == [{"participant": ALICE.to_record(), "option": 1},
                       {"participant": BOB.to_record(), "option": 1}]
    close = s.publish(TRAINER, kind="poll.close", poll="q1")
    assert close["counts"] == [0, 2, 0]
    assert s.state.poll is None
    assert s.state.snapshot()["poll"] is None
    assert s.state.used_polls == {"q1"}
    s.publish(TRAINER, kind="poll.open", poll="q2", question="Again?", options=["a", "b"])
    assert tally(s.state) == [0, 0]
    assert s.state.used_polls == {"q1", "q2"}


def test_chat_progress_and_unknown_kinds_only_bump_the_offset() -> None:
    s = Stream()
    s.publish(TRAINER, kind="screen.navigate", screen="s1")
    before = s.state.snapshot()
    s.publish(ALICE, kind="chat", text="hello")
    s.publish(ALICE, kind="progress", screen="s1", completed=True, score=90)
    s.state.apply(4, {"kind": "from.the.future", "by": ALICE.to_record(), "at": 1.0})
    assert s.state.offset == 4
    assert s.state.snapshot() == before


def test_ephemeral_events_are_not_applied() -> None:
    s = Stream()
    s.publish(TRAINER, kind="pointer", x=0.1, y=0.2)
    s.publish(ALICE, kind="reaction", emoji="🎉")
    assert s.state.offset == 0


def test_reapplying_old_offsets_is_harmless() -> None:
    s = Stream()
    s.publish(ALICE, kind="hand.raise")
    s.publish(TRAINER, kind="poll.open", poll="q1", question="?", options=["a", "b"])
    s.publish(ALICE, kind="poll.answer", poll="q1", option=0)
    s.publish(ALICE, kind="annotation.add", annotation_id="a1", screen="s", shape={})
    s.publish(ALICE, kind="annotation.remove", annotation_id="a1")
    snap = s.state.snapshot()
    for offset, record in enumerate(s.records, start=1):
        s.state.apply(offset, record)
    s.state.apply(0, {"kind": "screen.navigate", "screen": "elsewhere"})
    assert s.state.snapshot() == snap
    assert s.state.offset == len(s.records)


def test_replaying_the_stream_rebuilds_the_same_state() -> None:
    s = Stream()
    s.publish(TRAINER, kind="screen.navigate", screen="s1")
    s.publish(ALICE, kind="hand.raise")
    s.publish(BOB, kind="hand.raise")
    s.publish(ALICE, kind="annotation.add", annotation_id="a1", screen="s1", shape={"p": [1]})
    s.publish(TRAINER, kind="poll.open", poll="q1", question="?", options=["a", "b"])
    s.publish(BOB, kind="poll.answer", poll="q1", option=1)
    s.publish(TRAINER, kind="hand.lower", participant="p-a")
    s.publish(TRAINER, kind="screen.lock", locked=True)
    assert s.replay().snapshot() == s.state.snapshot()


def test_offsets_may_skip_but_never_go_back() -> None:
    state = SessionState()
    state.apply(5, {"kind": "screen.navigate", "screen": "s5"})
    state.apply(3, {"kind": "screen.navigate", "screen": "s3"})
    assert (state.offset, state.screen) == (5, "s5")


def test_snapshot_is_a_copy() -> None:
    s = Stream()
    s.publish(TRAINER, kind="screen.navigate", screen="s")
    s.publish(ALICE, kind="hand.raise")
    s.publish(ALICE, kind="annotation.add", annotation_id="a1", screen="s", shape={})
    s.publish(TRAINER, kind="poll.open", poll="q1", question="?", options=["a", "b"])
    s.publish(ALICE, kind="poll.answer", poll="q1", option=0)
    snap = s.state.snapshot()
    snap["hands"][0]["email"] = "x"
    snap["annotations"][0]["by"]["pid"] = "x"
    snap["poll"]["answers"][0]["participant"]["pid"] = "x"
    snap["poll"]["options"].append("c")
    snap["poll"]["counts"][0] = 99
    assert s.state.snapshot() != snap
    assert tally(s.state) == [1, 0]


def test_state_does_not_share_the_records_data() -> None:
    state = SessionState()
    record = {"kind": "annotation.add", "annotation_id": "a1", "screen": "s",
              "shape": {"pts": [1]}, "by": ALICE.to_record(), "at": 1.0}
    state.apply(1, record)
    record["shape"]["pts"].append(2)
    record["by"]["pid"] = "other"
    assert state.annotations["a1"]["shape"] == {"pts": [1]}
    assert state.annotations["a1"]["by"]["pid"] == "p-a"


def test_tally_after_is_a_preview() -> None:
    s = Stream()
    s.publish(TRAINER, kind="poll.open", poll="q1", question="?", options=["a", "b"])
    s.publish(ALICE, kind="poll.answer", poll="q1", option=0)
    assert s.state.poll is not None
    assert s.state.poll.tally_after("p-a", 1) == [0, 1]
    assert s.state.poll.tally_after("p-b", 1) == [1, 1]
    assert tally(s.state) == [1, 0]


# -- records that raced past the checks (two publishes checked against one snapshot) ----


def rec(kind: str, by: Participant = ALICE, **payload: Any) -> dict[str, Any]:
    return {"kind": kind, **payload, "by": by.to_record(), "at": 1.0}


def test_duplicate_hand_raise_is_absorbed() -> None:
    state = SessionState()
    state.apply(1, rec("hand.raise"))
    state.apply(2, rec("hand.raise"))
    assert len(state.hands) == 1


def test_duplicate_annotation_keeps_the_first() -> None:
    state = SessionState()
    state.apply(1, rec("annotation.add", annotation_id="a", screen="s", shape={"n": 1}))
    state.apply(2, rec("annotation.add", BOB, annotation_id="a", screen="s", shape={"n": 2}))
    assert state.annotations["a"]["shape"] == {"n": 1}


@pytest.mark.parametrize(
    "record",
    [
        rec("poll.answer", poll="q1", option=0),
        rec("poll.close", TRAINER, poll="q1"),
        rec("annotation.remove", annotation_id="nope"),
        rec("hand.lower", participant={"pid": "p-nobody", "role": "student"}),
        rec("screen.navigate", TRAINER, screen=None),
        {"kind": "hand.raise"},
        {"kind": "poll.open", "poll": 3},
        {"kind": "annotation.add"},
        {},
    ],
)
def test_records_that_no_longer_fit_are_absorbed(record: dict[str, Any]) -> None:
    state = SessionState()
    state.apply(1, rec("screen.navigate", TRAINER, screen="s"))
    before = state.snapshot()
    state.apply(2, record)
    assert state.snapshot() == before
    assert state.offset == 2


def test_answers_to_another_poll_or_out_of_range_are_ignored() -> None:
    state = SessionState()
    state.apply(1, rec("poll.open", TRAINER, poll="q1", question="?", options=["a", "b"]))
    state.apply(2, rec("poll.answer", poll="q0", option=0))
    state.apply(3, rec("poll.answer", poll="q1", option=2))
    state.apply(4, rec("poll.answer", poll="q1", option=True))
    state.apply(5, rec("poll.close", TRAINER, poll="q0"))
    assert tally(state) == [0, 0]
    assert state.poll is not None


# -- erasure --------------------------------------------------------------------------------


def test_erase_user_removes_hands_answers_and_authorship() -> None:
    s = Stream()
    s.publish(TRAINER, kind="screen.navigate", screen="s")
    s.publish(ALICE, kind="hand.raise")
    s.publish(BOB, kind="hand.raise")
    s.publish(ALICE, kind="annotation.add", annotation_id="a1", screen="s", shape={})
    s.publish(BOB, kind="annotation.add", annotation_id="b1", screen="s", shape={})
    s.publish(TRAINER, kind="poll.open", poll="q1", question="?", options=["a", "b"])
    s.publish(ALICE, kind="poll.answer", poll="q1", option=0)
    s.publish(BOB, kind="poll.answer", poll="q1", option=1)
    s.state.erase_user("sub-a")
    snap = s.state.snapshot()
    assert [h["pid"] for h in snap["hands"]] == ["p-b"]
    assert snap["poll"]["counts"] == [0, 1]
    assert [a["participant"]["pid"] for a in snap["poll"]["answers"]] == ["p-b"]
    by = {a["annotation_id"]: a["by"] for a in snap["annotations"]}
    assert by["a1"] == {"pid": ANONYMOUS_PID, "role": "student"}
    assert by["b1"] == BOB.to_record()
    assert "a@example.org" not in repr(snap)
    assert "sub-a" not in repr(snap)
