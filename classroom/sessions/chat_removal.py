"""A trainer removes a chat message: the stored message itself is rewritten, not just hidden.

``chat.remove`` names the message by its offset. The message is read from the
session's stream (the state holds no chat), checked (a chat of the current epoch,
not removed or erased yet), and after the ``chat.remove`` event is stored, it is
rewritten in place to a tombstone (``{"kind": "chat", "removed": true, "at"}``)
with the broker's rewrite, as erasure does: history, replays and recovery show
the tombstone to everyone from then on, and members that got the message live
drop it on the ``chat.remove`` event.
"""

from __future__ import annotations

from typing import Any

from classroom.backends.broker import Broker
from classroom.domain.checks import NO_CHAT
from classroom.domain.refusals import RequestRefused
from classroom.sessions.messages import event_message, unpack_internal


def removed_chat(record: dict[str, Any]) -> dict[str, Any]:
    """What is left of a removed chat message: its kind and time, nobody's words or name."""
    return {"kind": "chat", "removed": True, "at": record.get("at")}


async def removable_chat(broker: Broker, channel: str, epoch: str, offset: int) -> dict[str, Any]:
    """The tombstone for the chat message at ``offset`` of ``epoch``; ``bad_request`` if none.

    Refused when the offset holds another kind, a message already removed or erased,
    nothing (trimmed from history), or belongs to another epoch.
    """
    page = await broker.read_page(channel, after=offset - 1, limit=1)
    if not page or page[0].offset != offset or page[0].epoch != epoch:
        raise RequestRefused("bad_request", NO_CHAT)
    record = unpack_internal(page[0].data).get("record") or {}
    if record.get("kind") != "chat" or record.get("removed") or record.get("erased"):
        raise RequestRefused("bad_request", NO_CHAT)
    return removed_chat(record)


async def remove_chat(
    broker: Broker, channel: str, epoch: str, offset: int, tombstone: dict[str, Any]
) -> None:
    """Rewrite the message at ``offset`` to ``tombstone`` while the stream is of ``epoch``."""
    await broker.rewrite(channel, {offset: event_message(tombstone)}, epoch=epoch)
