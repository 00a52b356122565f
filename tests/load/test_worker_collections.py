"""A generator process never pauses for a full garbage collection while it measures.

Its own pauses would be stamped on every frame arriving meanwhile and reported as the
server's latency: in a 5,000-client reconnect storm each full collection of a worker
took 130-265 ms and found nothing to free. Each check runs in a fresh interpreter, so
this test process's collector is left as it was.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

# Grows a heap of long-lived objects the way thousands of clients do, and counts the
# full (oldest-generation) collections Python runs meanwhile.
_GROW_AND_COUNT = textwrap.dedent("""
    import gc, sys
    from loadtests.worker import _hold_full_collections
    if sys.argv[1] == "held":
        _hold_full_collections()
    full = []
    gc.callbacks.append(
        lambda phase, info: full.append(1) if phase == "start" and info["generation"] == 2
        else None)
    clients = [[{"frame": [n, str(n)]} for n in range(200)] for _ in range(3000)]
    print(len(full))
""")


def _full_collections(mode: str) -> int:
    done = subprocess.run([sys.executable, "-c", _GROW_AND_COUNT, mode], check=True,
                          capture_output=True, text=True, timeout=60)
    return int(done.stdout.strip())


def test_a_worker_runs_no_full_collection_while_its_clients_pile_up() -> None:
    assert _full_collections("default") > 0  # what the worker did before
    assert _full_collections("held") == 0
