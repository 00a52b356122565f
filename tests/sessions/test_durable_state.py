"""Durable session state: any node rebuilds exactly what the nodes that applied every event hold.

The broker keeps a short history here, so a late node cannot fold the stream from
offset 1; it rebuilds from the snapshot the other nodes compacted, plus the
history after it.
"""

from __future__ import annotations

import asyncio
from typing import Any

from classroom.backends.broker import MemoryBroker, Publication
from classroom.backends.snapshots.factory import snapshots_for
from classroom.sessions.messages import pack_internal, unpack_internal
from classroom.sessions.snapshots import Compaction, state_snapshot
from classroom.sessions.streams import SessionStreams

CHANNEL = "acme:s1"
TRAINER = {"pid": "p-t", "role": "trainer", "sub": "t1"}
STUDENTS = [{"pid": f"p-{n}", "role": "student", "sub": f"u{n}"} for n in range(6)]


def event(n: int) -> dict[str, Any]:
    """The n-th event of a lively lesson: screens, locks, polls, hands and marks."""
    student = STUDENTS[n % len(STUDENTS)]
    step = n % 10
    if step == 0:
        return {"kind": "screen.navigate", "screen": f"screen-{n // 40}", "by": TRAINER}
    if step == 1:
        return {"kind": "poll.open", "poll": f"q{n}", "question": "?", "options": ["a", "b"],
                "by": TRAINER}
    if step in (2, 3):
        return {"kind": "poll.answer", "poll": f"q{n - step + 1}", "option": n % 2, "by": student}
    if step == 4:
        return {"kind": "hand.raise", "by": student}
    if step == 5:
        return {"kind": "annotation.add", "annotation_id": f"a{n}", "screen": f"screen-{n // 40}",
                "shape": {"points": [[n, 0.5]]}, "by": student, "at": float(n)}
    if step == 6 and n % 3 == 0:
        return {"kind": "annotation.remove", "annotation_id": f"a{n - 11}", "by": TRAINER}
    if step == 7:
        return {"kind": "hand.lower", "participant": STUDENTS[(n + 2) % len(STUDENTS)],
                "by": TRAINER}
    if step == 8 and n % 4 == 0:
        return {"kind": "screen.lock", "locked": n % 8 == 0, "by": TRAINER}
    if step == 9 and n % 20 == 9:
        return {"kind": "poll.close", "poll": f"q{n - 8}", "by": TRAINER}
    return {"kind": "chat", "text": str(n), "by": student}


async def publish(broker: MemoryBroker, first: int, count: int) -> None:
    for n in range(first, first + count):
        await broker.publish(CHANNEL, pack_internal({"t": "event", "record": event(n)}))


def drop(channel: str, pub: Publication, message: dict[str, Any]) -> None:
    """No members to fan out to."""


def document(streams: SessionStreams) -> bytes:
    runtime = streams.runtime(CHANNEL)
    return state_snapshot(runtime.state, runtime.epoch).data


async def live_node(broker: MemoryBroker, every: int) -> SessionStreams:
    streams = SessionStreams(broker, drop, compaction=Compaction(every=every))
    await broker.start(streams.receive)
    await broker.subscribe(CHANNEL)
    return streams


async def settle(streams: SessionStreams) -> None:
    for _ in range(5):  # let the background snapshot writes finish
        await asyncio.sleep(0)


async def test_a_node_starting_after_trimmed_history_rebuilds_the_same_state() -> None:
    broker = MemoryBroker(history_size=30)
    live = await live_node(broker, every=10)
    await publish(broker, 1, 517)
    await settle(live)
    late = SessionStreams(broker, drop)
    await late.sync(CHANNEL)
    assert late.runtime(CHANNEL).state.offset == live.runtime(CHANNEL).state.offset == 517
    assert document(late) == document(live)
    assert live.runtime(CHANNEL).state.hands  # the lesson left state to carry


async def test_a_new_epoch_starts_from_the_empty_state_on_old_and_new_nodes() -> None:
    broker = MemoryBroker(history_size=30)
    old = await live_node(broker, every=10)
    await publish(broker, 1, 200)
    await settle(old)
    old_epoch = old.runtime(CHANNEL).epoch
    new_epoch_first = Publication(1, "another-epoch", pack_internal(
        {"t": "event", "record": event(4)}))  # storage lost the stream; a hand goes up
    old.receive(CHANNEL, new_epoch_first)
    runtime = old.runtime(CHANNEL)
    assert runtime.epoch == "another-epoch" != old_epoch
    assert runtime.state.screen is None and not runtime.state.locked
    assert [hand["pid"] for hand in runtime.state.hands] == [event(4)["by"]["pid"]]


