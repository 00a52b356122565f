"""A backend chosen by its URL's scheme, the way encode/broadcaster picks one.

``memory://`` (or no URL) is the embedded default; ``redis://`` and ``rediss://``
one Redis; a comma-separated list of Redis URLs shards channels over those
servers (:mod:`classroom.backends.sharding`). The broker and the presence store
are both built this way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import urlsplit

from classroom.backends.sharding.rendezvous import shard_identities, split_urls

B = TypeVar("B")

Build = Callable[[str, dict[str, Any]], B]
"""Builds one backend from a URL and the caller's options (a copy it may change)."""


def backend_from_url(
    url: str | None,
    options: dict[str, Any],
    *,
    kind: str,
    schemes: dict[str, Build[B]],
    sharded: Callable[[Sequence[B], Sequence[str]], B],
) -> B:
    """The backend of ``kind`` for ``url``, built by the builder of its scheme.

    ``redis://a,redis://b`` builds one backend per URL with the ``redis`` builder and
    wraps them in ``sharded``, after every URL was validated.
    """
    url = url or "memory://"
    if "," in url and "+" not in url.partition("://")[0]:
        urls = split_urls(url)
        identities = shard_identities(urls)  # validates every URL before anything is built
        return sharded([schemes["redis"](part, dict(options)) for part in urls], identities)
    scheme = urlsplit(url).scheme
    build = schemes.get(scheme)
    if build is None:
        raise ValueError(f"unsupported {kind} URL scheme {scheme!r}")
    return build(url, dict(options))
