"""E-mail through the server: invitations on a roster, summaries at the end, export, erasure."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import TENANTS, ServerFactory
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
