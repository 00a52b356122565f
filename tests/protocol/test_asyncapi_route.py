"""``GET /asyncapi.json``: the document of this code, cacheable, with the data security headers."""

from __future__ import annotations

import httpx

from classroom.edge.http_headers import DATA_SECURITY_HEADERS
from classroom.protocol.asyncapi import build_asyncapi
from tests.conftest import RunningServer


async def test_the_server_serves_its_asyncapi_document(server: RunningServer) -> None:
    async with httpx.AsyncClient(base_url=server.http_url) as http:
        answer = await http.get("/asyncapi.json")
        assert answer.status_code == 200
        assert answer.headers["content-type"] == "application/json"
        assert answer.json() == build_asyncapi()
        assert answer.headers["cache-control"] == "public, max-age=3600"
        for name, value in DATA_SECURITY_HEADERS.items():
            if name != "Cache-Control":
                assert answer.headers[name] == value, name
        again = await http.get("/asyncapi.json",
                               headers={"If-None-Match": answer.headers["etag"]})
        assert again.status_code == 304 and again.content == b""
        assert again.headers["etag"] == answer.headers["etag"]
        openapi = await http.get("/openapi.json")  # next to it, unchanged
        assert openapi.status_code == 200 and openapi.json()["openapi"].startswith("3.")
