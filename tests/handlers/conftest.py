"""Fixtures for the command handlers: a real node on the in-memory backends, no socket."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from auth.tenants import Tenant, TenantRegistry
from auth.tokens import issue_token
from classroom.backends.broker import MemoryBroker
from classroom.handlers.services import Services
from classroom.integrations.video import MemoryVideoSessionStore, VideoGateway
from classroom.sessions.node import Node
from presence.memory import MemoryPresenceStore

TENANT = Tenant(id="acme", secrets=("acme-secret-0",), api_key="acme-key", display_name="first")
PING_INTERVAL = 25


def token(sub: str, role: str, sessions: tuple[str, ...] = ("s1",), *,
          tenant: Tenant = TENANT, ttl: float = 600, **profile: Any) -> str:
    """A connection token as the tenant's back end would sign it."""
    return issue_token(tenant, sub=sub, role=role, sessions=list(sessions), ttl=ttl, **profile)


@pytest.fixture
async def node() -> AsyncIterator[Node]:
    """A started node on the embedded broker and presence store; closed after the test."""
    node = Node(tenants=TenantRegistry([TENANT]), broker=MemoryBroker(),
                presence=MemoryPresenceStore(), secret=b"test-secret")
    await node.start()
    yield node
    await node.close()


@pytest.fixture
async def services(node: Node) -> AsyncIterator[Services]:
    """What the handlers are given; video has no OpenTok credentials."""
    video = VideoGateway(None, None, None, store=MemoryVideoSessionStore())
    yield Services(node=node, video=video, token_leeway=0.0, ping_interval=PING_INTERVAL)
    await video.close()
