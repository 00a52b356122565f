"""The lesson pages may frame the pages of their tenant's ``frame_origins``, and nothing else."""

from __future__ import annotations

import json

import httpx
import pytest

from classroom.edge.web_pages import CONTENT_SECURITY_POLICY, SECURITY_HEADERS
from tests.conftest import TENANTS, RunningServer, ServerFactory

ORIGINS = ["https://content.example.com", "http://127.0.0.1:9000"]


@pytest.fixture
async def server(start_server: ServerFactory) -> RunningServer:
    tenants = {**TENANTS, "acme": {**TENANTS["acme"], "frame_origins": ORIGINS}}
    return await start_server(tenants_raw=json.dumps(tenants))


def directives(policy: str) -> dict[str, str]:
    return {part.split(" ", 1)[0]: part for part in policy.split("; ")}


@pytest.mark.parametrize("page", ["/student", "/trainer", "/dashboard"])
async def test_a_lesson_page_frames_its_tenants_origins_and_keeps_the_rest(
    server: RunningServer, page: str,
) -> None:
    async with httpx.AsyncClient(base_url=server.http_url) as http:
        answer = await http.get(page, params={"session": "s1", "tenant": "acme"})
        head = await http.head(page, params={"tenant": "acme"})
    assert answer.status_code == 200 and head.status_code == 200
    for response in (answer, head):
        policy = response.headers["content-security-policy"]
        assert policy == f"{CONTENT_SECURITY_POLICY}; frame-src {' '.join(ORIGINS)}"
        assert directives(policy)["frame-ancestors"] == "frame-ancestors 'none'"
        for name, value in SECURITY_HEADERS.items():
            if name != "Content-Security-Policy":
                assert response.headers[name] == value


@pytest.mark.parametrize("query", [
    {},  # no tenant
    {"tenant": "nobody"},  # unknown
    {"tenant": ""},
    {"tenant": "globex"},  # known, without frame_origins
    {"tenant": "acme x"},
    {"tenant": "acme; frame-src *"},  # nothing of the query reaches the header
])
async def test_without_a_tenant_with_origins_a_lesson_page_frames_nothing(
    server: RunningServer, query: dict[str, str],
) -> None:
    async with httpx.AsyncClient(base_url=server.http_url) as http:
        answer = await http.get("/student", params={"session": "s1", **query})
    assert answer.status_code == 200
    assert answer.headers["content-security-policy"] == (
        f"{CONTENT_SECURITY_POLICY}; frame-src 'none'")


async def test_the_first_tenant_parameter_counts_and_many_fields_are_harmless(
    server: RunningServer,
) -> None:
    async with httpx.AsyncClient(base_url=server.http_url) as http:
        first = await http.get("/trainer?tenant=globex&tenant=acme")
        crowded = await http.get("/trainer?" + "&".join(f"x{n}=1" for n in range(50))
                                 + "&tenant=acme")
    assert first.headers["content-security-policy"].endswith("frame-src 'none'")
    assert crowded.status_code == 200
    assert crowded.headers["content-security-policy"].endswith("frame-src 'none'")


@pytest.mark.parametrize("path", ["/", "/static/common.js"])
async def test_other_pages_and_files_keep_the_plain_policy(
    server: RunningServer, path: str,
) -> None:
    async with httpx.AsyncClient(base_url=server.http_url) as http:
        answer = await http.get(path, params={"tenant": "acme"})
    assert answer.status_code == 200
    assert answer.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
