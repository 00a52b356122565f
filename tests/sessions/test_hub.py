"""The hub's fan-out: one encode per view and encoding, shared by every connection."""

from __future__ import annotations

from typing import Any

from classroom.domain.channel import Channel
from classroom.domain.participants import Participant
from classroom.domain.views import View
from classroom.protocol.codec import Encoding, Payload
from classroom.sessions.hub import Hub, Membership


class Recipient:
    """A connection stand-in that records what it is given."""

    def __init__(self, client_id: str, encoding: Encoding) -> None:
        self.client_id = client_id
        self.encoding: Encoding = encoding
        self.payloads: list[Payload] = []
        self.features: frozenset[str] = frozenset()

    def enqueue(self, payload: Payload) -> None:
        self.payloads.append(payload)

    def session_ended(self, session: str) -> None:
        self.payloads.append(f"ended {session}")


def member(hub: Hub, n: int, view: View, encoding: Encoding = "json",
           live: bool = True) -> tuple[Recipient, Membership]:
    peer = Recipient(f"c{n}", encoding)
    role = {"trainer": "trainer", "student": "student", "observer": "planner"}[view]
    participant = Participant(pid=f"p{n}", role=role, sub=f"u{n}")  # type: ignore[arg-type]
    membership = Membership(peer, Channel("acme", "s1"), participant, view, buffering=not live)
    hub.add(membership)
    return peer, membership


def test_each_view_and_encoding_is_built_and_encoded_once() -> None:
    hub = Hub()
    peers = [member(hub, n, view, enc)[0]
             for n, (view, enc) in enumerate(
                 [(v, e) for v in ("trainer", "student", "observer") for e in ("json", "msgpack")]
                 * 50)]
    builds: list[tuple[View, str | None]] = []

    def build(view: View, self_pid: str | None) -> dict[str, Any]:
        builds.append((view, self_pid))
        return {"type": "event", "view": view}

    sent = hub.deliver("acme:s1", 1, build)
    assert sent == 300
    assert sorted(builds) == [("observer", None), ("student", None), ("trainer", None)]
    distinct = {id(p.payloads[0]) for p in peers}
    assert len(distinct) == 6, "one shared payload object per (view, encoding)"


def test_the_subject_of_a_frame_gets_its_own_rendering() -> None:
    hub = Hub()
    subject, _ = member(hub, 1, "student")
    other, _ = member(hub, 2, "student")

    def build(view: View, self_pid: str | None) -> dict[str, Any]:
        return {"self": self_pid}

    hub.deliver("acme:s1", 1, build, personal=frozenset({"p1"}))
    assert subject.payloads == ['{"self":"p1"}']
    assert other.payloads == ['{"self":null}']


def test_a_member_still_joining_buffers_then_skips_what_it_already_has() -> None:
    hub = Hub()
    peer, membership = member(hub, 1, "trainer", live=False)
    for offset in (3, 4, 0, 5):
        hub.deliver("acme:s1", offset, lambda v, s, o=offset: {"offset": o})
    assert peer.payloads == []
    membership.go_live(after_offset=4)
    assert peer.payloads == ['{"offset":0}', '{"offset":5}']
    hub.deliver("acme:s1", 6, lambda v, s: {"offset": 6})
    assert peer.payloads[-1] == '{"offset":6}'


def test_views_that_get_nothing_are_skipped_and_removal_reports_the_last() -> None:
    hub = Hub()
    trainer, t = member(hub, 1, "trainer")
    student, s = member(hub, 2, "student")

    def trainers_only(view: View, self_pid: str | None) -> dict[str, Any] | None:
        return {"x": 1} if view == "trainer" else None

    assert hub.deliver("acme:s1", 1, trainers_only) == 1
    assert student.payloads == [] and len(trainer.payloads) == 1
    assert hub.remove(t) is False
    assert hub.remove(s) is True
    assert hub.channels() == []
