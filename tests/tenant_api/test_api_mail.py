"""E-mail through the server: invitations on a roster, summaries at the end, export, erasure,
and dead letters: listed per tenant, retried."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterator

import httpx
import pytest

from classroom.integrations.mail import Backoff
from tests.conftest import METRICS_TOKEN, TENANTS, ServerFactory
from tests.fakes.smtp_server import SmtpServer

ACME = {"Authorization": "Bearer acme-key"}
ROSTER = {
    "title": "Heftruck veilig", "trainers": ["t1"],
    "students": [{"sub": "u1", "name": "Sam Student", "email": "sam@example.nl",
                  "phone": "+31611111111"},
                 {"sub": "u2", "name": "Noor de Vries", "email": "noor@example.nl"}],
}


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


async def test_invitations_summaries_export_and_erasure(
    start_server: ServerFactory, smtp: SmtpServer
) -> None:
    tenants = json.loads(json.dumps(TENANTS))
    tenants["acme"]["invitations"] = True
    server = await start_server(tenants_raw=json.dumps(tenants), smtp_url=smtp.url,
                                mail_from="lessen@acme.example")
    async with httpx.AsyncClient(base_url=server.http_url) as http:
        assert (await http.put("/api/v1/sessions/s1", json=ROSTER,
                               headers=ACME)).status_code == 200
        invites = await smtp.wait_for(2)
        by_address = {m.message["To"]: m for m in invites}
        assert set(by_address) == {"sam@example.nl", "noor@example.nl"}
        sam = by_address["sam@example.nl"]
        assert sam.message["From"] == "lessen@acme.example"
        assert "Heftruck veilig" in sam.text() and "Sam" in sam.text()
        assert sam.message["Subject"] == "Uitnodiging / Invitation: Heftruck veilig"
        assert sam.text().index("Beste Sam") < sam.text().index("Dear Sam")
        assert "noor@example.nl" not in sam.text() and "+31611111111" not in by_address[
            "noor@example.nl"].text()

        trainer = await server.member("t1", "trainer", name="Tessa Trainer",
                                      email="tessa@acme.example")
        student = await server.member("u1", "student", name="Sam Student",
                                      email="sam@example.nl")
        await student.request("publish", session="s1", event={
            "kind": "progress", "screen": "intro", "completed": True, "score": 80})
        export = (await http.get("/api/v1/users/u1/export", headers=ACME)).json()
        assert [m["kind"] for m in export["mail"]] == ["invitation"]

        ended = await trainer.request("publish", session="s1", event={"kind": "session.end"})
        assert ended["type"] == "published"
        summary = (await smtp.wait_for(3))[-1]
        assert summary.message["To"] == "tessa@acme.example"
        assert "Sam" in summary.text() and "80" in summary.text()

        erased = await http.delete("/api/v1/users/u1", headers=ACME)
        assert erased.status_code == 200
        assert (await http.get("/api/v1/users/u1/export", headers=ACME)).status_code == 404
        outbox = server.app.state.classroom.mail_outbox
        assert await outbox.about("acme", "u1") == []


# -- dead letters (issue 12, point 15) ---------------------------------------------------

GLOBEX = {"Authorization": "Bearer globex-key"}
METRICS = {"Authorization": f"Bearer {METRICS_TOKEN}"}


async def _until(check: Callable[[], Awaitable[bool]], timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_dead_letters_are_listed_per_tenant_retried_exported_and_erased(
    start_server: ServerFactory, smtp: SmtpServer
) -> None:
    tenants = json.loads(json.dumps(TENANTS))
    for tenant in tenants.values():
        tenant["invitations"] = True
    server = await start_server(tenants_raw=json.dumps(tenants), smtp_url=smtp.url,
                                mail_from="lessen@acme.example", mail_max_attempts=2)
    outbox = server.app.state.classroom.mail_outbox
    assert outbox.max_attempts == 2
    outbox.backoff = Backoff(base=0.05, cap=0.05, jitter=0.0)  # short, for the test
    smtp.refuse = True
    async with httpx.AsyncClient(base_url=server.http_url) as http:
        assert (await http.put("/api/v1/sessions/s1", json=ROSTER,
                               headers=ACME)).status_code == 200
        assert (await http.put("/api/v1/sessions/s1", headers=GLOBEX, json={
            "students": [{"sub": "g1", "email": "gina@globex.example"}]})).status_code == 200

        async def listed(headers: dict[str, str], total: int) -> bool:
            answer = await http.get("/api/v1/mail/dead-letters", headers=headers)
            return bool(answer.json()["total"] == total)

        await _until(lambda: listed(ACME, 2))
        await _until(lambda: listed(GLOBEX, 1))
        acme = await http.get("/api/v1/mail/dead-letters", headers=ACME)
        assert acme.status_code == 200 and "gina" not in acme.text
        letters = sorted(acme.json()["dead_letters"], key=lambda d: d["recipient"])
        assert [(d["recipient"], d["to"]) for d in letters] == [
            ("u1", "sam@example.nl"), ("u2", "noor@example.nl")]
        for letter in letters:
            assert letter["kind"] == "invitation" and letter["session"] == "s1"
            assert letter["attempts"] == 2 and letter["last_error"] == "SMTPRecipientsRefused"
            assert letter["died_at"] >= letter["created_at"]
            assert set(letter) == {"id", "kind", "session", "recipient", "to", "attempts",
                                   "last_error", "created_at", "died_at"}  # no body
        sam = letters[0]
        globex = (await http.get("/api/v1/mail/dead-letters", headers=GLOBEX)).text
        assert "gina@globex.example" in globex and "sam@" not in globex and "u1" not in globex
        one = (await http.get("/api/v1/mail/dead-letters?limit=1", headers=ACME)).json()
        assert len(one["dead_letters"]) == 1 and one["total"] == 2
        assert (await http.get("/api/v1/mail/dead-letters?limit=x",
                               headers=ACME)).status_code == 400

        async def gauge_is(value: int) -> bool:
            text = (await http.get("/metrics", headers=METRICS)).text
            return f"classroom_mail_dead_letters {value}.0" in text.splitlines()

        await _until(lambda: gauge_is(3))  # every tenant's, as /metrics is the operator's
        await asyncio.sleep(0.3)  # many polls and back-offs later: nothing is tried again
        assert smtp.rcpt_attempts == 6 and smtp.received == []

        export = (await http.get("/api/v1/users/u1/export", headers=ACME)).json()
        assert [(m["id"], m["status"]) for m in export["mail"]] == [(sam["id"], "dead")]

        retry = f"/api/v1/mail/dead-letters/{sam['id']}/retry"
        assert (await http.post(retry, headers=GLOBEX)).status_code == 404
        for bad in ("nope", "0" * 32, sam["id"].upper()):
            answer = await http.post(f"/api/v1/mail/dead-letters/{bad}/retry", headers=ACME)
            assert answer.status_code == 404 and answer.json()["error"] == "not_found"
        smtp.refuse = False
        answer = await http.post(retry, headers=ACME)
        assert answer.status_code == 200
        assert answer.json() == {"id": sam["id"], "status": "queued"}
        [delivered] = await smtp.wait_for(1)
        assert delivered.message["To"] == "sam@example.nl"
        assert (await http.post(retry, headers=ACME)).status_code == 404  # no longer dead
        await _until(lambda: listed(ACME, 1))
        await _until(lambda: gauge_is(2))
        export = (await http.get("/api/v1/users/u1/export", headers=ACME)).json()
        assert [m["status"] for m in export["mail"]] == ["sent"]

        assert (await http.delete("/api/v1/users/u2", headers=ACME)).status_code == 200
        assert await listed(ACME, 0) and await outbox.about("acme", "u2") == []
        assert await listed(GLOBEX, 1)
        audit = (await http.get("/api/v1/audit", headers=ACME)).json()["entries"]
        assert "read dead letters" in {e["action"] for e in audit}
