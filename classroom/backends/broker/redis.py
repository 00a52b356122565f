"""The Redis broker: offsets, history and fan-out shared by every node, as in centrifuge.

Keys of one channel share the hash tag ``{channel}`` so they land in one Cluster slot:
``<prefix>:{<channel>}:meta`` (hash: ``o`` offset, ``e`` epoch), ``:stream`` (entries
``<offset>-0`` with ``d`` data and ``t`` publish time in ms), ``:idem:<key>``
(``"<offset>:<epoch>"``) and ``:idemfp:<key>`` (the publish's fingerprint, when it
gave one); while an erasure rewrites the stream, ``:rewrite:<token>`` (the copy) and
``:rewriting`` (the lock). Publications travel on the pub/sub channel
``<prefix>:{<channel>}:pub`` as ``b"<offset>:<epoch>:" + data``; one Lua script
(``redis_scripts.PUBLISH``) stores and publishes, so every node receives them in offset order.

The broker is built from one part per job: the shared settings, client and key
names (``redis_core``), the stream commands (``redis_streams``) and the pub/sub
listener (``redis_pubsub``). This module joins them and is where the rest of the
project imports the broker and its constants from.
"""

from __future__ import annotations

from classroom.backends.broker.redis_core import (
    HEALTH_CHECK_INTERVAL,
    REWRITE_CHUNK,
    UNREACHABLE,
)
from classroom.backends.broker.redis_pubsub import READ_TIMEOUT, RedisPubSubListener
from classroom.backends.broker.redis_streams import (
    REWRITE_RETRY,
    REWRITE_TTL_MS,
    REWRITE_WAIT,
    RedisStreamCommands,
)

__all__ = [
    "HEALTH_CHECK_INTERVAL",
    "READ_TIMEOUT",
    "REWRITE_CHUNK",
    "REWRITE_RETRY",
    "REWRITE_TTL_MS",
    "REWRITE_WAIT",
    "UNREACHABLE",
    "RedisBroker",
]


class RedisBroker(RedisStreamCommands, RedisPubSubListener):
    """The ``Broker`` of many nodes sharing one Redis; one pub/sub connection per broker.

    A supervised reader task delivers publications to the handler in arrival order,
    reconnects forever with capped backoff, resubscribes every subscribed channel,
    then calls ``on_reconnect`` so the node can tell its clients to recover what
    they missed while the connection was down.
    """
