"""The state's canonical document: restored exactly, so a rebuilt node renders byte-equal frames."""

from __future__ import annotations

from typing import Any

import msgpack
import orjson
import pytest

from classroom.domain.limits import ANNOTATIONS_PER_PERSON_PER_SCREEN
from classroom.domain.state import SessionState

TRAINER = {"pid": "p-t", "role": "trainer", "sub": "t1", "name": "Tessa"}
STUDENTS = [{"pid": f"p-{n}", "role": "student", "sub": f"u{n}", "name": f"S{n}"}
            for n in range(4)]


def busy_state() -> SessionState:
    state = SessionState()
    records: list[dict[str, Any]] = [
        {"kind": "screen.navigate", "screen": "s-2", "by": TRAINER},
        {"kind": "screen.lock", "locked": True, "by": TRAINER},
        {"kind": "poll.open", "poll": "q1", "question": "?", "options": ["a", "b"],
         "hide_results": True, "by": TRAINER},
        {"kind": "poll.close", "poll": "q1", "by": TRAINER},
        {"kind": "poll.open", "poll": "q2", "question": "!", "options": ["x", "y", "z"],
         "hide_results": True, "by": TRAINER},
        {"kind": "poll.reveal", "poll": "q2", "by": TRAINER},
        {"kind": "session.options", "student_marks": False, "by": TRAINER},
        {"kind": "timer.start", "seconds": 90, "ends_at": 1090.5, "by": TRAINER},
    ]
    for n, student in reversed(list(enumerate(STUDENTS))):
        records.append({"kind": "poll.answer", "poll": "q2", "option": n % 3, "by": student})
        records.append({"kind": "hand.raise", "by": student})
        records.append({"kind": "annotation.add", "annotation_id": f"a{n}", "screen": "s-2",
                        "shape": {"type": "line", "points": [[n, 1.5], [2, n]]},
                        "by": student, "at": 1.25 + n})
    records.append({"kind": "annotation.remove", "annotation_id": "a2", "by": TRAINER})
    records.append({"kind": "hand.lower", "by": STUDENTS[1]})
    for offset, record in enumerate(records, start=1):
        state.apply(offset, record)
    return state


def packed(state: SessionState) -> bytes:
    return bytes(msgpack.packb(state.to_document(), use_bin_type=True))


def test_a_restored_state_is_the_same_state() -> None:
    state = busy_state()
    document = msgpack.unpackb(packed(state), raw=False)
    restored = SessionState.from_document(document, state.offset)
    assert restored.offset == state.offset
    assert orjson.dumps(restored.snapshot()) == orjson.dumps(state.snapshot())
    assert packed(restored) == packed(state)
    assert restored.used_polls == state.used_polls == {"q1", "q2"}


def test_a_restored_state_counts_the_same_bounds() -> None:
    state = SessionState()
    for n in range(ANNOTATIONS_PER_PERSON_PER_SCREEN):
        state.apply(n + 1, {"kind": "annotation.add", "annotation_id": f"a{n}", "screen": "s",
                            "shape": {"n": n}, "by": STUDENTS[0]})
    state.erase_user("u0")  # the marks stay counted for the pid that added them
    restored = SessionState.from_document(state.to_document(), state.offset)
    assert restored.annotation_refusal("p-0", "s", 10) is not None
    assert restored.annotation_refusal("p-1", "s", 10) is None
    assert restored.annotation_refusal("p-0", "s", 10) == state.annotation_refusal("p-0", "s", 10)


def test_equal_histories_give_byte_equal_documents() -> None:
    assert packed(busy_state()) == packed(busy_state())
    assert packed(SessionState()) == packed(SessionState.from_document(
        SessionState().to_document(), 0))


def test_the_lessons_state_survives_a_restore() -> None:
    state = busy_state()
    restored = SessionState.from_document(state.to_document(), state.offset)
    assert restored.options == {"student_marks": False}
    assert restored.timer == {"seconds": 90, "ends_at": 1090.5}
    assert restored.last_poll is not None and restored.last_poll.hidden
    assert restored.poll is not None and restored.poll.hide_results and restored.poll.revealed


def test_a_document_written_before_the_lessons_fields_restores_as_it_was() -> None:
    document = busy_state().to_document()
    older = {key: value for key, value in document.items()
             if key not in ("last_poll", "options", "timer")}
    older["poll"] = document["poll"][:4]  # no hide_results, no revealed
    restored = SessionState.from_document(older, 7)
    assert restored.options == {} and restored.timer is None and restored.last_poll is None
    assert restored.poll is not None and not restored.poll.hidden


def test_a_document_of_another_version_is_refused() -> None:
    document = busy_state().to_document()
    with pytest.raises(ValueError):
        SessionState.from_document({**document, "v": 99}, 1)
