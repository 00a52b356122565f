"""`/debug/census`: off unless asked for, behind the metrics token, numbers and class names."""

from __future__ import annotations

import json

import httpx

from tests.conftest import ServerFactory


async def test_census_is_off_by_default(start_server: ServerFactory) -> None:
    server = await start_server()
    async with httpx.AsyncClient(base_url=server.http_url) as http:
        answer = await http.get("/debug/census", headers=server.metrics_auth)
    assert answer.status_code == 404


async def test_census_counts_a_member_and_needs_the_token(start_server: ServerFactory) -> None:
    server = await start_server(debug_census=True)
    member = await server.member("u-42", "student", name="Ada Lovelace",
                                 email="ada@example.nl")
    async with httpx.AsyncClient(base_url=server.http_url) as http:
        refused = await http.get("/debug/census")
        answer = await http.get("/debug/census?collect=1", headers=server.metrics_auth)
    await member.close()
    assert refused.status_code == 401
    assert answer.status_code == 200
    census = answer.json()
    structures = census["structures"]
    assert structures["connections"] == 1 and structures["hub_memberships"] == 1
    assert structures["stream_runtimes"] == 1 and census["gc_collected"] is not None
    assert census["types"]["classroom.edge.connection.Connection"] == 1
    assert census["gc_objects"] > 0 and census["rss_bytes"] > 0
    text = json.dumps(census)
    assert "u-42" not in text and "Ada" not in text and "example.nl" not in text
