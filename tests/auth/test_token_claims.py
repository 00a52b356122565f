"""Signed claims that JSON can carry but UTF-8 cannot: refused as ``claims``, end to end.

A JSON string may escape a lone surrogate (``"\\ud800"``). It decodes to a Python
string that every UTF-8 encoder refuses, so such a claim used to fail far from the
token check (storing the profile, hashing the pid, encoding a frame).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from auth.tenants import Tenant, TenantRegistry
from auth.tokens import TokenRejected, issue_token, verify_token
from classroom.logs import JsonFormatter
from tests.client import Client
from tests.conftest import RunningServer

NOW = 1_700_000_000.0
SECRET = "s0-" + "a" * 61
LONE = "\ud800"


@pytest.fixture
def tenant() -> Tenant:
    return Tenant(id="acme", secrets=(SECRET,), api_key="acme-api-key")


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def signed(payload_json: str, secret: str = SECRET) -> str:
    """An HS256 token over exactly this payload text (escapes kept as written)."""
    header = b64(b'{"alg":"HS256","typ":"JWT"}')
    payload = b64(payload_json.encode("ascii"))
    signature = hmac.new(secret.encode(), f"{header}.{payload}".encode(), hashlib.sha256)
    return f"{header}.{payload}.{b64(signature.digest())}"


BASE = '"iss":"acme","role":"student","exp":1700003600,"iat":1700000000'


@pytest.mark.parametrize("claims", [
    '"sub":"u\\ud800","sessions":["s1"]',
    '"sub":"u1","sessions":["s1","s\\udfff"]',
    '"sub":"u1","sessions":["s1"],"name":"Ada \\ud800"',
    '"sub":"u1","sessions":["s1"],"email":"\\udc00@example.nl"',
    '"sub":"u1","sessions":["s1"],"x-extra":{"k":["\\ud800"]}',
    '"sub":"u1","sessions":["s1"],"x-extra":{"\\ud800":1}',
])
def test_a_claim_with_a_lone_surrogate_is_refused(tenant: Tenant, claims: str) -> None:
    token = signed("{" + BASE + "," + claims + "}")
    with pytest.raises(TokenRejected) as refused:
        verify_token(token, TenantRegistry([tenant]), now=NOW)
    assert refused.value.reason == "claims"


def test_a_surrogate_pair_written_as_escapes_is_fine(tenant: Tenant) -> None:
    """``\\ud83d\\ude00`` is one character (😀), valid UTF-8: nothing to refuse."""
    token = signed("{" + BASE + ',"sub":"u1","sessions":["s1"],"name":"Ada \\ud83d\\ude00"}')
    identity = verify_token(token, TenantRegistry([tenant]), now=NOW)
    assert identity.name == "Ada \U0001f600"


def test_issue_token_escapes_a_lone_surrogate_so_it_is_signed_and_then_refused(
    tenant: Tenant,
) -> None:
    token = issue_token(tenant, sub="u1", role="student", sessions=["s1"], now=NOW,
                        name=f"Ada {LONE}")
    with pytest.raises(TokenRejected) as refused:
        verify_token(token, TenantRegistry([tenant]), now=NOW)
    assert refused.value.reason == "claims"


class Captured(logging.Handler):
    """Every record any logger emits during the test."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def captured() -> Iterator[Captured]:
    handler = Captured()
    # uvicorn's loggers do not propagate to the root: listen on them too.
    names = ["", "uvicorn", "uvicorn.error", "classroom"]
    loggers = [logging.getLogger(name) for name in names]
    for logger in loggers:
        logger.addHandler(handler)
    yield handler
    for logger in loggers:
        logger.removeHandler(handler)


@pytest.mark.parametrize("claim", [
    {"name": f"Ada {LONE}"},
    {"sub": f"u{LONE}"},
    {"sessions": ["s1", f"s{LONE}"]},
])
async def test_connect_with_such_a_claim_is_unauthorized_and_logs_no_traceback(
    server: RunningServer, captured: Captured, claim: dict[str, Any],
) -> None:
    fields: dict[str, Any] = {"sub": "u1", "sessions": ["s1"], **claim}
    profile = {k: v for k, v in fields.items() if k not in ("sub", "sessions")}
    token = issue_token(server.tenant(), sub=fields["sub"], role="student",
                        sessions=fields["sessions"], **profile)
    client = await Client.open(server.ws_url)
    reply = await client.connect(token)
    assert reply["type"] == "error" and reply["code"] == "unauthorized", reply
    assert await client.closed_code() == 4401
    # The node is unharmed: the next client connects as usual.
    fine = await server.client("u2", "student")
    await fine.close()
    # Only JSON lines: no traceback (uvicorn prints those as text), nothing at error level.
    noisy = [r for r in captured.records if r.name.startswith(("classroom", "uvicorn"))
             and (r.exc_info is not None or r.levelno >= logging.ERROR)]
    assert noisy == []
    formatter = JsonFormatter()
    for record in captured.records:
        if record.name.startswith("classroom"):
            assert "\n" not in formatter.format(record)
