"""Where a burst of pub/sub messages ends, so that the frames it queued go out at once.

What Redis sent close together arrives in one socket read, and redis-py hands it
over one message at a time without the reader ever suspending. The node's write
batcher would write the frames those messages queued at the end of the event
loop's iteration: after every callback ready by then, and in uvloop after the
next poll's I/O callbacks too. In a reconnect storm that is hundreds of joins'
steps, a third of an event's way to its members. So the readers ask, after each
message, whether the connection holds more already read, and when it does not
they call the broker's ``on_drained``: the burst's frames are written then, still
one write per member for the whole burst.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from redis.asyncio.client import PubSub

logger = logging.getLogger("classroom.backends.broker")


async def after_message(pubsub: PubSub, on_drained: Callable[[], None] | None) -> None:
    """Call ``on_drained`` (``Broker.on_drained``) if ``pubsub``'s connection holds no
    bytes of another message already; its failure is logged, never the reader's end.

    redis-py's ``can_read`` (8.x) looks only at what its parser and stream have
    buffered (or a closed stream): it neither reads the socket nor waits, so the
    await never suspends.
    """
    if on_drained is None:
        return
    connection = pubsub.connection
    if connection is not None and await connection.can_read():
        return  # the rest of the burst comes first
    try:
        on_drained()
    except Exception:
        logger.exception("on_drained callback failed")
