"""Publisher retries: validated, then deduplicated; another event under a used id is refused."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from auth.tenants import Tenant, TenantRegistry
from classroom.backends.broker import MemoryBroker
from classroom.backends.broker.base import RememberedPublish
from classroom.domain.channel import Channel
from classroom.domain.events import event_fingerprint, validate_event
from classroom.domain.participants import Participant
from classroom.domain.refusals import RequestRefused
from classroom.sessions.node import Node
from presence.memory import MemoryPresenceStore

TENANT = Tenant(id="acme", secrets=("acme-secret-0",), api_key="acme-key", display_name="first")
CHANNEL = Channel("acme", "s1")
STUDENT = Participant("p-student", "student", "u1", display_name="Sam")
USED = "client_msg_id was already used for another event"


class LateRecall(MemoryBroker):
    """A broker whose ``recall`` never sees the key: another node's publish got in between."""

    async def recall(self, channel: str, idempotency_key: str) -> RememberedPublish | None:
        return None


def make_node(broker: MemoryBroker) -> Node:
    return Node(tenants=TenantRegistry([TENANT]), broker=broker,
                presence=MemoryPresenceStore(), secret=b"test-secret")


@pytest.fixture
async def broker() -> AsyncIterator[MemoryBroker]:
    broker = LateRecall()
    yield broker
    await broker.close()


async def publish(node: Node, event: dict[str, Any], msg_id: str | None) -> Any:
    return await node.publisher.publish_record(CHANNEL, STUDENT, event, msg_id)


async def test_a_retry_that_lost_the_race_to_another_event_is_refused(
    broker: MemoryBroker,
) -> None:
    first, second = make_node(broker), make_node(broker)
    position = await publish(first, {"kind": "chat", "text": "hello"}, "m-1")
    with pytest.raises(RequestRefused) as info:
        await publish(second, {"kind": "chat", "text": "bye"}, "m-1")
    assert (info.value.code, info.value.message) == ("bad_request", USED)
    assert await publish(second, {"kind": "chat", "text": "hello"}, "m-1") == position
    history = await broker.history(CHANNEL.name)
    assert [pub.offset for pub in history.publications] == [position.offset]


async def test_a_retry_is_validated_before_it_is_answered() -> None:
    broker = MemoryBroker()
    node = make_node(broker)
    position = await publish(node, {"kind": "hand.raise"}, "m-1")
    for hostile in ({"kind": "hand.raise", "extra": "x" * 5000},
                    {"kind": "screen.navigate", "screen": "s"},
                    {"kind": "nonsense"}):
        with pytest.raises(RequestRefused):
            await publish(node, hostile, "m-1")
    # The same event again: its first position, though the hand is up by now.
    await node.streams.sync(CHANNEL.name)
    assert node.streams.runtime(CHANNEL.name).state.hand_raised(STUDENT.pid)
    assert await publish(node, {"kind": "hand.raise"}, "m-1") == position
    with pytest.raises(RequestRefused, match="already raised"):
        await publish(node, {"kind": "hand.raise"}, "m-2")
    remembered = await broker.recall(CHANNEL.name, f"{STUDENT.pid}:m-1")
    assert remembered == RememberedPublish(
        position, event_fingerprint(validate_event({"kind": "hand.raise"}, STUDENT)))
    await broker.close()


def test_the_fingerprint_names_the_validated_event_only() -> None:
    def fingerprint(event: dict[str, Any]) -> str:
        return event_fingerprint(validate_event(event, STUDENT))

    progress = fingerprint({"kind": "progress", "screen": "intro", "completed": True})
    assert progress == fingerprint({"completed": True, "screen": "intro", "kind": "progress"})
    assert progress != fingerprint({"kind": "progress", "screen": "intro", "completed": False})
    assert progress != fingerprint({"kind": "progress", "screen": "intro"})
    shape = {"kind": "annotation.add", "annotation_id": "a", "screen": "s",
             "shape": {"b": [1, {"y": 2, "x": 1}], "a": None}}
    reordered = {**shape, "shape": {"a": None, "b": [1, {"x": 1, "y": 2}]}}
    assert fingerprint(shape) == fingerprint(reordered)
    assert fingerprint(shape) != fingerprint({**shape, "shape": {"a": None, "b": [{}, 1]}})
    other = Participant("p-other", "student", "u2")
    assert event_fingerprint(validate_event({"kind": "hand.raise"}, other)) == fingerprint(
        {"kind": "hand.raise"})  # who published is in the key, not the fingerprint
