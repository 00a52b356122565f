"""A backend chosen by its URL's scheme, the way encode/broadcaster picks one.

``memory://`` (or no URL) is the embedded default; ``redis://`` and ``rediss://``
one Redis, ``redis+sentinel://`` Sentinel's primary, ``redis+cluster://`` a Redis
Cluster (:mod:`classroom.backends.redis_url`). The broker and the presence store
are both built this way. A comma-separated list of ``redis://`` URLs (the retired
sharding over several servers) is refused with a message pointing to the cluster.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from classroom.backends.redis_url import RETIRED_LIST

B = TypeVar("B")

Build = Callable[[str, dict[str, Any]], B]
"""Builds one backend from a URL and the caller's options (a copy it may change)."""


def backend_from_url(
    url: str | None, options: dict[str, Any], *, kind: str, schemes: dict[str, Build[B]],
) -> B:
    """The backend of ``kind`` for ``url``, built by the builder of its scheme."""
    url = url or "memory://"
    scheme = urlsplit(url).scheme
    if "," in url and scheme in ("redis", "rediss"):
        raise ValueError(RETIRED_LIST)
    build = schemes.get(scheme)
    if build is None:
        raise ValueError(f"unsupported {kind} URL scheme {scheme!r}")
    return build(url, dict(options))
