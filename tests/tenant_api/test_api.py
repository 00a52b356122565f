"""The server API (section 8) against a real server: keys, tenants, rosters, lifecycle."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.conftest import RunningServer

ACME = {"Authorization": "Bearer acme-key"}
GLOBEX = {"Authorization": "Bearer globex-key"}
ROSTER = {
    "title": "Veilig werken", "course": "VCA",
    "trainers": ["t1"],
    "students": [{"sub": "u1", "name": "Sam Student", "email": "sam@example.nl",
                  "phone": "+31611111111"},
                 {"sub": "u2", "name": "Noor de Vries", "email": "noor@example.nl"}],
    "screens": ["intro", "part-1", "part-2", "quiz"],
}
MAIL_ID = "0123456789abcdef0123456789abcdef"
ROUTES = [
    ("PUT", "/api/v1/sessions/s1", ROSTER),
    ("GET", "/api/v1/sessions/s1", None),
    ("POST", "/api/v1/sessions/s1/events", {"event": {"kind": "chat", "text": "hi"}}),
    ("POST", "/api/v1/sessions/s1/end", None),
    ("GET", "/api/v1/sessions/s1/presence", None),
    ("GET", "/api/v1/sessions/s1/progress", None),
    ("GET", "/api/v1/sessions/s1/attendance", None),
    ("GET", "/api/v1/users/u1/export", None),
    ("DELETE", "/api/v1/users/u1", None),
    ("POST", "/api/v1/users/u1/disconnect", None),
    ("GET", "/api/v1/audit", None),
    ("GET", "/api/v1/mail/dead-letters", None),
    ("POST", f"/api/v1/mail/dead-letters/{MAIL_ID}/retry", None),
    ("GET", "/api/v1/webhooks/dead-letters", None),
    ("POST", f"/api/v1/webhooks/dead-letters/{MAIL_ID}/retry", None),
]
LISTS = ("/api/v1/audit", "/api/v1/mail/dead-letters", "/api/v1/webhooks/dead-letters")
"""Routes that answer 200 with the tenant's own (here empty) list, never 403 or 404."""


@pytest.fixture
async def http(server: RunningServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.http_url) as client:
        yield client


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer nope"},
                                     {"Authorization": "Basic acme-key"}])
async def test_every_route_needs_a_tenant_api_key(
    http: httpx.AsyncClient, method: str, path: str, body: Any, headers: dict[str, str]
) -> None:
    answer = await http.request(method, path, json=body, headers=headers)
    assert answer.status_code == 401
    assert answer.json()["error"] == "unauthorized"


@pytest.mark.parametrize(("method", "path", "body"),
                         [r for r in ROUTES if r[0] != "PUT" and r[1] not in LISTS])
async def test_another_tenants_key_reaches_no_data(
    server: RunningServer, http: httpx.AsyncClient, method: str, path: str, body: Any
) -> None:
    assert (await http.put("/api/v1/sessions/s1", json=ROSTER, headers=ACME)).status_code == 200
    student = await server.member("u1", "student", name="Sam Student", email="sam@example.nl")
    await student.request("publish", session="s1", event={"kind": "progress", "screen": "intro"})
    answer = await http.request(method, path, json=body, headers=GLOBEX)
    assert answer.status_code in (403, 404), answer.text
    assert "sam@example.nl" not in answer.text and "Sam" not in answer.text
    assert (await student.request("ping"))["type"] == "pong"  # not disconnected by globex
    await student.close()


async def test_audit_logs_are_per_tenant(server: RunningServer, http: httpx.AsyncClient) -> None:
    await http.put("/api/v1/sessions/s1", json=ROSTER, headers=ACME)
    await http.get("/api/v1/sessions/s1/presence", headers=ACME)
    assert (await http.get("/api/v1/audit", headers=GLOBEX)).json() == {"entries": []}
    entries = (await http.get("/api/v1/audit", headers=ACME)).json()["entries"]
    assert [e["action"] for e in entries] == ["read presence"]


