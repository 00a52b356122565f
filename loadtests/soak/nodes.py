"""The server nodes a soak measures: started fresh, on loopback, with the census switched on.

With Redis, every node shares one key prefix of the soak's own (deleted at the
end), so the nodes form one cluster as in production; with the memory broker
there is one node. Each node is one ``classroom serve`` process, stopped by its
pid (``loadtests/servers.py``).
"""

from __future__ import annotations

import contextlib
import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from loadtests.monitor import metrics_url
from loadtests.plan import Credentials
from loadtests.servers import ManagedServer, check_redis, clean_environment, started_nodes
from loadtests.soak.config import SoakConfig

TENANT = "soak"
CENSUS_TIMEOUT = 30.0  # a full collection and an object walk, on a busy machine
# The soak's own people stay within the per-connection defaults but share a machine with
# many others; rate limits high enough that refusals never come from the generator's bursts.
RATE_LIMIT = "1000"


SESSION_IDLE = "20"
"""Seconds a node keeps an unused session's state (``CLASSROOM_SESSION_IDLE``) in the soak."""


@dataclass
class Cluster:
    """The identities the soak's nodes and clients share."""

    config: SoakConfig
    run_id: str = field(default_factory=lambda: secrets.token_hex(4))
    secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    metrics_token: str = field(default_factory=lambda: secrets.token_urlsafe(32))

    @property
    def prefix(self) -> str:
        """The Redis key prefix of this run (and nothing else)."""
        return f"lt-soak-{self.run_id}"

    @property
    def credentials(self) -> Credentials:
        """What the clients sign their tokens with."""
        return Credentials(TENANT, self.secret)

    def environment(self) -> dict[str, str]:
        """One node's environment: a tenant of the soak's own, the census, Redis if asked."""
        tenants = {TENANT: {"secrets": [self.secret], "api_key": secrets.token_urlsafe(32)}}
        env = {**clean_environment(), "CLASSROOM_TENANTS": json.dumps(tenants),
               "CLASSROOM_SECRET": self.run_id + secrets.token_urlsafe(24),
               "CLASSROOM_METRICS_TOKEN": self.metrics_token,
               "CLASSROOM_DEBUG_CENSUS": "1",
               "CLASSROOM_RATE_LIMIT_PER_SECOND": RATE_LIMIT,
               "CLASSROOM_RATE_LIMIT_BURST": RATE_LIMIT,
               # An abandoned session (no session.end) is forgotten once idle this long;
               # production waits 300 s, the soak's settle (65 s) must see it happen.
               "CLASSROOM_SESSION_IDLE": SESSION_IDLE,
               "CLASSROOM_LOG_LEVEL": "warning"}
        if self.config.broker == "redis":
            env.update({"REDIS_URL": self.config.redis_url,
                        "CLASSROOM_REDIS_PREFIX": self.prefix})
        return env

    @contextlib.contextmanager
    def nodes(self) -> Iterator[list[ManagedServer]]:
        """Start every node; stop them all (by pid) whatever happens."""
        if self.config.broker == "redis":
            check_redis(self.config.redis_url)
        with started_nodes(self.config.nodes, self.environment(), "soak-node-") as started:
            yield started


def ws_url(server: ManagedServer) -> str:
    """The node's WebSocket endpoint."""
    return f"ws://127.0.0.1:{server.port}/ws"


def fetch_census(server: ManagedServer, token: str, collect: bool) -> dict[str, Any] | None:
    """The node's ``/debug/census`` (after a full collection when ``collect``); None when
    it does not answer."""
    import urllib.request

    base = metrics_url(ws_url(server)).removesuffix("/metrics")
    url = f"{base}/debug/census{'?collect=1' if collect else ''}"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})  # noqa: S310
    try:
        with opener.open(request, timeout=CENSUS_TIMEOUT) as response:
            data: dict[str, Any] = json.loads(response.read())
    except (OSError, ValueError):
        return None
    return data
