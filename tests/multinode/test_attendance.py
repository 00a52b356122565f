"""The attendance register across three nodes, with one killed (``kill -9``) mid-lesson."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from tests.multinode.conftest import Cluster, member

API = {"Authorization": "Bearer acme-multinode-key"}
ROSTER = {"trainers": ["t1"], "min_attendance_percent": 60,
          "students": [{"sub": "u1", "registration_id": "PE-1"},
                       {"sub": "u2", "registration_id": "PE-2"}]}


def spans(body: dict[str, Any], sub: str) -> list[dict[str, float]]:
    line = next(p for p in body["participants"] if p["sub"] == sub)
    return list(line["intervals"])


async def test_a_killed_node_closes_its_users_spans_at_their_presence_expiry(
    cluster: Cluster,
) -> None:
    first, doomed, third = await cluster.start(3)
    async with httpx.AsyncClient(base_url=first.http, headers=API) as http:
        assert (await http.put("/api/v1/sessions/s1", json=ROSTER)).status_code == 200
        trainer = await member(first, "t1", "trainer")
        phone = await member(doomed, "u1", "student")      # u1 on two nodes: one span
        laptop = await member(third, "u1", "student")
        only_there = await member(doomed, "u2", "student")  # u2 only on the doomed node
        await asyncio.sleep(1.0)  # a heartbeat or two (presence TTL 1.5 s)

        killed_at = time.time()
        cluster.kill(doomed)
        await trainer.expect(lambda f: f.get("type") == "presence.leave", timeout=6)
        await asyncio.sleep(4.0)  # well after the expiry: u2 comes back much later
        back_at = time.time()
        again = await member(third, "u2", "student")
        await asyncio.sleep(0.5)

        body = (await http.get("/api/v1/sessions/s1/attendance")).json()
        gone, returned = spans(body, "u2")
        # The span ends when the presence expired (last heartbeat + TTL), not at the return.
        assert killed_at - 0.6 <= gone["to"] <= killed_at + 1.6, (killed_at, gone)
        assert returned["from"] >= back_at - 0.1
        [continuous] = spans(body, "u1")  # the laptop on another node kept u1 present
        assert continuous["from"] < killed_at < continuous["to"]

        assert (await http.post("/api/v1/sessions/s1/end")).status_code == 200
        await asyncio.sleep(0.5)
        ended = (await http.get("/api/v1/sessions/s1/attendance")).json()
        assert ended["status"] == "ended" and ended["ended_at"] is not None
        u1 = next(p for p in ended["participants"] if p["sub"] == "u1")
        u2 = next(p for p in ended["participants"] if p["sub"] == "u2")
        assert u1["met"] is True and u1["registration_id"] == "PE-1"
        assert u2["met"] is False and u2["percent"] < 60  # away for most of a short lesson
        for line in (u1, u2):
            assert all(span["to"] <= ended["ended_at"] + 1.0 for span in line["intervals"])
        for client in (trainer, laptop, again, phone, only_there):
            await client.close()
