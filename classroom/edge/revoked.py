"""Closing this node's connections whose token an erasure revoked, when a command may be lost.

The control feed normally tells every node to close an erased user's
connections. When a node finds it may have missed commands for good (the feed
was trimmed past it, or Redis lost it), it re-checks each open connection's
token against the per-user not-before instead: what a ``connect`` or ``join``
would refuse is closed the way an erasure closes it.
"""

from __future__ import annotations

import logging

from classroom.backends.data.records import Records
from classroom.edge.registry import ConnectionRegistry
from classroom.protocol.close_codes import CLOSE_FORBIDDEN

log = logging.getLogger("classroom.edge.revoked")

ERASED_REASON = "your data was erased"


async def close_revoked(registry: ConnectionRegistry, records: Records) -> int:
    """Close (4403, no reconnect) every connection whose token predates its user's erasure."""
    closed = 0
    for connection in registry.authenticated():
        identity = connection.identity
        if identity is not None and await records.token_revoked(identity):
            connection.disconnect(CLOSE_FORBIDDEN, ERASED_REASON, reconnect=False)
            closed += 1
    if closed:
        log.warning("closed connections of erased users after a control gap")
    return closed
