"""Webhooks: signing per Standard Webhooks, the tenant settings, the events' bodies and
erasure, and the sender against a real HTTP receiver on loopback (tests/fakes) that
checks every signature on its own: one that accepts, one that fails for a while, one
that never answers, and two nodes on one Redis delivering each event once.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis

from auth.tenants import Tenant, TenantConfigError, TenantRegistry, load_tenants
from classroom.integrations.outbox import Backoff
from classroom.integrations.webhooks import (
    Delivery,
    MemoryWebhookOutbox,
    RedisWebhookOutbox,
    WebhookOutbox,
    Webhooks,
    WebhookSender,
    events,
)
from classroom.integrations.webhooks.signing import secret_key, sign
from tests.fakes.webhook_receiver import WebhookReceiver, verify

REDIS_URL = os.environ.get("CLASSROOM_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
SECRET = "whsec_" + base64.b64encode(b"acme-webhook-secret-0123456789ab").decode()
OTHER_SECRET = "whsec_" + base64.b64encode(b"someone-else-secret-0123456789ab").decode()
FAST = Backoff(base=0.05, cap=0.1, jitter=0.0)
TABLE: dict[str, Any] = {
    "session": "s-1", "trainer_screen": "intro",
    "students": [
        {"participant": {"pid": "p1", "role": "student", "sub": "u1", "name": "Sam Student"},
         "screen": "intro", "completed": ["intro"], "completed_count": 1},
        {"participant": {"pid": "p2", "role": "student", "sub": "u2", "name": "Noor"},
         "screen": None, "completed": [], "completed_count": 0},
    ],
}


def tenant(url: str | None, secret: str | None = SECRET, tenant_id: str = "acme") -> Tenant:
    return Tenant(id=tenant_id, secrets=("x" * 32,), api_key=f"{tenant_id}-key",
                  webhook_url=url, webhook_secret=secret if url else None)


async def eventually(check: Callable[[], Any], timeout: float = 5.0) -> None:
    """Until ``await check()`` is truthy (the sender settles just after the receiver answers)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def progress(tenant: Tenant, session: str) -> dict[str, Any]:
    return {**TABLE, "session": session}


# -- signing and settings -------------------------------------------------------------


def test_signature_matches_the_specification_example() -> None:
    """The example of the Standard Webhooks reference libraries' tests."""
    key = secret_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    signature = sign(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}')
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_the_receivers_check_refuses_what_it_should() -> None:
    body = b'{"type":"x"}'
    now = 1_800_000_000
    good = {"webhook-id": "msg_1", "webhook-timestamp": str(now),
            "webhook-signature": sign(secret_key(SECRET), "msg_1", now, body)}
    assert verify(SECRET, good, body, now=now)
    assert not verify(OTHER_SECRET, good, body, now=now)
    assert not verify(SECRET, good, body + b" ", now=now)
    assert not verify(SECRET, {**good, "webhook-id": "msg_2"}, body, now=now)
    assert not verify(SECRET, good, body, now=now + 301)  # a replay, too late


@pytest.mark.parametrize(("fields", "problem"), [
    ({"webhook_url": "http://backend.acme.example/hooks"}, "https"),
    ({"webhook_url": "ftp://backend.acme.example/hooks"}, "https"),
    ({"webhook_url": "https://user:pw@backend.acme.example/"}, "user or password"),
    ({"webhook_secret": "acme-webhook-secret-0123456789ab"}, "whsec_"),
    ({"webhook_secret": "whsec_not base64!"}, "base64"),
    ({"webhook_secret": "whsec_" + base64.b64encode(b"short").decode()}, "24 to 64"),
    ({"webhook_url": None}, "go together"),
])
def test_tenant_webhook_settings_are_checked_without_quoting_them(
    fields: dict[str, Any], problem: str,
) -> None:
    entry = {"secrets": ["x" * 32], "api_key": "k" * 32,
             "webhook_url": "https://backend.acme.example/hooks", "webhook_secret": SECRET}
    entry.update(fields)
    entry = {k: v for k, v in entry.items() if v is not None}
    with pytest.raises(TenantConfigError, match=problem) as caught:
        load_tenants(json.dumps({"acme": entry}))
    for value in fields.values():
        if value is not None:
            assert str(value) not in str(caught.value)


