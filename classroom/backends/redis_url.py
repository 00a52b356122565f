"""What a ``REDIS_URL`` names: one Redis, a Sentinel-watched primary, or a Redis Cluster.

``redis://`` and ``rediss://`` name one server (parsed by redis-py itself). The
two others list several seed addresses, which ``urllib`` cannot split, so they are
parsed here, once, for every user of Redis (broker, presence, records, outboxes):

- ``redis+sentinel://[[user]:password@]host:port[,host:port...]/service[/db]``: the
  sentinels to ask for the current primary of ``service``;
- ``redis+cluster://[[user]:password@]host:port[,host:port...]``: seed nodes of a
  Redis Cluster (the client discovers the rest).

A ``rediss+`` scheme speaks TLS to every address. The password (and user) are
those of the data nodes; sentinels are asked without credentials.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import unquote

Topology = Literal["single", "sentinel", "cluster"]

SCHEMES: dict[str, tuple[Topology, bool]] = {
    "redis": ("single", False),
    "rediss": ("single", True),
    "redis+sentinel": ("sentinel", False),
    "rediss+sentinel": ("sentinel", True),
    "redis+cluster": ("cluster", False),
    "rediss+cluster": ("cluster", True),
}

RETIRED_LIST = (
    "a comma-separated list of redis:// URLs (sessions sharded over several servers) is "
    "no longer supported: run a Redis Cluster and set REDIS_URL=redis+cluster://host:port"
    "[,host:port...] (docs/scaling.md, 'Moving from a list of servers to a cluster')"
)


@dataclass(frozen=True)
class RedisTarget:
    """A parsed ``REDIS_URL``; ``url`` is kept whole for the single-server case."""

    topology: Topology
    tls: bool
    url: str
    addresses: tuple[tuple[str, int], ...] = ()
    service: str = ""
    db: int = 0
    username: str | None = None
    password: str | None = None


def is_redis_url(url: str) -> bool:
    """Whether ``url`` names Redis at all (rather than the embedded ``memory://``)."""
    return url.split("://", 1)[0] in SCHEMES


def parse_redis_url(url: str) -> RedisTarget:
    """Parse and validate ``url``; a ``ValueError`` names the problem, never the password."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in SCHEMES:
        raise ValueError(f"unsupported Redis URL scheme {scheme!r}")
    topology, tls = SCHEMES[scheme]
    if topology == "single":
        if "," in url:
            raise ValueError(RETIRED_LIST)
        return RedisTarget("single", tls, url)
    netloc, _, path = rest.partition("/")
    userinfo, at, hosts = netloc.rpartition("@")
    username = password = None
    if at:
        user, colon, secret = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if colon else None
    addresses = tuple(_address(part) for part in hosts.split(","))
    if len(set(addresses)) != len(addresses):
        raise ValueError(f"{scheme}:// lists the same address twice")
    segments = [unquote(s) for s in path.split("?", 1)[0].split("/") if s]
    if topology == "cluster":
        if segments not in ([], ["0"]):
            raise ValueError("a Redis Cluster has database 0 only: give no /db in the URL")
        return RedisTarget("cluster", tls, url, addresses, username=username, password=password)
    if not segments or len(segments) > 2:
        raise ValueError(f"{scheme}:// needs /service-name[/db] after the sentinels")
    try:
        db = int(segments[1]) if len(segments) == 2 else 0
    except ValueError:
        raise ValueError(f"{scheme}://: the database must be a number") from None
    return RedisTarget("sentinel", tls, url, addresses, segments[0], db, username, password)


def _address(part: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port``); the port is required: sentinels and cluster nodes
    seldom listen on 6379, and a guessed port would fail far from its cause."""
    host, colon, port = part.strip().rpartition(":")
    if not part.strip():
        raise ValueError("a Redis URL's address list must not have empty parts")
    if not colon or not port.isdigit() or not host:
        raise ValueError("every address of a sentinel or cluster URL needs host:port")
    return host.strip("[]").lower(), int(port)