async def test_an_idle_session_is_forgotten_and_rebuilt_exactly() -> None:
    broker = MemoryBroker(history_size=30)
    now = [0.0]
    streams = SessionStreams(broker, drop, compaction=Compaction(every=10, idle=5.0),
                             clock=lambda: now[0])
    forgotten: list[str] = []
    streams.on_forget = forgotten.append  # the node drops the session's caches with it
    await broker.start(streams.receive)
    await broker.subscribe(CHANNEL)
    await publish(broker, 1, 95)
    before = document(streams)
    await broker.unsubscribe(CHANNEL)
    now[0] += 6
    streams.sweep()  # not yet durable: written first, forgotten at a later sweep
    await settle(streams)
    assert CHANNEL in streams.channels()
    assert forgotten == []
    streams.sweep()
    assert CHANNEL not in streams.channels() and forgotten == [CHANNEL]
    await publish(broker, 96, 5)  # while no node holds it in memory
    await streams.sync(CHANNEL)
    reference = SessionStreams(MemoryBroker(), drop)
    for n in range(1, 101):
        reference.receive(CHANNEL, Publication(n, streams.runtime(CHANNEL).epoch, pack_internal(
            {"t": "event", "record": event(n)})))
    assert document(streams) == document(reference) != before


async def test_a_session_in_use_is_never_forgotten() -> None:
    broker = MemoryBroker()
    now = [0.0]
    streams = SessionStreams(broker, drop, compaction=Compaction(idle=1.0),
                             in_use=lambda channel: 1, clock=lambda: now[0])
    await streams.sync(CHANNEL)
    now[0] += 10
    streams.sweep()
    assert CHANNEL in streams.channels()


async def test_history_trimmed_past_the_snapshot_is_not_applied_as_complete() -> None:
    broker = MemoryBroker(history_size=30)
    await publish(broker, 1, 200)  # no node compacted: nothing durable but 30 events
    late = SessionStreams(broker, drop)
    await late.sync(CHANNEL)
    state = late.runtime(CHANNEL).state
    assert state.offset == 200
    assert state.screen is None and not state.hands and not state.annotations
    assert await snapshots_for(broker).load(CHANNEL) is None


def subs_in(data: bytes) -> set[str]:
    """Every ``sub`` anywhere in a packed state document."""
    found: set[str] = set()
    stack: list[Any] = [unpack_internal(data)]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            if isinstance(value.get("sub"), str):
                found.add(value["sub"])
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return found


async def test_erasure_scrubs_the_stored_snapshot() -> None:
    broker = MemoryBroker(history_size=30)
    live = await live_node(broker, every=10)
    await publish(broker, 1, 100)
    await settle(live)
    store = snapshots_for(broker)
    before = await store.load(CHANNEL)
    assert before is not None and "u4" in subs_in(before.data)
    assert await live.scrub_snapshot(CHANNEL, "u4")
    after = await store.load(CHANNEL)
    assert after is not None and after.position == before.position
    assert "u4" not in subs_in(after.data) and subs_in(after.data) - {"u4"} == \
        subs_in(before.data) - {"u4"}
    assert not await live.scrub_snapshot(CHANNEL, "u4")  # nothing left to erase


def test_compaction_stays_within_the_retained_history() -> None:
    policy = Compaction.within(history_size=300, history_ttl=60.0, every=1000, max_age=90.0,
                               idle=2.0)
    assert (policy.every, policy.max_age, policy.idle) == (150, 30.0, 2.0)
    small = Compaction.within(history_size=0, history_ttl=60.0, every=10, max_age=5.0, idle=1.0)
    assert (small.every, small.max_age) == (1, 5.0)


async def test_a_forgotten_session_takes_its_participant_renderings_along() -> None:
    from auth.tenants import Tenant, TenantRegistry
    from classroom.domain.channel import Channel
    from classroom.domain.views import view_for_role
    from classroom.sessions.node import Node
    from presence.memory import MemoryPresenceStore

    tenant = Tenant(id="acme", secrets=("acme-secret-0",), api_key="acme-key")
    node = Node(tenants=TenantRegistry([tenant]), broker=MemoryBroker(),
                presence=MemoryPresenceStore(), secret=b"secret")
    await node.presence.add(CHANNEL, "c1", "u1", pack_internal(STUDENTS[1]))
    views = node.presence_views
    shown = await views.participants(Channel.parse(CHANNEL), view_for_role("trainer"), "p-t")
    assert [p["pid"] for p in shown] == ["p-1"]
    assert CHANNEL in views._rendered
    node.streams.runtime(CHANNEL)
    node.streams.drop(CHANNEL)
    assert CHANNEL not in views._rendered


async def test_looking_at_a_session_does_not_keep_it_from_being_forgotten() -> None:
    now = [0.0]
    streams = SessionStreams(MemoryBroker(), drop, compaction=Compaction(idle=5.0),
                             clock=lambda: now[0])
    streams.runtime(CHANNEL)
    for _ in range(4):  # the census samples every few seconds
        now[0] += 3
        assert streams.peek(CHANNEL) is not None
    streams.sweep()
    assert CHANNEL not in streams.channels() and streams.peek(CHANNEL) is None
