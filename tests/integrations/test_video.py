"""Video brokering with the real ``opentok`` SDK against a fake OpenTok on loopback.

Tokens are decoded and their signature and claims checked; session creation is
raced by many users on one node and by two nodes sharing Redis (database 15, a key
prefix of each test's own, deleted afterwards).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any
from urllib.parse import parse_qs

import jwt
import pytest
import redis.asyncio as aioredis

from classroom.config import Settings
from classroom.integrations.video import (
    DEFAULT_TOKEN_TTL,
    NOT_CONFIGURED,
    UNAVAILABLE,
    MemoryVideoSessionStore,
    RedisVideoSessionStore,
    VideoGateway,
    VideoSessionStore,
    VideoUnavailable,
    video_from_settings,
    video_store_from_url,
)
from tests.fakes.opentok_server import FakeOpenTok, fake_opentok

REDIS_URL = os.environ.get("CLASSROOM_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
ROLES = [("trainer", "moderator"), ("student", "publisher"), ("planner", "subscriber"),
         ("content_manager", "subscriber")]

MakeBroker = Callable[..., VideoGateway]


def decode_token(token: str, api_key: str, api_secret: str) -> dict[str, Any]:
    """Verify an OpenTok token's signature and return its claims.

    The SDK signs an HS256 JWT by default; the legacy ``T1==`` form (base64 of
    ``partner_id=..&sig=<hmac-sha1>:<query string>``) is read too, its
    ``expire_time`` copied to ``exp`` so both compare alike.
    """
    if not token.startswith("T1=="):
        claims: dict[str, Any] = jwt.decode(token, api_secret, algorithms=["HS256"],
                                            options={"require": ["exp", "iat"]})
        return claims
    head, _, data = base64.b64decode(token[4:]).decode().partition(":")
    signed = {k: v[0] for k, v in parse_qs(head).items()}
    expected = hmac.new(api_secret.encode(), data.encode(), hashlib.sha1).hexdigest()
    assert signed["partner_id"] == api_key
    assert hmac.compare_digest(signed["sig"], expected)
    legacy: dict[str, Any] = {k: v[0] for k, v in parse_qs(data).items()}
    legacy["exp"] = int(legacy["expire_time"])
    return legacy


@pytest.fixture
def fake() -> Iterator[FakeOpenTok]:
    with fake_opentok() as server:
        yield server


@pytest.fixture
async def make_broker(fake: FakeOpenTok) -> AsyncIterator[MakeBroker]:
    """Brokers pointed at the fake (memory store unless given one); closed after the test."""
    made: list[VideoGateway] = []

    def make(store: VideoSessionStore | None = None, **options: Any) -> VideoGateway:
        broker = VideoGateway(options.pop("api_key", fake.api_key),
                             options.pop("api_secret", fake.api_secret),
                             options.pop("api_url", fake.url),
                             store=store or MemoryVideoSessionStore(), **options)
        made.append(broker)
        return broker

    yield make
    for broker in made:
        await broker.close()


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    prefix = f"test-video-{uuid.uuid4().hex[:12]}"
    yield prefix
    client = aioredis.from_url(REDIS_URL)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}:*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


async def ask(broker: VideoGateway, channel: str = "acme:s1", role: str = "student",
              pid: str = "p-1", display_name: str | None = "Ada") -> dict[str, Any]:
    return await broker.credentials(channel, pid=pid, role=role, display_name=display_name)


@pytest.mark.parametrize(("role", "opentok_role"), ROLES)
async def test_token_claims_by_role(make_broker: MakeBroker, fake: FakeOpenTok,
                                    role: str, opentok_role: str) -> None:
    broker = make_broker()
    before = int(time.time())
    reply = await ask(broker, role=role, pid="p-42", display_name="Ada")
    after = int(time.time())

    assert set(reply) == {"api_key", "session_id", "token", "role", "expires_at"}
    assert reply["api_key"] == fake.api_key
    assert reply["session_id"] == fake.session_ids[0]
    assert reply["role"] == opentok_role
    claims = decode_token(reply["token"], fake.api_key, fake.api_secret)
    assert claims["role"] == opentok_role
    assert claims["session_id"] == reply["session_id"]
    assert claims["exp"] == reply["expires_at"]
    assert before + DEFAULT_TOKEN_TTL - 1 <= claims["exp"] <= after + DEFAULT_TOKEN_TTL
    assert json.loads(claims["connection_data"]) == {"pid": "p-42", "role": role,
                                                     "display_name": "Ada"}
    for personal in ("sub", "email", "name", "phone", "username"):
        assert personal not in claims
    assert fake.creates[0]["p2p.preference"] == "disabled"  # routed: many participants


async def test_connection_data_without_display_name_and_bounded_expiry(
        make_broker: MakeBroker, fake: FakeOpenTok) -> None:
    broker = make_broker(token_ttl=600)
    reply = await ask(broker, role="planner", pid="p-7", display_name=None)
    claims = decode_token(reply["token"], fake.api_key, fake.api_secret)
    assert json.loads(claims["connection_data"]) == {"pid": "p-7", "role": "planner"}
    assert claims["exp"] <= int(time.time()) + 600


async def test_long_display_name_is_cut_to_fit_opentok(make_broker: MakeBroker,
                                                       fake: FakeOpenTok) -> None:
    reply = await ask(make_broker(), display_name="x" * 5000)
    data = json.loads(decode_token(reply["token"], fake.api_key,
                                   fake.api_secret)["connection_data"])
    assert 0 < len(data["display_name"]) < 1000


async def test_unknown_role_is_a_programming_error(make_broker: MakeBroker) -> None:
    with pytest.raises(ValueError, match="unknown role"):
        await ask(make_broker(), role="admin")


async def test_twenty_concurrent_requests_create_one_session(make_broker: MakeBroker,
                                                             fake: FakeOpenTok) -> None:
    fake.delay = 0.3  # every request arrives while the first create is in flight
    broker = make_broker()
    replies = await asyncio.gather(*(ask(broker, pid=f"p-{i}", role=ROLES[i % 4][0])
                                     for i in range(20)))
    assert fake.create_calls == 1
    assert {reply["session_id"] for reply in replies} == {fake.session_ids[0]}
    await ask(broker, pid="late")
    assert fake.create_calls == 1
    other = await ask(broker, channel="acme:s2")
    assert other["session_id"] != replies[0]["session_id"]
    assert fake.create_calls == 2


async def test_two_nodes_sharing_redis_create_one_session(
        make_broker: MakeBroker, fake: FakeOpenTok, redis_prefix: str) -> None:
    fake.delay = 0.3
    nodes = [make_broker(RedisVideoSessionStore(REDIS_URL, redis_prefix)) for _ in range(2)]
    replies = await asyncio.gather(*(ask(nodes[i % 2], pid=f"p-{i}") for i in range(20)))
    assert fake.create_calls == 1
    assert {reply["session_id"] for reply in replies} == {fake.session_ids[0]}
    for node in nodes:  # later requests on either node reuse the stored id
        assert (await ask(node))["session_id"] == fake.session_ids[0]
    assert fake.create_calls == 1
    client = aioredis.from_url(REDIS_URL)
    try:
        key = f"{redis_prefix}:{{acme:s1}}:video"
        assert await client.get(key) == fake.session_ids[0].encode()
        assert 0 < await client.pttl(key) <= 86400 * 1000
        assert not await client.exists(f"{key}:lock")
    finally:
        await client.aclose()


@pytest.mark.parametrize(("key", "secret"), [(None, None), ("4711", None), (None, "s"),
                                             ("", "")])
async def test_unavailable_without_credentials(key: str | None, secret: str | None) -> None:
    broker = VideoGateway(key, secret, None, store=MemoryVideoSessionStore())
    assert not broker.enabled
    with pytest.raises(VideoUnavailable) as caught:
        await ask(broker)
    assert str(caught.value) == NOT_CONFIGURED
    await broker.close()


async def test_unavailable_when_opentok_fails(make_broker: MakeBroker,
                                              fake: FakeOpenTok) -> None:
    fake.mode, fake.delay = "fail", 0.2
    broker = make_broker()
    assert broker.enabled
    results = await asyncio.gather(*(ask(broker, pid=f"p-{i}") for i in range(5)),
                                   return_exceptions=True)
    assert all(isinstance(r, VideoUnavailable) and str(r) == UNAVAILABLE for r in results)
    assert fake.create_calls == 1  # the waiting requests shared the one failure


async def test_unavailable_with_wrong_secret(make_broker: MakeBroker, fake: FakeOpenTok) -> None:
    broker = make_broker(api_secret="not-the-secret")
    with pytest.raises(VideoUnavailable):
        await ask(broker)
    assert fake.create_calls == 0  # the fake refused it with 403


async def test_unavailable_within_timeout_when_opentok_hangs(make_broker: MakeBroker,
                                                             fake: FakeOpenTok) -> None:
    fake.mode = "hang"
    broker = make_broker(timeout=0.5)
    loop = asyncio.get_running_loop()
    start = loop.time()
    with pytest.raises(VideoUnavailable):
        await ask(broker)
    assert loop.time() - start < 1.0
    assert fake.create_calls == 1


async def test_failed_create_is_retried_later(make_broker: MakeBroker,
                                              fake: FakeOpenTok) -> None:
    fake.mode = "fail"
    broker = make_broker()
    with pytest.raises(VideoUnavailable):
        await ask(broker)
    fake.mode = "ok"
    reply = await ask(broker)
    assert reply["session_id"] == fake.session_ids[0]
    assert fake.create_calls == 2


async def test_two_nodes_share_a_failure_then_retry(
        make_broker: MakeBroker, fake: FakeOpenTok, redis_prefix: str) -> None:
    fake.mode, fake.delay = "fail", 0.3
    nodes = [make_broker(RedisVideoSessionStore(REDIS_URL, redis_prefix, retry_after=0.3))
             for _ in range(2)]
    results = await asyncio.gather(*(ask(nodes[i % 2], pid=f"p-{i}") for i in range(10)),
                                   return_exceptions=True)
    assert all(isinstance(r, VideoUnavailable) for r in results)
    assert fake.create_calls == 1  # the other node saw the failure marker, not OpenTok
    fake.mode, fake.delay = "ok", 0.0
    await asyncio.sleep(0.4)
    replies = [await ask(node) for node in nodes]
    assert {reply["session_id"] for reply in replies} == {fake.session_ids[0]}
    assert fake.create_calls == 2


async def test_redis_unreachable_is_unavailable(make_broker: MakeBroker) -> None:
    broker = make_broker(RedisVideoSessionStore("redis://127.0.0.1:1/0", "test-video"))
    with pytest.raises(VideoUnavailable):
        await ask(broker)


async def test_from_settings() -> None:
    off = video_from_settings(Settings(secret="k"))
    assert not off.enabled
    await off.close()
    on = video_from_settings(Settings(secret="k", opentok_api_key="4711",
                                      opentok_api_secret="abc", redis_url=REDIS_URL),
                             token_ttl=60)
    assert on.enabled
    assert isinstance(on._store, RedisVideoSessionStore)
    await on.close()
    with pytest.raises(ValueError, match="token_ttl"):
        video_from_settings(Settings(secret="k"), token_ttl=0)


async def test_store_from_url() -> None:
    memory = video_store_from_url(None, "classroom")
    assert isinstance(memory, MemoryVideoSessionStore)
    await memory.close()
    shared = video_store_from_url(REDIS_URL, "classroom")
    assert isinstance(shared, RedisVideoSessionStore)
    await shared.close()