async def test_roster_round_trip_and_validation(http: httpx.AsyncClient) -> None:
    answer = await http.put("/api/v1/sessions/s1", json=ROSTER, headers=ACME)
    assert answer.status_code == 200
    assert answer.json()["status"] == "scheduled"
    got = (await http.get("/api/v1/sessions/s1", headers=ACME)).json()
    assert got["roster"]["students"][0]["email"] == "sam@example.nl"
    bad = await http.put("/api/v1/sessions/s1", json={"students": [{"name": "no sub"}]},
                         headers=ACME)
    assert bad.status_code == 422 and "students.0.sub" in bad.json()["message"]
    unknown = await http.put("/api/v1/sessions/s1", json={"colour": "blue"}, headers=ACME)
    assert unknown.status_code == 422
    assert (await http.get("/api/v1/sessions/nope", headers=ACME)).status_code == 404
    weird = await http.get("/api/v1/sessions/..%2Fetc", headers=ACME)
    assert weird.status_code == 404


async def test_a_session_id_the_websocket_refuses_is_refused_by_the_api_too(
    http: httpx.AsyncClient,
) -> None:
    """One session-id rule: a trailing newline once slipped past the API's own regex."""
    newline = await http.put("/api/v1/sessions/s1%0A", json=ROSTER, headers=ACME)
    assert newline.status_code == 404, newline.text
    assert (await http.get("/api/v1/sessions/s1%0A", headers=ACME)).status_code == 404
    too_long = await http.put(f"/api/v1/sessions/{'a' * 129}", json=ROSTER, headers=ACME)
    assert too_long.status_code == 404
    assert (await http.put(f"/api/v1/sessions/{'a' * 128}", json=ROSTER,
                           headers=ACME)).status_code == 200


async def test_session_goes_live_when_a_trainer_joins_and_ends_for_everyone(
    server: RunningServer, http: httpx.AsyncClient
) -> None:
    await http.put("/api/v1/sessions/s1", json=ROSTER, headers=ACME)
    student = await server.member("u1", "student", name="Sam Student")
    assert (await http.get("/api/v1/sessions/s1", headers=ACME)).json()["status"] == "scheduled"
    trainer = await server.member("t1", "trainer", name="Tessa Trainer")
    assert (await http.get("/api/v1/sessions/s1", headers=ACME)).json()["status"] == "live"
    ended = await http.post("/api/v1/sessions/s1/end", headers=ACME)
    assert ended.json() == {"session": "s1", "status": "ended"}
    for client in (student, trainer):
        frame = await client.expect(lambda f: f.get("event", {}).get("kind") == "session.ended")
        assert frame["event"]["by"]["role"] == "server"
        assert await client.closed_code() == 1000
    late = await server.client("u2", "student", name="Noor")
    refused = await late.request("join", session="s1")
    assert refused["code"] == "forbidden"
    published = await http.post("/api/v1/sessions/s1/events",
                                json={"event": {"kind": "chat", "text": "x"}}, headers=ACME)
    assert published.status_code == 403
    await late.close()


async def test_a_trainer_ends_the_session_with_session_end(server: RunningServer) -> None:
    trainer = await server.member("t1", "trainer", name="Tessa Trainer")
    student = await server.member("u1", "student", name="Sam Student")
    refused = await student.request("publish", session="s1", event={"kind": "session.end"})
    assert refused["code"] == "forbidden"
    reply = await trainer.request("publish", session="s1", event={"kind": "session.end"})
    assert reply["type"] == "published" and reply["offset"] >= 1
    frame = await student.expect(lambda f: f.get("event", {}).get("kind") == "session.ended")
    assert frame["event"]["by"]["role"] == "trainer"
    assert await student.closed_code() == 1000


async def test_a_member_of_two_sessions_stays_connected_when_one_ends(
    server: RunningServer, http: httpx.AsyncClient
) -> None:
    await http.put("/api/v1/sessions/s1", json=ROSTER, headers=ACME)
    student = await server.client("u1", "student", ["s1", "s2"], name="Sam")
    await student.request("join", session="s1")
    await student.request("join", session="s2")
    await http.post("/api/v1/sessions/s1/end", headers=ACME)
    await student.expect(lambda f: f.get("event", {}).get("kind") == "session.ended")
    assert (await student.request("ping"))["type"] == "pong"
    assert (await student.request("leave", session="s1"))["code"] == "bad_request"
    await student.close()


