"""Connecting (section 2): encodings, the connect handshake, refusals, expiry."""

from __future__ import annotations

import asyncio

import pytest

from tests.client import Client
from tests.conftest import RunningServer, ServerFactory


@pytest.mark.parametrize("encoding", ["json", "msgpack"])
async def test_connect_in_both_encodings(server: RunningServer, encoding: str) -> None:
    client = await Client.open(server.ws_url, encoding)
    assert client.ws.subprotocol == f"classroom.v1.{encoding}"
    token = server.token("u1", "student", ["s1"], name="Ada Lovelace", email="ada@example.nl")
    reply = await client.connect(token)
    assert reply["type"] == "connected"
    assert reply["id"] == 1
    assert reply["ping_interval"] == 25
    assert isinstance(reply["client"], str) and reply["client"]
    me = reply["me"]
    assert me["sub"] == "u1" and me["role"] == "student"
    assert me["email"] == "ada@example.nl" and me["name"] == "Ada Lovelace"
    assert me["display_name"] == "Ada"
    assert (await client.request("ping"))["type"] == "pong"
    await client.close()


async def test_no_subprotocol_means_json(server: RunningServer) -> None:
    client = await Client.open(server.ws_url, encoding="")
    assert client.ws.subprotocol is None
    reply = await client.connect(server.token("u1", "trainer"))
    assert reply["type"] == "connected"
    await client.close()


async def test_refused_token_gets_unauthorized_then_4401(server: RunningServer) -> None:
    client = await Client.open(server.ws_url)
    reply = await client.connect("not-a-jwt")
    assert reply == {"type": "error", "id": 1, "code": "unauthorized", "message": "token refused"}
    assert await client.closed_code() == 4401


async def test_token_of_unknown_tenant_is_refused(server: RunningServer) -> None:
    from auth.tenants import Tenant
    from auth.tokens import issue_token

    client = await Client.open(server.ws_url)
    stranger = Tenant(id="nobody", secrets=("acme-secret-0",), api_key="k")
    reply = await client.connect(issue_token(stranger, sub="u1", role="student", sessions=["s1"]))
    assert reply["code"] == "unauthorized"
    assert await client.closed_code() == 4401


async def test_command_before_connect_is_unauthorized(server: RunningServer) -> None:
    client = await Client.open(server.ws_url)
    reply = await client.request("join", session="s1")
    assert reply["code"] == "unauthorized"
    assert await client.closed_code() == 4401


async def test_no_connect_within_the_deadline_closes(start_server: ServerFactory) -> None:
    server = await start_server(connect_timeout=0.3)
    client = await Client.open(server.ws_url)
    frame = await client.read(timeout=3)
    assert frame["type"] == "error" and frame["code"] == "unauthorized"
    assert await client.closed_code() == 4401


async def test_second_connect_is_a_bad_request(server: RunningServer) -> None:
    client = await server.client("u1", "student")
    reply = await client.connect(server.token("u1", "student"))
    assert reply["code"] == "bad_request"
    assert (await client.request("ping"))["type"] == "pong"
    await client.close()


async def test_token_expiring_while_connected_disconnects_4401(server: RunningServer) -> None:
    client = await server.client("u1", "student", ttl=1.2)
    await client.request("join", session="s1")
    frame = await client.expect("disconnect", timeout=5)
    assert frame == {"type": "disconnect", "code": 4401, "reason": "token expired",
                     "reconnect": True}
    assert await client.closed_code() == 4401


async def test_expired_token_cannot_connect(server: RunningServer) -> None:
    client = await Client.open(server.ws_url)
    reply = await client.connect(server.token("u1", "student", ttl=-5))
    assert reply["code"] == "unauthorized"
    assert await client.closed_code() == 4401


async def test_health_ready_and_metrics(server: RunningServer) -> None:
    import httpx

    async with httpx.AsyncClient(base_url=server.http_url) as http:
        assert (await http.get("/healthz")).json() == {"status": "ok"}
        ready = await http.get("/readyz")
        assert ready.status_code == 200 and ready.json() == {"ready": True}
        client = await server.client("u1", "trainer")
        await client.request("join", session="s1")
        await client.request("publish", session="s1", event={"kind": "chat", "text": "hi"})
        await client.expect("event")
        metrics = (await http.get("/metrics", headers=server.metrics_auth)).text
        assert "classroom_connections 1.0" in metrics
        assert 'classroom_frames_in_total{type="publish"} 1.0' in metrics
        assert 'classroom_frames_out_total{type="event"} 1.0' in metrics
        assert 'classroom_frames_out_total{type="joined"} 1.0' in metrics
        assert "classroom_sessions 1.0" in metrics
        fan_outs = next(line for line in metrics.splitlines()
                        if line.startswith("classroom_fanout_seconds_count"))
        assert float(fan_outs.split()[1]) >= 1
        await client.close()
        await asyncio.sleep(0.1)
        metrics = (await http.get("/metrics", headers=server.metrics_auth)).text
        assert "classroom_connections 0.0" in metrics


@pytest.mark.parametrize("frame", [
    {"type": "connect", "id": 1, "token": ""},
    {"type": "connect", "id": 1, "token": "x" * 9000},
    {"type": "connect", "id": 1},
    {"type": "connect", "id": 1, "token": 42},
])
async def test_unusable_connect_token_is_unauthorized(
    server: RunningServer, frame: dict[str, object]
) -> None:
    client = await Client.open(server.ws_url)
    await client.send_frame(frame)
    reply = await client.read()
    assert reply["code"] == "unauthorized" and reply["id"] == 1
    assert await client.closed_code() == 4401


@pytest.mark.parametrize("fields", [{}, {"token": ""}, {"token": 42}, {"token": "x" * 8193}])
async def test_a_connect_without_a_usable_token_is_refused_and_closed_4401(
    server: RunningServer, fields: dict[str, object]
) -> None:
    """What docs/protocol.md section 3 says: a token the command cannot carry is refused."""
    client = await Client.open(server.ws_url)
    await client.send_frame({"type": "connect", "id": 1, **fields})
    reply = await client.read()
    assert reply == {"type": "error", "code": "unauthorized", "message": "token refused", "id": 1}
    assert await client.closed_code() == 4401
