"""Undoing what a watcher of the garbage collector set up: its callback and its task.

The collector's callbacks are process-wide, and several apps can share a process
(the tests run several nodes in one), so each watcher removes exactly its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import Callable
from typing import Any


async def unhook(callback: Callable[[str, dict[str, Any]], None],
                 task: asyncio.Task[None] | None) -> None:
    """Remove ``callback`` from ``gc.callbacks`` (if there), then cancel ``task`` and wait."""
    with contextlib.suppress(ValueError):
        gc.callbacks.remove(callback)
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
