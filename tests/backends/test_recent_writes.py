"""A reconnect with the same token writes its profile and index entry once, and
a different token, a user-level command or Redis coming back make them write again."""

from __future__ import annotations

import asyncio

from auth.identity import Identity
from classroom.backends.data.recent_writes import RecentWrites
from classroom.backends.data.records import Records


def identity(issued_at: float = 1_700_000_000.0, name: str = "Sam") -> Identity:
    return Identity(tenant="acme", sub="u1", role="student", sessions=frozenset({"s1"}),
                    expires_at=issued_at + 3600, issued_at=issued_at, name=name)


async def last_seen(records: Records) -> float:
    profile = await records.profile("acme", "u1")
    assert profile is not None
    return float(profile["last_seen"])


async def test_the_same_token_stores_its_profile_once(records: Records) -> None:
    await records.remember(identity())
    first = await last_seen(records)
    await asyncio.sleep(0.01)
    await records.remember(identity())  # the same claims: a reconnect
    assert await last_seen(records) == first
    await records.remember(identity(name="Sam Smit"))  # a new token: written at once
    profile = await records.profile("acme", "u1")
    assert profile is not None and profile["name"] == "Sam Smit"
    assert await last_seen(records) > first


async def test_an_index_entry_is_written_again_once_the_node_forgot(records: Records) -> None:
    me = identity()
    await records.joined("acme", "u1", "s1", by=me)
    await records.forget_user("acme", "u1")  # an erasure empties the index
    await records.joined("acme", "u1", "s1", by=me)
    assert await records.user_sessions("acme", "u1") == set()  # skipped: written just now
    records.recent.clear()  # what the erasure's control message does on every node
    await records.joined("acme", "u1", "s1", by=me)
    assert await records.user_sessions("acme", "u1") == {"s1"}
    # Without the identity (the server API's own writes) nothing is skipped.
    await records.forget_user("acme", "u1")
    await records.joined("acme", "u1", "s1")
    assert await records.user_sessions("acme", "u1") == {"s1"}


async def test_a_write_is_recent_only_for_a_while_and_within_capacity() -> None:
    recent = RecentWrites(keep_for=0.05, capacity=2)
    recent.made("a")
    assert recent.recent("a")
    await asyncio.sleep(0.06)
    assert not recent.recent("a") and len(recent) == 0
    for key in ("a", "b", "c"):
        recent.made(key)
    assert len(recent) == 2 and not recent.recent("a") and recent.recent("c")
    off = RecentWrites(capacity=0)
    off.made("a")
    assert not off.recent("a")
