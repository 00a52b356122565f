"""The server API fuzzed from its own OpenAPI document (Schemathesis), over HTTP.

``/openapi.json`` is loaded from a real server (uvicorn on a loopback port, in a
thread of its own: Schemathesis calls it synchronously), and every operation in
it gets generated requests, valid and invalid (wrong types, missing and unknown
fields, values past their bounds), with the tenant's API key. Every answer must
be no server error, have a status the document lists for that operation, and
match the schema the document gives for that status. A status the server really
returns that the document lacks is a finding about the document
(``classroom/tenant_api/openapi.py``), not about the check.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import given
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import (
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from classroom.app import create_app
from classroom.config import Settings
from classroom.edge.server import build_server
from classroom.tenant_api.openapi import build_openapi
from tests.conftest import METRICS_TOKEN, TENANTS
from tests.fuzz.profiles import TIMEOUT, fuzz_settings

pytestmark = TIMEOUT

ACME = {"Authorization": "Bearer acme-key"}
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def api_url() -> Iterator[str]:
    """A real server, serving from a thread with its own event loop, for this module."""
    ready = threading.Event()
    box: dict[str, Any] = {}

    def serve() -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        settings = Settings(tenants_raw=json.dumps(TENANTS), secret="test-secret",
                            api_key_failure_limit=10**9,
                            close_timeout=1.0, drain_timeout=2.0, metrics_token=METRICS_TOKEN)
        server = build_server(create_app(settings), settings, "127.0.0.1", 0)
        box.update(loop=loop, server=server)

        async def run() -> None:
            task = asyncio.create_task(server.serve())
            while not server.started and not task.done():
                await asyncio.sleep(0.01)
            if server.started:
                box["port"] = server.servers[0].sockets[0].getsockname()[1]
            ready.set()
            await task

        try:
            loop.run_until_complete(run())
        finally:
            ready.set()
            loop.close()

    thread = threading.Thread(target=serve, name="api-fuzz-server", daemon=True)
    thread.start()
    assert ready.wait(15) and "port" in box, "the API server did not start"
    url = f"http://127.0.0.1:{box['port']}"
    setup: list[tuple[str, str, Any]] = [
        ("PUT", "/api/v1/sessions/s1", ROSTER),
        ("POST", "/api/v1/sessions/s1/events", {"event": {"kind": "chat", "text": "hi"}}),
    ]
    for method, path, body in setup:
        answer = requests.request(method, url + path, json=body, headers=ACME, timeout=10)
        assert answer.status_code == 200, answer.text
    yield url
    box["loop"].call_soon_threadsafe(setattr, box["server"], "should_exit", True)
    thread.join(20)
    assert not thread.is_alive(), "the API server did not stop"


@pytest.fixture(scope="module")
def api_schema(api_url: str) -> Any:
    """The document as the running server serves it."""
    return schemathesis.openapi.from_url(f"{api_url}/openapi.json")


@pytest.fixture(scope="module")
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


KNOWN = {"sid": "s1", "sub": "u1"}
"""Path parameters that name existing data (half of the cases use them; the rest are
generated, and mostly name nothing)."""
ROSTER = {"title": "Veilig werken", "trainers": ["t1"], "screens": ["intro", "quiz"],
          "students": [{"sub": "u1", "name": "Sam Student", "email": "sam@example.nl"},
                       {"sub": "u2", "name": "Noor de Vries"}]}

OPERATIONS = [(method.upper(), path) for path, item in build_openapi()["paths"].items()
              for method in item]
"""Every operation of the document, one test each (the served copy is checked to be the same)."""


def test_the_served_document_is_the_one_the_operations_come_from(api_url: str) -> None:
    assert requests.get(f"{api_url}/openapi.json", timeout=10).json() == build_openapi()


@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_server_api_matches_its_openapi_document(
    api_schema: Any, http: requests.Session, method: str, path: str
) -> None:
    """Valid and invalid requests: no 5xx, a documented status, a body of its schema."""
    operation = api_schema[path][method]
    known = {name: value for name, value in KNOWN.items() if "{" + name + "}" in path}
    cases = st.one_of(*(operation.as_strategy(generation_mode=mode, headers=ACME, **options)
                        for mode in GenerationMode
                        for options in ({}, {"path_parameters": known} if known else {})))

    @fuzz_settings(40)
    @given(case=cases)
    def call(case: Any) -> None:
        case.call_and_validate(session=http, headers=ACME, checks=CHECKS)

    call()
