"""How the runs of one scaleout invocation stay apart on one shared Redis Cluster.

Every run of an invocation uses the same cluster, so each gets a key prefix of its
own, and the nodes and clients of the invocation share a tenant and secrets made up
for it. What a run leaves in the cluster, and how it is found and removed, is kept
here next to the prefix that names it.
"""

from __future__ import annotations

import contextlib
import json
import secrets
from dataclasses import dataclass, field

import redis

from loadtests.plan import Credentials
from loadtests.servers import clean_environment
from tests.redis_topologies import ClusterSet

TENANT = "scaleout"
RATE_LIMIT = "1000"  # the trainer's 20 events/s are far below; no refusal from the generator


@dataclass
class Identity:
    """The tenant, secrets and key prefixes the nodes and clients of one invocation share."""

    run_id: str = field(default_factory=lambda: secrets.token_hex(4))
    secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    metrics_token: str = field(default_factory=lambda: secrets.token_urlsafe(32))

    @property
    def credentials(self) -> Credentials:
        """What the clients sign their tokens with."""
        return Credentials(TENANT, self.secret)

    def prefix(self, name: str, repeat: int) -> str:
        """The Redis key prefix of one run (and nothing else)."""
        return f"lt-scale-{self.run_id}-{name}-{repeat}"

    def environment(self) -> dict[str, str]:
        """A node's environment without the broker; every node of a run gets the same."""
        tenants = {TENANT: {"secrets": [self.secret], "api_key": secrets.token_urlsafe(24)}}
        return {**clean_environment(), "CLASSROOM_TENANTS": json.dumps(tenants),
                "CLASSROOM_SECRET": self.run_id + secrets.token_urlsafe(24),
                "CLASSROOM_METRICS_TOKEN": self.metrics_token,
                "CLASSROOM_RATE_LIMIT_PER_SECOND": RATE_LIMIT,
                "CLASSROOM_RATE_LIMIT_BURST": RATE_LIMIT,
                "CLASSROOM_LOG_LEVEL": "warning"}


def delete_cluster_prefix(cluster: ClusterSet, prefix: str) -> int:
    """Delete the keys under ``<prefix>:`` on every primary (one DEL per key: keys of
    different slots cannot share a command)."""
    removed = 0
    for primary in cluster.primaries():
        client = primary.client()
        try:
            for key in client.scan_iter(match=f"{prefix}:*", count=1000):
                with contextlib.suppress(redis.ResponseError):  # moved meanwhile: not ours
                    removed += int(client.delete(key))
        finally:
            client.close()
    return removed


def last_event(cluster: ClusterSet, prefix: str) -> bytes | None:
    """The data of the newest stored event under ``prefix`` (the room's stream): what the
    publish script stored and sent, to size the broker measurement after it."""
    for primary in cluster.primaries():
        client = primary.client()
        try:
            for key in client.scan_iter(match=f"{prefix}:*:stream", count=1000):
                entries = client.xrevrange(key, count=1) or []
                if entries and entries[0][1]:
                    data = dict(entries[0][1]).get(b"d")
                    if isinstance(data, bytes):
                        return data
        except redis.RedisError:
            continue
        finally:
            client.close()
    return None
