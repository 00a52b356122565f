"""Course screens from the customer: ids or objects with a title and a page, checked per tenant."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.conftest import TENANTS, RunningServer, ServerFactory

ACME = {"Authorization": "Bearer acme-key"}
GLOBEX = {"Authorization": "Bearer globex-key"}
CONTENT = "https://content.example.com"
SCREENS: list[Any] = [
    "intro",
    {"id": "ladders", "title": "Ladders", "url": f"{CONTENT}/vca/ladders?lang=nl"},
    {"id": "scaffolds", "title": "Scaffolds"},
    {"id": "local", "url": "http://127.0.0.1:9000/quiz"},
    "quiz",
]
NORMALISED = [
    {"id": "intro"},
    {"id": "ladders", "title": "Ladders", "url": f"{CONTENT}/vca/ladders?lang=nl"},
    {"id": "scaffolds", "title": "Scaffolds"},
    {"id": "local", "url": "http://127.0.0.1:9000/quiz"},
    {"id": "quiz"},
]


@pytest.fixture
async def server(start_server: ServerFactory) -> RunningServer:
    tenants = {**TENANTS, "acme": {**TENANTS["acme"],
                                   "frame_origins": [CONTENT, "http://127.0.0.1:9000"]}}
    return await start_server(tenants_raw=json.dumps(tenants))


@pytest.fixture
async def http(server: RunningServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.http_url) as client:
        yield client


def roster(screens: Any) -> dict[str, Any]:
    return {"trainers": ["t1"], "students": [{"sub": "u1", "name": "Ada Lovelace"}],
            "screens": screens}


async def test_every_role_joins_with_the_screens_as_objects(
    server: RunningServer, http: httpx.AsyncClient,
) -> None:
    answer = await http.put("/api/v1/sessions/s1", json=roster(SCREENS), headers=ACME)
    assert answer.status_code == 200, answer.text
    stored = (await http.get("/api/v1/sessions/s1", headers=ACME)).json()["roster"]["screens"]
    assert stored[0] == "intro" and stored[1]["url"] == SCREENS[1]["url"]  # as given
    for sub, role in (("t1", "trainer"), ("u1", "student"), ("p1", "planner"),
                      ("c1", "content_manager")):
        client = await server.member(sub, role, encoding="msgpack" if role == "student"
                                     else "json")
        joined = next(f for f in client.received if f.get("type") == "joined")
        assert joined["screens"] == NORMALISED, role
        await client.close()


async def test_a_session_without_screens_joins_with_null(
    server: RunningServer, http: httpx.AsyncClient,
) -> None:
    student = await server.member("u1", "student")
    assert student.received[-1]["screens"] is None  # no roster at all
    await student.close()
    await http.put("/api/v1/sessions/s1", json=roster(None), headers=ACME)
    student = await server.member("u1", "student")
    assert student.received[-1]["screens"] is None
    await student.close()


async def test_progress_and_behind_count_by_id_and_tables_carry_the_screens(
    server: RunningServer, http: httpx.AsyncClient,
) -> None:
    await http.put("/api/v1/sessions/s1", json=roster(SCREENS), headers=ACME)
    trainer = await server.member("t1", "trainer")
    student = await server.member("u1", "student")
    await trainer.request("publish", session="s1",
                          event={"kind": "screen.navigate", "screen": "local"})
    for event in ({"kind": "progress", "screen": "ladders", "completed": True},
                  {"kind": "progress", "screen": "elsewhere", "completed": True}):
        assert (await student.request("publish", session="s1", event=event))["type"] == "published"
    table = (await http.get("/api/v1/sessions/s1/progress", headers=ACME)).json()
    assert table["screens"] == NORMALISED
    row = table["students"][0]
    assert row["completed"] == ["ladders"]  # a screen the roster does not name completes nothing
    assert row["behind"] is None  # "elsewhere" is not in the course
    await student.request("publish", session="s1", event={"kind": "progress", "screen": "intro"})
    cohort = await trainer.request("cohort", session="s1")
    assert cohort["screens"] == NORMALISED
    assert cohort["students"][0]["behind"] == 3
    await trainer.close()
    await student.close()


@pytest.mark.parametrize(("screens", "message"), [
    ([{"id": "a", "url": "https://elsewhere.example/page"}],
     "screens.0.url: its origin is not in the tenant's frame_origins"),
    (["a", {"id": "b", "url": "https://content.example.com:8443/x"}],
     "screens.1.url: its origin is not in the tenant's frame_origins"),
    ([{"id": "a", "url": "http://content.example.com/x"}],
     "url must be https (http only on 127.0.0.1 or localhost)"),
    ([{"id": "a", "url": "https://user:secret@content.example.com/x"}],
     "must not hold a user or password"),
    (["a", {"id": "a", "title": "Again"}], "screen 1 has the id of an earlier screen"),
    ([{"id": "a", "url": CONTENT + "/" + "x" * 2000}], "at most 2000 characters"),
    ([{"id": "a", "title": ""}], "title: String should have at least 1 character"),
    ([{"id": "a", "title": "t" * 201}], "title: String should have at most 200 characters"),
    ([{"id": "x" * 201}], "id: String should have at most 200 characters"),
    ([{"title": "No id"}], "id: Field required"),
    ([{"id": "a", "colour": "red"}], "Extra inputs are not permitted"),
    ([3], "screens.0"),
])
async def test_bad_screens_are_refused_with_a_clear_message(
    http: httpx.AsyncClient, screens: list[Any], message: str,
) -> None:
    answer = await http.put("/api/v1/sessions/s1", json=roster(screens), headers=ACME)
    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert body["error"] == "invalid" and message in body["message"], body
    assert "secret" not in body["message"] and "elsewhere" not in body["message"]
    assert (await http.get("/api/v1/sessions/s1", headers=ACME)).status_code == 404


async def test_a_tenant_without_frame_origins_may_name_screens_but_no_pages(
    http: httpx.AsyncClient,
) -> None:
    page = {"id": "a", "url": f"{CONTENT}/a"}
    refused = await http.put("/api/v1/sessions/s1", json=roster([page]), headers=GLOBEX)
    assert refused.status_code == 422 and "frame_origins" in refused.json()["message"]
    plain = await http.put("/api/v1/sessions/s1", json=roster([{"id": "a", "title": "A"}, "b"]),
                           headers=GLOBEX)
    assert plain.status_code == 200


async def test_the_most_screens_a_roster_may_name(http: httpx.AsyncClient) -> None:
    screens = [{"id": f"s{n}", "title": f"Screen {n}"} for n in range(2000)]
    assert (await http.put("/api/v1/sessions/s1", json=roster(screens),
                           headers=ACME)).status_code == 200
    answer = await http.put("/api/v1/sessions/s1", json=roster([*screens, "one-more"]),
                            headers=ACME)
    assert answer.status_code == 422 and "screens" in answer.json()["message"]
