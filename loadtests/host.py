"""The shared machine, as every bench sees it: how busy other processes keep it, and
how many files a bench may open.

``compare``, ``scaleout`` and ``joincost`` all start servers and thousands of client
sockets on a machine that other people's test runs share; they need the same two
answers, and none of them should have to import another bench to get them.
"""

from __future__ import annotations

import os
import resource
import time

from loadtests.monitor import machine_cpu


def background_load(seconds: float = 1.0) -> float | None:
    """How busy the machine is before we start, in % of one core."""
    first = machine_cpu()
    time.sleep(seconds)
    second = machine_cpu()
    if first is None or second is None or second[1] <= first[1]:
        return None
    share = (second[0] - first[0]) / (second[1] - first[1])
    return round(100 * share * (os.cpu_count() or 1), 1)


def raise_file_limit() -> None:
    """Every connection is a file descriptor on both sides; children inherit this."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