def test_https_anywhere_and_http_to_loopback_are_accepted() -> None:
    for url in ("https://backend.acme.example/hooks", "http://127.0.0.1:8080/h",
                "http://[::1]/h", "http://localhost:9000/h"):
        registry = load_tenants(json.dumps({"acme": {
            "secrets": ["x" * 32], "api_key": "k" * 32, "webhook_url": url,
            "webhook_secret": SECRET}}))
        found = registry.get("acme")
        assert found is not None and found.webhook_url == url
        assert SECRET not in repr(found)


# -- bodies and erasure ---------------------------------------------------------------


def test_once_per_session_events_get_the_same_id_and_key_on_every_node() -> None:
    one = events.delivery("acme", events.SESSION_ENDED, {"session": "s-1"}, at=1.0,
                          session="s-1", once=True)
    two = events.delivery("acme", events.SESSION_ENDED, {"session": "s-1"}, at=2.0,
                          session="s-1", once=True)
    other = events.delivery("acme", events.SESSION_ENDED, {"session": "s-2"}, at=1.0,
                            session="s-2", once=True)
    assert one.id == two.id and one.dedupe == two.dedupe == "session.ended:acme:s-1"
    assert other.id != one.id and len(one.id) == 32
    erased = events.delivery("acme", events.USER_ERASED, {"sub": "u1"}, at=1.0)
    assert erased.dedupe is None and erased.about == ["u1"]


def test_minimise_takes_the_user_out_but_keeps_their_own_erasure_notice() -> None:
    data = events.session_ended("s-1", at=1.0, progress=TABLE, attendance=None)
    ended = events.delivery("acme", events.SESSION_ENDED, data, at=1.0, session="s-1")
    assert ended.about == ["u1", "u2"]
    smaller = events.minimise(ended, "u1")
    assert smaller is not None and "u1" not in smaller.body and "Sam" not in smaller.body
    rows = json.loads(smaller.body)["data"]["progress"]["students"]
    assert [r["participant"]["sub"] for r in rows] == ["u2"]
    notice = events.delivery("acme", events.USER_ERASED, {"sub": "u1"}, at=1.0)
    assert events.minimise(notice, "u1") == notice


# -- the outbox of deliveries: memory and Redis ---------------------------------------