async def test_server_published_events_reach_members_as_the_server(
    server: RunningServer, http: httpx.AsyncClient
) -> None:
    await http.put("/api/v1/sessions/s1", json=ROSTER, headers=ACME)
    student = await server.member("u1", "student", name="Sam")
    answer = await http.post("/api/v1/sessions/s1/events", headers=ACME, json={
        "event": {"kind": "screen.navigate", "screen": "part-1"}, "client_msg_id": "api-1"})
    assert answer.status_code == 200 and answer.json()["offset"] == 1
    again = await http.post("/api/v1/sessions/s1/events", headers=ACME, json={
        "event": {"kind": "screen.navigate", "screen": "part-1"}, "client_msg_id": "api-1"})
    assert again.json()["offset"] == 1
    frame = await student.expect("event")
    assert frame["event"]["screen"] == "part-1"
    assert frame["event"]["by"] == {"pid": "server", "role": "server"}
    bad = await http.post("/api/v1/sessions/s1/events", headers=ACME,
                          json={"event": {"kind": "poll.answer", "poll": "q", "option": 0}})
    assert bad.status_code == 403
    bad = await http.post("/api/v1/sessions/s1/events", headers=ACME,
                          json={"event": {"kind": "chat", "text": ""}})
    assert bad.status_code == 400
    await student.close()


async def test_presence_has_full_data_for_the_back_end(
    server: RunningServer, http: httpx.AsyncClient
) -> None:
    await http.put("/api/v1/sessions/s1", json=ROSTER, headers=ACME)
    student = await server.member("u1", "student", name="Sam Student", email="sam@example.nl")
    answer = (await http.get("/api/v1/sessions/s1/presence", headers=ACME)).json()
    assert answer["participants"][0]["email"] == "sam@example.nl"
    assert answer["participants"][0]["sub"] == "u1"
    await student.close()


async def test_disconnect_closes_every_connection_of_the_user(
    server: RunningServer, http: httpx.AsyncClient
) -> None:
    await http.put("/api/v1/sessions/s1", json=ROSTER, headers=ACME)
    phone = await server.member("u1", "student", name="Sam")
    laptop = await server.client("u1", "student", name="Sam")
    other = await server.member("u2", "student", name="Noor")
    answer = await http.post("/api/v1/users/u1/disconnect", headers=ACME)
    assert answer.status_code == 200
    for client in (phone, laptop):
        frame = await client.expect("disconnect")
        assert frame["code"] == 4403 and frame["reconnect"] is False
        assert await client.closed_code() == 4403
    assert (await other.request("ping"))["type"] == "pong"
    # The node keeps no verified token of the user (their name travels in it); the
    # others' tokens stay, so their reconnects still skip the signature.
    node = server.app.state.classroom.node
    kept = node.verified_tokens
    assert kept.forget("acme", "u1") == 0
    assert kept.forget("acme", "u2") == 1
    # Nor any memory of having written a profile or index entry lately: whoever comes
    # back next writes them again.
    assert len(node.records.recent) == 0
    await other.close()


async def test_openapi_document_matches_the_routes(
    server: RunningServer, http: httpx.AsyncClient
) -> None:
    document = (await http.get("/openapi.json")).json()
    assert document["openapi"].startswith("3.")
    documented = {(method.upper(), path) for path, ops in document["paths"].items()
                  for method in ops}
    expected = {(method, path.replace("s1", "{sid}").replace("u1", "{sub}")
                 .replace(MAIL_ID, "{id}")) for method, path, _ in ROUTES}
    expected.add(("GET", "/api/v1/sessions/{sid}"))
    assert documented == expected
    for ops in document["paths"].values():
        for op in ops.values():
            for response in op["responses"].values():
                ref = response["content"]["application/json"]["schema"]["$ref"]
                assert ref.split("/")[-1] in document["components"]["schemas"]
    served = {(method, route.path) for route in server.app.routes
              if route.path.startswith("/api/") for method in (route.methods or ())
              if method != "HEAD"}
    assert served == documented
