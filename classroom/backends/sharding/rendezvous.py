"""Rendezvous (highest-random-weight) hashing of channels over Redis shards.

Every node must pick the same shard for a channel, and adding a shard should move
only the channels it wins, so the choice depends on the shards' identities (not on
their order in ``REDIS_URL``) and on a stable hash, never Python's salted ``hash()``.
Shared by the broker and the presence store; ``classroom`` imports it from here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TypeVar
from urllib.parse import parse_qs, urlsplit

T = TypeVar("T")

SHARDABLE_SCHEMES = ("redis", "rediss")


def weight(identity: str, key: str) -> int:
    """The shard's score for ``key``; length-prefixed so no two pairs hash the same input."""
    raw_identity, raw_key = identity.encode(), key.encode()
    material = b"%d:" % len(raw_identity) + raw_identity + raw_key
    return int.from_bytes(hashlib.blake2b(material, digest_size=8).digest(), "big")


def choose(identities: Sequence[str], key: str) -> int:
    """Index of the shard with the highest weight for ``key``; ties go to the larger identity."""
    if not identities:
        raise ValueError("there is no shard to choose from")
    return max(range(len(identities)), key=lambda i: (weight(identities[i], key), identities[i]))


def split_urls(url: str) -> list[str]:
    """The URLs of a comma-separated ``REDIS_URL``; one URL gives a list of one."""
    urls = [part.strip() for part in url.split(",")]
    if any(not part for part in urls):
        raise ValueError("a comma-separated Redis URL must not have empty parts")
    return urls


def first_url(url: str) -> str:
    """The server that holds what is not sharded (records, mail, video ids): the first.

    A Sentinel or cluster URL lists addresses of one deployment, not shards: kept whole.
    """
    if "+" in url.partition("://")[0]:
        return url
    return split_urls(url)[0]


def shard_identity(url: str) -> str:
    """``host:port/db`` of a Redis URL: what names the data, not credentials or options.

    So rotating a password or reordering ``REDIS_URL`` moves no channel.
    """
    parts = urlsplit(url)
    if parts.scheme not in SHARDABLE_SCHEMES:
        raise ValueError(f"only redis:// and rediss:// URLs can be sharded, not {parts.scheme!r}")
    host = (parts.hostname or "localhost").lower()
    if ":" in host:
        host = f"[{host}]"
    path = parts.path.lstrip("/")
    db = path or parse_qs(parts.query).get("db", ["0"])[0]
    return f"{host}:{parts.port or 6379}/{int(db)}"


def shard_identities(urls: Sequence[str]) -> list[str]:
    """The identities of ``urls``; the same Redis listed twice is a configuration mistake."""
    identities = [shard_identity(url) for url in urls]
    if len(set(identities)) != len(identities):
        raise ValueError("the same Redis database is listed more than once in the URL")
    return identities


def checked_shards(kind: str, shards: Sequence[T], identities: Sequence[str]) -> tuple[T, ...]:
    """The shards, refused unless there is at least one and each has an identity of its own."""
    if not shards:
        raise ValueError(f"a sharded {kind} needs at least one shard")
    if len(identities) != len(shards) or len(set(identities)) != len(identities):
        raise ValueError("every shard needs an identity of its own")
    return tuple(shards)
