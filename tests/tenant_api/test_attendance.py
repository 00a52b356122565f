"""The attendance register over the server API: JSON and CSV, export, erasure, retention."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.conftest import TENANTS, RunningServer, ServerFactory

ACME = {"Authorization": "Bearer acme-key"}
ROSTER = {
    "title": "Feedback geven", "trainers": ["t1"], "min_attendance_percent": 50,
    "students": [
        {"sub": "u1", "name": "Sam Student", "registration_id": "PE-000123"},
        {"sub": "u2", "name": "Noor de Vries"},
        {"sub": "=HYPERLINK(1)", "name": "Formula Fan"},
    ],
}


@pytest.fixture
async def http(server: RunningServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.http_url, headers=ACME) as client:
        assert (await client.put("/api/v1/sessions/s1", json=ROSTER)).status_code == 200
        yield client


async def register(http: httpx.AsyncClient) -> dict[str, Any]:
    answer = await http.get("/api/v1/sessions/s1/attendance")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/json")
    return dict(answer.json())


def line(body: dict[str, Any], sub: str) -> dict[str, Any]:
    return next(p for p in body["participants"] if p["sub"] == sub)


async def test_spans_across_two_devices_and_a_return_make_two_intervals(
    server: RunningServer, http: httpx.AsyncClient
) -> None:
    trainer = await server.member("t1", "trainer")
    phone = await server.member("u1", "student")
    await asyncio.sleep(0.2)
    laptop = await server.member("u1", "student")  # a second device: the same span
    await phone.close()
    await asyncio.sleep(0.2)
    await laptop.close()  # the last device: the span ends
    await asyncio.sleep(0.3)
    back = await server.member("u1", "student")
    await asyncio.sleep(0.2)

    body = await register(http)
    assert body["status"] == "live" and body["started_at"] is not None
    assert body["min_attendance_percent"] == 50
    sam = line(body, "u1")
    assert sam["registration_id"] == "PE-000123" and sam["role"] == "student"
    assert sam["present"] is True
    spans = sam["intervals"]
    assert len(spans) == 2, spans
    assert 0.3 <= spans[0]["to"] - spans[0]["from"] < 2
    assert spans[1]["from"] - spans[0]["to"] >= 0.25  # the gap while no device was there
    assert sam["percent"] > 0
    noor = line(body, "u2")  # rostered, never came
    assert noor["intervals"] == [] and noor["minutes"] == 0 and noor["met"] is False
    assert line(body, "t1")["role"] == "trainer"
    await back.close()
    await trainer.close()


async def test_the_register_as_csv_is_safe_to_open_in_a_spreadsheet(
    server: RunningServer, http: httpx.AsyncClient
) -> None:
    trainer = await server.member("t1", "trainer")
    student = await server.member("u1", "student")
    await asyncio.sleep(0.1)
    answer = await http.get("/api/v1/sessions/s1/attendance", headers={"Accept": "text/csv"})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert [r["sub"] for r in rows] == ["'=HYPERLINK(1)", "t1", "u1", "u2"]
    sam = rows[2]
    assert sam["registration_id"] == "PE-000123" and sam["role"] == "student"
    assert sam["first_join"].endswith("Z") and "/" in sam["intervals"]
    assert rows[3]["met"] == "no" and rows[3]["intervals"] == ""
    await student.close()
    await trainer.close()


async def test_unknown_session_and_other_tenants_get_nothing(
    server: RunningServer, http: httpx.AsyncClient
) -> None:
    assert (await http.get("/api/v1/sessions/nope/attendance")).status_code == 404
    other = await http.get("/api/v1/sessions/s1/attendance",
                           headers={"Authorization": "Bearer globex-key"})
    assert other.status_code == 404


async def test_export_has_the_users_attendance_and_erasure_removes_it(
    server: RunningServer, http: httpx.AsyncClient
) -> None:
    trainer = await server.member("t1", "trainer")
    student = await server.member("u1", "student")
    await asyncio.sleep(0.1)
    export = (await http.get("/api/v1/users/u1/export")).json()
    assert [a["session"] for a in export["attendance"]] == ["s1"]
    assert export["attendance"][0]["intervals"]
    assert (await http.delete("/api/v1/users/u1")).status_code == 200
    body = await register(http)
    assert "u1" not in [p["sub"] for p in body["participants"]]
    assert body["erased"] == []  # no attendance retention: nothing is kept
    await student.close()
    await trainer.close()


async def test_attendance_retention_keeps_a_pseudonymous_line_after_erasure(
    start_server: ServerFactory,
) -> None:
    tenants = json.loads(json.dumps(TENANTS))
    tenants["acme"]["attendance_retention_days"] = 3650
    server = await start_server(tenants_raw=json.dumps(tenants))
    async with httpx.AsyncClient(base_url=server.http_url, headers=ACME) as http:
        assert (await http.put("/api/v1/sessions/s1", json=ROSTER)).status_code == 200
        trainer = await server.member("t1", "trainer")
        student = await server.member("u1", "student", name="Sam Student")
        await asyncio.sleep(0.2)
        await student.close()
        await asyncio.sleep(0.1)
        assert (await http.delete("/api/v1/users/u1")).status_code == 200
        answer = await http.get("/api/v1/sessions/s1/attendance")
        body = answer.json()
        assert "u1" not in [p["sub"] for p in body["participants"]]
        [kept] = body["erased"]
        assert kept["percent"] > 0 and kept["subject"].startswith("u")
        assert "u1" not in json.dumps(kept) and "Sam" not in answer.text
        await trainer.close()
