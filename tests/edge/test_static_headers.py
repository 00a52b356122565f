"""Every answer under ``/static/`` carries the web client's security headers, errors too."""

from __future__ import annotations

import httpx
import pytest

from classroom.edge.web_pages import SECURITY_HEADERS
from tests.conftest import RunningServer


def assert_web_headers(answer: httpx.Response) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert answer.headers.get(name) == value, (answer.status_code, name)


async def test_a_static_file_and_its_revalidation_carry_the_headers(server: RunningServer) -> None:
    async with httpx.AsyncClient(base_url=server.http_url) as http:
        first = await http.get("/static/common.js")
        assert first.status_code == 200
        assert_web_headers(first)
        again = await http.get("/static/common.js",
                               headers={"If-None-Match": first.headers["etag"]})
        assert again.status_code == 304
        assert_web_headers(again)


@pytest.mark.parametrize(("method", "path", "status"), [
    ("GET", "/static/no-such-file.js", 404),
    ("HEAD", "/static/no-such-file.js", 404),
    ("GET", "/static/", 404),
    ("GET", "/static/%00.js", 404),
    ("POST", "/static/common.js", 405),
    ("DELETE", "/static/no-such-file.js", 405),
])
async def test_static_errors_carry_the_headers(
    server: RunningServer, method: str, path: str, status: int,
) -> None:
    async with httpx.AsyncClient(base_url=server.http_url) as http:
        answer = await http.request(method, path)
    assert answer.status_code == status
    assert_web_headers(answer)
    if status == 405:
        assert answer.headers["allow"] == "GET, HEAD"
    if method == "GET":
        assert answer.text in ("Not Found", "Method Not Allowed")