class Outboxes:
    """Outboxes as nodes see them: memory shares one instance, Redis shares one prefix."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.prefix = f"test-webhooks-{uuid.uuid4().hex[:12]}"
        self.made: list[WebhookOutbox] = []

    def __call__(self, **options: Any) -> WebhookOutbox:
        options.setdefault("backoff", FAST)
        if self.kind == "memory":
            if not self.made:
                self.made.append(MemoryWebhookOutbox(**options))
            return self.made[0]
        outbox = RedisWebhookOutbox(REDIS_URL, prefix=self.prefix, **options)
        self.made.append(outbox)
        return outbox

    async def stored(self) -> str:
        """Everything under the prefix in Redis (empty for memory), as text."""
        if self.kind == "memory":
            return ""
        client = aioredis.from_url(REDIS_URL, protocol=2)
        found: list[Any] = []
        async for key in client.scan_iter(f"{self.prefix}:*"):
            kind = await client.type(key)
            if kind == b"hash":
                found.append((key, await client.hgetall(key)))
            elif kind == b"set":
                found.append((key, await client.smembers(key)))
            else:
                found.append((key, await client.zrange(key, 0, -1)))
        await client.aclose()
        return repr(found)

    async def clean(self) -> None:
        for outbox in self.made:
            await outbox.close()
        if self.kind == "redis":
            client = aioredis.from_url(REDIS_URL, protocol=2)
            keys = [key async for key in client.scan_iter(f"{self.prefix}:*")]
            if keys:
                await client.delete(*keys)
            await client.aclose()


@pytest.fixture(params=["memory", "redis"])
async def outboxes(request: pytest.FixtureRequest) -> AsyncIterator[Outboxes]:
    made = Outboxes(request.param)
    yield made
    await made.clean()


@pytest.fixture
async def senders() -> AsyncIterator[Callable[..., WebhookSender]]:
    """Started senders with tiny timeouts; stopped after the test."""
    made: list[WebhookSender] = []

    def make(outbox: WebhookOutbox, registry: TenantRegistry, **options: Any) -> WebhookSender:
        options.setdefault("timeout", 0.5)
        sender = WebhookSender(outbox, registry, poll_interval=0.05, **options)
        sender.start()
        made.append(sender)
        return sender

    yield make
    for sender in made:
        await sender.stop()


async def attendance(tenant: str, session: str) -> dict[str, Any]:
    return {"session": session, "participants": [{"sub": "u1", "minutes": 42.0}]}


def emitter(sender: WebhookSender, registry: TenantRegistry) -> Webhooks:
    return Webhooks(tenants=registry, sender=sender, progress=progress, attendance=attendance)


async def test_events_are_delivered_signed_and_only_a_record_is_kept(
    outboxes: Outboxes, senders: Callable[..., WebhookSender],
) -> None:
    async with WebhookReceiver(SECRET) as receiver:
        registry = TenantRegistry([tenant(receiver.url), tenant(None, tenant_id="globex")])
        sender = senders(outboxes(), registry)
        hooks = emitter(sender, registry)
        await hooks.session_started("acme", "s-1")
        await hooks.session_ended("acme", "s-1")
        await hooks.session_started("globex", "s-1")  # no webhook configured: nothing
        await hooks.attendance_updated("acme", "s-1", {"present": [{"sub": "u2"}]})
        got = await receiver.wait_accepted(3)
        assert all(r.verified for r in got)
        by_type = {r.event["type"]: r for r in got}
        assert set(by_type) == {"session.started", "session.ended", "attendance.updated"}
        assert by_type["attendance.updated"].event["data"]["attendance"] == {
            "present": [{"sub": "u2"}]}
        ended = by_type["session.ended"].event
        assert ended["data"]["progress"] == TABLE | {"session": "s-1"}
        assert ended["data"]["attendance"] == await attendance("acme", "s-1")
        assert ended["timestamp"].endswith("Z")
        assert by_type["session.ended"].webhook_id.startswith("msg_")
        assert by_type["session.ended"].headers["content-type"] == "application/json"
        await asyncio.sleep(0.2)
        assert len(receiver.received) == 3
        assert await sender.outbox.depth() == 0
        [record] = await sender.outbox.about("acme", "u1")
        assert record["status"] == "sent" and record["type"] == "session.ended"
        assert "Sam Student" not in await outboxes.stored()  # delivered: the body is not kept


async def test_a_failing_receiver_gets_the_event_later_under_the_same_id(
    outboxes: Outboxes, senders: Callable[..., WebhookSender], caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    async with WebhookReceiver(SECRET, fail_first=3) as receiver:
        registry = TenantRegistry([tenant(receiver.url)])
        sender = senders(outboxes(), registry)
        await emitter(sender, registry).session_ended("acme", "s-1")
        [accepted] = await receiver.wait_accepted(1)
        assert [r.answered for r in receiver.received] == [500, 500, 500, 204]
        assert {r.webhook_id for r in receiver.received} == {accepted.webhook_id}
        assert {r.body for r in receiver.received} == {accepted.body}
        assert all(r.verified for r in receiver.received)
        async def settled() -> bool:
            return await sender.outbox.depth() == 0

        await eventually(settled)
        [record] = await sender.outbox.about("acme", "u2")
        assert record["status"] == "sent" and record["attempts"] == 3
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("classroom"))
    assert "HTTP 500" in ours and "delivered (session.ended)" in ours
    for personal in ("Sam", "Noor", "u1", "u2", "127.0.0.1", "hooks"):
        assert personal not in ours  # ids, types and labels only


async def test_a_receiver_that_never_answers_ends_as_a_dead_letter_then_revives(
    outboxes: Outboxes, senders: Callable[..., WebhookSender],
) -> None:
    async with WebhookReceiver(SECRET, hang_first=3) as receiver:
        registry = TenantRegistry([tenant(receiver.url)])
        sender = senders(outboxes(max_attempts=3), registry, timeout=1.0)
        await emitter(sender, registry).session_started("acme", "s-1")
        await receiver.wait_received(3)
        for _ in range(100):
            if await sender.outbox.dead_count("acme"):
                break
            await asyncio.sleep(0.05)
        [dead] = await sender.outbox.dead_letters("acme", 10)
        assert dead.attempts == 3 and dead.last_error == "ReadTimeout"
        await asyncio.sleep(0.3)
        assert len(receiver.received) == 3  # never tried again on its own
        revived = await sender.outbox.revive("acme", dead.id)
        assert revived is not None
        sender.wake()
        [accepted] = await receiver.wait_accepted(1)
        assert accepted.webhook_id == dead.webhook_id == receiver.received[0].webhook_id
        assert await sender.outbox.dead_count() == 0


async def test_a_refused_status_is_kept_as_its_label_not_retried_past_max(
    outboxes: Outboxes, senders: Callable[..., WebhookSender],
) -> None:
    async with WebhookReceiver(OTHER_SECRET) as receiver:  # it answers 401: wrong secret
        registry = TenantRegistry([tenant(receiver.url)])
        sender = senders(outboxes(max_attempts=1), registry)
        await emitter(sender, registry).session_started("acme", "s-1")
        await receiver.wait_received(1)
        for _ in range(100):
            if dead := await sender.outbox.dead_letters("acme", 1):
                break
            await asyncio.sleep(0.05)
        assert dead[0].last_error == "HTTP 401" and receiver.accepted == []


async def test_erasure_minimises_queued_deliveries_and_sends_user_erased(
    outboxes: Outboxes, senders: Callable[..., WebhookSender],
) -> None:
    async with WebhookReceiver(SECRET) as receiver:
        registry = TenantRegistry([tenant(receiver.url)])
        outbox = outboxes()
        idle = WebhookSender(outbox, registry)  # not started: deliveries wait
        hooks = emitter(idle, registry)
        await hooks.session_ended("acme", "s-1")
        await hooks.user_erased("acme", "u1", {"sessions": 1, "events": 2})
        assert await outbox.about("acme", "u1") == [
            m for m in await outbox.about("acme", "u1") if m["type"] == "user.erased"]
        [ended] = await outbox.about("acme", "u2")
        assert ended["type"] == "session.ended"
        assert "Sam Student" not in await outboxes.stored()
        senders(outbox, registry)
        got = {r.event["type"]: r for r in await receiver.wait_accepted(2)}
        assert "u1" not in got["session.ended"].body.decode()
        assert "Sam" not in got["session.ended"].body.decode()
        assert got["user.erased"].event["data"] | {"erased_at": None} == {
            "sub": "u1", "sessions": 1, "events": 2, "erased_at": None}


async def test_two_nodes_deliver_each_event_exactly_once(
    senders: Callable[..., WebhookSender],
) -> None:
    made = Outboxes("redis")
    started: list[WebhookSender] = []
    try:
        async with WebhookReceiver(SECRET) as receiver:
            registry = TenantRegistry([tenant(receiver.url)])
            started += (senders(made(), registry) for _ in range(2))
            one, two = started
            hooks = [emitter(one, registry), emitter(two, registry)]
            # Both nodes see every session go live and end (a race on the status), and
            # each erases someone: all of it at once.
            await asyncio.gather(*(
                call for n in range(10) for hook in hooks for call in (
                    hook.session_started("acme", f"s-{n}"), hook.session_ended("acme", f"s-{n}"))
            ), hooks[0].user_erased("acme", "u8", {}), hooks[1].user_erased("acme", "u9", {}))
            got = await receiver.wait_accepted(22)
            await asyncio.sleep(0.5)  # time for any double to arrive
            assert len(receiver.received) == 22 and all(r.verified for r in got)
            ids = [r.webhook_id for r in got]
            assert len(set(ids)) == 22
            kinds = sorted((r.event["type"], r.event["data"].get("session")) for r in got)
            assert kinds.count(("session.started", "s-3")) == 1
            assert kinds.count(("session.ended", "s-3")) == 1
            assert kinds.count(("user.erased", None)) == 2
    finally:
        # Stop the senders before closing their outboxes, as the app does: a sender
        # still polling would open a new connection on the closed pool, left unclosed.
        for sender in started:
            await sender.stop()
        await made.clean()


def test_a_delivery_keeps_its_body_out_of_repr() -> None:
    data = events.session_ended("s-1", at=1.0, progress=TABLE, attendance=None)
    item = events.delivery("acme", events.SESSION_ENDED, data, at=1.0, session="s-1")
    assert "Sam" not in repr(item) and "u1" not in repr(item)
    assert Delivery.loads(item.dumps()) == item
    assert orjson.loads(item.body)["type"] == "session.ended"
