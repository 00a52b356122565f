"""Structured logs: one JSON object per line, identifiers are pids, never names.

Only the fields listed in ``SAFE_FIELDS`` are copied from a record's extras, so
a careless ``extra={"email": ...}`` cannot leak personal data into the logs.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import orjson

SAFE_FIELDS = (
    "pid", "client", "session", "command", "reason", "code", "tenant", "count", "address",
)


class JsonFormatter(logging.Formatter):
    """Formats records as JSON with a fixed set of safe extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        """Render one record."""
        entry: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for name in SAFE_FIELDS:
            value = record.__dict__.get(name)
            if value is not None:
                entry[name] = value
        if record.exc_info and record.exc_info[0] is not None:
            entry["error"] = record.exc_info[0].__name__
        return orjson.dumps(entry).decode()


def configure_logging(level: str = "info") -> None:
    """Route the classroom loggers to stderr as JSON lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger("classroom")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
