"""The PresenceStore contract: every implementation must pass these, memory today, Redis next."""

from __future__ import annotations

import pytest

from classroom.backends.presence_factory import presence_from_url
from presence.memory import MemoryPresenceStore
from presence.store import PresenceEntry


async def test_first_connection_of_a_user_is_reported_once(presence):
    assert await presence.add("s1", "c1", "alice", b"laptop")
    assert not await presence.add("s1", "c2", "alice", b"phone")
    assert await presence.participants("s1") == [PresenceEntry("c2", "alice", b"phone")]
    assert await presence.clients("s1", "alice") == ["c1", "c2"]


async def test_readding_a_client_updates_its_info(presence):
    await presence.add("s1", "c1", "alice", b"old")
    await presence.add("s1", "c2", "alice", b"phone")
    assert not await presence.add("s1", "c1", "alice", b"new")
    assert await presence.participants("s1") == [PresenceEntry("c1", "alice", b"new")]
    assert sorted(await presence.clients("s1", "alice")) == ["c1", "c2"]


async def test_leave_is_reported_at_the_last_connection_only(presence):
    await presence.add("s1", "c1", "alice", b"laptop")
    await presence.add("s1", "c2", "alice", b"phone")
    assert await presence.remove("s1", "c2") is None
    assert await presence.participants("s1") == [PresenceEntry("c1", "alice", b"laptop")]
    assert await presence.remove("s1", "c1") == PresenceEntry("c1", "alice", b"laptop")
    assert await presence.participants("s1") == []
    assert await presence.clients("s1", "alice") == []


async def test_a_user_who_left_joins_again_as_first(presence):
    await presence.add("s1", "c1", "alice", b"")
    await presence.remove("s1", "c1")
    assert await presence.add("s1", "c2", "alice", b"")


async def test_removing_unknown_clients_returns_none(presence):
    assert await presence.remove("nowhere", "c1") is None
    await presence.add("s1", "c1", "alice", b"")
    assert await presence.remove("s1", "c9") is None
    assert await presence.remove("s1", "c1") is not None
    assert await presence.remove("s1", "c1") is None


async def test_participants_are_one_per_user_in_first_join_order(presence):
    await presence.add("s1", "c1", "alice", b"a1")
    await presence.add("s1", "c2", "bob", b"b1")
    await presence.add("s1", "c3", "carol", b"c1")
    await presence.add("s1", "c4", "alice", b"a2")
    assert await presence.participants("s1") == [
        PresenceEntry("c4", "alice", b"a2"),
        PresenceEntry("c2", "bob", b"b1"),
        PresenceEntry("c3", "carol", b"c1"),
    ]
    await presence.remove("s1", "c2")
    await presence.add("s1", "c5", "bob", b"b2")
    assert [e.user for e in await presence.participants("s1")] == ["alice", "carol", "bob"]


async def test_channels_are_independent(presence):
    assert await presence.add("s1", "c1", "alice", b"")
    assert await presence.add("s2", "c2", "alice", b"")
    assert await presence.remove("s1", "c1") is not None
    assert await presence.participants("s2") == [PresenceEntry("c2", "alice", b"")]
    assert await presence.participants("s3") == []


async def test_clients_of_an_unknown_user_is_empty(presence):
    assert await presence.clients("s1", "alice") == []
    await presence.add("s1", "c1", "bob", b"")
    assert await presence.clients("s1", "alice") == []


async def test_remove_user_drops_every_connection(presence):
    await presence.add("s1", "c1", "alice", b"laptop")
    await presence.add("s1", "c2", "alice", b"phone")
    await presence.add("s1", "c3", "bob", b"")
    assert await presence.remove_user("s1", "alice") == PresenceEntry("c2", "alice", b"phone")
    assert await presence.clients("s1", "alice") == []
    assert await presence.participants("s1") == [PresenceEntry("c3", "bob", b"")]
    assert await presence.remove("s1", "c1") is None
    assert await presence.remove_user("s1", "alice") is None
    assert await presence.remove_user("nowhere", "alice") is None
    assert await presence.add("s1", "c4", "alice", b"")


async def test_several_connections_leave_in_one_step(presence):
    """A storm's leaves of one session go together: an answer per connection, in order,
    the user's entry at their last connection among them (and never twice)."""
    await presence.add("s1", "c1", "alice", b"laptop")
    await presence.add("s1", "c2", "alice", b"phone")
    await presence.add("s1", "c3", "bob", b"")
    await presence.add("s1", "c4", "carol", b"tablet")
    await presence.add("s2", "c5", "alice", b"")
    gone = await presence.remove_many("s1", ["c1", "c3", "unknown", "c2", "c3"])
    assert gone == [None, PresenceEntry("c3", "bob", b""), None,
                    PresenceEntry("c2", "alice", b"phone"), None]
    assert await presence.participants("s1") == [PresenceEntry("c4", "carol", b"tablet")]
    assert await presence.participants("s2") == [PresenceEntry("c5", "alice", b"")]
    assert await presence.remove_many("s1", []) == []
    assert await presence.remove_many("nowhere", ["c4"]) == [None]
    assert await presence.add("s1", "c6", "alice", b"")  # a user who left comes back first


async def test_a_client_id_belongs_to_one_user(presence):
    await presence.add("s1", "c1", "alice", b"")
    with pytest.raises(ValueError):
        await presence.add("s1", "c1", "bob", b"")
    assert await presence.participants("s1") == [PresenceEntry("c1", "alice", b"")]


# -- memory implementation and factory ------------------------------------------------------


async def test_memory_keeps_nothing_for_empty_channels():
    store = MemoryPresenceStore()
    await store.add("s1", "c1", "alice", b"")
    await store.add("s2", "c2", "bob", b"")
    await store.remove("s1", "c1")
    await store.remove_user("s2", "bob")
    assert store._channels == {}


def test_factory_builds_the_memory_store_by_default():
    assert isinstance(presence_from_url(None), MemoryPresenceStore)
    assert isinstance(presence_from_url("memory://"), MemoryPresenceStore)


def test_factory_refuses_unknown_schemes():
    with pytest.raises(ValueError, match="unsupported"):
        presence_from_url("etcd://localhost")
