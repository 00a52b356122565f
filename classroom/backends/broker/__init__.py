"""Offsets, history and fan-out of channels, behind the ``Broker`` protocol."""

from __future__ import annotations

from classroom.backends.broker.base import (
    Broker,
    BrokerUnavailable,
    HistoryResult,
    Publication,
    PublicationHandler,
    PublishResult,
    StreamPosition,
)
from classroom.backends.broker.factory import broker_from_url
from classroom.backends.broker.memory import MemoryBroker

__all__ = [
    "Broker",
    "BrokerUnavailable",
    "HistoryResult",
    "MemoryBroker",
    "Publication",
    "PublicationHandler",
    "PublishResult",
    "StreamPosition",
    "broker_from_url",
]
