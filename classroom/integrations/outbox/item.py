"""What every durable outbox holds: one item to deliver, with its delivery bookkeeping.

Mail messages and webhook deliveries subclass :class:`Item` with what they carry; the
stores (:mod:`.memory`, :mod:`.redis`) only read the fields defined here, so one store
serves both. The JSON written by :meth:`Item.dumps` is what the Redis store keeps, so
the field names here are part of its stored format.
"""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Self

import orjson

DAY = 86400.0
_ITEM_ID = re.compile(r"[0-9a-f]{32}")


def is_item_id(text: str) -> bool:
    """Whether ``text`` can be an item id (``Item.new`` makes 32 lowercase hex digits)."""
    return _ITEM_ID.fullmatch(text) is not None


def error_label(error: BaseException) -> str:
    """How a failure is kept: the exception's ``outbox_label`` or its class name, never its text.

    Error texts often quote addresses or bodies; a class name (or a label such as
    ``HTTP 500`` that an exception sets on purpose) says enough to act on.
    """
    label = getattr(error, "outbox_label", None)
    return label if isinstance(label, str) else type(error).__name__


@dataclass(frozen=True, slots=True, kw_only=True)
class Item:
    """One thing to deliver for a tenant; who it is about stays out of ``repr`` (and logs)."""

    id: str
    tenant: str
    about: list[str] = field(default_factory=list, repr=False)  # subs whose data it holds
    session: str | None = None
    dedupe: str | None = field(default=None, repr=False)  # one item per key while it is held
    attempts: int = 0
    next_attempt_at: float = 0.0
    created_at: float = 0.0
    last_error: str | None = None  # an exception class name (or label), never its text
    sent_at: float | None = None
    died_at: float | None = None  # given up on after the outbox's max_attempts

    @classmethod
    def new(cls, *, now: float | None = None, item_id: str | None = None, **fields: Any) -> Self:
        """A fresh item, due now, with a random id unless one is given (ids are logged)."""
        at = time.time() if now is None else now
        return cls(id=item_id or uuid.uuid4().hex, created_at=at, next_attempt_at=at, **fields)

    @property
    def settled_at(self) -> float | None:
        """When it left the queue for good (sent or dead); retention counts from here."""
        return self.sent_at if self.sent_at is not None else self.died_at

    @property
    def status(self) -> str:
        """queued, sent or dead."""
        if self.sent_at is not None:
            return "sent"
        return "dead" if self.died_at is not None else "queued"

    def as_sent(self, at: float) -> Self:
        """The record kept once delivered; a subclass may drop what need not be kept."""
        return replace(self, sent_at=at)

    def dumps(self) -> bytes:
        """JSON, as the Redis store keeps it.

        ``died_at`` is written only once the item is dead, so queued and sent items look
        as they did to nodes that do not know dead letters yet.
        """
        fields = asdict(self)
        if self.died_at is None:
            del fields["died_at"]
        return orjson.dumps(fields)

    @classmethod
    def loads(cls, raw: bytes | str) -> Self:
        """The inverse of :meth:`dumps`."""
        return cls(**orjson.loads(raw))

    def describe(self, sub: str) -> dict[str, Any]:
        """What an export shows ``sub`` of this item; subclasses add what is theirs to see."""
        return {
            "id": self.id, "session": self.session, "status": self.status,
            "attempts": self.attempts, "created_at": self.created_at,
            "sent_at": self.sent_at, "died_at": self.died_at,
        }
