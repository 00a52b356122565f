"""The server API's body limit stops reading at the limit (docs/api.md: 400, "body too large").

The refusal comes while the client still has body to send: by ``Content-Length`` before
any of the body, and for a chunked body at the first chunk past 4 MiB. What the client
sends after that is discarded, so the server's memory does not grow by the body's size.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from typing import Any

import httpx

from classroom.tenant_api.routes import MAX_BODY
from tests.conftest import RunningServer

AUTH = "Authorization: Bearer acme-key\r\n"
MIB = 1024 * 1024


async def read_answer(reader: asyncio.StreamReader, timeout: float = 5.0) -> tuple[int, Any]:
    """Status and JSON body of one HTTP answer (Content-Length framed)."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    length = int(headers.get("content-length", "0"))
    body = await asyncio.wait_for(reader.readexactly(length), timeout)
    return status, json.loads(body)


def rss_bytes() -> int:
    """This process's resident memory: the test server runs in it."""
    with open(f"/proc/{os.getpid()}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


async def test_a_declared_length_over_the_limit_is_refused_before_the_body(
    server: RunningServer,
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write((
        "PUT /api/v1/sessions/s1 HTTP/1.1\r\nHost: x\r\n" + AUTH
        + "Content-Type: application/json\r\n"
        + f"Content-Length: {300 * MIB}\r\n\r\n"
    ).encode())
    await writer.drain()
    status, body = await read_answer(reader)  # not a byte of the 300 MiB sent
    assert status == 400
    assert body == {"error": "bad_request", "message": "body too large"}
    writer.close()


async def test_a_chunked_body_is_refused_at_the_limit_and_the_rest_is_not_kept(
    server: RunningServer,
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write((
        "PUT /api/v1/sessions/s1 HTTP/1.1\r\nHost: x\r\n" + AUTH
        + "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    ).encode())
    chunk = b"%x\r\n" % MIB + b" " * MIB + b"\r\n"
    before = rss_bytes()
    for _ in range(MAX_BODY // MIB + 1):  # 5 MiB: past the limit, and the body goes on
        writer.write(chunk)
        await writer.drain()
    status, body = await read_answer(reader)
    assert status == 400
    assert body == {"error": "bad_request", "message": "body too large"}
    for _ in range(60):  # another 60 MiB the server must not keep
        writer.write(chunk)
        await writer.drain()
    writer.write(b"0\r\n\r\n")
    await writer.drain()
    await asyncio.sleep(0.2)
    assert rss_bytes() - before < 40 * MIB
    writer.close()


async def test_a_body_at_the_limit_is_still_read(server: RunningServer) -> None:
    roster = json.dumps({"title": "Heftruck", "trainers": ["t1"]}).encode()
    padded = roster + b" " * (MAX_BODY - len(roster))
    async with httpx.AsyncClient(base_url=server.http_url) as http:
        answer = await http.put("/api/v1/sessions/s1", content=padded, headers={
            "Authorization": "Bearer acme-key", "Content-Type": "application/json"})
        assert answer.status_code == 200, answer.text
        over = await http.put("/api/v1/sessions/s1", content=padded + b" ", headers={
            "Authorization": "Bearer acme-key", "Content-Type": "application/json"})
        assert over.status_code == 400
        assert over.json() == {"error": "bad_request", "message": "body too large"}

        async def chunks() -> AsyncIterator[bytes]:
            for start in range(0, len(padded) + 1, MIB):
                yield (padded + b" ")[start:start + MIB]

        chunked = await http.put("/api/v1/sessions/s1", content=chunks(), headers={
            "Authorization": "Bearer acme-key", "Content-Type": "application/json"})
        assert chunked.status_code == 400
        # The connection is still good for the next request.
        again = await http.get("/api/v1/sessions/s1", headers={"Authorization": "Bearer acme-key"})
        assert again.status_code == 200 and again.json()["roster"]["title"] == "Heftruck"
