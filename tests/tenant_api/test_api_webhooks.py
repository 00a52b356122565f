"""Webhooks through the server: the tenant's back end (a real receiver on loopback that
checks every signature) hears a session start and end and a user's erasure; deliveries
given up on are dead letters the server API lists and retries; two nodes on one Redis
deliver each event once.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from classroom.integrations.outbox import Backoff
from tests.conftest import METRICS_TOKEN, TENANTS, ServerFactory
from tests.fakes.webhook_receiver import WebhookReceiver

REDIS_URL = os.environ.get("CLASSROOM_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
SECRET = "whsec_" + base64.b64encode(b"acme-webhook-secret-0123456789ab").decode()
ACME = {"Authorization": "Bearer acme-key"}
GLOBEX = {"Authorization": "Bearer globex-key"}
METRICS = {"Authorization": f"Bearer {METRICS_TOKEN}"}
ROSTER = {
    "title": "Heftruck veilig", "trainers": ["t1", "t2"], "screens": ["intro", "quiz"],
    "students": [{"sub": "u1", "name": "Sam Student", "email": "sam@example.nl"},
                 {"sub": "u2", "name": "Noor de Vries", "email": "noor@example.nl"}],
}


def with_webhook(url: str) -> str:
    tenants = json.loads(json.dumps(TENANTS))
    tenants["acme"].update(webhook_url=url, webhook_secret=SECRET)
    return json.dumps(tenants)


async def until(check: Callable[[], Awaitable[bool]], timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_the_back_end_hears_a_session_start_and_end_and_an_erasure(
    start_server: ServerFactory,
) -> None:
    async with WebhookReceiver(SECRET) as receiver:
        server = await start_server(tenants_raw=with_webhook(receiver.url))
        async with httpx.AsyncClient(base_url=server.http_url) as http:
            assert (await http.put("/api/v1/sessions/s1", json=ROSTER,
                                   headers=ACME)).status_code == 200
            trainer = await server.member("t1", "trainer", name="Tessa")
            [started] = await receiver.wait_accepted(1)
            assert started.event["type"] == "session.started"
            assert started.event["data"]["session"] == "s1"
            second = await server.member("t2", "trainer")  # already live: no second event
            student = await server.member("u1", "student", name="Sam Student")
            await student.request("publish", session="s1", event={
                "kind": "progress", "screen": "intro", "completed": True, "score": 80})
            await until(lambda: _reported(http))
            table = (await http.get("/api/v1/sessions/s1/progress", headers=ACME)).json()
            assert (await http.post("/api/v1/sessions/s1/end", headers=ACME)).status_code == 200
            ended = (await receiver.wait_accepted(2))[1]
            assert ended.event["type"] == "session.ended"
            data = ended.event["data"]
            assert data["progress"] == table
            register = (await http.get("/api/v1/sessions/s1/attendance", headers=ACME)).json()
            assert data["attendance"]["session"] == "s1" and data["attendance"]["ended_at"]
            assert [p["sub"] for p in data["attendance"]["participants"]] == [
                p["sub"] for p in register["participants"]]
            sam = next(p for p in data["attendance"]["participants"] if p["sub"] == "u1")
            assert sam["intervals"] and sam["role"] == "student"
            assert {r["participant"]["sub"] for r in data["progress"]["students"]} == {
                "u1", "u2"}

            export = (await http.get("/api/v1/users/u2/export", headers=ACME)).json()
            assert [(w["type"], w["status"]) for w in export["webhooks"]] == [
                ("session.ended", "sent")]
            assert (await http.delete("/api/v1/users/u1", headers=ACME)).status_code == 200
            erased = (await receiver.wait_accepted(3))[2]
            assert erased.event["type"] == "user.erased"
            assert erased.event["data"]["sub"] == "u1"
            await asyncio.sleep(0.2)
            assert len(receiver.received) == 3 and all(r.verified for r in receiver.received)
            assert len({r.webhook_id for r in receiver.received}) == 3
            for client in (trainer, second, student):
                await client.close()


async def _reported(http: httpx.AsyncClient) -> bool:
    table = (await http.get("/api/v1/sessions/s1/progress", headers=ACME)).json()
    return any(row["completed"] for row in table["students"])


async def test_dead_webhooks_are_listed_per_tenant_and_retried_with_the_same_id(
    start_server: ServerFactory,
) -> None:
    async with WebhookReceiver(SECRET, hang_first=2) as receiver:
        server = await start_server(tenants_raw=with_webhook(receiver.url),
                                    webhook_timeout=0.3, webhook_max_attempts=2)
        outbox = server.app.state.classroom.webhook_sender.outbox
        outbox.backoff = Backoff(base=0.05, cap=0.05, jitter=0.0)  # short, for the test
        async with httpx.AsyncClient(base_url=server.http_url) as http:
            assert (await http.put("/api/v1/sessions/s1", json=ROSTER,
                                   headers=ACME)).status_code == 200
            assert (await http.post("/api/v1/sessions/s1/end", headers=ACME)).status_code == 200

            async def listed(headers: dict[str, str], total: int) -> bool:
                answer = await http.get("/api/v1/webhooks/dead-letters", headers=headers)
                return bool(answer.json()["total"] == total)

            await until(lambda: listed(ACME, 1))
            assert await listed(GLOBEX, 0)
            [dead] = (await http.get("/api/v1/webhooks/dead-letters",
                                     headers=ACME)).json()["dead_letters"]
            assert dead["type"] == "session.ended" and dead["session"] == "s1"
            assert dead["attempts"] == 2 and dead["last_error"] == "ReadTimeout"
            assert dead["webhook_id"] == receiver.received[0].webhook_id
            assert set(dead) == {"id", "webhook_id", "type", "session", "attempts",
                                 "last_error", "created_at", "died_at"}  # no body

            async def gauge_is(value: int) -> bool:
                text = (await http.get("/metrics", headers=METRICS)).text
                return f"classroom_webhook_dead_letters {value}.0" in text.splitlines()

            await until(lambda: gauge_is(1))
            await asyncio.sleep(0.3)
            assert len(receiver.received) == 2  # not tried again on its own

            retry = f"/api/v1/webhooks/dead-letters/{dead['id']}/retry"
            assert (await http.post(retry, headers=GLOBEX)).status_code == 404
            for bad in ("nope", "0" * 32, dead["id"].upper()):
                answer = await http.post(f"/api/v1/webhooks/dead-letters/{bad}/retry",
                                         headers=ACME)
                assert answer.status_code == 404 and answer.json()["error"] == "not_found"
            answer = await http.post(retry, headers=ACME)
            assert answer.status_code == 200
            assert answer.json() == {"id": dead["id"], "webhook_id": dead["webhook_id"],
                                     "status": "queued"}
            [delivered] = await receiver.wait_accepted(1)
            assert delivered.webhook_id == dead["webhook_id"] and delivered.verified
            assert delivered.event["type"] == "session.ended"
            assert (await http.post(retry, headers=ACME)).status_code == 404  # not dead now
            await until(lambda: listed(ACME, 0))
            audit = (await http.get("/api/v1/audit", headers=ACME)).json()["entries"]
            assert "read webhook dead letters" in {e["action"] for e in audit}


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    prefix = f"test-webhooks-{uuid.uuid4().hex[:12]}"
    yield prefix
    client = aioredis.from_url(REDIS_URL, protocol=2)
    keys = [key async for key in client.scan_iter(f"{prefix}:*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


async def test_two_nodes_on_one_redis_deliver_each_event_once(
    start_server: ServerFactory, redis_prefix: str,
) -> None:
    async with WebhookReceiver(SECRET) as receiver:
        options: dict[str, Any] = {"tenants_raw": with_webhook(receiver.url),
                                   "redis_url": REDIS_URL, "redis_prefix": redis_prefix}
        one, two = await start_server(**options), await start_server(**options)
        async with httpx.AsyncClient(base_url=one.http_url) as http_one, \
                httpx.AsyncClient(base_url=two.http_url) as http_two:
            for n in range(5):
                assert (await http_one.put(f"/api/v1/sessions/s{n}", json=ROSTER,
                                           headers=ACME)).status_code == 200
            # Each session's two trainers go live on different nodes at once, then both
            # nodes' APIs end it at once: each node may think it was first.
            members = await asyncio.gather(*(
                node.member(sub, "trainer", session=f"s{n}")
                for n in range(5) for node, sub in ((one, "t1"), (two, "t2"))))
            await asyncio.gather(*(
                http.post(f"/api/v1/sessions/s{n}/end", headers=ACME)
                for n in range(5) for http in (http_one, http_two)))
            got = await receiver.wait_accepted(10)
            await asyncio.sleep(0.5)  # time for any double to arrive
            assert len(receiver.received) == 10 and all(r.verified for r in got)
            seen = sorted((r.event["type"], r.event["data"]["session"]) for r in got)
            assert seen == sorted((kind, f"s{n}") for n in range(5)
                                  for kind in ("session.started", "session.ended"))
            assert len({r.webhook_id for r in got}) == 10
            for member in members:
                await member.close()


async def test_a_participant_leaving_a_live_lesson_sends_their_attendance_line(
    start_server: ServerFactory,
) -> None:
    async with WebhookReceiver(SECRET) as receiver:
        server = await start_server(tenants_raw=with_webhook(receiver.url))
        async with httpx.AsyncClient(base_url=server.http_url) as http:
            assert (await http.put("/api/v1/sessions/s1", json=ROSTER,
                                   headers=ACME)).status_code == 200
            trainer = await server.member("t1", "trainer")
            student = await server.member("u1", "student", name="Sam Student")
            await asyncio.sleep(0.1)
            await student.close()
            _started, updated = await receiver.wait_accepted(2)
            assert updated.event["type"] == "attendance.updated" and updated.verified
            data = updated.event["data"]
            [line] = data["attendance"]["participants"]
            assert line["sub"] == "u1" and line["present"] is False
            assert len(line["intervals"]) == 1 and line["intervals"][0]["to"] > 0
            # Leaving after the end sends nothing more: session.ended carries the register.
            assert (await http.post("/api/v1/sessions/s1/end", headers=ACME)).status_code == 200
            await trainer.closed_code()
            await asyncio.sleep(0.3)
            assert [r.event["type"] for r in receiver.received] == [
                "session.started", "attendance.updated", "session.ended"]
