"""What only the Redis presence store does: expiry, heartbeats, sweeps and several nodes."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable

import pytest
import redis.asyncio as aioredis

from classroom.backends.presence_factory import presence_from_url
from classroom.backends.redis_client import redis_client
from presence.memory import MemoryPresenceStore
from presence.redis import RedisPresenceStore
from presence.store import PresenceEntry, PresenceUnavailable
from tests.backends.conftest import REDIS_URL

TTL = 1.0
MakeStore = Callable[..., RedisPresenceStore]


@pytest.fixture
async def make(redis_prefix: str) -> AsyncIterator[MakeStore]:
    """Build stores (one per node) sharing the test's prefix; closed after the test."""
    made: list[RedisPresenceStore] = []

    def make(url: str = REDIS_URL, ttl: float = TTL) -> RedisPresenceStore:
        store = RedisPresenceStore(redis_client(url), prefix=redis_prefix, ttl=ttl)
        made.append(store)
        return store

    yield make
    for store in made:
        await store.close()


async def heartbeat(store: RedisPresenceStore, clients: list[str], seconds: float) -> None:
    """Touch ``clients`` every 0.25 s for ``seconds``, the way a live node does."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while loop.time() < deadline:
        await store.touch("s1", clients)
        await asyncio.sleep(0.25)


async def test_a_dead_nodes_users_are_swept_exactly_once_across_nodes(make):
    live, dead = make(), make()
    assert await dead.add("s1", "c1", "alice", b"a")
    assert not await dead.add("s1", "c2", "alice", b"a2")
    assert await dead.add("s1", "c3", "carol", b"c")
    assert await live.add("s1", "c4", "bob", b"b")
    assert not await live.add("s1", "c5", "carol", b"c2")  # carol also lives on the live node
    await heartbeat(live, ["c4", "c5"], TTL * 1.3)  # the dead node stopped touching
    first, second = await asyncio.gather(live.sweep("s1"), dead.sweep("s1"))
    assert sorted(first + second, key=lambda e: e.user) == [PresenceEntry("c2", "alice", b"a2")]
    assert await live.sweep("s1") == []
    assert await live.participants("s1") == [
        PresenceEntry("c5", "carol", b"c2"),  # carol joined before bob and never left
        PresenceEntry("c4", "bob", b"b"),
    ]
    assert await live.clients("s1", "carol") == ["c5"]
    assert await live.remove("s1", "c5") == PresenceEntry("c5", "carol", b"c2")


async def test_touch_keeps_connections_alive_and_reads_hide_expired_ones(make):
    store = make()
    await store.add("s1", "c1", "alice", b"")
    await store.add("s1", "c2", "bob", b"")
    await heartbeat(store, ["c1", "c9-unknown"], TTL * 1.3)
    assert await store.participants("s1") == [PresenceEntry("c1", "alice", b"")]
    assert await store.clients("s1", "bob") == []
    assert await store.remove("s1", "c2") is None  # expired: the sweep announces bob
    assert await store.sweep("s1") == [PresenceEntry("c2", "bob", b"")]
    assert await store.sweep("s1") == []
    assert await store.add("s1", "c3", "bob", b"")  # a new join after the announced leave


async def test_a_user_back_before_the_sweep_never_left(make):
    store = make()
    assert await store.add("s1", "c1", "alice", b"old")
    assert await store.add("s1", "c2", "bob", b"")
    await asyncio.sleep(TTL * 1.1)
    assert not await store.add("s1", "c3", "alice", b"new")
    assert await store.remove_user("s1", "bob") == PresenceEntry("c2", "bob", b"")
    assert await store.sweep("s1") == []
    assert await store.participants("s1") == [PresenceEntry("c3", "alice", b"new")]


async def test_two_nodes_count_a_user_once(make):
    one, two = make(), make()
    assert await one.add("s1", "c1", "alice", b"laptop")
    assert not await two.add("s1", "c2", "alice", b"phone")
    assert await two.add("s1", "c3", "bob", b"")
    for store in (one, two):
        assert await store.participants("s1") == [
            PresenceEntry("c2", "alice", b"phone"),
            PresenceEntry("c3", "bob", b""),
        ]
    with pytest.raises(ValueError):
        await one.add("s1", "c3", "alice", b"")
    assert await one.remove("s1", "c1") is None
    assert await two.remove("s1", "c2") == PresenceEntry("c2", "alice", b"phone")


async def test_concurrent_adds_report_one_first_connection(make):
    nodes = [make(), make(), make()]
    firsts = await asyncio.gather(
        *(nodes[i % 3].add("s1", f"c{i}", "alice", b"") for i in range(30))
    )
    assert sum(firsts) == 1
    leaves = await asyncio.gather(*(nodes[i % 3].remove("s1", f"c{i}") for i in range(30)))
    assert [leave is not None for leave in leaves].count(True) == 1


async def test_every_key_carries_a_ttl_and_empty_channels_leave_little(make, redis_prefix):
    store = make(ttl=5.0)
    await store.add("s1", "c1", "alice", b"")
    await store.add("s1", "c2", "bob", b"")
    admin = aioredis.from_url(REDIS_URL)
    try:
        keys = [key async for key in admin.scan_iter(match=f"{redis_prefix}:*")]
        assert len(keys) == 6  # the hash, expire, order, users, count and seq; no gone yet
        for key in keys:
            assert 0 < await admin.pttl(key) <= 10000, key
        await store.remove("s1", "c1")
        await store.remove("s1", "c2")
        left = [key async for key in admin.scan_iter(match=f"{redis_prefix}:*")]
        assert [key.decode().rpartition(":")[2] for key in left] == ["seq"]
    finally:
        await admin.aclose()


async def test_connections_redis_closed_are_replaced_without_failing_a_call(make):
    name = f"node-{uuid.uuid4().hex[:8]}"
    store = make(f"{REDIS_URL}?client_name={name}")
    await asyncio.gather(*(store.add("s1", f"c{i}", "alice", b"") for i in range(5)))
    admin = aioredis.from_url(REDIS_URL)
    try:
        killed = 0
        for client in await admin.client_list(_type="normal"):
            if client.get("name") == name:
                killed += await admin.client_kill_filter(_id=client["id"], _type="normal")
        assert killed >= 1
    finally:
        await admin.aclose()
    await asyncio.sleep(0.05)
    assert not await store.add("s1", "c9", "alice", b"")


async def test_unreachable_redis_raises_presence_unavailable():
    store = RedisPresenceStore(redis_client("redis://127.0.0.1:1/0"))
    with pytest.raises(PresenceUnavailable):
        await store.add("s1", "c1", "alice", b"")
    with pytest.raises(PresenceUnavailable):
        await store.sweep("s1")
    await store.close()


async def test_factory_builds_the_redis_store_by_scheme(redis_prefix):
    store = presence_from_url(REDIS_URL, prefix=redis_prefix, ttl=5.0)
    assert isinstance(store, RedisPresenceStore)
    await store.close()
    assert isinstance(presence_from_url(None, prefix="x", ttl=5.0), MemoryPresenceStore)


def test_redis_store_refuses_nonsense_options():
    with pytest.raises(ValueError):
        RedisPresenceStore(redis_client(REDIS_URL), ttl=0)
    with pytest.raises(ValueError):
        RedisPresenceStore(redis_client(REDIS_URL), prefix="{x}")


async def test_parsed_entries_follow_changes_and_are_forgotten_on_request(
    make: MakeStore,
) -> None:
    store = make()
    await store.add("c", "k1", "u1", b"first")
    await store.add("c", "k2", "u2", b"other")
    assert [e.info for e in await store.participants("c")] == [b"first", b"other"]
    again = await store.participants("c")
    assert again[0] is (await store.participants("c"))[0]  # parsed once, reused
    await store.add("c", "k1", "u1", b"changed")  # a refresh's new record
    assert [e.info for e in await store.participants("c")] == [b"changed", b"other"]
    store.forget_cached()  # an erasure: nothing parsed stays in memory
    assert store._parsed == {}
    assert [e.user for e in await store.participants("c")] == ["u1", "u2"]


async def test_parsed_entries_keep_only_who_is_there_and_go_with_the_channel(
    make: MakeStore, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("presence.redis.PARSED_CHANNELS_MAX", 2)
    store = make()
    for n in range(5):
        await store.add("c", f"k{n}", f"u{n}", b"info %d" % n)
    assert len(await store.participants("c")) == 5
    for n in range(4):
        await store.remove("c", f"k{n}")
    assert [e.user for e in await store.participants("c")] == ["u4"]
    assert len(store._parsed["c"]) == 1  # those who left are not kept parsed
    store.forget_channel("c")  # the node no longer serves the session
    assert "c" not in store._parsed
    for channel in ("a", "b", "d"):
        await store.add(channel, "k", "u", b"info")
        await store.participants(channel)
        assert len(store._parsed) <= 2  # started afresh past the bound
